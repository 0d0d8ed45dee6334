"""What every devtools command does with its output: quiet on a closed pipe, files named in errors.

`... | head` closes the pipe while the command still writes: Python raises `BrokenPipeError` there,
and again when it flushes stdout at exit, each with a traceback. A closed pipe is the reader's
choice, not an error: the command stops quietly with 141, the status of a command a shell's pipe
stopped (128 + SIGPIPE), as `cat` or `grep` would.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

__all__ = ["EXIT_CLOSED_PIPE", "FileError", "quiet_on_closed_pipe", "read_json_file"]

EXIT_CLOSED_PIPE: Final = 141


def quiet_on_closed_pipe(main: Callable[[], int]) -> int:
    """`main()`'s exit status; 141 and no traceback when stdout's reader went away."""
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:
        # Whatever is still buffered would fail again at exit: send it nowhere.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_CLOSED_PIPE
    return code


class FileError(ValueError):
    """A file given on the command line that cannot be used: names the flag and the file."""


def read_json_file(path: Path, flag: str, *, where: str | None = None) -> Any:
    """The JSON document in `path` (`-` = stdin), or a `FileError` naming `flag`, the file and why
    (`where`: how the command line named it, when not `<flag> <path>`)."""
    where = where or (f"{flag} {path}" if flag else str(path))
    try:
        text = sys.stdin.read() if str(path) == "-" else Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileError(f"{where}: no such file") from None
    except IsADirectoryError:
        raise FileError(f"{where}: a folder, not a JSON file") from None
    except UnicodeDecodeError:
        raise FileError(f"{where}: not UTF-8 text") from None
    except OSError as error:
        raise FileError(f"{where}: cannot be read ({error.strerror})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise FileError(
            f"{where}: not JSON ({error.msg} at line {error.lineno} column {error.colno})"
        ) from None
