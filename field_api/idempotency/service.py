"""Use cases of idempotency records: claim a key, store a redacted answer, reclaim, purge.

What a record keeps, and why nothing in it is secret:

- ``scope``: HMAC-SHA256 (``token_pepper``) of the request's ``Authorization`` header, so the
  table cannot be used to test guessed tokens offline (a bare sha256 could be).
- ``request_hash``: HMAC-SHA256 of method, path and body (the body may carry personal data).
- the response: a JSON body walked by :func:`redact_json`: secret fields (API tokens, webhook
  secrets, tracking tokens, one-time codes) become ``null``, tracking links lose their token,
  personal fields (customer name, phone, ID number) are masked. The names of the fields changed
  are kept in ``redacted`` and sent back on a replay as ``Idempotency-Redacted``. A body that is
  not JSON is not kept at all (replayed empty, ``Idempotency-Redacted: body``).

A record expires ``idempotency_ttl_hours`` after its answer (``expires_at``): an expired record
counts as absent (the next request with that key executes afresh) and :func:`purge_expired`
deletes it. While a request runs, the record carries its ``owner`` (``leases.owner_id()``) and a
lease (``idempotency_lease_s``); a retry takes the key over when that lease has expired or the
owner is a dead process of this host, so a crash never leaves a key answering 409 forever.

Functions take the session first and flush, never commit (the middleware owns the transaction).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from field_api.common import clock
from field_api.idempotency.models import IdempotencyRecord
from field_api.leases.service import owner_id, owner_is_gone
from field_api.privacy import (
    mask_id_number,
    mask_name,
    mask_phone,
    redact_secret_paths,
)

# ---------------------------------------------------------------------------------- hashing


def key_scope(authorization: str, *, pepper: str) -> str:
    """The scope of a key: a keyed hash of the caller's credentials (never the token)."""
    message = b"idempotency-scope\x00" + authorization.encode("latin-1", "replace")
    return hmac.new(pepper.encode(), message, hashlib.sha256).hexdigest()


def request_hash(method: str, path: str, body: bytes, *, pepper: str) -> str:
    """A keyed hash of the request: same key + different request is a conflict."""
    message = b"idempotency-request\x00" + method.encode() + b" " + path.encode() + b"\n" + body
    return hmac.new(pepper.encode(), message, hashlib.sha256).hexdigest()


# -------------------------------------------------------------------------------- redaction

# Fields whose value is a secret the response shows once: removed (set to null).
SECRET_FIELDS = frozenset(
    {
        "token",  # POST /admin/users, tokens: the raw API token; tracking links: the token
        "secret",  # POST /webhooks/subscriptions: the signing secret
        "otp",
        "one_time_code",
        "password",
        "api_key",
        "access_token",
        "refresh_token",
    }
)
SECRET_SUFFIXES = ("_token", "_secret")

# Fields holding a customer's personal data: masked the way lists and exports mask them.
PERSONAL_FIELDS: dict[str, Callable[[str], str]] = {
    "customer_name": mask_name,
    "customer_phone": mask_phone,
    "customer_id_number": mask_id_number,
    "phone": mask_phone,
    "id_number": mask_id_number,
}
# Inside an object named ``customer`` (a contract's), ``name`` is the customer's name.
CUSTOMER_OBJECTS = frozenset({"customer"})


def _is_secret_field(name: str) -> bool:
    return name in SECRET_FIELDS or name.endswith(SECRET_SUFFIXES)


def redact_json(value: Any, changed: set[str] | None = None, *, parent: str = "") -> Any:
    """A copy of a decoded JSON value with secrets removed and personal data masked.

    The names of the fields that were changed are added to ``changed``.
    """
    seen = changed if changed is not None else set()
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for name, item in value.items():
            key = str(name)
            if _is_secret_field(key) and item is not None:
                out[key] = None
                seen.add(key)
                continue
            masker = PERSONAL_FIELDS.get(key)
            if masker is None and parent in CUSTOMER_OBJECTS and key == "name":
                masker = mask_name
            if masker is not None and isinstance(item, str) and item:
                masked = masker(item)
                if masked != item:
                    seen.add(key)
                out[key] = masked
                continue
            out[key] = redact_json(item, seen, parent=key)
        return out
    if isinstance(value, list):
        return [redact_json(item, seen, parent=parent) for item in value]
    if isinstance(value, str):
        cleaned = redact_secret_paths(value)
        if cleaned != value:
            seen.add(parent or "body")
        return cleaned
    return value


_JSON_TYPE = re.compile(r"^application/(?:[\w.+-]+\+)?json\b", re.IGNORECASE)


def redact_body(content_type: str | None, body: bytes) -> tuple[bytes, list[str]]:
    """The body to keep for a replay, and the sorted names of the fields redacted."""
    if not body:
        return b"", []
    if not content_type or not _JSON_TYPE.match(content_type):
        return b"", ["body"]
    try:
        decoded = json.loads(body)
    except ValueError:
        return b"", ["body"]
    changed: set[str] = set()
    cleaned = redact_json(decoded, changed)
    if not changed:
        return body, []
    kept = json.dumps(cleaned, ensure_ascii=False, separators=(",", ":")).encode()
    return kept, sorted(changed)


# ------------------------------------------------------------------------------------ claim


class Outcome(StrEnum):
    execute = "execute"  # this request runs: the key is claimed for it
    replay = "replay"  # the stored answer is sent back
    conflict = "conflict"  # same key, different request
    in_progress = "in_progress"  # a live request holds the key


@dataclass(frozen=True)
class Claim:
    """What to do with a request carrying an Idempotency-Key."""

    outcome: Outcome
    record_id: int | None = None
    attempt: int = 0
    status_code: int | None = None
    content_type: str | None = None
    body: bytes = b""
    redacted: tuple[str, ...] = ()
    retry_after_s: int = 1


def _find(session: Session, scope: str, key: str) -> IdempotencyRecord | None:
    return session.execute(
        select(IdempotencyRecord)
        .where(IdempotencyRecord.scope == scope, IdempotencyRecord.key == key)
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()


def _insert(session: Session, values: dict[str, Any]) -> int | None:
    """Insert a record unless a concurrent request inserted the same key first."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        result = session.execute(
            pg_insert(IdempotencyRecord)
            .values(**values)
            .on_conflict_do_nothing()
            .returning(IdempotencyRecord.id)
        )
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        result = session.execute(
            sqlite_insert(IdempotencyRecord)
            .values(**values)
            .on_conflict_do_nothing()
            .returning(IdempotencyRecord.id)
        )
    found = result.scalar_one_or_none()
    return int(found) if found is not None else None


def _in_progress(record: IdempotencyRecord, now: datetime) -> Claim:
    lease_end = record.lease_expires_at or now
    wait = max(1, math.ceil((lease_end - now).total_seconds()))
    return Claim(Outcome.in_progress, record_id=record.id, retry_after_s=wait)


def _may_take_over(record: IdempotencyRecord, now: datetime) -> bool:
    """An in-progress record whose executor crashed (lease expired, or its process is gone)."""
    if record.lease_expires_at is None or record.lease_expires_at <= now:
        return True
    return record.owner is not None and owner_is_gone(record.owner)


def claim(
    session: Session,
    *,
    scope: str,
    key: str,
    request_hash: str,
    ttl: timedelta,
    lease: timedelta,
    owner: str | None = None,
) -> Claim:
    """Claim ``key`` for this request, or say how to answer (replay, conflict, in progress)."""
    owner = owner or owner_id()
    now = clock.now()
    fresh = {
        "request_hash": request_hash,
        "status_code": None,
        "content_type": None,
        "body": None,
        "redacted": None,
        "owner": owner,
        "lease_expires_at": now + lease,
        "expires_at": now + ttl,
        "created_at": now,
    }
    record = _find(session, scope, key)
    if record is None:
        new_id = _insert(session, {"scope": scope, "key": key, "attempts": 1, **fresh})
        if new_id is not None:
            return Claim(Outcome.execute, record_id=new_id, attempt=1)
        record = _find(session, scope, key)
        if record is None:  # inserted and purged between the two statements: vanishingly rare
            return Claim(Outcome.in_progress)
    expired = record.expires_at <= now
    if not expired:
        if record.request_hash != request_hash:
            return Claim(Outcome.conflict, record_id=record.id)
        if record.status_code is not None:
            return Claim(
                Outcome.replay,
                record_id=record.id,
                status_code=record.status_code,
                content_type=record.content_type,
                body=record.body or b"",
                redacted=tuple(filter(None, (record.redacted or "").split(","))),
            )
        if not _may_take_over(record, now):
            return _in_progress(record, now)
    # An expired record is absent; a crashed executor's key is taken over. Compare-and-set on
    # ``attempts`` so that of two retries taking over at once only one executes.
    record_id, seen = record.id, record.attempts
    result = session.execute(
        update(IdempotencyRecord)
        .where(IdempotencyRecord.id == record_id, IdempotencyRecord.attempts == seen)
        .values(attempts=seen + 1, **fresh)
        .execution_options(synchronize_session=False)
    )
    if int(getattr(result, "rowcount", 0) or 0) != 1:
        session.expire_all()
        again = _find(session, scope, key)
        return _in_progress(again, now) if again is not None else Claim(Outcome.in_progress)
    session.expire_all()
    return Claim(Outcome.execute, record_id=record_id, attempt=seen + 1)


def store(
    session: Session,
    claimed: Claim,
    *,
    status_code: int,
    content_type: str | None,
    body: bytes,
    ttl: timedelta,
) -> bool:
    """Keep the redacted answer of a claimed request; False when the key was taken over."""
    kept, redacted = redact_body(content_type, body)
    result = session.execute(
        update(IdempotencyRecord)
        .where(
            IdempotencyRecord.id == claimed.record_id,
            IdempotencyRecord.attempts == claimed.attempt,
            IdempotencyRecord.status_code.is_(None),
        )
        .values(
            status_code=status_code,
            content_type=content_type,
            body=kept,
            redacted=",".join(redacted) or None,
            owner=None,
            lease_expires_at=None,
            expires_at=clock.now() + ttl,
        )
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0) == 1


def release(session: Session, claimed: Claim) -> None:
    """Forget a claim whose request failed (5xx, crash in the app): a retry runs afresh."""
    session.execute(
        delete(IdempotencyRecord)
        .where(
            IdempotencyRecord.id == claimed.record_id,
            IdempotencyRecord.attempts == claimed.attempt,
            IdempotencyRecord.status_code.is_(None),
        )
        .execution_options(synchronize_session=False)
    )


# ------------------------------------------------------------------------------------ purge


def purge_expired(session: Session) -> int:
    """Delete the records past their ``expires_at``; returns how many.

    A record still in progress is kept while its lease runs (its request is executing).
    Flushes only: the caller commits (the server's periodic maintenance, or the CLI).
    """
    now = clock.now()
    result = session.execute(
        delete(IdempotencyRecord)
        .where(
            IdempotencyRecord.expires_at <= now,
            or_(
                IdempotencyRecord.status_code.is_not(None),
                IdempotencyRecord.lease_expires_at.is_(None),
                IdempotencyRecord.lease_expires_at <= now,
            ),
        )
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)
