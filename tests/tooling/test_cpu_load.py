"""scripts/cpu_load.py, the load `make test-stress` runs the suite under: its busy processes run
while the command runs, and none is left behind however the script ends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "cpu_load.py"
# Waits for what other processes do; generous, a loaded machine is the script's whole point.
PATIENCE_SECONDS = 60.0
UNDER_LOAD = (sys.executable, str(SCRIPT), "--load", "2", "--")

# The command under load: writes its pid and the burners' pids, checks they are alive, then exits
# with the given status (or waits to be killed when given none).
COMMAND = """
import os, sys, time
pids = [int(pid) for pid in os.environ["STRESS_PIDS"].split()]
for pid in pids:
    os.kill(pid, 0)  # raises if the burner is not running
with open(sys.argv[1] + ".tmp", "w") as out:
    out.write(" ".join(map(str, [os.getpid(), *pids])))
os.replace(sys.argv[1] + ".tmp", sys.argv[1])
if len(sys.argv) > 2:
    sys.exit(int(sys.argv[2]))
time.sleep(600)
"""


def alive(pid: int) -> bool:
    """Running, and not a zombie (a child killed with its parent, not reaped yet, is gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    if Path("/proc/self/stat").exists():  # Linux: the state follows the command's name in parentheses
        try:
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except FileNotFoundError:
            return False
    state = subprocess.run(  # noqa: S603 - fixed argv
        ["ps", "-o", "stat=", "-p", str(pid)],  # noqa: S607 - macOS's ps, from PATH
        capture_output=True,
        text=True,
        check=False,
    )
    return state.stdout.strip()[:1] not in ("", "Z")


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + PATIENCE_SECONDS
    while not condition():
        assert time.monotonic() < deadline, f"{what} within {PATIENCE_SECONDS:.0f} s"
        time.sleep(0.05)


class Start(Protocol):
    def __call__(self, *args: str, own_group: bool = False) -> tuple[subprocess.Popen[str], Path]: ...


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Start]:
    """Starts the script with a load of 2 running COMMAND, its output in tmp_path/out (a pipe would
    stay open as long as the command holds it, which outlives a killed script). Whatever a failed
    test left running is killed after it."""
    report = tmp_path / "pids"
    started: list[subprocess.Popen[str]] = []

    def run(*args: str, own_group: bool = False) -> tuple[subprocess.Popen[str], Path]:
        with (tmp_path / "out").open("w") as out:
            started.append(
                subprocess.Popen(  # noqa: S603 - our own interpreter and script
                    [*UNDER_LOAD, sys.executable, "-c", COMMAND, str(report), *args],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    text=True,
                    start_new_session=own_group,
                )
            )
        return started[-1], report

    yield run
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()
    if report.exists():
        for pid in pids(report)[1] + [pids(report)[0]]:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def pids(report: Path) -> tuple[int, list[int]]:
    command, *burners = (int(pid) for pid in report.read_text().split())
    return command, burners


def test_the_load_runs_with_the_command_and_stops_with_it(start: Start, tmp_path: Path) -> None:
    # When a command runs under a load of 2 and exits 3
    process, report = start("3")
    process.wait(timeout=PATIENCE_SECONDS)

    # Then it saw the 2 busy processes running, its status is the script's, and they are gone
    out = (tmp_path / "out").read_text()
    assert process.returncode == 3, out
    _, burners = pids(report)
    assert len(burners) == 2
    assert not any(alive(pid) for pid in burners)
    assert "2 busy processes" in out
    assert "exit 3" in out


def test_sigterm_reaches_the_command_and_stops_the_load(start: Start) -> None:
    process, report = start()
    wait_until(report.exists, "the command started")
    command, burners = pids(report)

    process.send_signal(signal.SIGTERM)
    process.wait(timeout=PATIENCE_SECONDS)

    assert process.returncode == 128 + signal.SIGTERM
    assert not alive(command)
    assert not any(alive(pid) for pid in burners)


def test_ctrl_c_ends_the_command_and_stops_the_load(start: Start, tmp_path: Path) -> None:
    # Given the script in its own process group, as a terminal's foreground job
    process, report = start(own_group=True)
    wait_until(report.exists, "the command started")
    command, burners = pids(report)

    # When Ctrl-C is pressed (SIGINT to the whole group)
    os.killpg(process.pid, signal.SIGINT)
    process.wait(timeout=PATIENCE_SECONDS)

    # Then the command was interrupted (it did not inherit an ignored SIGINT), and the load stopped
    assert process.returncode != 0
    assert "KeyboardInterrupt" in (tmp_path / "out").read_text()
    assert not alive(command)
    assert not any(alive(pid) for pid in burners)


def test_the_load_stops_by_itself_when_the_script_is_killed(start: Start) -> None:
    # Given the script killed outright (no chance to clean up), its command still running
    process, report = start()
    wait_until(report.exists, "the command started")
    command, burners = pids(report)
    process.kill()
    process.wait(timeout=PATIENCE_SECONDS)
    os.kill(command, signal.SIGKILL)

    # Then the busy processes notice they lost their parent and end
    wait_until(lambda: not any(alive(pid) for pid in burners), "the busy processes ended")


def test_a_command_that_cannot_run_is_named_with_exit_127(tmp_path: Path) -> None:
    result = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, str(SCRIPT), "--load", "1", "--", str(tmp_path / "no-such-command")],
        capture_output=True,
        text=True,
        timeout=PATIENCE_SECONDS,
        check=False,
    )
    assert result.returncode == 127
    assert "cannot run" in result.stderr
    assert "no-such-command" in result.stderr
