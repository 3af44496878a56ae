"""Transactions under concurrency: reads never wait for writers, writers are serialised,
and a database lock that outlasts the busy timeout is a 503, never a 500.

Real commits on a WAL SQLite file and on PostgreSQL (``committed_url``); the tests that are
about SQLite's locks (BEGIN IMMEDIATE, the busy timeout) run on SQLite only. Engines of the
"other side" get ``sqlite_busy_timeout_ms=0``: a read that had to wait for the write lock
would fail at once instead of waiting, so nothing here depends on timing.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from field_api.auth.models import District
from field_api.common.actors import Role
from field_api.config import Settings
from field_api.db import (
    is_busy_error,
    make_engine,
    make_session_factory,
    read_session,
    session_scope,
)
from field_api.main import create_app
from tests.builders import auth, make_crew, make_district, make_order, make_user

WAIT_S = 60  # an upper bound on a thread's run (never reached when the code is right)


def _is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def _settings(url: str, tmp_path: Path) -> Settings:
    return Settings(
        env="test",
        database_url=url,
        media_dir=tmp_path / "media",
        token_pepper="test-pepper-0123456789",
        signing_key_path=tmp_path / "keys" / "signing.key",
    )


@pytest.fixture
def committed_engine(committed_url: str) -> Iterator[Engine]:
    eng = make_engine(committed_url)
    yield eng
    eng.dispose()


@pytest.fixture
def factory(committed_engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(committed_engine)


# SQLite's write lock and busy timeout: these tests run on SQLite only (not collected for
# PostgreSQL, rather than skipped there).
sqlite_only = pytest.mark.parametrize("committed_url", ["sqlite"], indirect=True)


@pytest.fixture
def sqlite_url(committed_url: str) -> str:
    assert _is_sqlite(committed_url)
    return committed_url


def _district_codes(session: Session) -> set[str]:
    return set(session.execute(select(District.code)).scalars())


class _HeldWrite:
    """A writer that holds an open write transaction with an uncommitted insert."""

    def __init__(self, factory: sessionmaker[Session]) -> None:
        self.session = factory()
        self.district = make_district(self.session)  # flushed: the write lock is held
        self.code = self.district.code

    def commit(self) -> None:
        self.session.commit()
        self.session.close()

    def rollback(self) -> None:
        self.session.rollback()
        self.session.close()


def _read_in_thread(factory: sessionmaker[Session]) -> set[str]:
    """Read the district codes in a read session on another thread; it must finish."""
    result: dict[str, object] = {}
    done = threading.Event()

    def read() -> None:
        try:
            with read_session(factory) as session:
                result["codes"] = _district_codes(session)
        except BaseException as exc:  # reported to the test below
            result["error"] = exc
        finally:
            done.set()

    thread = threading.Thread(target=read)
    thread.start()
    assert done.wait(WAIT_S), "the read did not finish while the writer held its transaction"
    thread.join()
    if "error" in result:
        raise AssertionError(f"the read failed: {result['error']!r}")
    codes = result["codes"]
    assert isinstance(codes, set)
    return codes


# --- reads do not wait ----------------------------------------------------------------------


def test_read_session_proceeds_while_a_writer_holds_an_open_write(
    committed_url: str, factory: sessionmaker[Session]
) -> None:
    with factory.begin() as s:
        committed = make_district(s).code
    # the reader never waits: on SQLite an engine with no busy timeout at all
    reader = make_engine(committed_url, sqlite_busy_timeout_ms=0)
    writer = _HeldWrite(factory)
    try:
        codes = _read_in_thread(make_session_factory(reader))
        assert committed in codes  # the committed state ...
        assert writer.code not in codes  # ... without the writer's uncommitted row
    finally:
        writer.commit()
        reader.dispose()
    with read_session(factory) as s:
        assert {committed, writer.code} <= _district_codes(s)


@sqlite_only
def test_the_old_immediate_reads_baseline_does_wait_for_the_writer(
    sqlite_url: str, factory: sessionmaker[Session]
) -> None:
    """``sqlite_immediate_reads`` (the bench's baseline) queues a read behind the writer."""
    reader = make_engine(sqlite_url, sqlite_immediate_reads=True, sqlite_busy_timeout_ms=0)
    writer = _HeldWrite(factory)
    try:
        with (
            pytest.raises(OperationalError) as caught,
            read_session(make_session_factory(reader)) as s,
        ):
            _district_codes(s)
        assert is_busy_error(caught.value)
    finally:
        writer.rollback()
        reader.dispose()


@sqlite_only
def test_read_sessions_begin_deferred_and_write_sessions_immediate(
    sqlite_url: str, committed_engine: Engine, factory: sessionmaker[Session]
) -> None:
    statements: list[str] = []

    def remember(conn: object, cursor: object, statement: str, *_: object) -> None:
        if statement.startswith("BEGIN"):
            statements.append(statement)

    event.listen(committed_engine, "before_cursor_execute", remember)
    try:
        with read_session(factory) as s:
            _district_codes(s)
        with factory.begin() as s:
            _district_codes(s)
        with factory() as s:  # a plain session is a write session too (services, CLI)
            _district_codes(s)
        gen = session_scope(factory)
        s = next(gen)
        _district_codes(s)
        gen.close()
    finally:
        event.remove(committed_engine, "before_cursor_execute", remember)
    assert statements == ["BEGIN DEFERRED", "BEGIN IMMEDIATE", "BEGIN IMMEDIATE", "BEGIN IMMEDIATE"]


# --- writers are serialised -----------------------------------------------------------------


@sqlite_only
def test_a_second_writer_cannot_begin_while_one_holds_the_write_lock(
    sqlite_url: str, factory: sessionmaker[Session]
) -> None:
    impatient = make_engine(sqlite_url, sqlite_busy_timeout_ms=0)
    writer = _HeldWrite(factory)
    try:
        with (
            pytest.raises(OperationalError) as caught,
            make_session_factory(impatient).begin() as s,
        ):
            _district_codes(s)  # BEGIN IMMEDIATE is refused before any read
        assert is_busy_error(caught.value)
    finally:
        writer.commit()
    with make_session_factory(impatient).begin() as s:  # free again once committed
        assert writer.code in _district_codes(s)
    impatient.dispose()


@sqlite_only
def test_concurrent_read_modify_write_transactions_queue_and_lose_no_update(
    sqlite_url: str, committed_engine: Engine, factory: sessionmaker[Session]
) -> None:
    with committed_engine.begin() as conn:
        conn.execute(text("CREATE TABLE bench_counter (id INTEGER PRIMARY KEY, n INTEGER)"))
        conn.execute(text("INSERT INTO bench_counter VALUES (1, 0)"))
    writers = 6
    barrier = threading.Barrier(writers)
    errors: list[BaseException] = []

    def increment() -> None:
        barrier.wait()
        try:
            with factory.begin() as s:  # reads first, then writes: safe only if serialised
                n = s.execute(text("SELECT n FROM bench_counter WHERE id = 1")).scalar_one()
                s.execute(text("UPDATE bench_counter SET n = :n WHERE id = 1"), {"n": n + 1})
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=increment) for _ in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT_S)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    with committed_engine.connect() as conn:
        assert conn.execute(text("SELECT n FROM bench_counter")).scalar_one() == writers


# --- the busy error -------------------------------------------------------------------------


def test_a_lock_wait_that_runs_out_is_recognised_as_busy(
    committed_url: str, factory: sessionmaker[Session]
) -> None:
    if _is_sqlite(committed_url):
        impatient = make_engine(committed_url, sqlite_busy_timeout_ms=0)
        writer = _HeldWrite(factory)
        try:
            with (
                pytest.raises(OperationalError) as caught,
                make_session_factory(impatient).begin() as s,
            ):
                _district_codes(s)
        finally:
            writer.rollback()
            impatient.dispose()
    else:
        writer = _HeldWrite(factory)
        try:
            with pytest.raises(OperationalError) as caught, factory.begin() as s:
                s.execute(text("LOCK TABLE districts IN EXCLUSIVE MODE NOWAIT"))
        finally:
            writer.rollback()
    assert is_busy_error(caught.value)


def test_other_database_errors_are_not_busy(factory: sessionmaker[Session]) -> None:
    with pytest.raises(Exception) as caught, factory.begin() as s:
        s.execute(text("SELECT * FROM no_such_table"))
    assert not is_busy_error(caught.value)
    assert not is_busy_error(ValueError("database is locked"))


# --- through the application ----------------------------------------------------------------


@dataclass
class _App:
    client: TestClient
    engine: Engine
    admin: str
    crew: str
    order_id: int


@contextmanager
def _running_app(
    url: str, tmp_path: Path, factory: sessionmaker[Session], *, busy_timeout_ms: int
) -> Iterator[_App]:
    """The app on the WAL file, with tokens of an admin and of a crew member with one order."""
    settings = _settings(url, tmp_path)
    with factory.begin() as s:
        _, admin = make_user(s, settings, role=Role.admin)
        crew = make_crew(s)
        _, crew_token = make_user(s, settings, role=Role.crew, crew=crew)
        order_id = make_order(s, crew=crew).id
    app_engine = make_engine(url, sqlite_busy_timeout_ms=busy_timeout_ms)
    app = create_app(settings, session_factory=make_session_factory(app_engine))
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            yield _App(client, app_engine, admin, crew_token, order_id)
    finally:
        app_engine.dispose()


@pytest.fixture
def impatient_app(
    sqlite_url: str, tmp_path: Path, factory: sessionmaker[Session]
) -> Iterator[_App]:
    """No busy timeout in the app: any wait for the write lock is an instant 503."""
    with _running_app(sqlite_url, tmp_path, factory, busy_timeout_ms=0) as app:
        yield app


@sqlite_only
def test_get_succeeds_while_a_writer_holds_the_lock(
    impatient_app: _App, factory: sessionmaker[Session]
) -> None:
    app = impatient_app
    writer = _HeldWrite(factory)
    try:
        listed = app.client.get("/districts", headers=auth(app.admin))
        one = app.client.get(f"/work-orders/{app.order_id}", headers=auth(app.crew))
    finally:
        writer.commit()
    assert listed.status_code == 200, listed.text
    assert writer.code not in {d["code"] for d in listed.json()}
    assert one.status_code == 200, one.text
    after = app.client.get("/districts", headers=auth(app.admin))
    assert writer.code in {d["code"] for d in after.json()}


@sqlite_only
def test_reads_that_may_write_do_not_wait_once_written(
    impatient_app: _App, factory: sessionmaker[Session]
) -> None:
    """An existing tracking link and the deadline views are plain reads under a held lock."""
    app = impatient_app
    link = f"/work-orders/{app.order_id}/tracking"
    first = app.client.get(link, headers=auth(app.crew))  # creates the token (a short write)
    assert first.status_code == 200, first.text
    writer = _HeldWrite(factory)
    try:
        again = app.client.get(link, headers=auth(app.crew))
        deadlines = app.client.get(
            f"/work-orders/{app.order_id}/deadlines", headers=auth(app.crew)
        )
        attention = app.client.get("/deadlines/attention", headers=auth(app.crew))
    finally:
        writer.rollback()
    assert again.status_code == 200 and again.json()["token"] == first.json()["token"]
    assert deadlines.status_code == 200, deadlines.text
    assert attention.status_code == 200, attention.text


@sqlite_only
def test_a_write_refused_by_a_locked_database_is_a_503_json_error(
    impatient_app: _App, factory: sessionmaker[Session], caplog: pytest.LogCaptureFixture
) -> None:
    app = impatient_app
    caplog.set_level(logging.WARNING)
    body = {"code": "D-BUSY", "name": "忙区", "lv_ceiling_kw": 160.0}
    keyed = auth(app.admin, **{"Idempotency-Key": "k1"})
    writer = _HeldWrite(factory)
    try:
        busy = app.client.post("/admin/districts", json=body, headers=auth(app.admin))
        # the Idempotency-Key middleware writes before the route: its busy error is a 503 too,
        # answered by the middleware itself (nothing escapes to the server's error log)
        with TestClient(app.client.app, raise_server_exceptions=True) as strict:
            busy_keyed = strict.post("/admin/districts", json=body, headers=keyed)
    finally:
        writer.rollback()
    for response in (busy, busy_keyed):
        assert response.status_code == 503, response.text
        assert response.json() == {
            "error": "ServiceUnavailable",
            "code": "server.busy",
            "params": {"retry_after_s": 1},
            "detail": "数据库繁忙，请 1 秒后重试",  # the request's language (zh-CN by default)
        }
        assert response.headers["retry-after"] == "1"
    # an expected, answered condition: a warning at most, never an error with a traceback
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    retried = app.client.post("/admin/districts", json=body, headers=keyed)
    assert retried.status_code == 201, retried.text


@sqlite_only
def test_a_get_that_writes_takes_the_write_lock_first_and_waits_for_it(
    sqlite_url: str, tmp_path: Path, factory: sessionmaker[Session]
) -> None:
    """GET /work-orders/{id}/tracking creates the token on first use (``writes_database``).

    It must queue for the write lock like any writer. As a read (DEFERRED) it would read
    first and then fail to upgrade: at once (SQLITE_BUSY) while the writer holds the lock,
    and with SQLITE_BUSY_SNAPSHOT once the writer has committed after its read.
    """
    with _running_app(sqlite_url, tmp_path, factory, busy_timeout_ms=60_000) as app:
        wants_to_write = threading.Event()

        def watch(conn: object, cursor: object, statement: str, *_: object) -> None:
            if statement.startswith(("BEGIN IMMEDIATE", "INSERT")):
                wants_to_write.set()

        event.listen(app.engine, "before_cursor_execute", watch)
        result: dict[str, int] = {}

        def get_link() -> None:
            path = f"/work-orders/{app.order_id}/tracking"
            result["status"] = app.client.get(path, headers=auth(app.crew)).status_code

        writer = _HeldWrite(factory)
        request = threading.Thread(target=get_link)
        try:
            request.start()
            assert wants_to_write.wait(WAIT_S), "the request never tried to write"
        finally:
            writer.commit()  # the request's write now queues behind ours, or fails
        request.join(WAIT_S)
        assert not request.is_alive()
        assert result["status"] == 200
