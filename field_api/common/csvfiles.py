"""The one CSV writer of the service: every export goes through :func:`csv_text`.

One rule for every cell, so no endpoint formats its own:

- a time is written in China time with its offset, ISO 8601 to the second
  (``2026-12-05T01:30:00+08:00``; the JSON API keeps UTC);
- a date as an ISO date (``2026-12-05``);
- a boolean in the reader's language: 是/否 (zh-CN) or yes/no (en);
- a float with four decimals, an enumeration by its value, nothing as an empty cell;
- text starting with = + - @ gets a leading quote: a spreadsheet must never evaluate exported
  data as a formula.

The file is UTF-8 with a BOM so spreadsheet programs read the Chinese.

Used by every slice's CSV export endpoint (checklists, media, call-backs, inspections, visits,
deadlines) through :func:`csv_response`. (Named ``csvfiles`` so it never shadows the standard
library's ``csv`` in an importer.)
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import asdict, is_dataclass
from datetime import date, datetime
from enum import Enum
from typing import Any, Final

from starlette.requests import HTTPConnection
from starlette.responses import Response

from field_api import messages
from field_api.common import clock
from field_api.language import DEFAULT_LANG, Lang, language_of

MEDIA_TYPE: Final = "text/csv; charset=utf-8"
_BOOLEANS: Final[dict[Lang, tuple[str, str]]] = {"zh-CN": ("是", "否"), "en": ("yes", "no")}
_FORMULA_STARTS: Final = ("=", "+", "-", "@")


def cell(value: Any, language: Lang = DEFAULT_LANG) -> str:
    """One value as the text of a CSV cell (see the module's rule)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        yes, no = _BOOLEANS[language]
        return yes if value else no
    if isinstance(value, datetime):
        return clock.to_china(value).isoformat(timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Enum):
        value = value.value
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def csv_text(
    rows: Sequence[Any],
    columns: Sequence[str],
    *,
    language: Lang = DEFAULT_LANG,
    header: Sequence[str] | None = None,
) -> str:
    """Rows (dataclasses or mappings) as CSV text, ``columns`` in order.

    ``header`` names the columns for people (default: the column names themselves).
    """
    if header is not None and len(header) != len(columns):
        raise ValueError("a CSV header names every column once")
    buffer = io.StringIO()
    buffer.write("\ufeff")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([cell(h, language) for h in (header if header is not None else columns)])
    for row in rows:
        values = _as_mapping(row)
        writer.writerow([cell(values[c], language) for c in columns])
    return buffer.getvalue()


def csv_response(
    request: HTTPConnection,
    rows: Sequence[Any],
    columns: Sequence[str],
    *,
    filename: str,
    header: Sequence[str] | None = None,
) -> Response:
    """A CSV download of ``rows`` in the request's language (:func:`language_of`).

    Without ``header`` the columns are named for people in that language
    (:func:`field_api.messages.csv_header`).
    """
    language = language_of(request)
    if header is None:
        header = messages.csv_header(columns, language)
    return Response(
        csv_text(rows, columns, language=language, header=header),
        media_type=MEDIA_TYPE,
        headers={
            "Content-Disposition": f'attachment; filename="{filename}.csv"',
            "Content-Language": language,
            "Vary": "Accept-Language, Cookie",
        },
    )


def _as_mapping(row: Any) -> Mapping[str, Any]:
    if isinstance(row, Mapping):
        return row
    if is_dataclass(row) and not isinstance(row, type):
        return asdict(row)
    raise TypeError(f"a CSV row is a dataclass or a mapping, not {type(row).__name__}")
