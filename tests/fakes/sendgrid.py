"""A fake SendGrid v3 API: records /v3/mail/send bodies and answers as SendGrid does.

202 with an empty body and an X-Message-Id header on success; 400 with SendGrid's error shape for
a body without personalizations, and for recipients whose address SendGrid would not take (one
error per bad address, its field naming the personalization: `personalizations.3.to.0.email`);
scripted answers on demand: failures (429 with rate-limit headers, 5xx) and hangs (the request is
read and never answered, as a stuck server or load balancer does).
"""
from __future__ import annotations

import json
import re
import threading
import uuid
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .http import LoopbackServer, bind

# Close enough to SendGrid's own check for the tests: one @, a dot in the domain, no spaces.
_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
_INVALID_HELP = "http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html#message.personalizations.to"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *_args):
        pass

    def setup(self):
        super().setup()
        with self.fake.lock:
            self.fake.connections += 1
            self.fake.sockets.append(self.connection)

    def _reply(self, status: int, body: dict | None = None, headers: dict | None = None) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if data:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        fake: FakeSendGrid = self.fake
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if self.path != "/v3/mail/send":
            return self._reply(404, {"errors": [{"message": "Not found", "field": None, "help": None}]})
        if self.headers.get("Authorization") != f"Bearer {fake.api_key}":
            return self._reply(401, {"errors": [{"message": "The provided authorization grant is invalid, expired, or revoked",
                                                 "field": None, "help": None}]})
        scripted = fake.next_action()
        with fake.lock:
            fake.attempts += 1
        if scripted is not None and scripted[0] == "hang":
            with fake.lock:
                fake.hung.append(json.loads(raw))
            fake.hang_here()
            self.close_connection = True
            return None
        if scripted is not None and scripted[0] == "fail":
            _kind, status, headers = scripted
            return self._reply(status, {"errors": [{"message": "scripted failure", "field": None, "help": None}]}, headers)
        try:
            body = json.loads(raw)
        except ValueError:
            return self._reply(400, {"errors": [{"message": "Bad Request", "field": None, "help": None}]})
        if not body.get("personalizations"):
            return self._reply(400, {"errors": [{"message": "The personalizations field is required and must have at least one personalization.",
                                                 "field": "personalizations", "help": "http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html#-Personalizations-Errors"}]})
        invalid = [{"message": "Does not contain a valid address.", "field": f"personalizations.{i}.to.{j}.email",
                    "help": _INVALID_HELP}
                   for i, personalization in enumerate(body["personalizations"])
                   for j, to in enumerate(personalization.get("to") or [])
                   if not fake.valid_address(str(to.get("email", "")))]
        if invalid:
            with fake.lock:
                fake.refusals.append(body)
            return self._reply(400, {"errors": invalid})
        with fake.lock:
            if fake.keep_bodies:
                fake.requests.append(body)
            else:
                # Benchmarks: keep only what the request budget is checked with, not 100,000 bodies.
                content = hash((body.get("subject"), json.dumps(body.get("content"), sort_keys=True)))
                fake.recipients_by_content[content] = (fake.recipients_by_content.get(content, 0)
                                                       + len(body["personalizations"]))
                fake.accepted += 1
        self._reply(202, None, {"X-Message-Id": uuid.uuid4().hex[:22]})


class FakeSendGrid(LoopbackServer):
    thread_name = "fake-sendgrid"

    def __init__(self, api_key: str = "SG.test-key", keep_bodies: bool = True):
        super().__init__()
        self.api_key = api_key
        self.keep_bodies = keep_bodies
        self.recipients_by_content: dict[int, int] = {}
        self.accepted = 0
        self.lock = threading.Lock()
        self.requests: list[dict] = []
        self.refusals: list[dict] = []  # bodies answered 400 for a bad address
        self.hung: list[dict] = []  # bodies read and never answered
        self.attempts = 0
        self.connections = 0  # TCP connections accepted
        self.sockets: list = []  # their sockets, for drop_connections
        self.invalid_addresses: set[str] = set()  # addresses SendGrid's own check refuses
        self.hanging = 0  # requests read and left unanswered right now
        self._actions: deque = deque()
        self._release = threading.Event()

    def make_server(self) -> ThreadingHTTPServer:
        return ThreadingHTTPServer(("127.0.0.1", 0), bind(_Handler, fake=self))

    def stop(self) -> None:
        self._release.set()  # hung handlers end (unanswered) so their threads go
        super().stop()

    @property
    def url(self) -> str:
        return self.origin

    def drop_connections(self) -> None:
        """Close every open connection from the server's side, as SendGrid does to idle ones."""
        import socket

        with self.lock:
            sockets, self.sockets = self.sockets, []
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def fail_next(self, status: int, count: int = 1, headers: dict | None = None) -> None:
        """Answer the next `count` sends with `status` (e.g. 429 with Retry-After, 500)."""
        with self.lock:
            self._actions.extend([("fail", status, headers or {})] * count)

    def hang_next(self, count: int = 1, after: int = 0) -> None:
        """Let `after` sends through, then read the next `count` and never answer them."""
        with self.lock:
            self._actions.extend([("ok",)] * after + [("hang",)] * count)

    def next_action(self):
        with self.lock:
            action = self._actions.popleft() if self._actions else None
        return None if action == ("ok",) else action

    def hang_here(self) -> None:
        with self.lock:
            self.hanging += 1
        self._release.wait(300)
        with self.lock:
            self.hanging -= 1

    def valid_address(self, address: str) -> bool:
        return bool(_ADDRESS.match(address)) and address.lower() not in self.invalid_addresses

    def recipients(self) -> list[str]:
        with self.lock:
            return [to["email"] for body in self.requests for p in body["personalizations"] for to in p["to"]]
