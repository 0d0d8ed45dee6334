"""The local stack's three ports: the usual ones when free, any free one otherwise, and the command
that starts the stack again.

`make local` (`python -m devtools.local up`) serves the local API Gateway, moto and the Offergrid fake
on 127.0.0.1. Without a flag each takes its usual port (3000, 5000, 8900: `events/env.json`'s) when
it is free and another free port when it is not (macOS keeps 5000 for AirPlay); a port asked for with
a flag or a make variable (`--moto-port 5001`, `make local MOTO_PORT=5001`; 0 = any free port) is
that port or a `PortInUse` naming it, the flag and the variable, before anything starts. The ports
chosen are written to `.local/stack.json`, which every tool reads.
"""

from __future__ import annotations

import errno
import shlex
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from devtools.local.runtime import REPO_ROOT

__all__ = [
    "DEFAULT_STACK_FILE",
    "LOCAL_PORTS",
    "LocalPort",
    "PortInUse",
    "choose_port",
    "port_busy",
    "start_command",
]

DEFAULT_STACK_FILE: Final = REPO_ROOT / ".local" / "stack.json"


@dataclass(frozen=True)
class LocalPort:
    """One of the stack's servers: its usual port, the `up` flag and the make variable that set it."""

    name: str  # the key of `LocalStack.urls`
    what: str
    usual: int
    flag: str
    variable: str


LOCAL_PORTS: Final = {
    "api": LocalPort("api", "the local API Gateway", 3000, "--port", "PORT"),
    "aws": LocalPort("aws", "moto (the local AWS)", 5000, "--moto-port", "MOTO_PORT"),
    "offergrid": LocalPort("offergrid", "the Offergrid fake", 8900, "--fake-port", "FAKE_PORT"),
}


class PortInUse(RuntimeError):
    """A port asked for is taken: says which, by what it was asked, and how to ask for another."""

    def __init__(self, port_number: int, port: LocalPort | None = None) -> None:
        self.port_number = port_number
        self.port = port
        if port is None:
            message = f"port {port_number} is in use (another program listens on it)"
        else:
            message = (
                f"port {port_number} for {port.what} is in use (another program listens on it): stop "
                f"that program, or choose another port: make local {port.variable}=<port> "
                f"({port.flag} <port> for python -m devtools.local up; 0 = any free port, "
                f"the default when {port.usual} is taken)"
            )
        super().__init__(message)


def port_busy(port: int, host: str = "127.0.0.1") -> bool:
    """Whether `port` cannot be ours: something answers there, or binding it fails.

    Both: a server on the wildcard address (AirPlay's *:5000 on macOS) may still let 127.0.0.1:5000
    be bound, and then half the connections would reach it instead of us.
    """
    if port == 0:
        return False
    try:
        socket.create_connection((host, port), timeout=0.5).close()
    except OSError:
        pass
    else:
        return True
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers bind
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def choose_port(wanted: int, *, explicit: bool = False, port: LocalPort | None = None) -> int:
    """The port to serve on: `wanted` when free; when busy, `PortInUse` if it was asked for
    (`explicit`), else any free port. 0 stays 0 (the server binds any free port itself)."""
    if not port_busy(wanted):
        return wanted
    if explicit:
        raise PortInUse(wanted, port)
    return 0


def is_address_in_use(error: OSError) -> bool:
    return error.errno == errno.EADDRINUSE


def start_command(explicit: Mapping[str, int], *, stack_file: Path, extra: list[str] | None = None) -> str:
    """The command that starts this stack again: `make local` with the ports asked for as make
    variables, or the `up` command line when it needs more than make passes (another stack file)."""
    ordered = [LOCAL_PORTS[name] for name in LOCAL_PORTS if name in explicit]
    if Path(stack_file).resolve() == DEFAULT_STACK_FILE.resolve() and not extra:
        return " ".join(["make local", *(f"{p.variable}={explicit[p.name]}" for p in ordered)])
    words = [".venv/bin/python", "-m", "devtools.local", "up"]
    for p in ordered:
        words += [p.flag, str(explicit[p.name])]
    words += [*(extra or []), "--stack-file", str(stack_file)]
    return shlex.join(words)
