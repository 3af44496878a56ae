"""One validation layer: the bounded types every endpoint signature and request schema uses.

- Integers fit the database column they reach (INTEGER: 32-bit signed, BIGINT: 64-bit signed):
  an out-of-range value is a 422 at the edge, never an OverflowError (SQLite) or
  NumericValueOutOfRange (PostgreSQL) from the driver.
- Dates and datetimes only as ISO 8601 text (``2026-12-04``, ``2026-12-04T08:00:00+08:00``):
  pydantic's lax parsing would take ``0`` as 1970-01-01; and only from 1900 to 2199 (date
  arithmetic on 9999-12-31 overflows).
- Strings carry no NUL character (PostgreSQL text cannot hold one) and a length limit.

Path and query aliases (``IdPath``, ``IdQuery``, ...) carry FastAPI's ``Path``/``Query`` marker;
body aliases (``DbInt``, ``PositiveDbInt``, ``BigInt``, ``IsoDate``, ...) are plain pydantic
types for request models.
"""

from __future__ import annotations

import math
import re
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import Path, Query
from pydantic import AfterValidator, AwareDatetime, BeforeValidator, Field

DB_INT_MIN = -(2**31)
DB_INT_MAX = 2**31 - 1
DB_BIGINT_MIN = -(2**63)
DB_BIGINT_MAX = 2**63 - 1
# The largest offset/page position a list accepts (far beyond any table, inside INTEGER).
MAX_OFFSET = 10_000_000

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_ISO_DATETIME = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?([Zz]|[+-]\d{2}(:?\d{2})?)?"
)


def _iso_date(value: Any) -> Any:
    if isinstance(value, datetime):
        raise ValueError("expected a date (YYYY-MM-DD), not a date and time")
    if isinstance(value, date):
        return value
    if isinstance(value, str) and _ISO_DATE.fullmatch(value):
        return value
    raise ValueError("expected an ISO date YYYY-MM-DD")


def _iso_datetime(value: Any) -> Any:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and _ISO_DATETIME.fullmatch(value):
        return value
    raise ValueError("expected an ISO 8601 date and time (YYYY-MM-DDTHH:MM:SS+08:00)")


# Dates the service reasons about: far beyond any order, far inside what date arithmetic allows
# (9999-12-31 plus a day is an OverflowError).
EARLIEST_DATE = date(1900, 1, 1)
LATEST_DATE = date(2199, 12, 31)


def _date_in_range(value: date) -> date:
    if not EARLIEST_DATE <= value <= LATEST_DATE:
        raise ValueError(f"the date must lie between {EARLIEST_DATE} and {LATEST_DATE}")
    return value


def _datetime_in_range(value: datetime) -> datetime:
    _date_in_range(value.date())
    return value


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("text may not contain the NUL character")
    return value


def _plain_json(value: Any, depth: int = 0) -> None:
    if depth > 32:
        raise ValueError("the JSON value is nested too deeply (at most 32 levels)")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("numbers must be finite (no NaN or Infinity)")
    if isinstance(value, str):
        _no_nul(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            _no_nul(str(key))
            _plain_json(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _plain_json(item, depth + 1)


def _json_object(value: dict[str, Any]) -> dict[str, Any]:
    _plain_json(value)
    return value


# --- bodies (pydantic models) ---------------------------------------------------------------
DbInt = Annotated[int, Field(ge=DB_INT_MIN, le=DB_INT_MAX)]
"""Any value of an INTEGER column."""
NonNegativeDbInt = Annotated[int, Field(ge=0, le=DB_INT_MAX)]
PositiveDbInt = Annotated[int, Field(ge=1, le=DB_INT_MAX)]
"""A row id or a count of at least one, within INTEGER."""
BigInt = Annotated[int, Field(ge=DB_BIGINT_MIN, le=DB_BIGINT_MAX)]
"""Any value of a BIGINT column."""
NonNegativeBigInt = Annotated[int, Field(ge=0, le=DB_BIGINT_MAX)]
PositiveBigInt = Annotated[int, Field(ge=1, le=DB_BIGINT_MAX)]
IsoDate = Annotated[date, BeforeValidator(_iso_date), AfterValidator(_date_in_range)]
"""A date given as ``YYYY-MM-DD`` only, between 1900-01-01 and 2199-12-31."""
IsoDatetime = Annotated[
    datetime, BeforeValidator(_iso_datetime), AfterValidator(_datetime_in_range)
]
"""A date and time given as ISO 8601 text only."""
IsoAwareDatetime = Annotated[
    AwareDatetime, BeforeValidator(_iso_datetime), AfterValidator(_datetime_in_range)
]
"""An ISO 8601 date and time with its UTC offset."""
Text = Annotated[str, AfterValidator(_no_nul)]
"""Text without NUL characters; give the length limit with ``Field(max_length=...)``."""
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
"""A number that is neither NaN nor infinite (JSON has neither; Python's parser takes both)."""
JsonObject = Annotated[dict[str, Any], AfterValidator(_json_object)]
"""Free-form JSON data: finite numbers, no NUL in keys or text, at most 32 levels deep."""

# --- path and query parameters --------------------------------------------------------------
IdPath = Annotated[int, Path(ge=1, le=DB_INT_MAX, description="A row id.")]
IdQuery = Annotated[int | None, Query(ge=1, le=DB_INT_MAX, description="A row id.")]
OffsetQuery = Annotated[int, Query(ge=0, le=MAX_OFFSET)]
DateQuery = Annotated[IsoDate | None, Query(description="An ISO date YYYY-MM-DD.")]


CodePath = Annotated[Text, Path(min_length=1, max_length=32)]
"""A code in the path whose column is String(32)."""
TextQuery = Annotated[Text | None, Query(max_length=64)]
"""Free text in the query (a filter value), at most 64 characters."""
Code16Path = Annotated[Text, Path(min_length=1, max_length=16)]
"""A code in the path whose column is String(16)."""
Code64Path = Annotated[Text, Path(min_length=1, max_length=64)]
"""A code or string key in the path whose column is String(64) (sha256 ids, tokens)."""
Key100Path = Annotated[Text, Path(min_length=1, max_length=100)]
"""A string key in the path whose column is String(100) (ledger ids)."""
Text100Query = Annotated[Text | None, Query(max_length=100)]
"""A filter on a String(100) column."""

# --- responses -------------------------------------------------------------------------------
CSV_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The report as CSV (UTF-8, a header row) when CSV is asked for.",
        "content": {"text/csv": {"schema": {"type": "string"}}},
    }
}
"""``responses=`` of a route that can answer ``text/csv``."""
HTML_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {
        "description": "Not found: a page for people, in HTML.",
        "content": {"text/html": {"schema": {"type": "string"}}},
    }
}
"""``responses=`` of an HTML page that answers its own 404 page."""
Code32 = Annotated[Text, Field(min_length=1, max_length=32)]
"""A code of a String(32) column in a body (also as a mapping's key)."""
Code64 = Annotated[Text, Field(min_length=1, max_length=64)]
"""A code of at most 64 characters in a body (also as a mapping's key)."""
