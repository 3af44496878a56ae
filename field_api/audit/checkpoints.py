"""Signed checkpoints of the audit chain's head, kept outside the database.

A checkpoint states "at time T the chain had N events ending in hash H", signed with the audit
checkpoint key (Ed25519). Checkpoints are written to an append-only folder — each a new file,
created exclusively and made read-only, never rewritten; with the s3 storage backend, objects
in the bucket that every host shares — at an interval by one process at a
time (the ``audit.checkpoint`` lease) and on demand. Verifying the database against them
catches what the chain alone cannot: a deleted tail (with the head row moved back) and a
restored older copy of the database.

A legitimate restore is acknowledged with :func:`reanchor`: it appends an ``audit.reanchor``
event carrying the reason and writes a *re-anchor* checkpoint; older checkpoints then describe
the replaced history and are no longer compared.

File format (one JSON object per file, name ``<UTC time>-<count>.json``)::

    {"record": {version, kind, count, last_hash, at, reason, key_id}, "signature": <base64>}

The signature covers the record's canonical JSON. The public key is ``<key file>.pub`` beside
the private key and is served at ``GET /audit/checkpoints/public-key``.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy.orm import Session, sessionmaker

from field_api import keyfiles
from field_api.audit import keys as audit_keys
from field_api.audit import service
from field_api.audit.rules import (
    GENESIS,
    ChainPoint,
    Checkpoint,
    CheckpointKind,
    canonical_json,
    checkpoint_payload,
    judge_checkpoints,
)
from field_api.common import clock
from field_api.common.actors import Principal
from field_api.common.s3errors import is_not_found, s3_errors
from field_api.common.storage import S3Store
from field_api.common.storage import store_of as object_store_of
from field_api.config import Settings
from field_api.errors import Conflict
from field_api.leases import service as leases

LEASE_KIND = "audit.checkpoint"
SUFFIX = ".json"
CHECKPOINT_FOLDER = "audit-checkpoints"  # under the store's prefix in a bucket


@dataclass(frozen=True)
class StoredCheckpoint:
    name: str
    envelope: dict[str, Any]


class CheckpointFiles(ABC):
    """Append-only checkpoint files, named ``<UTC time>-<count>.json``: a folder or a bucket."""

    @property
    @abstractmethod
    def where(self) -> str:
        """Where the checkpoints are kept, for messages (no credentials)."""

    @abstractmethod
    def write(self, envelope: dict[str, Any], *, at: datetime) -> str:
        """Create a new file for ``envelope``; never replaces an existing one."""

    @abstractmethod
    def names(self) -> list[str]:
        """Every checkpoint's name, oldest first."""

    @abstractmethod
    def read(self, name: str) -> dict[str, Any]:
        """One checkpoint's envelope; OSError or ValueError when it cannot be read."""

    def load(self, name: str) -> StoredCheckpoint:
        """One checkpoint; an unreadable file gives an empty envelope (no valid signature)."""
        try:
            return StoredCheckpoint(name, self.read(name))
        except (OSError, ValueError):
            return StoredCheckpoint(name, {})

    def all(self) -> list[StoredCheckpoint]:
        return [self.load(name) for name in self.names()]


def _file_name(envelope: dict[str, Any], at: datetime, attempt: int) -> str:
    stamp = at.astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    base = f"{stamp}-{envelope['record']['count']:012d}"
    return base + (f"-{attempt}" if attempt else "") + SUFFIX


def _encoded(envelope: dict[str, Any]) -> bytes:
    return (json.dumps(envelope, sort_keys=True, ensure_ascii=False) + "\n").encode()


def _envelope_of(raw: bytes) -> dict[str, Any]:
    loaded = json.loads(raw.decode("utf-8"))
    if not isinstance(loaded, dict):
        raise ValueError("not a JSON object")
    return loaded


def _name_taken() -> Conflict:
    return Conflict("could not name a new checkpoint file", code="audit.checkpoint_name_taken")


class CheckpointStore(CheckpointFiles):
    """An append-only folder of checkpoint files (the local storage backend)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @property
    def where(self) -> str:
        return str(self.directory)

    def write(self, envelope: dict[str, Any], *, at: datetime) -> str:
        """Create a new file for ``envelope``; never replaces an existing one."""
        self.directory.mkdir(parents=True, exist_ok=True)
        data = _encoded(envelope)
        for attempt in range(100):
            name = _file_name(envelope, at, attempt)
            path = self.directory / name
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
            except FileExistsError:
                continue
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            return name
        raise _name_taken()

    def names(self) -> list[str]:
        if not self.directory.is_dir():
            return []
        return sorted(p.name for p in self.directory.iterdir() if p.name.endswith(SUFFIX))

    def read(self, name: str) -> dict[str, Any]:
        return _envelope_of((self.directory / name).read_bytes())


class BucketCheckpointStore(CheckpointFiles):
    """Checkpoint objects in the S3 bucket of the file store (``<prefix>audit-checkpoints/``),
    so every API host writes and verifies the same ones.

    A name is created only when no object has it (``If-None-Match: *``, after a HEAD for stores
    that ignore the condition); nothing here rewrites or deletes one. That the bucket itself
    keeps them (versioning, Object Lock, no delete right for the service's key) is the bucket's
    policy.
    """

    def __init__(self, store: S3Store) -> None:
        self.client = store.client
        self.bucket = store.bucket
        self.folder = f"{store.prefix}{CHECKPOINT_FOLDER}/"

    @property
    def where(self) -> str:
        return f"s3://{self.bucket}/{self.folder}"

    def _exists(self, key: str) -> bool:
        with s3_errors(key):
            try:
                self.client.head_object(Bucket=self.bucket, Key=key)
            except Exception as exc:
                if is_not_found(exc):
                    return False
                raise
        return True

    def write(self, envelope: dict[str, Any], *, at: datetime) -> str:
        data = _encoded(envelope)
        for attempt in range(100):
            name = _file_name(envelope, at, attempt)
            key = self.folder + name
            if self._exists(key):
                continue
            with s3_errors(key):
                try:
                    self.client.put_object(
                        Bucket=self.bucket, Key=key, Body=data, IfNoneMatch="*",
                        ContentType="application/json",
                    )  # fmt: skip
                except Exception as exc:
                    if _precondition_failed(exc):
                        continue  # another host took this name between the HEAD and the PUT
                    raise
            return name
        raise _name_taken()

    def names(self) -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.folder
        )
        found: list[str] = []
        with s3_errors(self.folder):
            for page in pages:
                for obj in page.get("Contents", []):
                    name = str(obj["Key"])[len(self.folder) :]
                    if name.endswith(SUFFIX) and "/" not in name:
                        found.append(name)
        return sorted(found)

    def read(self, name: str) -> dict[str, Any]:
        key = self.folder + name
        with s3_errors(key):
            try:
                body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
            except Exception as exc:
                if is_not_found(exc):
                    raise FileNotFoundError(f"checkpoint {key} is missing") from None
                raise
        try:
            raw: bytes = body.read()
        finally:
            body.close()
        return _envelope_of(raw)


def _precondition_failed(exc: Exception) -> bool:
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return False
    return str(response.get("Error", {}).get("Code", "")) in {"PreconditionFailed", "412"}


def store_of(settings: Settings) -> CheckpointFiles:
    """Where this deployment keeps its checkpoints: the bucket of the s3 file store (shared by
    every host), else the folder ``FIELDOPS_AUDIT_CHECKPOINT_DIR``."""
    objects = object_store_of(settings)
    if isinstance(objects, S3Store):
        return BucketCheckpointStore(objects)
    return CheckpointStore(settings.audit_checkpoint_dir)


def _sign(record: dict[str, Any], keys: audit_keys.AuditKeys) -> dict[str, Any]:
    signature = keys.checkpoint_key.sign(canonical_json(record).encode())
    return {"record": record, "signature": base64.b64encode(signature).decode("ascii")}


def check_signature(envelope: dict[str, Any], public_key: Ed25519PublicKey) -> Checkpoint | None:
    """The checkpoint an envelope states, or None when its signature does not hold."""
    record = envelope.get("record")
    signature = envelope.get("signature")
    if not isinstance(record, dict) or not isinstance(signature, str):
        return None
    try:
        raw = base64.b64decode(signature, validate=True)
        public_key.verify(raw, canonical_json(record).encode())
        return Checkpoint(
            name="",
            kind=CheckpointKind(record["kind"]),
            count=int(record["count"]),
            last_hash=str(record["last_hash"]),
            at=str(record["at"]),
            reason=record.get("reason"),
        )
    except (InvalidSignature, binascii.Error, ValueError, KeyError, TypeError):
        return None


def write_checkpoint(
    session: Session,
    settings: Settings,
    *,
    kind: CheckpointKind = CheckpointKind.checkpoint,
    reason: str | None = None,
) -> StoredCheckpoint:
    """Sign the chain's current head and write it to the checkpoint folder.

    Refused when the chain does not continue the newest checkpoint (its event still has the
    signed hash, and every later link holds): a checkpoint never anchors a truncated or
    rewritten chain. A re-anchor has verified the whole chain already.
    """
    keys = audit_keys.current()
    # The head is read once: the one checked is the one signed, whoever commits meanwhile.
    count, last_hash = service.head(session)
    if kind is CheckpointKind.checkpoint:
        latest = _latest_record(settings, keys.public_key)
        seq, last = (int(latest["count"]), str(latest["last_hash"])) if latest else (0, GENESIS)
        problems = service.links_since(session, seq=seq, last_hash=last,
                                       upto=(count, last_hash))
        if problems:
            raise Conflict(
                f"not signing the head: {problems[0].message}",
                code="audit.chain_broken",
                params={"problem": problems[0].message},
            )
    at = clock.now()
    record = checkpoint_payload(
        kind=kind,
        count=count,
        last_hash=last_hash,
        at=at,
        reason=reason,
        key_id=keys.checkpoint_key_id,
    )
    envelope = _sign(record, keys)
    name = store_of(settings).write(envelope, at=at)
    return StoredCheckpoint(name, envelope)


def _latest_record(
    settings: Settings, public_key: Ed25519PublicKey | None = None
) -> dict[str, Any] | None:
    """The newest checkpoint's record (with ``public_key``: the newest correctly signed one)."""
    store = store_of(settings)
    for name in reversed(store.names()):
        envelope = store.load(name).envelope
        record = envelope.get("record")
        if not isinstance(record, dict):
            continue
        if public_key is not None and check_signature(envelope, public_key) is None:
            continue
        return record
    return None


def write_due(factory: sessionmaker[Session], settings: Settings) -> StoredCheckpoint | None:
    """The interval job: a checkpoint when the head moved and the interval has passed.

    Runs under the ``audit.checkpoint`` lease, so with several processes one writes at a time.
    """
    interval = settings.audit_checkpoint_interval_s
    if interval <= 0:
        return None
    with factory.begin() as session:
        if not leases.claim(session, LEASE_KIND, "head", ttl_s=max(60.0, interval / 2)):
            return None
    try:
        with factory() as session:
            count, last_hash = service.head(session)
            latest = _latest_record(settings)
            if latest is not None:
                if latest.get("count") == count and latest.get("last_hash") == last_hash:
                    return None
                try:
                    at: datetime | None = datetime.fromisoformat(str(latest["at"]))
                except (KeyError, ValueError):
                    at = None
                if at is not None and clock.now() - at < timedelta(seconds=interval):
                    return None
            return write_checkpoint(session, settings)
    finally:
        with factory.begin() as session:
            leases.release(session, LEASE_KIND, "head")


def reanchor(
    session: Session,
    settings: Settings,
    *,
    actor: Principal | None,
    reason: str,
    operator: str | None = None,
) -> StoredCheckpoint:
    """Acknowledge a restored database: audit the act, then anchor the chain's new head.

    Refused unless the chain itself verifies (links, authors, head and rows): a re-anchor
    accepts an older history, never a tampered one. Only the command line offers it (it needs
    the key files, i.e. the service's host), and ``operator`` names who ran it.
    """
    reason = reason.strip()
    if not reason:
        raise Conflict("a re-anchor needs a reason", code="audit.reanchor_reason_missing")
    problems = service.verify(session)
    if problems:
        raise Conflict(
            f"the chain does not verify ({problems[0].message}); a re-anchor only accepts a "
            "restored history that is intact",
            code="audit.chain_broken",
            params={"problem": problems[0].message},
        )
    count, last_hash = service.head(session)
    service.append(
        session,
        actor=actor,
        action="audit.reanchor",
        entity_type="audit_chain",
        entity_id=f"{count}:{last_hash[:16]}",  # the head that is being anchored
        content_hash=None,
        detail=f"{reason} (by {operator})" if operator else reason,
    )
    return write_checkpoint(session, settings, kind=CheckpointKind.reanchor, reason=reason)


@dataclass(frozen=True)
class CheckpointReport:
    checked: int
    superseded: int
    problems: list[str]


def verify_against(
    session: Session, source: Path | CheckpointFiles, public_key: Ed25519PublicKey
) -> CheckpointReport:
    """Compare the signed checkpoints in ``source`` (a folder, or a store) with the chain."""
    store = CheckpointStore(source) if isinstance(source, Path) else source
    problems: list[str] = []
    checkpoints: list[Checkpoint] = []
    for stored in store.all():
        cp = check_signature(stored.envelope, public_key)
        if cp is None:
            problems.append(f"checkpoint {stored.name} is not signed by the checkpoint key")
            continue
        checkpoints.append(
            Checkpoint(stored.name, cp.kind, cp.count, cp.last_hash, cp.at, cp.reason)
        )
    count, _ = service.head(session)
    chain_count = min(count, service.event_count(session))
    point = ChainPoint(
        count=chain_count, hash_at=service.hashes_at(session, (c.count for c in checkpoints))
    )
    problems.extend(judge_checkpoints(checkpoints, point))
    last_reanchor = max(
        (i for i, c in enumerate(checkpoints) if c.kind is CheckpointKind.reanchor), default=0
    )
    return CheckpointReport(
        checked=len(checkpoints) - last_reanchor,
        superseded=last_reanchor,
        problems=problems,
    )


def public_key(settings: Settings) -> Ed25519PublicKey:
    return audit_keys.load(settings).public_key


def public_key_of(settings: Settings) -> bytes:
    """The checkpoint public key as PEM."""
    return keyfiles.public_key_pem(public_key(settings))


def page(
    settings: Settings, *, limit: int, offset: int
) -> tuple[list[str], list[StoredCheckpoint]]:
    """All checkpoint names and one page of checkpoints, newest first."""
    store = store_of(settings)
    names = list(reversed(store.names()))
    return names, [store.load(name) for name in names[offset : offset + limit]]
