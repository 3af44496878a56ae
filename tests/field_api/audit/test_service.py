"""The audit guard, the checkpoint job and the audit endpoints."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from field_api.audit import checkpoints
from field_api.audit import service as audit
from field_api.audit.models import AuditEvent
from field_api.auth.models import ApiToken, User
from field_api.common.actors import Role
from field_api.config import Settings
from field_api.db import make_engine, make_session_factory
from field_api.keyfiles import KeyFileError, load_public_key
from field_api.leases import service as leases
from field_api.main import create_app
from field_api.work_orders.models import WorkOrder
from tests.builders import auth, make_crew, make_order, make_user
from tests.clocks import ChinaClock
from tests.sms_support import production_sms


def _last_event(session: Session) -> AuditEvent:
    return session.execute(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1)).scalar_one()


def test_an_unnamed_write_is_recorded_with_the_request_actor(session: Session) -> None:
    order = make_order(session)
    user, _ = make_user(session, Settings(env="test"), role=Role.planner)
    principal = audit_principal(user)
    audit.set_actor(session, principal)
    order.capacity_kw = 7.5
    session.commit()
    event = _last_event(session)
    assert (event.action, event.entity_type, event.entity_id) == (
        "work_orders.write", "work_orders", str(order.id)
    )
    assert event.actor_id == user.id and event.actor_role == "planner"
    assert audit.verify(session) == []


def test_a_deleted_row_is_recorded_as_deleted(session: Session) -> None:
    crew = make_crew(session)
    user, _ = make_user(session, Settings(env="test"), role=Role.crew, crew=crew)
    for token in session.execute(select(ApiToken).where(ApiToken.user_id == user.id)).scalars():
        session.delete(token)
    session.commit()
    event = _last_event(session)
    assert event.action == "api_tokens.delete" and event.row_hash is None
    assert audit.verify(session) == []


def test_a_bulk_update_of_an_audited_table_is_refused(session: Session) -> None:
    make_order(session)
    with pytest.raises(audit.AuditBypass, match="work_orders"):
        session.execute(update(WorkOrder).values(capacity_kw=1.0))


def audit_principal(user: User) -> audit.Principal:
    return audit.Principal(user_id=user.id, name=user.name, role=user.role)


@pytest.fixture
def factory(committed_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(committed_url)
    yield make_session_factory(engine)
    engine.dispose()


def _settings(tmp_path: Path, url: str, interval_s: int = 300) -> Settings:
    return Settings(
        env="test",
        database_url=url,
        audit_checkpoint_dir=tmp_path / "cp",
        audit_checkpoint_interval_s=interval_s,
    )


def test_the_checkpoint_job_writes_when_the_head_moved_and_the_interval_passed(
    factory: sessionmaker[Session], committed_url: str, tmp_path: Path, server_clock: ChinaClock
) -> None:
    settings = _settings(tmp_path, committed_url)
    with factory.begin() as session:
        make_order(session)
    first = checkpoints.write_due(factory, settings)
    assert first is not None
    assert checkpoints.write_due(factory, settings) is None  # nothing new
    with factory.begin() as session:
        make_order(session)
    assert checkpoints.write_due(factory, settings) is None  # new events, interval not over
    server_clock.advance(seconds=301)
    second = checkpoints.write_due(factory, settings)
    assert second is not None
    assert second.envelope["record"]["count"] > first.envelope["record"]["count"]
    names = checkpoints.store_of(settings).names()
    assert names == sorted([first.name, second.name])
    assert all((settings.audit_checkpoint_dir / n).stat().st_mode & 0o222 == 0 for n in names)


def test_one_process_at_a_time_writes_checkpoints(
    factory: sessionmaker[Session], committed_url: str, tmp_path: Path
) -> None:
    settings = _settings(tmp_path, committed_url)
    with factory.begin() as session:
        make_order(session)
        assert leases.claim(session, checkpoints.LEASE_KIND, "head", ttl_s=60,
                            owner="another-host/1/1")
    assert checkpoints.write_due(factory, settings) is None
    assert checkpoints.store_of(settings).names() == []


def test_production_refuses_to_start_without_the_audit_keys(tmp_path: Path) -> None:
    settings = Settings(
        env="production",
        token_pepper="p" * 32,
        public_base_url="https://connect.example.com",
        database_url=f"sqlite:///{tmp_path}/prod.db",
        audit_key_path=tmp_path / "missing-chain.key",
        audit_checkpoint_key_path=tmp_path / "missing-cp.key",
        sms=production_sms(tmp_path),
    )
    with pytest.raises(KeyFileError, match="audit chain key"):
        create_app(settings)
    assert not (tmp_path / "missing-chain.key").exists()


def test_development_generates_private_key_files(tmp_path: Path) -> None:
    from field_api.audit import keys

    settings = Settings(
        env="development",
        audit_key_path=tmp_path / "k" / "chain.key",
        audit_checkpoint_key_path=tmp_path / "k" / "cp.key",
    )
    loaded = keys.load(settings)
    assert (tmp_path / "k" / "chain.key").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "k" / "cp.key").stat().st_mode & 0o777 == 0o600
    assert keys.load(settings) is loaded
    assert len(loaded.chain_key) == 32


def test_audit_endpoints(client: TestClient, session: Session, settings: Settings) -> None:
    _, admin = make_user(session, settings, role=Role.admin)
    _, planner = make_user(session, settings, role=Role.planner)
    _, crew = make_user(session, settings, role=Role.crew)
    session.commit()
    settings.audit_checkpoint_dir = settings.media_dir.parent / "checkpoints"

    assert client.post("/audit/checkpoints", headers=auth(planner)).status_code == 403
    assert client.get("/audit/checkpoints", headers=auth(crew)).status_code == 403
    r = client.post("/audit/checkpoints", headers=auth(admin))
    assert r.status_code == 201, r.text
    written = r.json()
    page = client.get("/audit/checkpoints?limit=10", headers=auth(planner)).json()
    assert page["total"] == 1 and page["items"][0]["file"] == written["file"]

    pem = client.get("/audit/checkpoints/public-key")
    assert pem.status_code == 200 and b"PUBLIC KEY" in pem.content
    cp = checkpoints.check_signature(
        {"record": written["record"], "signature": written["signature"]},
        load_public_key(pem.content),
    )
    assert cp is not None and cp.count == written["record"]["count"]

    report = client.get("/audit/verify", headers=auth(planner)).json()
    assert report["ok"] and report["checkpoints_checked"] == 1, report

    # a re-anchor needs the host (the key files): no HTTP route offers it
    assert client.post("/audit/reanchor", json={"reason": "x" * 10},
                       headers=auth(admin)).status_code in (404, 405)
