"""Read the fenced shell blocks of the runbooks, and run the `sh local` ones against a local stack.

A block whose info string is `sh local <name>` holds commands that work against `make local`
exactly as written; the tests run them through the tools' own `main()` functions, after filling
in what differs in a test's throw-away stack: its stack file (`--stack-file`), its ports (the
runbooks say 5000 / 8900 / 3000, as `make local` uses), `$(out <Output>)` and `<placeholders>`.
"""

from __future__ import annotations

import io
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Callable, Mapping
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Final

REPO: Final = Path(__file__).resolve().parents[2]
RUNBOOKS: Final = REPO / "docs" / "runbooks"
LOCAL_PORTS: Final = {"aws": 5000, "offergrid": 8900, "api": 3000}

_FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<info>[^\n`]*)\n(?P<body>.*?)^[ \t]*```[ \t]*$", re.M | re.S)
_OUT = re.compile(r"\$\(out (\w+)\)")
_PLACEHOLDER = re.compile(r"<([A-Za-z][\w ]*)>")
_PYTHON = ("python", ".venv/bin/python", "python3")
# Run as a process, as the operator does: the CLI reads secrets through Powertools' process-wide
# default provider, whose boto3 client keeps the endpoint of the first use in this test process.
SUBPROCESS_MODULES: Final = frozenset({"devtools.offer_sync_cli"})


@dataclass(frozen=True)
class Block:
    path: Path
    info: tuple[str, ...]
    body: str

    @property
    def language(self) -> str:
        return self.info[0] if self.info else ""

    @property
    def local_name(self) -> str | None:
        """`name` of a `sh local name` block, else None."""
        if len(self.info) >= 3 and self.info[:2] == ("sh", "local"):
            return self.info[2]
        return None

    def commands(self) -> list[str]:
        """The block's commands: continuation lines joined, blank and comment-only lines dropped."""
        lines: list[str] = []
        pending = ""
        for raw in self.body.splitlines():
            line = raw.strip()
            if line.endswith("\\"):
                pending += line[:-1] + " "
                continue
            line = pending + line
            pending = ""
            if line and not line.startswith("#"):
                lines.append(line)
        if pending.strip():
            lines.append(pending.strip())
        return lines


def blocks(folder: Path = RUNBOOKS) -> list[Block]:
    found: list[Block] = []
    for path in sorted(folder.glob("*.md")):
        for match in _FENCE.finditer(path.read_text(encoding="utf-8")):
            indent = match["indent"]
            body = "\n".join(line.removeprefix(indent) for line in match["body"].splitlines())
            found.append(Block(path, tuple(match["info"].split()), body))
    return found


def local_blocks(folder: Path = RUNBOOKS) -> dict[str, Block]:
    named: dict[str, Block] = {}
    for block in blocks(folder):
        name = block.local_name
        if name is not None:
            if name in named:
                raise AssertionError(
                    f"two `sh local {name}` blocks ({named[name].path.name}, {block.path.name})"
                )
            named[name] = block
    return named


def outputs_used(block: Block) -> set[str]:
    """Stack outputs a block reads: `$(out Name)`, `"$(out $q)"` aside, and `out Name` commands."""
    used = set(_OUT.findall(block.body))
    used.update(re.findall(r"(?:^|;\s*|&&\s*)out (\w+)\b", block.body, flags=re.M))
    return used


_SHELL_OPERATORS: Final = frozenset({";", "|", "||", "&&", "&", ">", ">>", "<", "2>", "(", ")"})


def command_words(command: str) -> list[str]:
    """The words of a command's first simple command (up to a pipe, redirection, `;`, `&&`...)."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = "#"
    words: list[str] = []
    for word in lexer:
        if word in _SHELL_OPERATORS:
            break
        words.append(word)
    return words


@dataclass(frozen=True)
class Result:
    command: str
    code: int
    out: str
    err: str


def setup_exports(readme: Path = REPO / "README.md") -> list[str]:
    """The `export` lines of the README's setup block, the one block of local shell settings."""
    section = readme.read_text(encoding="utf-8").split("\n### Setup\n", 1)[1].split("\n### ", 1)[0]
    found = _FENCE.search(section)
    assert found is not None, "the README's Setup has no code block"
    return [line for line in found["body"].splitlines() if line.startswith("export ")]


def split_python_module(argv: list[str]) -> tuple[str, list[str]] | None:
    """('devtools.replay', [args]) for `python -m devtools.replay args`, else None."""
    if len(argv) >= 3 and argv[0] in _PYTHON and argv[1] == "-m":
        return argv[2], argv[3:]
    return None


class LocalRunner:
    """Runs `sh local` commands against one local stack (in this process, except SUBPROCESS_MODULES).

    `setenv` applies an `export` (the test's `monkeypatch.setenv`, so a process started later
    inherits it and the test's environment is restored afterwards).
    """

    def __init__(
        self,
        *,
        stack_file: Path,
        outputs: Mapping[str, str],
        urls: Mapping[str, str],
        setenv: Callable[[str, str], None],
    ) -> None:
        self.stack_file = stack_file
        self.outputs = outputs
        self.urls = urls
        self.setenv = setenv

    def substitute(self, command: str, placeholders: Mapping[str, str] | None = None) -> str:
        def output(match: re.Match[str]) -> str:
            name = match[1]
            if name not in self.outputs:
                raise AssertionError(f"{command!r}: the local stack has no output {name}")
            return self.outputs[name]

        text = _OUT.sub(output, command)
        for name, port in LOCAL_PORTS.items():
            text = text.replace(f"http://127.0.0.1:{port}", self.urls[name].rstrip("/"))
        text = os.path.expandvars(text)  # `"$OFFERGRID_FAKE_URL"`, set by the setup block's exports
        for name, value in (placeholders or {}).items():
            text = text.replace(f"<{name}>", value)
        left = _PLACEHOLDER.findall(text)
        if left:
            raise AssertionError(f"{command!r}: no value for the placeholder(s) {left}")
        return text

    def apply_setup_block(self) -> None:
        """The README's setup block (the local stack's settings for a shell), this stack's ports in."""
        for command in setup_exports():
            self.run(command)

    def run(self, command: str, placeholders: Mapping[str, str] | None = None) -> Result:
        argv = shlex.split(self.substitute(command, placeholders), comments=True)
        if argv and argv[0] == "export":
            for pair in argv[1:]:
                name, _, value = pair.partition("=")
                self.setenv(name, value)
            return Result(command, 0, "", "")
        module = split_python_module(argv)
        if module is None:
            raise AssertionError(
                f"a `sh local` block may only hold `export` and `python -m devtools...`: {command!r}"
            )
        name, args = module
        if name in SUBPROCESS_MODULES:
            completed = subprocess.run(  # noqa: S603 - our interpreter, a module of this repo
                [sys.executable, "-m", name, *args],
                cwd=REPO,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            return Result(command, completed.returncode, completed.stdout, completed.stderr)
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            code = self._main(name, args)
        return Result(command, code, out.getvalue(), err.getvalue())

    def _main(self, module: str, args: list[str]) -> int:
        stack = ["--stack-file", str(self.stack_file)]
        if module == "devtools.replay":
            from devtools import replay

            return replay.main([*args, *stack])
        if module == "devtools.local":
            from devtools.local.__main__ import main as local_main

            return local_main([*args, *stack])
        if module == "devtools.smoke":
            from devtools import smoke

            return smoke.main([*args, *stack])
        raise AssertionError(f"no runner for `python -m {module}` in a `sh local` block")
