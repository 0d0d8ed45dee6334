"""moto in server mode, in its own process: `python -m devtools.local._moto [port]`.

Prints `http://127.0.0.1:<port>` once it listens, then serves until its stdin closes (the parent
exited or stopped it). Its own process, because moto keeps its state in module globals: a server
thread inside a test process would share (and be reset by) the tests' in-process `mock_aws`.
"""

from __future__ import annotations

import logging
import sys

from moto.server import ThreadedMotoServer


def main() -> int:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    host, bound = server.get_host_and_port()
    print(f"http://{host}:{bound}", flush=True)
    sys.stdin.read()  # until EOF
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
