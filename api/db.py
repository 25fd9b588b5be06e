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
from sqlalchemy.exc import DBAPIError
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


def session_engine(session: Session) -> Engine:
    """Return the engine ``session`` is bound to (the service binds every session to one)."""
    bind = session.get_bind()
    if not isinstance(bind, Engine):
        msg = f"the session is bound to {type(bind).__name__}, not an engine"
        raise TypeError(msg)
    return bind


def write_lock(session: Session, conn: object | None = None) -> Any:
    """Return a lock to hold while a write transaction commits.

    SQLite allows one writer at a time and makes the others sleep and retry; serialising the
    API's own threads here hands the lock over at once instead. Other databases get a no-op.

    The session takes its pooled connection first (unless the write goes through ``conn``, a
    connection already taken: the session's, or a pooled driver connection): a thread that
    waited for a connection while holding the lock would stall every thread holding a
    connection and waiting for the lock.
    """
    if conn is None:
        session.connection()
    if session.get_bind().dialect.name == "sqlite":
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


class Prepared:
    """A statement compiled once for a dialect, run on the driver's cursor.

    SQLAlchemy's ``Connection.execute`` of even a cached statement costs several times the
    driver's own work for the one-row statements of a courier's write (its cache key, execution
    context, result object). This keeps its compiled SQL and its types' conversions (a UTC
    timestamp's text in SQLite, JSON) and hands the driver the bound values directly, in the
    caller's transaction when run on a :class:`Connection`.

    Parameters
    ----------
    statement
        A Core statement whose parameters are all given at each run (no Python-side column
        defaults left for SQLAlchemy to fill in: a missing value raises ``KeyError``).
    dialect
        The engine's dialect.
    keys
        For an INSERT, the columns given (as ``compile(column_keys=...)``).
    """

    def __init__(self, statement: Any, dialect: Any, keys: list[str] | None = None) -> None:
        compiled = statement.compile(dialect=dialect, column_keys=keys)
        self.sql: str = compiled.string
        self.positional: bool = bool(compiled.positional)
        names = list(compiled.positiontup or ()) if self.positional else list(compiled.binds)
        self.names: tuple[str, ...] = tuple(names)
        self.binds = tuple(
            (name, compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect))
            for name in names
        )
        self._dialect = dialect
        self._types = tuple(c.type for c in getattr(statement, "exported_columns", ()))
        self._results: tuple[Any, ...] | None = None  # by the driver's column types, at first run

    def params(self, values: dict[str, Any]) -> Any:
        """Return the driver's parameters for ``values`` (by name)."""
        bound = [values[n] if p is None else p(values[n]) for n, p in self.binds]
        return bound if self.positional else dict(zip(self.names, bound, strict=True))

    def rows(self, cursor: Any) -> list[tuple[Any, ...]]:
        """Return a run's rows with the columns' types applied (JSON decoded, for one)."""
        if cursor.description is None:
            return []
        rows = cursor.fetchall()
        procs = self._results
        if procs is None:
            codes = [d[1] for d in cursor.description]
            procs = tuple(
                t.dialect_impl(self._dialect).result_processor(self._dialect, code)
                for t, code in zip(self._types, codes, strict=True)
            )
            self._results = procs
        if not any(p is not None for p in procs):
            return [tuple(r) for r in rows]
        return [
            tuple(v if p is None else p(v) for p, v in zip(procs, r, strict=True)) for r in rows
        ]

    def run(
        self, conn: Connection | Any, values: dict[str, Any], *, engine: Engine | None = None
    ) -> list[tuple[Any, ...]]:
        """Run on ``conn`` (in its transaction); return the rows.

        ``conn`` is a :class:`Connection`, or a pooled driver connection
        (``engine.raw_connection()``) with its ``engine``. Listeners of the engine's
        ``before_cursor_execute`` and ``after_cursor_execute`` events see the statement, as
        for any statement (with no execution context). A driver error is raised as
        SQLAlchemy's wrapper of it (``sqlalchemy.exc.DataError``...), as
        ``Connection.execute`` raises it.
        """
        if isinstance(conn, Connection):
            sa_conn: Connection | None = conn
            driver = conn.connection
            dispatch = conn.dispatch
        else:
            assert engine is not None
            sa_conn, driver, dispatch = None, conn, engine.dispatch
        sql, params = self.sql, self.params(values)
        cursor = driver.cursor()
        try:
            for fn in dispatch.before_cursor_execute:
                sql, params = fn(sa_conn, cursor, sql, params, None, False)
            cursor.execute(sql, params)
            for fn in dispatch.after_cursor_execute:
                fn(sa_conn, cursor, sql, params, None, False)
            return self.rows(cursor)
        except self._dialect.loaded_dbapi.Error as e:
            raise DBAPIError.instance(
                sql, params, e, self._dialect.loaded_dbapi.Error, dialect=self._dialect
            ) from e
        finally:
            cursor.close()


_prepared: dict[tuple[int, Any, str], tuple[Any, Prepared]] = {}


def prepared(statement: Any, dialect: Any) -> Prepared:
    """Return ``statement`` compiled once for ``dialect`` (a module-level statement: kept)."""
    key = (id(statement), type(dialect), dialect.paramstyle)
    found = _prepared.get(key)
    if found is None or found[0] is not statement:
        found = (statement, Prepared(statement, dialect))
        _prepared[key] = found
    return found[1]
