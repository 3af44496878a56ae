"""Appending to and verifying the audit chain.

Appends are serialised: on PostgreSQL by a transaction-scoped advisory lock, on SQLite by the
write lock that ``BEGIN IMMEDIATE`` takes (see ``field_api.db``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, func, select, text
from sqlalchemy.orm import Session

from field_api import clock
from field_api.audit.models import AuditEvent, AuditHead
from field_api.audit.rules import GENESIS, link_hash, row_hash
from field_api.auth.rules import Principal
from field_api.db import Base
from field_api.errors import NotFound

ADVISORY_LOCK_KEY = 0x46_4F_41_55  # "FOAU"


@dataclass(frozen=True)
class Problem:
    seq: int | None
    message: str


def _table_of(entity_type: str) -> Table:
    table = Base.metadata.tables.get(entity_type)
    if table is None:
        raise NotFound(f"no audited table named {entity_type}")
    return table


def current_row_values(session: Session, entity_type: str, entity_id: str) -> dict[str, Any] | None:
    """Read a row as stored (the same normalisation at append and at verify time)."""
    table = _table_of(entity_type)
    pk = list(table.primary_key.columns)[0]
    key: Any = int(entity_id) if pk.type.python_type is int else entity_id
    row = session.execute(select(table).where(pk == key)).mappings().first()
    return dict(row) if row is not None else None


def _lock(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": ADVISORY_LOCK_KEY})


def _event_fields(event: AuditEvent) -> Mapping[str, Any]:
    return {
        "seq": event.seq,
        "at": event.at,
        "actor_id": event.actor_id,
        "actor_role": event.actor_role,
        "action": event.action,
        "entity_type": event.entity_type,
        "entity_id": event.entity_id,
        "row_hash": event.row_hash,
    }


def record(
    session: Session,
    *,
    actor: Principal | None,
    action: str,
    entity: Any,
    deleted: bool = False,
) -> AuditEvent:
    """Append an event for a written row (flushed first) carrying the row's content hash."""
    session.flush()
    table: Table = entity.__table__
    pk_col = list(table.primary_key.columns)[0]
    entity_id = str(getattr(entity, pk_col.key))
    values = None if deleted else current_row_values(session, table.name, entity_id)
    return append(
        session,
        actor=actor,
        action=action,
        entity_type=table.name,
        entity_id=entity_id,
        content_hash=row_hash(values) if values is not None else None,
    )


def append(
    session: Session,
    *,
    actor: Principal | None,
    action: str,
    entity_type: str,
    entity_id: str,
    content_hash: str | None,
) -> AuditEvent:
    _lock(session)
    head = session.execute(select(AuditHead).where(AuditHead.id == 1)).scalar_one_or_none()
    if head is None:
        head = AuditHead(id=1, count=0, last_hash=GENESIS)
        session.add(head)
    event = AuditEvent(
        seq=head.count + 1,
        at=clock.now(),
        actor_id=actor.user_id if actor else None,
        actor_role=actor.role.value if actor else "system",
        action=action,
        entity_type=entity_type,
        entity_id=entity_id,
        row_hash=content_hash,
        prev_hash=head.last_hash,
        hash="",
    )
    event.hash = link_hash(head.last_hash, _event_fields(event))
    session.add(event)
    head.count = event.seq
    head.last_hash = event.hash
    session.flush()
    return event


def verify(session: Session) -> list[Problem]:
    """Check the chain, its head and every audited row; the first problem comes first."""
    problems: list[Problem] = []
    prev = GENESIS
    expected_seq = 1
    latest: dict[tuple[str, str], str | None] = {}
    for event in session.execute(select(AuditEvent).order_by(AuditEvent.seq)).scalars():
        if event.seq != expected_seq:
            problems.append(
                Problem(event.seq, f"event {expected_seq} is missing (found {event.seq})")
            )
            return problems
        if event.prev_hash != prev:
            problems.append(
                Problem(event.seq, f"event {event.seq} does not chain to its predecessor")
            )
            return problems
        if link_hash(prev, _event_fields(event)) != event.hash:
            problems.append(Problem(event.seq, f"event {event.seq} was altered (hash mismatch)"))
            return problems
        prev = event.hash
        expected_seq += 1
        latest[(event.entity_type, event.entity_id)] = event.row_hash
    count = expected_seq - 1
    head = session.execute(select(AuditHead).where(AuditHead.id == 1)).scalar_one_or_none()
    head_count, head_hash = (head.count, head.last_hash) if head else (0, GENESIS)
    if head_count != count or head_hash != prev:
        problems.append(
            Problem(
                None,
                f"chain head says {head_count} events ending {head_hash[:12]}, "
                f"the chain has {count} ending {prev[:12]}: events were deleted or added",
            )
        )
        return problems
    for (entity_type, entity_id), expected in latest.items():
        values = current_row_values(session, entity_type, entity_id)
        actual = row_hash(values) if values is not None else None
        if actual != expected:
            what = "deleted" if actual is None else "edited"
            problems.append(
                Problem(None, f"{entity_type} row {entity_id} was {what} outside the service")
            )
            return problems
    return problems


def event_count(session: Session) -> int:
    return int(session.execute(select(func.count()).select_from(AuditEvent)).scalar_one())
