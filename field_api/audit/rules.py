"""Pure hashing of rows, chain links and checkpoints, and the checkpoint-vs-chain judgement.

A link is ``HMAC-SHA256(key, prev_hash + canonical_json(fields))`` with a key kept outside the
database, so someone who can write the database but not read the key file cannot re-chain an
edited or inserted event. (``key=None`` gives the plain sha256 link of chains written before
the key existed; verification refuses those, since anyone could recompute them.)
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

GENESIS = "0" * 64
CHECKPOINT_VERSION = 1


def _plain(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat(timespec="microseconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, float):
        return repr(value)
    return value


def canonical_json(data: Mapping[str, Any]) -> str:
    return json.dumps(
        {k: _plain(v) for k, v in data.items()},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )


def row_hash(values: Mapping[str, Any]) -> str:
    """The content hash of a row's column values."""
    return hashlib.sha256(canonical_json(values).encode()).hexdigest()


def link_hash(key: bytes | None, prev_hash: str, fields: Mapping[str, Any]) -> str:
    """The hash of one event chained to its predecessor: keyed (HMAC) unless ``key`` is None."""
    message = (prev_hash + canonical_json(fields)).encode()
    if key is None:
        return hashlib.sha256(message).hexdigest()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def same_hash(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


# ----------------------------------------------------------------------------- checkpoints


class CheckpointKind(enum.StrEnum):
    checkpoint = "checkpoint"
    reanchor = "reanchor"


@dataclass(frozen=True)
class Checkpoint:
    """A signed statement: at ``at`` the chain had ``count`` events ending in ``last_hash``."""

    name: str
    kind: CheckpointKind
    count: int
    last_hash: str
    at: str
    reason: str | None = None


@dataclass(frozen=True)
class ChainPoint:
    """What the database's chain holds: its length and each checked event's hash."""

    count: int
    hash_at: Mapping[int, str]


def checkpoint_payload(
    *, kind: CheckpointKind, count: int, last_hash: str, at: datetime, reason: str | None,
    key_id: str,
) -> dict[str, Any]:
    """The signed record of a checkpoint (canonical JSON is what the signature covers)."""
    return {
        "version": CHECKPOINT_VERSION,
        "kind": kind.value,
        "count": count,
        "last_hash": last_hash,
        "at": at.isoformat(timespec="microseconds"),
        "reason": reason,
        "key_id": key_id,
    }


def judge_checkpoints(checkpoints: Sequence[Checkpoint], chain: ChainPoint) -> list[str]:
    """Problems between the signed checkpoints (oldest first) and the database's chain.

    Checkpoints before the newest re-anchor describe a history that a restore replaced; they
    are not compared. From the newest re-anchor on, every checkpoint must still be in the
    chain: fewer events means the tail was deleted or an older copy was restored; a different
    hash at the same position means the chain was rewritten or rolled back and re-grown.
    """
    start = 0
    for i, cp in enumerate(checkpoints):
        if cp.kind is CheckpointKind.reanchor:
            start = i
    problems: list[str] = []
    for cp in checkpoints[start:]:
        if cp.count > chain.count:
            problems.append(
                f"checkpoint {cp.name} ({cp.at}) recorded {cp.count} events but the chain has "
                f"{chain.count}: events were deleted or an older copy of the database was "
                "restored (after a legitimate restore run `fieldops audit reanchor`)"
            )
            continue
        if cp.count == 0:
            continue
        actual = chain.hash_at.get(cp.count)
        if actual is None or not same_hash(actual, cp.last_hash):
            problems.append(
                f"checkpoint {cp.name} ({cp.at}) recorded event {cp.count} as "
                f"{cp.last_hash[:12]}, the chain has {(actual or '-')[:12]}: the chain was "
                "rewritten or rolled back"
            )
    return problems
