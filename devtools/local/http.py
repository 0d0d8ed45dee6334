"""The local stack's HTTP endpoints (API Gateway, the Lambda API): a threaded server on 127.0.0.1."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar, Self

__all__ = ["LocalHttpServer"]


class LocalHttpServer(ABC):
    """Serves `handler_class()` on `host:port` (port 0: a free one) from `start()` to `stop()`, in a
    daemon thread; a subclass (a dataclass) holds `host`, `port` and `_server`."""

    name: ClassVar[str]  # in the thread's name and in errors
    host: str
    port: int
    _server: ThreadingHTTPServer | None

    @abstractmethod
    def handler_class(self) -> type[BaseHTTPRequestHandler]:
        """The request handler the server runs."""

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError(f"the {self.name} is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Self:
        self._server = ThreadingHTTPServer((self.host, self.port), self.handler_class())
        self._server.daemon_threads = True
        name = "-".join(self.name.lower().split())
        threading.Thread(target=self._server.serve_forever, name=name, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
