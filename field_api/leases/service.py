"""Claiming background work so any number of processes can resume it after a crash.

A lease is a row ``(kind, key, owner, expires_at)``. A process claims an item by writing its
own owner id and an expiry; another process may take the item only when the lease has expired
or its owner is a process of this host that no longer runs (so a restarted server resumes its
predecessor's work at once instead of waiting for the expiry). On PostgreSQL the candidate rows
are read ``FOR UPDATE SKIP LOCKED``, so parallel claimers take different items instead of
queueing on one; on SQLite the write transaction (``BEGIN IMMEDIATE``) serialises claimers.

Claims run in the caller's transaction: commit it before doing the work, release the lease in
the transaction that records the result (after :func:`renew` confirms it is still held).

Owners are process identities (:mod:`field_api.common.owners`): ``host/pid/start``, optionally
tagged ``#tag``. The same owner string renews its own lease; two threads of one process that
must not share an item claim under different tags.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, delete, select
from sqlalchemy.orm import Session

from field_api.common import clock
from field_api.common.owners import owner_id, owner_is_gone
from field_api.leases.models import Lease

__all__ = [
    "claim",
    "claim_from",
    "claim_many",
    "holder",
    "owner_id",
    "owner_is_gone",
    "purge_expired",
    "release",
    "renew",
]


def _is_free(lease: Lease | None, owner: str, now: datetime) -> bool:
    if lease is None or lease.owner == owner:
        return True
    return lease.expires_at <= now or owner_is_gone(lease.owner)


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
    skip_own: bool = False,
) -> list[str]:
    """Take the leases of the free items among ``keys`` (at most ``limit``), in order.

    Items this owner already holds are renewed and returned too, unless ``skip_own``.
    """
    owner = owner or owner_id()
    wanted = list(dict.fromkeys(keys))
    if not wanted or (limit is not None and limit <= 0):
        return []
    query = (
        select(Lease)
        .where(Lease.kind == kind, Lease.key.in_(wanted))
        .execution_options(populate_existing=True)
    )
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
    now = clock.now()
    expires = now + timedelta(seconds=ttl_s)
    taken: list[str] = []
    for key in wanted:
        if limit is not None and len(taken) >= limit:
            break
        lease = held.get(key)
        if not _is_free(lease, owner, now) or (
            skip_own and lease is not None and lease.owner == owner
        ):
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


def _insert(session: Session, kind: str, key: str, owner: str, expires: datetime) -> bool:
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
    candidates: Select[Any],
    *,
    ttl_s: float,
    limit: int,
    owner: str | None = None,
    page_size: int | None = None,
) -> list[str]:
    """Claim up to ``limit`` new items whose keys the ``candidates`` query yields (in order).

    Items this owner already holds are skipped: a claimer looping on ``claim_from`` gets each
    item once.

    The candidates are read a page at a time until ``limit`` items are taken or the query is
    exhausted, so items leased by live owners at the head of the queue do not hide free ones
    behind them. On PostgreSQL each page's rows are locked ``FOR UPDATE SKIP LOCKED`` for the
    claim's transaction, so two claimers never see the same row at the same time.
    """
    if limit <= 0:
        return []
    owner = owner or owner_id()
    page = page_size or max(limit * 4, 32)
    seen: set[str] = set()
    taken: list[str] = []
    offset = 0
    while len(taken) < limit:
        query = candidates.limit(page).offset(offset)
        if _lock_rows(session):
            query = query.with_for_update(skip_locked=True)
        keys = [str(k) for k in session.execute(query).scalars()]
        fresh = [k for k in keys if k not in seen]
        seen.update(fresh)
        taken += claim_many(
            session, kind, fresh, ttl_s=ttl_s, owner=owner, limit=limit - len(taken), skip_own=True
        )
        if len(keys) < page:
            break
        offset += page
    return taken


def renew(session: Session, kind: str, key: str, *, ttl_s: float, owner: str | None = None) -> bool:
    """Extend a lease this owner still holds; False when it was released or taken over.

    Unlike :func:`claim`, a free item is not taken: the caller learns that its claim is lost
    (it outlived its expiry and another process took the item) and should drop its work.
    """
    owner = owner or owner_id()
    query = (
        select(Lease)
        .where(Lease.kind == kind, Lease.key == key)
        .execution_options(populate_existing=True)
    )
    if _lock_rows(session):
        query = query.with_for_update()
    lease = session.execute(query).scalar_one_or_none()
    if lease is None or lease.owner != owner:
        return False
    lease.expires_at = clock.now() + timedelta(seconds=ttl_s)
    session.flush()
    return True


def release(session: Session, kind: str, key: str, *, owner: str | None = None) -> None:
    """Drop the lease (work done), if this owner still holds it."""
    owner = owner or owner_id()
    session.execute(
        delete(Lease)
        .where(Lease.kind == kind, Lease.key == key, Lease.owner == owner)
        .execution_options(synchronize_session=False)
    )


def holder(session: Session, kind: str, key: str) -> Lease | None:
    """The current lease row of an item, expired or not."""
    return session.get(Lease, (kind, key), populate_existing=True)


def purge_expired(session: Session, *, older_than_s: float = 3600.0) -> int:
    """Delete leases that expired more than ``older_than_s`` ago (crashed owners' leftovers)."""
    cutoff = clock.now() - timedelta(seconds=older_than_s)
    result = session.execute(
        delete(Lease).where(Lease.expires_at < cutoff).execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)
