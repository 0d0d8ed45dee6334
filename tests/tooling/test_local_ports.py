"""`make local`'s ports (issue 22): taken when free, another free one when not, and a port asked for
that is busy refused at once, naming the port, the flag and the make variable.

macOS keeps 5000 for AirPlay; another `make local`, a test run or any server may hold 3000 or 8900.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.local.ports import LOCAL_PORTS, PortInUse, choose_port, port_busy, start_command

REPO = Path(__file__).resolve().parents[2]
# The goal is "within a second"; the bound leaves room for a loaded 2-core machine (the moto port
# took 71 s before: the child's server thread died and the parent waited out its 60 s start-up).
REFUSAL_BOUND_SECONDS = 15.0


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port something listens on (as AirPlay on 5000)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield int(listener.getsockname()[1])


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize(
    ("flag", "variable"), [("--port", "PORT"), ("--moto-port", "MOTO_PORT"), ("--fake-port", "FAKE_PORT")]
)
def test_a_busy_port_is_refused_at_once_naming_the_port_the_flag_and_the_variable(
    busy_port: int, flag: str, variable: str, tmp_path: Path
) -> None:
    # Given a port something else listens on, asked for explicitly (the other two: any free port)
    others = [f for f in ("--port", "--moto-port", "--fake-port") if f != flag]
    argv = [flag, str(busy_port), others[0], "0", others[1], "0", "--stack-file", str(tmp_path / "s.json")]

    # When `make local` starts with it
    started = time.monotonic()
    done = subprocess.run(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "devtools.local", "up", *argv],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    elapsed = time.monotonic() - started

    # Then it stops at once with one line that says which port, and how to choose another
    assert done.returncode == 2, done.stdout + done.stderr
    assert elapsed < REFUSAL_BOUND_SECONDS, f"refused after {elapsed:.1f} s"
    assert "Traceback" not in done.stderr, done.stderr
    error = done.stderr.strip().splitlines()[-1]
    assert f"port {busy_port}" in error
    assert flag in error
    assert f"{variable}=" in error
    assert not (tmp_path / "s.json").exists()  # nothing half-started is left for the tools to find


def test_a_usual_port_is_taken_when_free_and_another_free_one_when_not(busy_port: int) -> None:
    free = _free_port()
    assert choose_port(free) == free
    other = choose_port(busy_port)
    assert other != busy_port
    assert not port_busy(other)


def test_an_explicit_busy_port_is_refused_and_zero_means_any(busy_port: int) -> None:
    with pytest.raises(PortInUse) as refused:
        choose_port(busy_port, explicit=True, port=LOCAL_PORTS["aws"])
    assert "--moto-port" in str(refused.value)
    assert "MOTO_PORT=" in str(refused.value)
    assert choose_port(0, explicit=True) == 0  # the server then binds any free port itself


def test_the_usual_ports_are_those_of_events_env_json() -> None:
    env_json = (REPO / "events" / "env.json").read_text(encoding="utf-8")
    assert f"http://127.0.0.1:{LOCAL_PORTS['aws'].usual}" in env_json
    assert f"http://127.0.0.1:{LOCAL_PORTS['offergrid'].usual}" in env_json


def test_the_start_command_is_the_one_to_type_again() -> None:
    default_file = REPO / ".local" / "stack.json"
    assert start_command({}, stack_file=default_file) == "make local"
    assert (
        start_command({"api": 3001, "aws": 0}, stack_file=default_file) == "make local PORT=3001 MOTO_PORT=0"
    )
    other = start_command({"offergrid": 8901}, stack_file=Path("/tmp/x/stack.json"))
    assert other == ".venv/bin/python -m devtools.local up --fake-port 8901 --stack-file /tmp/x/stack.json"
