"""Database fixtures: every test that touches the database runs on SQLite and on PostgreSQL.

- ``db_url`` (session scope, parametrised): an in-memory SQLite URL, and a throw-away
  PostgreSQL database created for this pytest run from FIELDOPS_TEST_DATABASE_URL.
- ``session``: a Session inside a transaction rolled back after the test (SAVEPOINT mode,
  so service code may commit freely).
- ``app`` / ``client``: the real application bound to that same transaction.
- ``committed_url``: a database for tests that need real commits (concurrency, restarts):
  a WAL SQLite file, and a second throw-away PostgreSQL database, emptied before each test.

With CI=true an unreachable PostgreSQL fails the run instead of skipping.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from field_api.audit import keys as audit_keys
from field_api.audit import service as audit_service
from field_api.common import clock as clock_module
from field_api.config import Settings, StorageSettings
from field_api.db import Base, make_engine
from field_api.main import create_app
from field_api.wiring import import_all_models
from tests import s3server, sms_support
from tests.clocks import ChinaClock

PG_ENV = "FIELDOPS_TEST_DATABASE_URL"
import_all_models()

# One pair of audit keys for this test process, also inherited by the servers tests start.
_KEY_DIR = Path(tempfile.mkdtemp(prefix="fieldops-test-keys-"))
os.environ.setdefault("FIELDOPS_AUDIT_KEY_PATH", str(_KEY_DIR / "audit-chain.key"))
os.environ.setdefault("FIELDOPS_AUDIT_CHECKPOINT_KEY_PATH", str(_KEY_DIR / "audit-checkpoint.key"))
audit_keys.install(Settings(env="test"))


def _assert_audit_chain_intact(request: pytest.FixtureRequest, conn: Connection) -> None:
    """Every database test ends with a chain that verifies: normal use leaves no alarm."""
    if request.node.get_closest_marker("audit_tampered"):
        return
    with Session(bind=conn) as s:
        problems = audit_service.verify(s)
    assert not problems, f"audit chain broken after the test: {problems[0].message}"


def _pg_base_url() -> str | None:
    url = os.environ.get(PG_ENV)
    if not url and os.environ.get("CI") == "true":
        raise pytest.UsageError(f"CI=true but {PG_ENV} is not set: PostgreSQL tests must run")
    return url


class _PgDatabases:
    """Creates throw-away databases next to the configured one and drops them at exit."""

    def __init__(self, base_url: str) -> None:
        self.base_url = make_url(base_url)
        self.created: list[str] = []
        self.admin: Engine = create_engine(base_url, isolation_level="AUTOCOMMIT")

    def create(self, suffix: str) -> str:
        name = f"{self.base_url.database}_{os.getpid()}_{secrets.token_hex(3)}_{suffix}"
        try:
            with self.admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        except Exception as exc:
            if os.environ.get("CI") == "true":
                raise RuntimeError(f"PostgreSQL unreachable under CI: {exc}") from exc
            pytest.skip(f"PostgreSQL unreachable: {exc}")
        self.created.append(name)
        return self.base_url.set(database=name).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        with self.admin.connect() as conn:
            for name in self.created:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.admin.dispose()


@pytest.fixture
def server_clock() -> Iterator[ChinaClock]:
    """The service's clock for this test: starts at the real time, moves only when told."""
    with clock_module.use_clock(ChinaClock()) as installed:
        assert isinstance(installed, ChinaClock)
        yield installed


@pytest.fixture(scope="session")
def pg_databases() -> Iterator[_PgDatabases | None]:
    base = _pg_base_url()
    if not base:
        yield None
        return
    dbs = _PgDatabases(base)
    yield dbs
    dbs.drop_all()


def _backend_url(request: pytest.FixtureRequest, kind: str, suffix: str, tmp: Path) -> str:
    if kind == "sqlite":
        return "sqlite://" if suffix == "r" else f"sqlite:///{tmp}/{suffix}.db"
    dbs: _PgDatabases | None = request.getfixturevalue("pg_databases")
    if dbs is None:
        pytest.skip(f"{PG_ENV} not set (make test sets it; CI requires it)")
    return dbs.create(suffix)


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    return _backend_url(request, request.param, "r", tmp_path_factory.mktemp("db"))


@pytest.fixture(scope="session")
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    Base.metadata.create_all(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def connection(engine: Engine, request: pytest.FixtureRequest) -> Iterator[Connection]:
    conn = engine.connect()
    trans = conn.begin()
    try:
        yield conn
        _assert_audit_chain_intact(request, conn)
    finally:
        trans.rollback()
        conn.close()


@pytest.fixture
def session_factory(connection: Connection) -> sessionmaker[Session]:
    return sessionmaker(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )


@pytest.fixture
def session(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    s = session_factory()
    try:
        yield s
    finally:
        s.close()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[s3server.S3Server]:
    """One SeaweedFS server for this pytest process (each xdist worker has its own), with a
    bucket; stopped at the end. A missing `weed` or a failed start fails the tests."""
    try:
        server = s3server.start(tmp_path_factory.mktemp("seaweedfs"))
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    yield server
    server.stop()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests marked ``both_stores`` (the ones that touch stored files) run on the local folder
    and on the S3 server; every other test on the local folder only."""
    definition = metafunc.definition
    chosen = any(  # a test that names its backend itself
        "storage_backend" in str(m.args[0]) for m in definition.iter_markers("parametrize")
    )
    if (
        "storage_backend" in metafunc.fixturenames
        and definition.get_closest_marker("both_stores")
        and not chosen
    ):
        metafunc.parametrize("storage_backend", ["local", "s3"], indirect=True)


@pytest.fixture
def storage_backend(request: pytest.FixtureRequest) -> str:
    """Where the test's stored files live: "local" (default) or "s3" (``both_stores`` tests)."""
    return str(getattr(request, "param", "local"))


@pytest.fixture
def storage_settings(storage_backend: str, request: pytest.FixtureRequest) -> StorageSettings:
    """The ``storage`` section: the local folder, or the S3 server with a key prefix of this
    test's own (one bucket per server, no test sees another's objects)."""
    if storage_backend == "local":
        return StorageSettings(backend="local")
    server: s3server.S3Server = request.getfixturevalue("s3_server")
    return StorageSettings(**server.settings(prefix=f"t-{secrets.token_hex(6)}/"))


@pytest.fixture
def settings(tmp_path: Path, db_url: str, storage_settings: StorageSettings) -> Settings:
    return Settings(
        env="test",
        database_url=db_url,
        media_dir=tmp_path / "media",
        token_pepper="test-pepper-0123456789",
        signing_key_path=tmp_path / "keys" / "signing.key",
        audit_checkpoint_dir=tmp_path / "audit-checkpoints",
        storage=storage_settings,
    )


@pytest.fixture
def sms_inbox(
    session_factory: sessionmaker[Session], settings: Settings
) -> Iterator[sms_support.SmsInbox]:
    """The customers' phones: a recording SMS gateway; reading it runs the queued SMS jobs."""
    with sms_support.recording_gateway() as gateway:
        yield sms_support.SmsInbox(session_factory, settings, gateway)


@pytest.fixture
def app(settings: Settings, session_factory: sessionmaker[Session]) -> FastAPI:
    return create_app(settings, session_factory=session_factory)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(params=["sqlite", "postgresql"])
def committed_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database with the schema, for tests that need real commits."""
    url = _backend_url(request, request.param, "c", tmp_path)
    eng = make_engine(url)
    Base.metadata.create_all(eng)
    eng.dispose()
    yield url
    eng = make_engine(url)
    try:
        with eng.connect() as conn:
            _assert_audit_chain_intact(request, conn)
    finally:
        eng.dispose()


# Slices' transition listeners are part of the service's behaviour in every test.
from field_api.wiring import install_hooks  # noqa: E402

install_hooks()
