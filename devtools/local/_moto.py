"""moto in server mode, in its own process: `python -m devtools.local._moto [port]`.

Prints `http://127.0.0.1:<port>` once it listens, then serves until its stdin closes (the parent
exited or stopped it). Its own process, because moto keeps its state in module globals: a server
thread inside a test process would share (and be reset by) the tests' in-process `mock_aws`.

The socket is bound here, before the serving thread starts (moto's `ThreadedMotoServer` binds inside
its thread: a busy port ended that thread and left the parent waiting a minute for a line that never
came). A port that cannot be bound prints `in-use <port>` and exits 3 at once.
"""

from __future__ import annotations

import contextlib
import io
import logging
import sys
import threading

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

EXIT_PORT_IN_USE = 3


def main() -> int:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    app = DomainDispatcherApplication(create_backend_app)
    try:
        # werkzeug prints its own advice (about macOS and AirPlay) and exits on a busy port: the
        # parent says it, with the flag that chooses another port.
        with contextlib.redirect_stderr(io.StringIO()):
            server = make_server("127.0.0.1", port, app, threaded=True, request_handler=MotoRequestHandler)
    except (OSError, SystemExit):
        print(f"in-use {port}", flush=True)
        return EXIT_PORT_IN_USE
    threading.Thread(target=server.serve_forever, name="moto", daemon=True).start()
    host, bound = server.server_address[:2]
    print(f"http://{host!s}:{bound}", flush=True)
    sys.stdin.read()  # until EOF
    server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
