"""Database engine, sessions and schema migrations (SQLAlchemy 2, Alembic), shared by every process.

Alembic is driven from code, so `newsletter db upgrade` needs no alembic.ini.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Session, scoped_session, sessionmaker

from .config import MIGRATIONS


class Base(DeclarativeBase):
    pass


def make_engine(url: str) -> Engine:
    """Create an engine; SQLite gets foreign keys, WAL and a busy timeout so workers can share it."""
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


class Database:
    """An engine plus a scoped session; the Flask app removes the session after each request."""

    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)
        self.session = scoped_session(sessionmaker(bind=self.engine, expire_on_commit=False))

    def remove(self, _exc: BaseException | None = None) -> None:
        self.session.remove()

    def check(self) -> str:
        """"ok" when the database answers, else "error: <exception type>" (for /healthz)."""
        try:
            self.session().execute(text("SELECT 1"))
        except SQLAlchemyError as exc:
            self.session().rollback()
            return f"error: {type(exc).__name__}"
        return "ok"

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A fresh session that commits on success and rolls back on error."""
        session: Session = self.session()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise

    def dispose(self) -> None:
        self.session.remove()
        self.engine.dispose()


# Schema migrations -------------------------------------------------------------------------------

def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at url up to revision."""
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    """Revert the database at url down to revision."""
    command.downgrade(alembic_config(url), revision)


def revision(url: str, message: str) -> None:
    """Autogenerate a migration from the models (for developers)."""
    command.revision(alembic_config(url), message=message, autogenerate=True)


def current_heads(url: str) -> set[str]:
    """The revisions the database at url is at."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return set(MigrationContext.configure(connection).get_current_heads())
    finally:
        engine.dispose()
