"""Appending to and verifying the audit chain.

Every row of an audited table (a model with the :class:`field_api.db.Audited` marker) is
covered: each write appends an event carrying the row's content hash, keyed into the chain
(see ``rules``). Services name the event with :func:`record`; a write that reaches the
database without one (a flush of an audited row that no ``record`` call followed) is recorded
by the session guard before the transaction commits, as ``<table>.insert|update|delete`` by the
request's actor, so the chain never reports normal use as "edited outside the service". Bulk
``UPDATE``/``DELETE``/``INSERT`` statements on audited tables through the ORM are refused: they
would bypass the per-row events (unless marked :data:`CALLER_RECORDS`, for a conditional update
whose caller records each row it touched).

:func:`verify` then checks the links (HMAC), the head, that every audited row has an event
with its current hash and that every recorded row still exists — so an edited row, an inserted
row (a forged admin and token), a deleted row and an edited event are each reported.

Appends are serialised: on PostgreSQL by a transaction-scoped advisory lock, on SQLite by the
write lock of ``BEGIN IMMEDIATE`` (see ``field_api.db``). :func:`record` only hashes the row and
queues the event; the queue is linked into the chain when the transaction commits (the session's
``before_commit``), so the chain's lock is held for the commit alone, never while a request still
renders a PDF, stores a file or waits for a thread: concurrent writers queue for milliseconds, not
for the length of each other's requests. A rolled-back transaction (or savepoint) drops its queued
events with its rows; a transaction that reads the chain itself sees its own events (the queue is
linked before the read).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, event, func, inspect, select, text
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction, UOWTransaction
from sqlalchemy.sql.elements import ClauseElement
from sqlalchemy.sql.util import find_tables

from field_api.audit import keys as audit_keys
from field_api.audit.models import AuditEvent, AuditHead
from field_api.audit.rules import GENESIS, link_hash, row_hash, same_hash
from field_api.common import clock
from field_api.common.actors import Principal
from field_api.config import Settings
from field_api.db import Base
from field_api.errors import NotFound

ADVISORY_LOCK_KEY = 0x46_4F_41_55  # "FOAU"
ACTOR_KEY = "audit.actor"
_PENDING_KEY = "audit.unrecorded"
_QUEUE_KEY = "audit.queue"
_SAVEPOINTS_KEY = "audit.savepoints"


class AuditBypass(RuntimeError):
    """A bulk statement tried to write an audited table around the per-row events."""


@dataclass(frozen=True)
class Problem:
    seq: int | None
    message: str


def audited_tables() -> list[Table]:
    """Every table whose rows the chain must cover, in a stable order."""
    tables = {
        mapper.local_table.name: mapper.local_table
        for mapper in Base.registry.mappers
        if getattr(mapper.class_, "__audited__", False) and isinstance(mapper.local_table, Table)
    }
    return [tables[name] for name in sorted(tables)]


def _is_audited(obj: Any) -> bool:
    return bool(getattr(type(obj), "__audited__", False))


def _table_of(entity_type: str) -> Table:
    table = Base.metadata.tables.get(entity_type)
    if table is None:
        raise NotFound(
            f"no audited table named {entity_type}",
            code="audit.unknown_table",
            params={"entity_type": entity_type},
        )
    return table


def _pk_column(table: Table) -> Any:
    return list(table.primary_key.columns)[0]


def _key_of(table: Table, entity_id: str) -> Any:
    pk = _pk_column(table)
    return int(entity_id) if pk.type.python_type is int else entity_id


def current_row_values(session: Session, entity_type: str, entity_id: str) -> dict[str, Any] | None:
    """Read a row as stored (the same normalisation at append and at verify time)."""
    table = _table_of(entity_type)
    pk = _pk_column(table)
    row = (
        session.execute(select(table).where(pk == _key_of(table, entity_id))).mappings().first()
    )
    return dict(row) if row is not None else None


def _lock(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": ADVISORY_LOCK_KEY})


def _event_fields(event: AuditEvent) -> Mapping[str, Any]:
    fields: dict[str, Any] = {
        "seq": event.seq,
        "at": event.at,
        "actor_id": event.actor_id,
        "actor_role": event.actor_role,
        "action": event.action,
        "entity_type": event.entity_type,
        "entity_id": event.entity_id,
        "row_hash": event.row_hash,
    }
    if event.key_id is not None:  # keyed events also bind the key's name and the detail
        fields["key_id"] = event.key_id
        fields["detail"] = event.detail
    return fields


def _identity(entity: Any) -> tuple[str, str]:
    table: Table = entity.__table__
    return table.name, str(getattr(entity, _pk_column(table).key))


def _unrecorded(session: Session) -> dict[tuple[str, str], bool]:
    pending: dict[tuple[str, str], bool] | None = session.info.get(_PENDING_KEY)
    if pending is None:
        pending = {}
        session.info[_PENDING_KEY] = pending
    return pending


def set_actor(session: Session, actor: Principal | None) -> None:
    """The principal a request acts as: the author of events the guard records."""
    session.info[ACTOR_KEY] = actor


@dataclass(frozen=True)
class QueuedEvent:
    """An event :func:`record` named, linked into the chain when its transaction commits."""

    actor: Principal | None
    action: str
    entity_type: str
    entity_id: str
    content_hash: str | None
    detail: str | None
    at: datetime


def _queue(session: Session) -> list[QueuedEvent]:
    queue: list[QueuedEvent] | None = session.info.get(_QUEUE_KEY)
    if queue is None:
        queue = []
        session.info[_QUEUE_KEY] = queue
    return queue


def record(
    session: Session,
    *,
    actor: Principal | None,
    action: str,
    entity: Any,
    deleted: bool = False,
    detail: str | None = None,
) -> QueuedEvent:
    """Name the event of a written row (flushed first): its content hash is taken now, its
    place in the chain at commit (:func:`append_queued`)."""
    session.flush()
    table_name, entity_id = _identity(entity)
    values = None if deleted else current_row_values(session, table_name, entity_id)
    _unrecorded(session).pop((table_name, entity_id), None)
    queued = QueuedEvent(
        actor=actor,
        action=action,
        entity_type=table_name,
        entity_id=entity_id,
        content_hash=row_hash(values) if values is not None else None,
        detail=detail,
        at=clock.now(),
    )
    _queue(session).append(queued)
    return queued


def append_queued(session: Session) -> int:
    """Link the events queued by :func:`record` into the chain, in the order they were named
    (under the chain's lock, held until the transaction ends); returns how many."""
    queue: list[QueuedEvent] = session.info.pop(_QUEUE_KEY, None) or []
    _link(session, queue)
    return len(queue)


def append(
    session: Session,
    *,
    actor: Principal | None,
    action: str,
    entity_type: str,
    entity_id: str,
    content_hash: str | None,
    detail: str | None = None,
    keys: audit_keys.AuditKeys | None = None,
    at: datetime | None = None,
) -> AuditEvent:
    """Link one event into the chain now (taking the chain's lock for the transaction)."""
    queued = QueuedEvent(
        actor=actor, action=action, entity_type=entity_type, entity_id=entity_id,
        content_hash=content_hash, detail=detail, at=at if at is not None else clock.now(),
    )
    [linked] = _link(session, [queued], keys=keys)
    return linked


def _link(
    session: Session, events: Sequence[QueuedEvent], *, keys: audit_keys.AuditKeys | None = None
) -> list[AuditEvent]:
    """Link ``events`` into the chain in order: the lock taken and the head read once, the
    events written in one batch and the head moved once — the chain's lock is held for a few
    statements whatever the number of events a transaction recorded."""
    if not events:
        return []
    keys = keys or audit_keys.current()
    _lock(session)
    head = session.execute(select(AuditHead).where(AuditHead.id == 1)).scalar_one_or_none()
    if head is None:
        head = AuditHead(id=1, count=0, last_hash=GENESIS)
        session.add(head)
    seq, last_hash = head.count, head.last_hash
    linked: list[AuditEvent] = []
    for queued in events:
        seq += 1
        actor = queued.actor
        event = AuditEvent(
            seq=seq,
            at=queued.at,
            actor_id=actor.user_id if actor else None,
            actor_role=actor.role.value if actor else "system",
            action=queued.action,
            entity_type=queued.entity_type,
            entity_id=queued.entity_id,
            row_hash=queued.content_hash,
            key_id=keys.chain_key_id,
            detail=queued.detail,
            prev_hash=last_hash,
            hash="",
        )
        event.hash = last_hash = link_hash(keys.chain_key, last_hash, _event_fields(event))
        linked.append(event)
    session.add_all(linked)
    head.count, head.last_hash = seq, last_hash
    session.flush()
    return linked


def record_schema_change(
    session: Session, *, tables: Iterable[str], revision: str, settings: Settings
) -> int:
    """A migration changed the columns of audited ``tables``: append one event per existing row
    (actor: the system, action ``schema.<revision>``) carrying the row's content hash over the
    columns the database has now, so ``verify`` tells a migration from a forger. Returns how
    many events were added (none, and no key read, for empty tables).

    Called from a migration, whose database may be behind the models: only the columns that
    exist are read, with the models' types (the same values ``verify`` reads later).
    """
    existing = inspect(session.connection())
    events: list[QueuedEvent] = []
    for name in tables:
        table = _table_of(name)
        present = {c["name"] for c in existing.get_columns(name)}
        columns = [c for c in table.columns if c.name in present]
        pk = _pk_column(table)
        for row in session.execute(select(*columns).order_by(pk)).mappings().all():
            events.append(QueuedEvent(
                actor=None,
                action=f"schema.{revision}",
                entity_type=name,
                entity_id=str(row[pk.name]),
                content_hash=row_hash(dict(row)),
                detail=f"migration {revision} changed the columns of {name}",
                at=clock.now(),
            ))
    if events:
        _link(session, events, keys=audit_keys.load(settings))
    return len(events)


# ----------------------------------------------------------------------------- the guard


def _after_flush(session: Session, _flush: UOWTransaction) -> None:
    pending = _unrecorded(session)
    for obj in session.new:
        if _is_audited(obj):
            pending[_identity(obj)] = False
    for obj in session.dirty:
        if _is_audited(obj) and session.is_modified(obj, include_collections=False):
            pending[_identity(obj)] = False
    for obj in session.deleted:
        if _is_audited(obj):
            pending[_identity(obj)] = True


def record_unrecorded(session: Session) -> int:
    """Record every audited write of this transaction that no service call named; returns
    how many events were added."""
    session.flush()
    pending = _unrecorded(session)
    actor = session.info.get(ACTOR_KEY)
    added = 0
    while pending:
        batch: list[QueuedEvent] = []
        while pending:
            (table_name, entity_id), _deleted = pending.popitem()
            values = current_row_values(session, table_name, entity_id)
            batch.append(QueuedEvent(
                actor=actor,
                action=f"{table_name}.delete" if values is None else f"{table_name}.write",
                entity_type=table_name,
                entity_id=entity_id,
                content_hash=row_hash(values) if values is not None else None,
                detail=None,
                at=clock.now(),
            ))
        _link(session, batch)
        added += len(batch)
    return added


def _before_commit(session: Session) -> None:
    if session.info.get(_QUEUE_KEY):
        append_queued(session)
    if session.info.get(_PENDING_KEY) or session.new or session.dirty or session.deleted:
        record_unrecorded(session)


def _after_transaction_create(session: Session, transaction: SessionTransaction) -> None:
    if transaction.nested:  # where this savepoint's queued events begin
        session.info.setdefault(_SAVEPOINTS_KEY, {})[id(transaction)] = len(_queue(session))


def _after_rollback(session: Session, previous: SessionTransaction) -> None:
    # A savepoint's rollback keeps what the enclosing transaction still has to record; a
    # row it rolled back is recorded as absent, which verify accepts. Events it queued go.
    if not previous.nested:
        session.info.pop(_PENDING_KEY, None)
        session.info.pop(_QUEUE_KEY, None)
        session.info.pop(_SAVEPOINTS_KEY, None)
        return
    start = session.info.get(_SAVEPOINTS_KEY, {}).pop(id(previous), None)
    if start is not None:
        del _queue(session)[start:]


# Execution option of a conditional UPDATE whose caller records every row it touched (the
# stock counts' atomic "take if enough" statements).
CALLER_RECORDS = {"audit": "caller-records"}


_CHAIN_TABLES = frozenset({"audit_events", "audit_head"})


def _link_before_reading_chain(state: ORMExecuteState) -> None:
    # A transaction reading the chain sees its own events: the queue is linked first (taking
    # the chain's lock, as a commit would). Services do not read the chain mid-request.
    if not state.is_select or not state.session.info.get(_QUEUE_KEY):
        return
    statement = state.statement
    if not isinstance(statement, ClauseElement):
        return
    if {t.name for t in find_tables(statement)} & _CHAIN_TABLES:
        append_queued(state.session)


def _refuse_bulk_writes(state: ORMExecuteState) -> None:
    if not (state.is_update or state.is_delete or state.is_insert):
        return
    if state.execution_options.get("audit") == CALLER_RECORDS["audit"]:
        return
    mapper = state.bind_mapper
    if mapper is not None and getattr(mapper.class_, "__audited__", False):
        raise AuditBypass(
            f"bulk {state.statement.__class__.__name__.lower()} on audited table "
            f"{mapper.local_table}: load the rows and change them through the session"
        )


_installed = False


def install_guard() -> None:
    """Register the session events that keep every audited write on the chain (idempotent)."""
    global _installed
    if _installed:
        return
    event.listen(Session, "after_flush", _after_flush)
    event.listen(Session, "before_commit", _before_commit)
    event.listen(Session, "after_soft_rollback", _after_rollback)
    event.listen(Session, "after_transaction_create", _after_transaction_create)
    event.listen(Session, "do_orm_execute", _refuse_bulk_writes)
    event.listen(Session, "do_orm_execute", _link_before_reading_chain)
    _installed = True


# ----------------------------------------------------------------------------- verification


def _chain_problems(
    events: Iterable[AuditEvent],
    keys: audit_keys.AuditKeys,
    *,
    after_seq: int = 0,
    after_hash: str = GENESIS,
    check_authors: bool = True,
) -> tuple[list[Problem], int, str, dict[tuple[str, str], str | None]]:
    """Walk events (in order, starting right after ``after_seq``/``after_hash``).

    ``check_authors``: every event's author must be a user created earlier on the chain — an
    account inserted around the service cannot act, even if its rows are deleted afterwards.
    """
    problems: list[Problem] = []
    prev = after_hash
    expected_seq = after_seq + 1
    latest: dict[tuple[str, str], str | None] = {}
    users_on_chain: set[str] = set()
    for ev in events:
        if ev.seq != expected_seq:
            problems.append(Problem(ev.seq, f"event {expected_seq} is missing (found {ev.seq})"))
            break
        if ev.prev_hash != prev:
            problems.append(Problem(ev.seq, f"event {ev.seq} does not chain to its predecessor"))
            break
        if ev.key_id is None:
            problems.append(
                Problem(
                    ev.seq,
                    f"event {ev.seq} carries no key: it was forged, or written before the chain "
                    "was keyed (such a database cannot be verified; see the README)",
                )
            )
            break
        if ev.key_id != keys.chain_key_id:
            problems.append(
                Problem(
                    ev.seq,
                    f"event {ev.seq} was keyed with key {ev.key_id}, not the configured "
                    f"audit chain key {keys.chain_key_id}",
                )
            )
            break
        key: bytes | None = keys.chain_key
        if not same_hash(link_hash(key, prev, _event_fields(ev)), ev.hash):
            problems.append(Problem(ev.seq, f"event {ev.seq} was altered (hash mismatch)"))
            break
        if check_authors and ev.actor_id is not None and str(ev.actor_id) not in users_on_chain:
            problems.append(
                Problem(
                    ev.seq,
                    f"event {ev.seq} is authored by user {ev.actor_id}, who was never created on "
                    "the chain (an account inserted around the service)",
                )
            )
            break
        if ev.entity_type == "users" and ev.row_hash is not None:
            users_on_chain.add(ev.entity_id)
        prev = ev.hash
        expected_seq += 1
        latest[(ev.entity_type, ev.entity_id)] = ev.row_hash
    return problems, expected_seq - 1, prev, latest


def links_since(
    session: Session, *, seq: int, last_hash: str, upto: tuple[int, str] | None = None
) -> list[Problem]:
    """Check the links after event ``seq`` (whose hash must be ``last_hash``) up to the head
    (``upto``: the head already read, the one a checkpoint then signs): the cheap check before
    anchoring the head in a new checkpoint."""
    keys = audit_keys.current()
    if seq > 0:
        stored = hashes_at(session, [seq]).get(seq)
        if stored is None or not same_hash(stored, last_hash):
            return [
                Problem(
                    seq,
                    f"event {seq} no longer has the hash of the last checkpoint: the chain was "
                    "truncated, rewritten or rolled back",
                )
            ]
    # The head first: a writer committing meanwhile adds events past it (and moves it), which
    # this check leaves for the next one, instead of reading a head newer than its events.
    head_count, head_hash = upto if upto is not None else head(session)
    events = session.execute(
        select(AuditEvent)
        .where(AuditEvent.seq > seq, AuditEvent.seq <= head_count)
        .order_by(AuditEvent.seq)
    ).scalars()
    problems, count, last, _ = _chain_problems(
        events, keys, after_seq=seq, after_hash=last_hash, check_authors=False
    )
    if problems:
        return problems
    if (head_count, head_hash) != (count, last):
        return [Problem(None, f"chain head says {head_count} events, the chain has {count}")]
    return []


def verify(session: Session, *, keys: audit_keys.AuditKeys | None = None) -> list[Problem]:
    """Check the chain, its head and every audited row; the first problem comes first."""
    keys = keys or audit_keys.current()
    events = session.execute(select(AuditEvent).order_by(AuditEvent.seq)).scalars()
    problems, count, last, latest = _chain_problems(events, keys)
    if problems:
        return problems
    head = session.execute(select(AuditHead).where(AuditHead.id == 1)).scalar_one_or_none()
    head_count, head_hash = (head.count, head.last_hash) if head else (0, GENESIS)
    if head_count != count or head_hash != last:
        return [
            Problem(
                None,
                f"chain head says {head_count} events ending {head_hash[:12]}, "
                f"the chain has {count} ending {last[:12]}: events were deleted or added",
            )
        ]
    return _row_problems(session, latest)


def _row_problems(
    session: Session, latest: Mapping[tuple[str, str], str | None]
) -> list[Problem]:
    audited = {t.name: t for t in audited_tables()}
    seen: set[tuple[str, str]] = set()
    for name, table in audited.items():
        pk = _pk_column(table)
        for row in session.execute(select(table).order_by(pk)).mappings():
            entity_id = str(row[pk.key])
            seen.add((name, entity_id))
            expected = latest.get((name, entity_id))
            if expected is None:
                if (name, entity_id) in latest:
                    return [
                        Problem(None, f"{name} row {entity_id} was re-inserted outside the service")
                    ]
                return [
                    Problem(
                        None,
                        f"{name} row {entity_id} has no audit event: it was inserted outside "
                        "the service",
                    )
                ]
            if not same_hash(row_hash(dict(row)), expected):
                return [Problem(None, f"{name} row {entity_id} was edited outside the service")]
    for (name, entity_id), expected in latest.items():
        if expected is None or (name, entity_id) in seen:
            continue
        if name in audited:
            return [Problem(None, f"{name} row {entity_id} was deleted outside the service")]
        values = current_row_values(session, name, entity_id)
        if values is None:
            return [Problem(None, f"{name} row {entity_id} was deleted outside the service")]
        if not same_hash(row_hash(values), expected):
            return [Problem(None, f"{name} row {entity_id} was edited outside the service")]
    return []


def event_count(session: Session) -> int:
    return int(session.execute(select(func.count()).select_from(AuditEvent)).scalar_one())


def head(session: Session) -> tuple[int, str]:
    """The chain's length and last hash as the head row states them."""
    row = session.execute(select(AuditHead).where(AuditHead.id == 1)).scalar_one_or_none()
    return (row.count, row.last_hash) if row else (0, GENESIS)


def hashes_at(session: Session, seqs: Iterable[int]) -> dict[int, str]:
    """The stored hash of each of the given events that exists."""
    wanted = sorted(set(seqs))
    if not wanted:
        return {}
    rows = session.execute(
        select(AuditEvent.seq, AuditEvent.hash).where(AuditEvent.seq.in_(wanted))
    ).all()
    return {int(seq): h for seq, h in rows}
