"""The image's web server as scripts/docker-entrypoint starts it (gunicorn, a real process on a free
port, on the test database): its access and error logs never hold a link's token."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from newsletter.subscribers import links

from .factories import subscriber

ROOT = Path(__file__).resolve().parent.parent
ENTRYPOINT = ROOT / "scripts" / "docker-entrypoint"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for(port: int, process: subprocess.Popen, logs: list[Path]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError("the web server exited:\n" + "\n".join(p.read_text() for p in logs))
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("the web server did not start:\n" + "\n".join(p.read_text() for p in logs))


def _request(url: str, data: bytes | None = None, headers: dict[str, str] | None = None) -> int:
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_gunicorn_logs_hold_no_token(config, session, tmp_path):
    reader = subscriber(session, "gunicorn@example.com", "rq/rq")
    key = config["SECRET_KEY"]
    preferences = links.preferences_token(key, reader)
    unsubscribe = links.unsubscribe_token(key, reader)
    confirm = links.make_token(key, links.CONFIRM, {"r": 1, "h": "none"})
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    settings = {name: str(config[name]) for name in ("SECRET_KEY", "DATABASE_URL", "REDIS_URL", "INSTANCE_PATH",
                                                       "OUTBOX_DIR", "MAIL_BACKEND")}
    env = {**os.environ, **settings, "BASE_URL": base, "PORT": str(port), "WEB_CONCURRENCY": "1",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    stdout, stderr = tmp_path / "stdout.log", tmp_path / "stderr.log"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen([str(ENTRYPOINT), "web"], cwd=ROOT, env=env, stdout=out, stderr=err)
    try:
        _wait_for(port, process, [stdout, stderr])
        statuses = [
            _request(f"{base}/preferences/{preferences}?lang=zh"),
            _request(f"{base}/unsubscribe/{unsubscribe}",
                     headers={"Referer": f"{base}/preferences/{preferences}"}),
            _request(f"{base}/unsubscribe/{unsubscribe}", data=b"List-Unsubscribe=One-Click",
                     headers={"Content-Type": "application/x-www-form-urlencoded"}),
            _request(f"{base}/confirm/{confirm}"),
        ]
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert statuses == [200, 200, 200, 400]
    logged = stdout.read_text() + stderr.read_text()
    access = [line for line in logged.splitlines() if '"GET /' in line or '"POST /' in line]
    assert len(access) == 4, logged
    assert '"GET /preferences/' in logged and '"POST /unsubscribe/' in logged
    for token in (preferences, unsubscribe, confirm):
        assert token not in logged, logged


def test_the_logger_class_alone_masks_gunicorns_lines(tmp_path):
    # The app above masks whatever its process logs; gunicorn's own arbiter never loads it, and
    # another app (or --preload) may not. The logger class masks gunicorn's lines by itself.
    port = _free_port()
    token = links.make_token("another-secret-0123456789abcdef0123456789", links.PREFERENCES, {"s": 1, "h": "x"})
    stdout, stderr = tmp_path / "stdout.log", tmp_path / "stderr.log"
    command = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "1",
               "--access-logfile", "-", "--logger-class", "newsletter.web.access_log.MaskedLogger",
               "tests.plain_wsgi:app"]
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=err)
    try:
        _wait_for(port, process, [stdout, stderr])
        assert _request(f"http://127.0.0.1:{port}/confirm/{token}",
                        headers={"Referer": f"https://example.org/unsubscribe/{token}"}) == 200
    finally:
        process.terminate()
        process.wait(timeout=30)
    logged = stdout.read_text() + stderr.read_text()
    assert '"GET /confirm/[token] HTTP/1.1" 200' in logged and "/unsubscribe/[token]" in logged, logged
    assert token not in logged
