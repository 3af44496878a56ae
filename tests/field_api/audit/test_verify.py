"""`fieldops audit verify` stays quiet after normal use and catches a forger with database
access, on SQLite and PostgreSQL: the chain is keyed (HMAC) and anchored by signed checkpoints.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, delete, func, insert, select, text, update
from typer.testing import CliRunner

from field_api.audit import keys as audit_keys
from field_api.audit.models import AuditEvent, AuditHead
from field_api.audit.rules import link_hash, row_hash
from field_api.audit.service import _event_fields
from field_api.auth.rules import hash_token
from field_api.cli import app as cli
from field_api.common import clock
from field_api.common.actors import Principal, Role
from field_api.config import Settings, get_settings
from field_api.db import Base, make_engine, make_session_factory
from field_api.kits import service as kits
from tests.builders import make_crew, make_order, make_user

PEPPER = "test-pepper-0123456789"


@dataclass
class Db:
    engine: Engine
    url: str
    checkpoints: Path

    def sql(self, statement: str, **params: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(text(statement), params)

    def work(self) -> None:
        """Normal use through the services: an order, stock received into a depot."""
        with make_session_factory(self.engine).begin() as session:
            crew = make_crew(session)
            make_order(session, crew=crew)
            keeper, _ = make_user(session, get_settings(), role=Role.storekeeper)
            store = Principal(user_id=keeper.id, name=keeper.name, role=Role.storekeeper)
            kits.create_depot(session, code=f"D{crew.id}", name="depot", district_code=None,
                              actor=store)
            kits.receive(session, f"D{crew.id}", {"MTR-1P-5-60": 100.0}, actor=store)


@pytest.fixture
def db(committed_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Db]:
    monkeypatch.setenv("FIELDOPS_DATABASE_URL", committed_url)
    monkeypatch.setenv("FIELDOPS_AUDIT_CHECKPOINT_DIR", str(tmp_path / "checkpoints"))
    monkeypatch.setenv("FIELDOPS_TOKEN_PEPPER", PEPPER)
    get_settings.cache_clear()
    engine = make_engine(committed_url)
    state = Db(engine, committed_url, tmp_path / "checkpoints")
    state.work()
    yield state
    engine.dispose()
    get_settings.cache_clear()


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["audit", *args])
    return result.exit_code, result.output


def _verify(*extra: str) -> tuple[int, str]:
    return _cli("verify", *extra)


def _rechain_without_key(engine: Engine, from_seq: int) -> None:
    """What a forger with database access but no key file can do: recompute every link from
    ``from_seq`` on (the algorithm is public; the key is not) and move the head."""
    with engine.begin() as conn:
        prev = conn.execute(
            select(AuditEvent.hash).where(AuditEvent.seq == from_seq - 1)
        ).scalar_one_or_none() or "0" * 64
        rows = conn.execute(
            select(AuditEvent.__table__).where(AuditEvent.seq >= from_seq).order_by(AuditEvent.seq)
        ).mappings().all()
        for row in rows:
            event = AuditEvent(**dict(row))
            new_hash = link_hash(b"a guessed key", prev, _event_fields(event))
            conn.execute(
                update(AuditEvent)
                .where(AuditEvent.seq == event.seq)
                .values(prev_hash=prev, hash=new_hash)
            )
            prev = new_hash
        conn.execute(update(AuditHead).where(AuditHead.id == 1).values(last_hash=prev))


def test_normal_use_verifies(db: Db) -> None:
    code, out = _verify()
    assert code == 0, out
    assert "audit chain ok" in out


TAMPERING: dict[str, Callable[[Db], None]] = {}


def tamper(name: str) -> Callable[[Callable[[Db], None]], Callable[[Db], None]]:
    def register(fn: Callable[[Db], None]) -> Callable[[Db], None]:
        TAMPERING[name] = fn
        return fn

    return register


@tamper("event edited")
def _edit_event(db: Db) -> None:
    db.sql("UPDATE audit_events SET action = 'tampered' WHERE seq = 3")


@tamper("event deleted in the middle")
def _delete_middle(db: Db) -> None:
    db.sql("DELETE FROM audit_events WHERE seq = 2")


@tamper("audited row edited")
def _edit_row(db: Db) -> None:
    db.sql("UPDATE work_orders SET capacity_kw = 99")


@tamper("row edited and re-hashed, chain and head recomputed")
def _rehashed_edit(db: Db) -> None:
    db.sql("UPDATE work_orders SET capacity_kw = 99 WHERE id = (SELECT MIN(id) FROM work_orders)")
    with db.engine.begin() as conn:
        order = conn.execute(
            select(Base.metadata.tables["work_orders"]).order_by(text("id")).limit(1)
        ).mappings().one()
        seq = conn.execute(
            select(func.max(AuditEvent.seq)).where(
                AuditEvent.entity_type == "work_orders", AuditEvent.entity_id == str(order["id"])
            )
        ).scalar_one()
        conn.execute(
            update(AuditEvent).where(AuditEvent.seq == seq).values(row_hash=row_hash(dict(order)))
        )
    _rechain_without_key(db.engine, seq)


@tamper("admin user and token inserted")
def _insert_admin(db: Db) -> None:
    users = Base.metadata.tables["users"]
    tokens = Base.metadata.tables["api_tokens"]
    with db.engine.begin() as conn:
        user_id = conn.execute(
            insert(users)
            .values(name="intruder", role="admin", active=True, created_at=clock.now())
            .returning(users.c.id)
        ).scalar_one()
        conn.execute(
            insert(tokens).values(
                user_id=user_id,
                token_hash=hash_token("fo_forged_token", pepper=PEPPER),
                prefix="fo_forg",
                label="",
                created_at=clock.now(),
            )
        )


@tamper("admin inserted with forged events appended")
def _insert_admin_with_events(db: Db) -> None:
    _insert_admin(db)
    with db.engine.begin() as conn:
        head = conn.execute(select(AuditHead.__table__)).mappings().one()
        users = Base.metadata.tables["users"]
        row = conn.execute(select(users).where(users.c.name == "intruder")).mappings().one()
        last = conn.execute(select(AuditEvent.__table__).order_by(AuditEvent.seq.desc())).mappings().first()
        assert last is not None
        forged = AuditEvent(
            seq=head["count"] + 1, at=clock.now(), actor_id=None, actor_role="system",
            action="user.create", entity_type="users", entity_id=str(row["id"]),
            row_hash=row_hash(dict(row)), key_id=last["key_id"], detail=None,
            prev_hash=head["last_hash"], hash="",
        )
        forged.hash = link_hash(b"a guessed key", head["last_hash"], _event_fields(forged))
        conn.execute(insert(AuditEvent.__table__).values(
            {c.name: getattr(forged, c.key) for c in AuditEvent.__table__.columns}
        ))
        conn.execute(update(AuditHead).values(count=forged.seq, last_hash=forged.hash))


@tamper("stock movement deleted")
def _delete_movement(db: Db) -> None:
    db.sql("DELETE FROM stock_movements")


@tamper("stock count raised")
def _raise_stock(db: Db) -> None:
    db.sql("UPDATE depot_stock SET on_hand_milli = on_hand_milli + 1000")


@pytest.mark.audit_tampered
@pytest.mark.parametrize("kind", sorted(TAMPERING))
def test_tampering_is_detected(db: Db, kind: str) -> None:
    TAMPERING[kind](db)
    code, out = _verify()
    assert code == 1, out
    assert "BROKEN" in out


def _delete_tail(db: Db, n: int) -> None:
    """Delete the newest ``n`` events and move the head back: the chain alone stays valid."""
    with db.engine.begin() as conn:
        count = conn.execute(select(func.max(AuditEvent.seq))).scalar_one()
        keep = count - n
        conn.execute(delete(AuditEvent).where(AuditEvent.seq > keep))
        last = conn.execute(select(AuditEvent.hash).where(AuditEvent.seq == keep)).scalar_one()
        conn.execute(update(AuditHead).values(count=keep, last_hash=last))


@pytest.mark.audit_tampered
def test_a_deleted_tail_is_caught_by_the_checkpoints(db: Db) -> None:
    code, out = _cli("checkpoint")
    assert code == 0, out
    # the newest events are the stock's: deleting them and the rows they wrote leaves a chain
    # that checks by itself
    with db.engine.begin() as conn:
        tail = conn.execute(
            select(AuditEvent.entity_type, AuditEvent.entity_id)
            .order_by(AuditEvent.seq.desc()).limit(2)
        ).all()
    assert {t for t, _ in tail} <= {"depot_stock", "stock_movements"}
    _delete_tail(db, 2)
    for table, entity_id in tail:
        db.sql(f"DELETE FROM {table} WHERE id = :id", id=int(entity_id))
    code, out = _verify("--checkpoints", "/nonexistent-empty-folder")
    assert code == 0, "without checkpoints the truncated chain looks whole: " + out
    code, out = _verify("--checkpoints", str(db.checkpoints))
    assert code == 1
    assert "events were deleted or an older copy of the database was restored" in out


def _dump(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    with engine.connect() as conn:
        return {
            t.name: [dict(r) for r in conn.execute(select(t)).mappings()]
            for t in Base.metadata.sorted_tables
        }


def _restore(engine: Engine, dump: dict[str, list[dict[str, Any]]]) -> None:
    """A restore of a backup: every table emptied and refilled with the backup's rows."""
    with engine.begin() as conn:
        for t in reversed(Base.metadata.sorted_tables):
            conn.execute(delete(t))
        for t in Base.metadata.sorted_tables:
            if dump[t.name]:
                conn.execute(insert(t), dump[t.name])
        if engine.dialect.name == "postgresql":
            for t in Base.metadata.sorted_tables:
                pk = list(t.primary_key.columns)
                if (len(pk) == 1 and pk[0].autoincrement is True) or (
                    len(pk) == 1 and pk[0].type.python_type is int and t.name != "audit_events"
                ):
                    conn.execute(text(
                        f"SELECT setval(pg_get_serial_sequence('{t.name}', '{pk[0].name}'), "
                        f"COALESCE((SELECT MAX({pk[0].name}) FROM {t.name}), 0) + 1, false)"
                    ))


@pytest.mark.audit_tampered
def test_a_rolled_back_copy_is_caught_and_a_reanchor_accepts_a_real_restore(db: Db) -> None:
    backup = _dump(db.engine)
    assert _cli("checkpoint")[0] == 0
    db.work()
    assert _cli("checkpoint")[0] == 0
    assert _verify()[0] == 0

    _restore(db.engine, backup)  # the copy verifies by itself ...
    assert _verify("--checkpoints", "/nonexistent-empty-folder")[0] == 0
    code, out = _verify()  # ... but not against the signed checkpoints
    assert code == 1
    assert "older copy of the database was restored" in out

    db.work()  # re-grown past the checkpoint's length: a rewritten history
    code, out = _verify()
    assert code == 1
    assert "rewritten or rolled back" in out

    _restore(db.engine, backup)
    code, out = _cli("reanchor", "--reason", "restored the backup of 09:00 after a disk failure")
    assert code == 0, out
    assert json.loads(out)["reason"] == "restored the backup of 09:00 after a disk failure"
    code, out = _verify()
    assert code == 0, out
    assert "precede a re-anchor" in out
    with db.engine.connect() as conn:
        action, detail = conn.execute(
            select(AuditEvent.action, AuditEvent.detail).order_by(AuditEvent.seq.desc()).limit(1)
        ).one()
    assert action == "audit.reanchor"
    assert detail.startswith("restored the backup of 09:00 after a disk failure (by ")
    db.work()
    assert _verify()[0] == 0


@pytest.mark.audit_tampered
def test_an_inserted_admin_cannot_launder_its_work_by_deleting_itself(db: Db) -> None:
    """The forger inserts an admin, uses it through the service (the events are real), then
    deletes the inserted rows: the events' author was never created on the chain."""
    _insert_admin(db)
    from fastapi.testclient import TestClient

    from field_api.main import create_app

    app = create_app(get_settings())
    try:
        with TestClient(app) as http:
            r = http.post("/admin/users", json={"name": "laundered", "role": "admin"},
                          headers={"Authorization": "Bearer fo_forged_token"})
            assert r.status_code == 201, r.text
    finally:
        app.state.engine.dispose()
    db.sql("DELETE FROM api_tokens WHERE prefix = 'fo_forg'")
    db.sql("DELETE FROM users WHERE name = 'intruder'")
    code, out = _verify()
    assert code == 1
    assert "who was never created on the chain" in out


@pytest.mark.audit_tampered
def test_a_checkpoint_never_anchors_a_truncated_chain(db: Db) -> None:
    assert _cli("checkpoint")[0] == 0
    _delete_tail(db, 2)
    code, out = _cli("checkpoint")
    assert code == 1 and "not signing a broken chain" in out
    from field_api.audit import checkpoints as cps
    from field_api.errors import Conflict

    with make_session_factory(db.engine).begin() as session, pytest.raises(
        Conflict, match="no longer has the hash of the last checkpoint"
    ):
        cps.write_checkpoint(session, get_settings())
    assert len(list(db.checkpoints.iterdir())) == 1


@pytest.mark.audit_tampered
def test_reanchor_refuses_a_tampered_chain(db: Db) -> None:
    _edit_row(db)
    code, out = _cli("reanchor", "--reason", "trying to launder an edit")
    assert code == 2
    assert "does not verify" in out


@pytest.mark.audit_tampered
def test_a_forged_or_edited_checkpoint_is_reported(db: Db) -> None:
    assert _cli("checkpoint")[0] == 0
    name = sorted(db.checkpoints.iterdir())[0]
    envelope = json.loads(name.read_text())
    envelope["record"]["count"] = 1
    forged = db.checkpoints / "99990101T000000000000Z-000000000001.json"
    forged.write_text(json.dumps(envelope))
    code, out = _verify()
    assert code == 1
    assert "is not signed by the checkpoint key" in out


def test_verify_with_another_chain_key_fails(db: Db, tmp_path: Path) -> None:
    other = audit_keys.load(Settings(env="test", audit_key_path=tmp_path / "other.key",
                                     audit_checkpoint_key_path=tmp_path / "other-cp.key"))
    from field_api.audit import service

    with make_session_factory(db.engine)() as session:
        problems = service.verify(session, keys=other)
        assert problems and "not the configured audit chain key" in problems[0].message
        assert service.verify(session) == []
