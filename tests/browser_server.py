"""Serve the app over real HTTP on 127.0.0.1 for the browser test.

The socket is bound (to a free port) before the app is built, so BASE_URL, which every link in an
email uses, names the port the server really listens on, with no race for the port.
"""
from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from flask import Flask
from werkzeug.serving import make_server

from newsletter import create_app


@dataclass
class LiveServer:
    app: Flask
    url: str  # http://127.0.0.1:PORT, no trailing slash


@contextlib.contextmanager
def live_server(config: dict) -> Iterator[LiveServer]:
    """Build the app from `config` with BASE_URL set to the bound address and serve it in a thread."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    port = listener.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    app = create_app({**config, "BASE_URL": url})
    try:
        server = make_server("127.0.0.1", port, app, threaded=True, fd=listener.fileno())
    except BaseException:
        app.extensions["db"].dispose()
        listener.close()
        raise
    listener.close()  # the server works on its own duplicate of the descriptor
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                              name=f"live-server-{port}", daemon=True)
    thread.start()
    try:
        yield LiveServer(app=app, url=url)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
        app.extensions["db"].dispose()
