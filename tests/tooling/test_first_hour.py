"""A new user's first hour, as processes: `make local`, replay the sample webhook, see the decision,
Ctrl-C, and the tools then say the stack is not running (issue 13); the README's own commands, its
setup block included, as written (issue 22).

`up` runs exactly as `make local` runs it (`python -m devtools.local up`), on free ports instead of
3000/5000/8900 (other test runs share the machine) and with its stack file in a temporary folder:
the commands `make local` prints are this stack's, and the README's are run with the stack file
added and the ports `make local` printed. Nothing is seeded by the test: the order items come from
`make local` itself.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.runbook_blocks import setup_exports
from tests.fixtures.docs import sh_commands

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT = 180.0

pytestmark = pytest.mark.slow


def _run(*argv: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own CLIs
        [sys.executable, "-m", *argv],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@dataclass
class RunningStack:
    """`make local` as a process, and its stack file."""

    file: Path
    process: subprocess.Popen[str]

    def ctrl_c(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    folder = tmp_path_factory.mktemp("first-hour")
    log_path = folder / "up.log"
    free_ports = ["--port", "0", "--moto-port", "0", "--fake-port", "0"]
    with log_path.open("w") as log:
        up = subprocess.Popen(  # noqa: S603
            [
                sys.executable,
                "-m",
                "devtools.local",
                "up",
                *free_ports,
                "--stack-file",
                str(folder / "stack.json"),
            ],
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    stack = RunningStack(folder / "stack.json", up)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while "Ctrl-C to stop." not in log_path.read_text():
            assert up.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, "make local did not come up"
            time.sleep(0.2)
        yield stack
    finally:
        stack.ctrl_c()


@pytest.fixture
def stack_file(running: RunningStack) -> Path:
    return running.file


def _printed(running: RunningStack) -> str:
    return (running.file.parent / "up.log").read_text()


def test_make_local_says_which_order_items_it_seeded(running: RunningStack) -> None:
    printed = _printed(running)
    assert "item-456-def" in printed
    # the next command, for this stack (its stack file, not .local/stack.json)
    replay = ".venv/bin/python -m devtools.replay webhook events/webhook_order_created.json"
    assert f"{replay} --stack-file {running.file}" in printed


def _printed_exports(running: RunningStack) -> list[str]:
    return [line for line in _printed(running).splitlines() if line.startswith("export ")]


def test_make_local_prints_the_readme_setup_block_with_its_own_ports(running: RunningStack) -> None:
    urls = json.loads(running.file.read_text())["urls"]
    printed = _printed_exports(running)
    assert f"export AWS_ENDPOINT_URL={urls['aws']}  # the local stack's moto (AWS)" in printed
    assert f"export OFFERGRID_FAKE_URL={urls['offergrid']}  # the local Offergrid (the fake)" in printed
    # the README's block, but for the ports this stack took
    assert [re.sub(r":\d+\b", ":<port>", line) for line in printed] == [
        re.sub(r":\d+\b", ":<port>", line) for line in setup_exports()
    ]
    assert "(= events/env.json)" not in _printed(running)  # not on these ports


def test_the_readme_sync_plan_example_works_after_its_setup_block(running: RunningStack) -> None:
    # Given a new user's shell: no AWS settings of their own, the block `make local` printed pasted in
    (example,) = [c for c in readme_commands() if "devtools.offer_sync_cli plan" in c]
    shell = "\n".join([*_printed_exports(running), example])
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "OFFERGRID_"))}
    done = subprocess.run(  # noqa: S603 - bash runs the README's lines, as the user pastes them
        [shutil.which("bash") or "/bin/bash", "-c", shell],
        cwd=REPO,
        env={**clean, "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent", "AWS_CONFIG_FILE": "/nonexistent"},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    # Then it plans (it said "Unable to locate credentials", and without exports NoRegionError)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("Plan (dry run):"), done.stdout


def test_replaying_the_sample_webhook_ends_in_a_decision(stack_file: Path) -> None:
    # When the user replays the sample order.created against the running stack
    done = _run(
        "devtools.replay", "webhook", "events/webhook_order_created.json", "--stack-file", str(stack_file)
    )
    # Then the webhook is accepted, and the order processor's decision is printed
    assert done.returncode == 0, done.stdout + done.stderr
    assert "webhook_order_created.json -> 200" in done.stdout
    assert "item-456-def: accepted" in done.stdout, done.stdout


def test_replaying_every_sample_webhook_succeeds_and_says_each_items_last_word(stack_file: Path) -> None:
    # `make replay ARGS="webhook"`: the refusal samples are refused, as they should be, and exit is 0
    done = _run("devtools.replay", "webhook", "--stack-file", str(stack_file))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "webhook_bad_signature.json -> 401" in done.stdout
    assert "webhook_malformed_body.json -> 400" in done.stdout
    # item-456-def was accepted by the test before; the cancellation sample has just cancelled it
    # (it said "item-456-def: accepted": the status it saw before the cancellation was handled)
    assert "item-456-def: accepted, then cancelled (at the local Offergrid: cancelled)" in done.stdout
    assert "item-457-xyz: accepted (at the local Offergrid: accepted)" in done.stdout


def test_replay_sync_json_is_json_only_on_stdout(stack_file: Path) -> None:
    done = _run("devtools.replay", "sync", "--dry-run", "--json", "--stack-file", str(stack_file))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["sync"]["status"] == "dry_run"  # `| jq` works
    assert done.stderr == ""  # the function's log went to its log file


def test_replay_sync_of_an_unknown_sku_warns_and_fails(stack_file: Path) -> None:
    done = _run(
        "devtools.replay",
        "sync",
        "--dry-run",
        "--sku",
        "NO-SUCH-SKU",
        "--json",
        "--stack-file",
        str(stack_file),
    )
    assert done.returncode == 1
    assert "--sku NO-SUCH-SKU matched nothing" in done.stderr
    json.loads(done.stdout)  # still the result, for whoever pipes it


def test_invoke_of_a_non_2xx_answer_exits_non_zero(stack_file: Path) -> None:
    done = _run(
        "devtools.local",
        "invoke",
        "WebhookIngressFunction",
        "-e",
        "events/webhook_bad_signature.json",
        "--stack-file",
        str(stack_file),
    )
    assert json.loads(done.stdout)["statusCode"] == 401
    assert done.returncode == 1
    assert "the function answered HTTP 401" in done.stderr


def _documented_make_examples() -> list[list[str]]:
    """Every `make replay ARGS="..."` / `make invoke FUNCTION=... EVENT=...` in `make help`, the
    README and docs/local.md, as the module command it runs (the stack file added by the caller)."""
    help_text = subprocess.run(  # noqa: S603
        [shutil.which("make") or "make", "help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    texts = [help_text, *((REPO / name).read_text() for name in ("README.md", "docs/local.md"))]
    commands: list[list[str]] = []
    for text in texts:
        for args in re.findall(r'(?:make replay )?(?<!\w)ARGS="([^"]*)"', text):  # not BENCH_ARGS
            if args and ".local/" not in args and "..." not in args:
                commands.append(["devtools.replay", *shlex.split(args)])
        for function, event in re.findall(r"make invoke FUNCTION=(\w+)(?: EVENT=(\S+?))?`?(?:\s|$)", text):
            commands.append(["devtools.local", "invoke", function, *(["-e", event] if event else [])])
    # and the README's own `.venv/bin/python -m devtools...` lines for the local stack
    for command in readme_commands():
        words = shlex.split(command.split(" > ", 1)[0], comments=True)
        if words[:2] != [".venv/bin/python", "-m"] or words[2] not in ("devtools.replay", "devtools.local"):
            continue
        if "--stack-name" in words or "up" in words[3:4] or "..." in command:
            continue
        commands.append(words[2:])
    return [list(c) for c in dict.fromkeys(tuple(c) for c in commands)]


def readme_commands() -> list[str]:
    """The README's shell lines (continuations joined), as a user copies them."""
    return sh_commands((REPO / "README.md").read_text())


def test_every_documented_make_example_succeeds_as_written(stack_file: Path) -> None:
    examples = _documented_make_examples()
    assert ["devtools.replay", "webhook"] in examples  # the one that failed by design before
    assert ["devtools.replay", "sync", "--dry-run"] in examples
    assert ["devtools.local", "invoke", "OfferSyncFunction"] in examples  # its own sample event
    assert any("--ephemeral" in c for c in examples)  # the README's throw-away stack
    for command in examples:
        done = _run(*command, "--stack-file", str(stack_file), timeout=300)
        assert done.returncode == 0, (command, done.stdout[-2000:], done.stderr[-2000:])


def test_seeding_more_items_as_docs_local_md_shows(stack_file: Path, tmp_path: Path) -> None:
    # Given an item added through the fake's control plane (the docs' curl POST, as it sends it)
    fake_url = json.loads(stack_file.read_text())["urls"]["offergrid"]
    request = urllib.request.Request(  # noqa: S310 - the local fake
        f"{fake_url}/_fake/orders",
        data=json.dumps({"id": "item-900", "orderId": "order-900", "status": "pending"}).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        assert response.status == 201
    # When a bare payload naming it is replayed (signed fresh)
    payload = tmp_path / "item-900.json"
    payload.write_text(
        '{"event": "order.created", "orderId": "order-900", "itemId": "item-900", "offerId": "o-1"}'
    )
    done = _run("devtools.replay", "webhook", str(payload), "--stack-file", str(stack_file))
    # Then it is decided too
    assert done.returncode == 0, done.stdout + done.stderr
    assert "item-900: accepted" in done.stdout


def test_a_copied_command_run_with_another_python_says_so_in_one_line() -> None:
    # -S: no site-packages, as a system Python without the project's dependencies
    done = subprocess.run(
        [sys.executable, "-S", "-m", "devtools.replay", "dlq", "list"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "is not the project's interpreter" in done.stderr
    assert ".venv/bin/python" in done.stderr


# Runs last in this module (pytest keeps file order): it stops the stack.
def test_after_ctrl_c_the_tools_say_the_stack_is_not_running(running: RunningStack) -> None:
    # Given the user pressed Ctrl-C: the stack is gone, its file is not
    running.ctrl_c()
    assert running.file.exists()
    # When they invoke or replay, the tools say so, and exit non-zero
    invoke = _run(
        "devtools.local",
        "invoke",
        "WebhookIngressFunction",
        "-e",
        "events/webhook_order_created.json",
        "--stack-file",
        str(running.file),
    )
    assert invoke.returncode == 2, invoke.stdout
    assert "is not running" in invoke.stderr
    # the command that started this stack (its ports and stack file), not a `make local` that would
    # start another one elsewhere
    started = f"up --port 0 --moto-port 0 --fake-port 0 --stack-file {running.file}"
    assert f"start it with `.venv/bin/python -m devtools.local {started}`" in invoke.stderr
    assert "Traceback" not in invoke.stderr
    replay = _run("devtools.replay", "dlq", "list", "--stack-file", str(running.file))
    assert replay.returncode == 2
    assert f"start it with `.venv/bin/python -m devtools.local {started}`" in replay.stderr
    assert "--ephemeral" not in replay.stderr  # a flag replay does not have
