"""SQLAlchemy engine, session factory and the declarative Base of every table."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy import JSON, DateTime, MetaData, create_engine, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

logger = logging.getLogger(__name__)

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """Return the current time, timezone-aware UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored as UTC and always read back timezone-aware (SQLite forgets zones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        """Convert to UTC before storing."""
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        """Attach UTC to naive values read back."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base of all ORM models."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime,
        dict[str, Any]: JSON,
        list[Any]: JSON,
    }


#: Size of the connection pools: one connection for each of the API's worker threads.
THREADS = 40


def make_engine(url: str, *, sqlite_synchronous: str = "FULL") -> Engine:
    """Create an engine; SQLite gets WAL, a busy timeout and foreign keys.

    Parameters
    ----------
    url
        SQLAlchemy URL (``sqlite:///...`` or ``postgresql+psycopg://...``).
    sqlite_synchronous
        SQLite ``PRAGMA synchronous``: ``FULL`` syncs the write-ahead log to disk at every
        commit (survives power loss); ``NORMAL`` leaves it to the OS (survives a killed
        process, not a power cut) and is several times faster under concurrent writes.

    Returns
    -------
    engine
    """
    if url.startswith("sqlite"):
        mode = sqlite_synchronous.upper()
        if mode not in ("FULL", "NORMAL", "EXTRA"):
            msg = f"sqlite_synchronous must be FULL, NORMAL or EXTRA, not {sqlite_synchronous!r}"
            raise ValueError(msg)
        path = url.removeprefix("sqlite:///")
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=THREADS,
            max_overflow=0,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA synchronous={mode}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=THREADS - 10)


_sqlite_writes = threading.Lock()


def write_lock(session: Session, conn: Connection | None = None) -> Any:
    """Return a lock to hold while a write transaction commits.

    SQLite allows one writer at a time and makes the others sleep and retry; serialising the
    API's own threads here hands the lock over at once instead. Other databases get a no-op.

    The session takes its pooled connection first (unless the write goes through ``conn``, a
    connection already taken): a thread that waited for a connection while holding the lock
    would stall every thread holding a connection and waiting for the lock.
    """
    if conn is None:
        session.connection()
    bind = session.get_bind()
    if bind.dialect.name == "sqlite":
        return _sqlite_writes
    return _NoLock()


class _NoLock:
    def acquire(self) -> bool:
        return True

    def release(self) -> None:
        return None

    def __enter__(self) -> _NoLock:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Return a session factory bound to ``engine`` (objects stay usable after commit)."""
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """Yield a session that commits on success and rolls back on error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def upgrade_database(url: str) -> None:
    """Bring the database schema to the latest Alembic revision.

    Parameters
    ----------
    url
        SQLAlchemy URL of the database.
    """
    from alembic import command
    from alembic.config import Config

    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["configure_logger"] = False
    command.upgrade(cfg, "head")
    logger.info("database schema at head (%s)", url.split("@")[-1])
