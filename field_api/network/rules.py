"""Parsing network files (GeoJSON, CSV) into validated rows, with every row's errors. Pure.

GeoJSON: a FeatureCollection; Point features are transformers with properties ``code``,
``rated_kva``, ``load_kva`` or ``load_kw`` (and optional ``name``, ``measured_at``);
LineString features are LV lines with ``code`` and ``transformer_code``.

CSV (UTF-8, or GB18030 as spreadsheets in China often save): the header says what the file
holds. Transformers: ``code,name,rated_kva,load_kva|load_kw,lon,lat[,measured_at]``.
LV lines: ``code,transformer_code,wkt`` with a WKT ``LINESTRING (lon lat, ...)``.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, TypeVar

import shapely
from shapely.geometry import LineString

FileFormat = Literal["geojson", "csv"]
_R = TypeVar("_R")
MAX_LINE_POINTS = 10_000


@dataclass(frozen=True, slots=True)
class TransformerRow:
    """One valid transformer row."""

    code: str
    name: str
    rated_kva: float
    load_kva: float
    lon: float
    lat: float
    measured_at: datetime | None = None
    row: int = 0


@dataclass(frozen=True, slots=True)
class LineRow:
    """One valid LV line row."""

    code: str
    transformer_code: str
    coords: tuple[tuple[float, float], ...]
    row: int = 0


@dataclass(frozen=True, slots=True)
class RowError:
    """Everything wrong with one row (CSV line number, or GeoJSON feature number from 1)."""

    row: int
    code: str | None
    errors: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ParsedNetwork:
    """The valid rows of a file and the errors of the others."""

    transformers: tuple[TransformerRow, ...] = ()
    lines: tuple[LineRow, ...] = ()
    errors: tuple[RowError, ...] = field(default=())


class NetworkFileError(ValueError):
    """The file as a whole cannot be read (not JSON, no header, unknown columns...)."""


def detect_format(filename: str, explicit: str | None = None) -> FileFormat:
    """The file format from an explicit choice or the file name's extension."""
    choice = (explicit or "").lower() or filename.lower().rsplit(".", 1)[-1]
    if choice in ("geojson", "json"):
        return "geojson"
    if choice == "csv":
        return "csv"
    raise NetworkFileError(f"cannot tell the format of {filename!r}: use .geojson, .json or .csv")


def parse(data: bytes, file_format: FileFormat, *, load_power_factor: float) -> ParsedNetwork:
    """Parse a network file; ``load_power_factor`` converts a load in kW to kVA."""
    if file_format == "geojson":
        return parse_geojson(data, load_power_factor=load_power_factor)
    return parse_csv(data, load_power_factor=load_power_factor)


def parse_geojson(data: bytes, *, load_power_factor: float) -> ParsedNetwork:
    """Transformers (Points) and LV lines (LineStrings) from a GeoJSON FeatureCollection."""
    try:
        doc = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise NetworkFileError(f"not valid GeoJSON: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        raise NetworkFileError("expected a GeoJSON FeatureCollection")
    features = doc.get("features")
    if not isinstance(features, list):
        raise NetworkFileError("the FeatureCollection has no features list")
    transformers: list[tuple[int, TransformerRow]] = []
    lines: list[tuple[int, LineRow]] = []
    errors: list[RowError] = []
    for n, feature in enumerate(features, start=1):
        props = feature.get("properties") if isinstance(feature, dict) else None
        geometry = feature.get("geometry") if isinstance(feature, dict) else None
        props = props if isinstance(props, dict) else {}
        gtype = geometry.get("type") if isinstance(geometry, dict) else None
        coords = geometry.get("coordinates") if isinstance(geometry, dict) else None
        if gtype == "Point":
            point = _position(coords)
            row, problems = _transformer(
                props, point, load_power_factor, None if point else "Point needs [lon, lat]"
            )
            _collect(n, props, row, problems, transformers, errors)
        elif gtype == "LineString":
            line, problems = _line(props, coords)
            _collect(n, props, line, problems, lines, errors)
        else:
            errors.append(RowError(n, _code(props), (
                f"unsupported geometry {gtype!r}: Point (transformer) or LineString (LV line)",
            )))
    return _finish(transformers, lines, errors)


def parse_csv(data: bytes, *, load_power_factor: float) -> ParsedNetwork:
    """Transformers or LV lines from a CSV file, told apart by its header."""
    text = _decode(data)
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in (reader.fieldnames or [])]
    if not header:
        raise NetworkFileError("the CSV file has no header")
    reader.fieldnames = header
    is_lines = {"code", "transformer_code", "wkt"} <= set(header)
    is_transformers = {"code", "rated_kva", "lon", "lat"} <= set(header)
    if not (is_lines or is_transformers):
        raise NetworkFileError(
            "CSV header must name code,rated_kva,load_kva|load_kw,lon,lat (transformers) or "
            f"code,transformer_code,wkt (LV lines); found {','.join(header)}"
        )
    if is_transformers and not ({"load_kva", "load_kw"} & set(header)):
        raise NetworkFileError("transformer CSV needs a load_kva or load_kw column")
    transformers: list[tuple[int, TransformerRow]] = []
    lines: list[tuple[int, LineRow]] = []
    errors: list[RowError] = []
    for record in reader:
        n = reader.line_num
        props = {k: (v.strip() if isinstance(v, str) else v) for k, v in record.items() if k}
        if is_lines:
            line, problems = _line(props, _wkt_coords(props.get("wkt")))
            _collect(n, props, line, problems, lines, errors)
        else:
            point = (_number(props.get("lon")), _number(props.get("lat")))
            pos = (point[0], point[1]) if point[0] is not None and point[1] is not None else None
            row, problems = _transformer(props, pos, load_power_factor, None)
            _collect(n, props, row, problems, transformers, errors)
    return _finish(transformers, lines, errors)


def _collect(
    n: int, props: dict[str, Any], row: _R | None, problems: list[str],
    good: list[tuple[int, _R]], errors: list[RowError],
) -> None:
    if problems or row is None:
        errors.append(RowError(n, _code(props), tuple(problems)))
    else:
        good.append((n, dataclasses.replace(row, row=n)))  # type: ignore[type-var]


def _finish(
    transformers: list[tuple[int, TransformerRow]], lines: list[tuple[int, LineRow]],
    errors: list[RowError],
) -> ParsedNetwork:
    """Duplicate codes within the file are errors of every row carrying them."""
    good_t = _unique(transformers, errors)
    good_l = _unique(lines, errors)
    return ParsedNetwork(
        transformers=tuple(good_t), lines=tuple(good_l),
        errors=tuple(sorted(errors, key=lambda e: e.row)),
    )


def _unique(rows: list[tuple[int, Any]], errors: list[RowError]) -> list[Any]:
    counts = Counter(r.code for _, r in rows)
    kept = []
    for n, r in rows:
        if counts[r.code] > 1:
            errors.append(RowError(n, r.code, (f"code {r.code} appears more than once",)))
        else:
            kept.append(r)
    return kept


def _transformer(
    props: dict[str, Any], point: tuple[float, float] | None, load_power_factor: float,
    geometry_problem: str | None,
) -> tuple[TransformerRow | None, list[str]]:
    problems = [geometry_problem] if geometry_problem else []
    code, name = _code(props), str(props.get("name") or "")
    if not code or len(code) > 64:
        problems.append("code is required (at most 64 characters)")
    if len(name) > 200:
        problems.append("name is at most 200 characters")
    if _has_nul(code, name):
        problems.append(NUL_PROBLEM)
    rated = _number(props.get("rated_kva"))
    if rated is None or rated <= 0:
        problems.append("rated_kva must be a number > 0")
    load_kva, load_kw = _number(props.get("load_kva")), _number(props.get("load_kw"))
    if _blank(props.get("load_kva")) and _blank(props.get("load_kw")):
        problems.append("load_kva or load_kw is required (the present load)")
    elif (load_kva is None and load_kw is None) or (load_kva or 0) < 0 or (load_kw or 0) < 0:
        problems.append("load_kva / load_kw must be a number ≥ 0")
    if point is None:
        if not geometry_problem:
            problems.append("lon and lat must be numbers")
    elif not _valid_position(point):
        problems.append(f"position ({point[0]}, {point[1]}) is not a WGS84 lon/lat")
    measured_at = None
    raw_time = props.get("measured_at")
    if not _blank(raw_time):
        try:
            measured_at = datetime.fromisoformat(str(raw_time))
        except ValueError:
            problems.append(f"measured_at {raw_time!r} is not an ISO date-time")
        else:
            if measured_at.tzinfo is None:
                problems.append("measured_at needs a time zone (e.g. +08:00)")
    if problems or rated is None or point is None:
        return None, problems
    kva = load_kva if load_kva is not None else (load_kw or 0.0) / load_power_factor
    return TransformerRow(
        code=code, name=name, rated_kva=rated, load_kva=kva,
        lon=point[0], lat=point[1], measured_at=measured_at,
    ), []


def _line(props: dict[str, Any], coords: Any) -> tuple[LineRow | None, list[str]]:
    problems: list[str] = []
    code, feeder = _code(props), str(props.get("transformer_code") or "").strip()
    if not code or len(code) > 64:
        problems.append("code is required (at most 64 characters)")
    if not feeder or len(feeder) > 64:
        problems.append("transformer_code is required (at most 64 characters)")
    if _has_nul(code, feeder):
        problems.append(NUL_PROBLEM)
    points: list[tuple[float, float]] = []
    if not isinstance(coords, list) or len(coords) < 2:
        problems.append("a line needs at least two [lon, lat] positions")
    elif len(coords) > MAX_LINE_POINTS:
        problems.append(f"a line may have at most {MAX_LINE_POINTS} positions")
    else:
        for pos in coords:
            p = _position(pos)
            if p is None or not _valid_position(p):
                problems.append(f"position {pos!r} is not a WGS84 [lon, lat]")
                break
            points.append(p)
        if not problems and LineString(points).length == 0:
            problems.append("the line has zero length")
    if problems:
        return None, problems
    return LineRow(code=code, transformer_code=feeder, coords=tuple(points)), []


def _wkt_coords(wkt: Any) -> Any:
    if _blank(wkt):
        return None
    try:
        geom = shapely.from_wkt(str(wkt))
    except shapely.errors.GEOSException:
        return "bad"
    if not isinstance(geom, LineString):
        return "bad"
    return [list(c) for c in geom.coords]


def _position(value: Any) -> tuple[float, float] | None:
    if not isinstance(value, list | tuple) or len(value) < 2:
        return None
    lon, lat = _number(value[0]), _number(value[1])
    if lon is None or lat is None:
        return None
    return lon, lat


def _valid_position(p: tuple[float, float]) -> bool:
    return -180 <= p[0] <= 180 and -90 <= p[1] <= 90


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or _blank(value):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


NUL_PROBLEM = "text may not contain the NUL character"


def _has_nul(*values: str) -> bool:
    """A NUL character cannot be stored (PostgreSQL text refuses it)."""
    return any("\x00" in v for v in values)


def _code(props: dict[str, Any]) -> str:
    return str(props.get("code") or "").strip()


def _decode(data: bytes) -> str:
    # spreadsheets in China often save CSV as GB18030 (a superset of GBK); UTF-8 first
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise NetworkFileError("the CSV file is neither UTF-8 nor GB18030 text")
