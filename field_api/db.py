"""Engine and session factory; the request dependency commits or rolls back.

SQLite gets WAL, foreign keys and a busy timeout, and SQLAlchemy's documented pysqlite
``connect``/``begin`` hooks (pysqlite's own BEGIN handling is switched off and the ``begin``
event emits ours), so that SAVEPOINTs work (tests roll back per test with them) and the BEGIN
mode is chosen per transaction:

- writes (the default: ``factory.begin()``, ``factory()``, the CLI, services, POST/PUT/...
  requests) begin ``BEGIN IMMEDIATE``: writers are serialised by SQLite's write lock, which is
  what keeps the audit chain and the stock counts consistent under concurrent requests;
- reads (``read_session(factory)``, ``session_scope(factory, write=False)``, GET/HEAD/OPTIONS
  requests) begin a DEFERRED transaction: in WAL mode a reader sees the last committed snapshot
  and never waits for a writer.

The mode travels as the connection execution option :data:`SQLITE_BEGIN` (set on the
connection when a read session procures it), read by the ``begin`` hook. PostgreSQL ignores it.
A database that stays locked past the busy timeout raises ``OperationalError``;
:func:`is_busy_error` recognises it (and PostgreSQL's lock/serialization failures) so the app
answers 503 ``ServiceUnavailable`` with ``Retry-After`` rather than 500.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from sqlalchemy import DateTime, Engine, MetaData, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import StaticPool
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps on every backend (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base of every table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UtcDateTime()}


class Audited:
    """Marker of a table whose every row the audit chain covers (``field_api.audit``).

    Every insert, update and delete of such a row appends a keyed audit event, and
    ``fieldops audit verify`` reports a row without one as written outside the service.
    """

    __audited__ = True


SQLITE_BEGIN: Final = "fieldops_sqlite_begin"
"""Connection execution option: ``"IMMEDIATE"`` (writes, the default) or ``"DEFERRED"`` (reads)."""
READ_OPTIONS: Final = {SQLITE_BEGIN: "DEFERRED"}
DEFAULT_SQLITE_BUSY_TIMEOUT_MS: Final = 30_000

# SQLite primary result codes SQLITE_BUSY (5) and SQLITE_LOCKED (6), the low byte of the
# extended codes such as SQLITE_BUSY_SNAPSHOT; PostgreSQL SQLSTATEs of lock/serialization
# failures a retry can cure: serialization_failure, deadlock_detected, lock_not_available.
_SQLITE_BUSY_CODES: Final = frozenset({5, 6})
_SQLITE_BUSY_MESSAGES: Final = ("database is locked", "database table is locked")
_PG_RETRYABLE_STATES: Final = frozenset({"40001", "40P01", "55P03"})


def make_engine(
    url: str,
    *,
    sqlite_immediate_reads: bool = False,
    sqlite_busy_timeout_ms: int = DEFAULT_SQLITE_BUSY_TIMEOUT_MS,
    **kwargs: Any,
) -> Engine:
    """Create an engine with the project's per-backend settings.

    ``sqlite_immediate_reads`` restores the former behaviour (every transaction, reads included,
    ``BEGIN IMMEDIATE``); only ``benches/bench_db_load.py`` uses it, as its baseline.
    ``sqlite_busy_timeout_ms`` is how long a SQLite writer waits for the write lock.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, **kwargs)

    database = parsed.database or ""
    in_memory = database in ("", ":memory:") or "mode=memory" in str(parsed)
    if not in_memory:
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    connect_args: dict[str, Any] = {
        "check_same_thread": False,
        "timeout": sqlite_busy_timeout_ms / 1000,
    }
    if in_memory:
        kwargs.setdefault("poolclass", StaticPool)
    engine = create_engine(url, connect_args=connect_args, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # pysqlite's own transaction handling breaks SAVEPOINT; take it over (SQLAlchemy docs).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(sqlite_busy_timeout_ms)}")
        if not in_memory:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = conn.get_execution_options().get(SQLITE_BEGIN, "IMMEDIATE")
        if sqlite_immediate_reads or mode != "DEFERRED":
            mode = "IMMEDIATE"
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


def is_busy_error(exc: BaseException) -> bool:
    """Whether ``exc`` is a database lock wait that ran out (worth a retry, not a 500).

    SQLite ``database is locked`` / busy (SQLITE_BUSY, SQLITE_LOCKED and their extended codes,
    SQLITE_BUSY_SNAPSHOT included), PostgreSQL serialization failures, deadlocks and lock
    timeouts.
    """
    if not isinstance(exc, DBAPIError):
        return False
    orig = exc.orig
    code = getattr(orig, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF in _SQLITE_BUSY_CODES
    state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if isinstance(state, str):
        return state in _PG_RETRYABLE_STATES
    message = str(orig).lower()
    return any(text in message for text in _SQLITE_BUSY_MESSAGES)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=True)


def session_scope(
    factory: sessionmaker[Session], *, write: bool = True, info: dict[str, Any] | None = None
) -> Generator[Session, None, None]:
    """A session whose transaction commits on success and rolls back on error.

    ``write=False`` makes it a read session (a DEFERRED transaction on SQLite: it never waits
    for a writer); a read session that flushes a write still works while no other writer
    commits in between, else SQLite refuses it (busy, a 503), so work that writes asks for
    ``write=True``. ``info`` goes into ``Session.info`` (the request's settings).
    """
    session = factory()
    session.info.update(info or {})
    try:
        if not write:
            session.connection(execution_options=READ_OPTIONS)
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


@contextmanager
def read_session(factory: sessionmaker[Session]) -> Iterator[Session]:
    """``with read_session(factory) as session:`` a read-only unit of work (DEFERRED on SQLite)."""
    yield from session_scope(factory, write=False)
