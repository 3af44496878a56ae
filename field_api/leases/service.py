"""Claiming background work so any number of processes can resume it after a crash.

A lease is a row ``(kind, key, owner, expires_at)``. A process claims an item by writing its
own owner id and an expiry; another process may take the item only when the lease has expired
or its owner is a process of this host that no longer runs (so a restarted server resumes its
predecessor's work at once instead of waiting for the expiry). On PostgreSQL the candidate rows
are read ``FOR UPDATE SKIP LOCKED``, so parallel claimers take different items instead of
queueing on one; on SQLite the write transaction (``BEGIN IMMEDIATE``) serialises claimers.

Claims run in the caller's transaction: commit it before doing the work, release the lease in
the transaction that records the result.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Iterable
from datetime import timedelta
from functools import lru_cache

from sqlalchemy import Select, delete, select
from sqlalchemy.orm import Session

from field_api import clock
from field_api.leases.models import Lease


def _start_ticks(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), telling reused pids apart."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            stat = fh.read()
    except OSError:
        return None
    # The command name (field 2) may hold spaces; the fields after its ')' are fixed.
    fields = stat.rsplit(")", 1)[1].split()
    return fields[19] if len(fields) > 19 else None


@lru_cache(maxsize=1)
def _host() -> str:
    return socket.gethostname()[:60]


def owner_id() -> str:
    """This process's identity: ``host/pid/start`` (start: boot ticks, or a random nonce)."""
    pid = os.getpid()
    return _owner_for(pid)


@lru_cache(maxsize=8)
def _owner_for(pid: int) -> str:
    start = _start_ticks(pid) or secrets.token_hex(4)
    return f"{_host()}/{pid}/{start}"


def owner_is_gone(owner: str) -> bool:
    """True when ``owner`` is a process of this host that no longer runs."""
    parts = owner.rsplit("/", 2)
    if len(parts) != 3 or parts[0] != _host() or not parts[1].isdigit():
        return False  # another host's process: only its lease expiry can tell
    pid = int(parts[1])
    if pid == os.getpid():
        return owner != owner_id()
    start = _start_ticks(pid)
    return start is None or start != parts[2]


def _is_free(lease: Lease | None, owner: str) -> bool:
    if lease is None or lease.owner == owner:
        return True
    return lease.expires_at <= clock.now() or owner_is_gone(lease.owner)


def _lock_rows(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def claim(session: Session, kind: str, key: str, *, ttl_s: float, owner: str | None = None) -> bool:
    """Take (or renew) the lease on one item; False when another live owner holds it."""
    return bool(claim_many(session, kind, [key], ttl_s=ttl_s, owner=owner))


def claim_many(
    session: Session,
    kind: str,
    keys: Iterable[str],
    *,
    ttl_s: float,
    owner: str | None = None,
    limit: int | None = None,
) -> list[str]:
    """Take the leases of the free items among ``keys`` (at most ``limit``), in order."""
    owner = owner or owner_id()
    wanted = list(dict.fromkeys(keys))
    if not wanted:
        return []
    query = select(Lease).where(Lease.kind == kind, Lease.key.in_(wanted))
    if _lock_rows(session):
        query = query.with_for_update(skip_locked=True)
    held = {row.key: row for row in session.execute(query).scalars()}
    if _lock_rows(session):
        # A lease row another claimer is writing right now was skipped: leave that item alone.
        present = set(
            session.execute(
                select(Lease.key).where(Lease.kind == kind, Lease.key.in_(wanted))
            ).scalars()
        )
        wanted = [k for k in wanted if k in held or k not in present]
    expires = clock.now() + timedelta(seconds=ttl_s)
    taken: list[str] = []
    for key in wanted:
        if limit is not None and len(taken) >= limit:
            break
        lease = held.get(key)
        if not _is_free(lease, owner):
            continue
        if lease is None:
            if not _insert(session, kind, key, owner, expires):
                continue
        else:
            if lease.owner != owner:
                lease.claims += 1
            lease.owner = owner
            lease.expires_at = expires
        taken.append(key)
    session.flush()
    return taken


def _insert(session: Session, kind: str, key: str, owner: str, expires: object) -> bool:
    """Insert a lease row unless a concurrent claimer inserted it first."""
    values = {"kind": kind, "key": key, "owner": owner, "expires_at": expires, "claims": 1}
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        result = session.execute(
            pg_insert(Lease).values(**values).on_conflict_do_nothing().returning(Lease.key)
        )
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        result = session.execute(
            sqlite_insert(Lease).values(**values).on_conflict_do_nothing().returning(Lease.key)
        )
    return result.scalar_one_or_none() is not None


def claim_from(
    session: Session,
    kind: str,
    candidates: Select[tuple[object]],
    *,
    ttl_s: float,
    limit: int,
    owner: str | None = None,
) -> list[str]:
    """Claim up to ``limit`` items whose keys the ``candidates`` query yields (oldest first).

    On PostgreSQL the candidate rows themselves are locked ``FOR UPDATE SKIP LOCKED`` for the
    claim's transaction, so two claimers never see the same row.
    """
    query = candidates.limit(limit * 4)
    if _lock_rows(session):
        query = query.with_for_update(skip_locked=True)
    keys = [str(k) for k in session.execute(query).scalars()]
    return claim_many(session, kind, keys, ttl_s=ttl_s, owner=owner, limit=limit)


def release(session: Session, kind: str, key: str, *, owner: str | None = None) -> None:
    """Drop the lease (work done), if this owner still holds it."""
    owner = owner or owner_id()
    session.execute(
        delete(Lease).where(Lease.kind == kind, Lease.key == key, Lease.owner == owner)
    )


def holder(session: Session, kind: str, key: str) -> Lease | None:
    """The current lease row of an item, expired or not."""
    return session.get(Lease, (kind, key))


def purge_expired(session: Session, *, older_than_s: float = 3600.0) -> int:
    """Delete leases that expired more than ``older_than_s`` ago (crashed owners' leftovers)."""
    cutoff = clock.now() - timedelta(seconds=older_than_s)
    result = session.execute(delete(Lease).where(Lease.expires_at < cutoff))
    return int(getattr(result, "rowcount", 0) or 0)
