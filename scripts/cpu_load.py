"""Run a command while the machine is kept busy: `make test-stress` runs the suite under it.

    python scripts/cpu_load.py [--load N] -- COMMAND [ARG...]

N processes (default: one per CPU and one more, or $STRESS_LOAD) spin on the CPU from before the
command starts until it ends, so a test that passes only on a quiet machine fails here first. The
exit status is the command's. Stdlib only (no stress-ng to install; works on Linux and macOS).

No orphans: the burners are stopped when the command ends, fails, or this script is interrupted
(Ctrl-C goes to the command, which ends; SIGTERM/SIGHUP are passed on to it). Each burner also
watches its parent and exits on its own within a second if this script is killed outright
(SIGKILL). They run in their own session, so a Ctrl-C at the terminal reaches only the command.
The burners' pids are given to the command as $STRESS_PIDS (space-separated), for its tests.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from types import FrameType

# A burner: spin, and look up every ~0.2 s whether its parent (this script) is still there.
BURNER = """
import os, time
parent = os.getppid()
while True:
    deadline = time.monotonic() + 0.2
    while time.monotonic() < deadline:
        pass
    if os.getppid() != parent:
        raise SystemExit(0)
"""


def default_load() -> int:
    value = os.environ.get("STRESS_LOAD", "").strip()
    if value:
        return int(value)
    return (os.cpu_count() or 1) + 1


def load_average() -> str:
    try:
        return " ".join(f"{figure:.1f}" for figure in os.getloadavg())
    except (AttributeError, OSError):  # not on every platform
        return "n/a"


def start_burners(count: int) -> list[subprocess.Popen[bytes]]:
    return [
        subprocess.Popen(  # noqa: S603 - our own interpreter and script
            [sys.executable, "-c", BURNER], start_new_session=True, stdin=subprocess.DEVNULL
        )
        for _ in range(count)
    ]


def stop_burners(burners: list[subprocess.Popen[bytes]]) -> None:
    for burner in burners:
        if burner.poll() is None:
            burner.kill()
    for burner in burners:
        burner.wait()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--load", type=int, default=None, help="busy processes (default: $STRESS_LOAD or CPUs + 1)"
    )
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command to run (after --)")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to run after --")
    try:
        load = default_load() if args.load is None else args.load
    except ValueError:
        parser.error(f"STRESS_LOAD must be a whole number (got {os.environ['STRESS_LOAD']!r})")
    if load < 0:
        parser.error(f"the load must be 0 or more busy processes (got {load})")

    burners: list[subprocess.Popen[bytes]] = []
    child: subprocess.Popen[bytes] | None = None

    def pass_on(signum: int, _frame: FrameType | None) -> None:
        if child is not None and child.poll() is None:
            child.send_signal(signum)
        else:
            raise SystemExit(128 + signum)

    # Ctrl-C reaches the command (same process group) and it ends; this script waits for it. A handler,
    # not SIG_IGN, which the command would inherit (and then ignore Ctrl-C).
    signal.signal(signal.SIGINT, lambda _signum, _frame: None)
    signal.signal(signal.SIGTERM, pass_on)
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, pass_on)

    started = time.monotonic()
    try:
        burners = start_burners(load)
        print(f"==> {load} busy processes keep the CPUs loaded (load average {load_average()})", flush=True)
        environ = {**os.environ, "STRESS_PIDS": " ".join(str(burner.pid) for burner in burners)}
        try:
            child = subprocess.Popen(command, env=environ)  # noqa: S603 - the command the user gave
        except OSError as error:
            print(f"cpu_load.py: cannot run {command[0]!r}: {error.strerror}", file=sys.stderr)
            return 127
        status = child.wait()
    finally:
        average = load_average()
        stop_burners(burners)
    took = time.monotonic() - started
    print(f"==> exit {status} after {took:.1f} s under load (load average {average})", flush=True)
    return status if status >= 0 else 128 - status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
