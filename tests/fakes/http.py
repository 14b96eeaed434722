"""The lifecycle every fake service shares: a threaded HTTP server on 127.0.0.1, started and stopped by tests."""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class LoopbackServer:
    """Serves a handler class on a free loopback port from a daemon thread; use start()/stop() or `with`."""

    thread_name = "fake-server"
    # A short poll interval keeps stop(), and so every test's teardown, fast.
    poll_interval = 0.01

    def __init__(self) -> None:
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def make_server(self) -> ThreadingHTTPServer:
        """The server to run; subclasses bind their handler (and server class) here."""
        raise NotImplementedError

    def start(self):
        self._server = self.make_server()
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": self.poll_interval},
                                        name=self.thread_name, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    @property
    def origin(self) -> str:
        """http://127.0.0.1:PORT of the running server."""
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"


def bind(handler: type[BaseHTTPRequestHandler], **attributes) -> type[BaseHTTPRequestHandler]:
    """A subclass of handler carrying attributes (the fake it serves), one per server."""
    return type(f"Bound{handler.__name__}", (handler,), attributes)
