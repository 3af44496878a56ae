"""Pure hashing of rows and chain links."""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

GENESIS = "0" * 64


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


def link_hash(prev_hash: str, fields: Mapping[str, Any]) -> str:
    """The hash of one event: its fields chained to the previous event's hash."""
    return hashlib.sha256((prev_hash + canonical_json(fields)).encode()).hexdigest()
