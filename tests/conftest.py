"""Fixtures: a real database (PostgreSQL by default, SQLite with TEST_DATABASE_URL=sqlite), a real Redis,
the app, its test client and CLI runner, and the outbox the app writes mail to.

TEST_DATABASE_URL: a PostgreSQL server URL (a throwaway database is created in it for the run), or
`sqlite` for a temporary SQLite file. TEST_REDIS_URL: a Redis database the tests may flush; unset,
the run starts a private redis-server of its own (so no other user of the machine's Redis can
disturb the RQ tests), or uses 127.0.0.1:6379/14 when there is no redis-server binary.

Isolation: every test that builds the app leaves the database empty; the rows it wrote are
deleted in one round trip (tables that are already empty cost nothing), which is several times
cheaper than a TRUNCATE of every table after every test.
"""
from __future__ import annotations

import email
import email.policy
import os
import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from flask.testing import FlaskCliRunner
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from newsletter import create_app
from newsletter.cli import cli as newsletter_cli
from newsletter.db import Base, upgrade

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "postgresql+psycopg://127.0.0.1:5432/test")
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL")
SECRET = "test-secret-key-0123456789abcdef0123456789abcdef"


@pytest.fixture(scope="session")
def database_url(tmp_path_factory):
    """A migrated, empty database for the whole run; dropped at the end."""
    if TEST_DATABASE_URL.startswith("sqlite"):
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.sqlite3'}"
        upgrade(url)
        yield url
        return
    server = make_url(TEST_DATABASE_URL)
    name = f"repo_daily_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = server.set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url)
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def cleaner(database_url):
    """Empties every table after a test: one statement list, children before parents."""
    # pre_ping: a test may have PostgreSQL terminate connections (a simulated failover).
    engine = create_engine(database_url, pool_pre_ping=True)
    tables = [f'"{t.name}"' for t in reversed(Base.metadata.sorted_tables)]

    def empty() -> None:
        with engine.begin() as connection:
            if engine.dialect.name == "postgresql":
                # DELETE on small tables is far cheaper than TRUNCATE (no lock or file work); ids
                # keep counting up, and no test depends on their values.
                connection.exec_driver_sql("; ".join(f"DELETE FROM {t}" for t in tables))
            else:
                for table in tables:
                    connection.exec_driver_sql(f"DELETE FROM {table}")

    yield empty
    engine.dispose()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """The Redis URL of this run: TEST_REDIS_URL, else a private redis-server, else the machine's db 14."""
    import redis

    if TEST_REDIS_URL:
        yield TEST_REDIS_URL
        return
    binary = shutil.which("redis-server")
    if binary is None:
        yield "redis://127.0.0.1:6379/14"
        return
    folder = tmp_path_factory.mktemp("redis")
    port = _free_port()
    process = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                                "--dir", str(folder), "--logfile", str(folder / "redis.log")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    try:
        for _ in range(200):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if process.poll() is not None:
                    raise RuntimeError(f"redis-server exited: {(folder / 'redis.log').read_text()[-500:]}") from None
                time.sleep(0.02)
        else:
            raise RuntimeError("the private redis-server did not answer")
        yield url
    finally:
        client.close()
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def redis_url(redis_server):
    """The test Redis database, flushed before each test that uses it."""
    import redis

    client = redis.Redis.from_url(redis_server)
    client.flushdb()
    client.close()
    return redis_server


@pytest.fixture
def github():
    """A fake GitHub API on loopback; point GITHUB_API_URL at github.url."""
    from .fakes.github import FakeGitHub

    with FakeGitHub() as fake:
        yield fake


@pytest.fixture
def config(database_url, redis_url, tmp_path, request):
    """Settings for an app under test; a test may change entries before asking for `app`.

    A test that uses the fake GitHub (the `github` fixture) gets GITHUB_API_URL pointed at it.
    """
    settings = {
        "SECRET_KEY": SECRET,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "OUTBOX_DIR": str(tmp_path / "outbox"),
        "BASE_URL": "http://localhost",
        "MAIL_BACKEND": "outbox",
    }
    if "github" in request.fixturenames:
        settings["GITHUB_API_URL"] = request.getfixturevalue("github").url
    return settings


@pytest.fixture
def app(config, cleaner):
    app = create_app(config)
    app.config["TESTING"] = True
    yield app
    app.extensions["db"].dispose()
    cleaner()


@pytest.fixture
def client(app):
    return app.test_client()


class NewsletterRunner(FlaskCliRunner):
    """Click's runner on the `newsletter` group, with the test app as the one it builds."""

    def invoke(self, cli=None, args=None, **kwargs):
        return super().invoke(cli or newsletter_cli, args, **kwargs)


@pytest.fixture
def runner(app):
    return NewsletterRunner(app)


@pytest.fixture
def session(app):
    """The app's database session, inside an app context."""
    with app.app_context():
        yield app.extensions["db"].session


class Outbox:
    """The .eml files the outbox mailer wrote, parsed."""

    def __init__(self, directory: Path):
        self.directory = directory

    def messages(self) -> list[email.message.EmailMessage]:
        if not self.directory.exists():
            return []
        return [email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
                for p in sorted(self.directory.glob("*.eml"))]

    def last(self) -> email.message.EmailMessage:
        messages = self.messages()
        assert messages, "the outbox is empty"
        return messages[-1]


@pytest.fixture
def outbox(app):
    return Outbox(Path(app.config["OUTBOX_DIR"]))


def body_text(message: email.message.EmailMessage) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


def body_html(message: email.message.EmailMessage) -> str:
    return message.get_body(preferencelist=("html",)).get_content()


@pytest.fixture(scope="session")
def llm_server(tmp_path_factory):
    """A real llama.cpp server (llama-cpp-python's, on 127.0.0.1) with SmolLM2-135M-Instruct, for tests marked
    `llm`; stopped at the end of the run. Fails, never skips, when the `llm` extra is not installed."""
    from .llm_server import LlamaServer, LlamaServerError

    try:
        # A 4,096-token window, as small local servers run: prompts of at most about 3,000 tokens keep the
        # test to seconds per commit on 2 cores, and the context budget has to cut the larger diffs.
        server = LlamaServer(tmp_path_factory.mktemp("llama") / "server.log", n_ctx=4096).start()
    except LlamaServerError as error:
        pytest.fail(str(error), pytrace=False)
    try:
        yield server
    finally:
        server.stop()
