"""The line ledger (台账): lines and their poles/towers, imported from GeoJSON or CSV.

Property names follow eSmart Grid Vision's asset import so one export serves both tools:

=============== ====================================================================
Identifier      the asset's (or line's) unique id
Name            display name
GroupIdentifier the line the asset belongs to (assets only)
Latitude        WGS84 degrees (CSV only; GeoJSON features carry a Point geometry)
Longitude       WGS84 degrees (CSV only)
AssetType       pole, tower, ... (free text)
Height          metres, optional
District        optional
Equipment       optional free text (fitted equipment)
=============== ====================================================================

Line features are GeoJSON LineStrings (MultiLineStrings for branched lines) with
``Identifier``, ``Name`` and ``kind="line"`` (an optional ``CorridorWidth`` in metres, full
width across the line, and ``District``). A CSV has no line geometry: each GroupIdentifier's
line is drawn through its assets in file order (pole order), marked ``derived``.

Loading never stops at the first bad row: every problem becomes a :class:`LedgerIssue` with the
row it came from, rows that cannot be used (bad coordinates, duplicate ids) are left out, and
the caller decides whether to go on. Only an unreadable file raises :class:`LedgerError`.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from pyproj import CRS, Transformer
from shapely import LineString, MultiLineString, Point

from vision.errors import LedgerError

FloatArray = NDArray[np.float64]
IssueCode = Literal[
    "duplicate_id",
    "bad_coordinates",
    "missing_field",
    "bad_value",
    "unknown_line",
    "far_from_line",
    "bad_geometry",
]
#: Half of the default corridor: 10 m either side of a 1–10 kV overhead line is the common
#: protection zone [S]; override per line with ``CorridorWidth`` or ``default_corridor_width_m``.
DEFAULT_CORRIDOR_WIDTH_M = 20.0
#: An asset further than this from its own line is flagged [U].
DEFAULT_MAX_LINE_DISTANCE_M = 50.0


@dataclass(frozen=True)
class LedgerAsset:
    """A pole or tower of the ledger."""

    identifier: str
    name: str
    line_id: str | None
    lat: float
    lon: float
    asset_type: str | None = None
    height_m: float | None = None
    district: str | None = None
    equipment: str | None = None


@dataclass(frozen=True)
class LedgerLine:
    """A distribution line: its route (lon, lat) and corridor width (m, full width)."""

    identifier: str
    name: str
    coords: tuple[tuple[float, float], ...]
    corridor_width_m: float = DEFAULT_CORRIDOR_WIDTH_M
    derived: bool = False
    district: str | None = None
    #: Further parts of a branched line (a GeoJSON MultiLineString); ``coords`` is the first.
    extra_parts: tuple[tuple[tuple[float, float], ...], ...] = ()

    @property
    def parts(self) -> tuple[tuple[tuple[float, float], ...], ...]:
        """Every part of the route, the first one first."""
        return (self.coords, *self.extra_parts)


@dataclass(frozen=True)
class LedgerIssue:
    """One problem found in one row (CSV line number, or GeoJSON feature index from 1)."""

    source: str
    row: int
    identifier: str | None
    code: IssueCode
    message: str


@dataclass(frozen=True)
class Ledger:
    """Valid assets and lines, and the issues found while importing them."""

    assets: tuple[LedgerAsset, ...]
    lines: tuple[LedgerLine, ...]
    issues: tuple[LedgerIssue, ...] = field(default_factory=tuple)

    def asset(self, identifier: str) -> LedgerAsset | None:
        """Return the asset with this Identifier, or None."""
        for a in self.assets:
            if a.identifier == identifier:
                return a
        return None


def metric_crs(lons: Sequence[float] | FloatArray, lats: Sequence[float] | FloatArray) -> CRS:
    """The UTM zone CRS (metres) of the middle of the given points.

    Raises:
        LedgerError: no points.
    """
    if len(lons) == 0:
        raise LedgerError("no coordinates to choose a metric frame from")
    lon = float(np.median(np.asarray(lons, dtype=np.float64)))
    lat = float(np.median(np.asarray(lats, dtype=np.float64)))
    zone = math.floor((lon + 180.0) / 6.0) % 60 + 1
    return CRS.from_epsg((32600 if lat >= 0 else 32700) + zone)


def _clean(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _float(value: object) -> float | None:
    text = _clean(value)
    if text is None:
        return None
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _valid_lat_lon(lat: float | None, lon: float | None) -> bool:
    return (
        lat is not None
        and lon is not None
        and -90.0 <= lat <= 90.0
        and -180.0 <= lon <= 180.0
        and not (lat == 0.0 and lon == 0.0)  # the usual placeholder of an unsurveyed asset
    )


class _Builder:
    """Collects rows, issues and duplicates across one or more files."""

    def __init__(self, default_corridor_width_m: float) -> None:
        self.assets: dict[str, LedgerAsset] = {}
        self.asset_rows: dict[str, tuple[str, int]] = {}
        self.lines: dict[str, LedgerLine] = {}
        self.issues: list[LedgerIssue] = []
        self.default_corridor_width_m = default_corridor_width_m

    def issue(
        self, source: str, row: int, ident: str | None, code: IssueCode, message: str
    ) -> None:
        self.issues.append(LedgerIssue(source, row, ident, code, message))

    def add_asset(
        self, source: str, row: int, props: Mapping[str, Any], lat: float | None, lon: float | None
    ) -> None:
        ident = _clean(props.get("Identifier"))
        if ident is None:
            self.issue(source, row, None, "missing_field", "no Identifier")
            return
        if not _valid_lat_lon(lat, lon) or lat is None or lon is None:
            self.issue(source, row, ident, "bad_coordinates",
                       f"Latitude/Longitude {lat!r}, {lon!r} are not a WGS84 position")
            return
        if ident in self.assets:
            first_source, first_row = self.asset_rows[ident]
            self.issue(source, row, ident, "duplicate_id",
                       f"Identifier {ident} already used at {first_source} row {first_row}; "
                       "this row is ignored")
            return
        height = _float(props.get("Height"))
        if _clean(props.get("Height")) is not None and (height is None or height < 0):
            self.issue(source, row, ident, "bad_value",
                       f"Height {props.get('Height')!r} is not a length in metres")
            height = None
        self.assets[ident] = LedgerAsset(
            identifier=ident,
            name=_clean(props.get("Name")) or ident,
            line_id=_clean(props.get("GroupIdentifier")),
            lat=lat,
            lon=lon,
            asset_type=_clean(props.get("AssetType")),
            height_m=height,
            district=_clean(props.get("District")),
            equipment=_clean(props.get("Equipment")),
        )
        self.asset_rows[ident] = (source, row)

    def add_line(
        self, source: str, row: int, props: Mapping[str, Any], parts: Sequence[Any]
    ) -> None:
        ident = _clean(props.get("Identifier"))
        if ident is None:
            self.issue(source, row, None, "missing_field", "line has no Identifier")
            return
        routes = [_positions(part) for part in parts]
        if not routes or any(len(r) < 2 for r in routes):
            self.issue(source, row, ident, "bad_geometry",
                       "every line part needs at least two valid (lon, lat) positions")
            return
        if ident in self.lines:
            self.issue(source, row, ident, "duplicate_id",
                       f"line Identifier {ident} already used; this feature is ignored")
            return
        width = _float(props.get("CorridorWidth"))
        if _clean(props.get("CorridorWidth")) is not None and (width is None or width <= 0):
            self.issue(source, row, ident, "bad_value",
                       f"CorridorWidth {props.get('CorridorWidth')!r} is not a positive width")
            width = None
        self.lines[ident] = LedgerLine(
            identifier=ident,
            name=_clean(props.get("Name")) or ident,
            coords=routes[0],
            corridor_width_m=width or self.default_corridor_width_m,
            district=_clean(props.get("District")),
            extra_parts=tuple(routes[1:]),
        )


def _positions(coords: object) -> tuple[tuple[float, float], ...]:
    """Valid (lon, lat) positions of one GeoJSON line part; empty when any is invalid."""
    if not isinstance(coords, list):
        return ()
    points: list[tuple[float, float]] = []
    for c in coords:
        if not isinstance(c, (list, tuple)) or len(c) < 2:
            return ()
        lon, lat = _float(c[0]), _float(c[1])
        if not _valid_lat_lon(lat, lon) or lat is None or lon is None:
            return ()
        points.append((lon, lat))
    return tuple(points)


def _read_geojson(path: Path, builder: _Builder) -> None:
    try:
        doc = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LedgerError(f"{path}: not a readable GeoJSON file: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        raise LedgerError(f"{path}: expected a GeoJSON FeatureCollection")
    features = doc.get("features")
    if not isinstance(features, list):
        raise LedgerError(f"{path}: FeatureCollection has no features list")
    source = path.name
    for row, feature in enumerate(features, start=1):
        props = feature.get("properties") if isinstance(feature, dict) else None
        geom = feature.get("geometry") if isinstance(feature, dict) else None
        if not isinstance(props, dict) or not isinstance(geom, dict):
            builder.issue(source, row, None, "bad_geometry", "feature without properties/geometry")
            continue
        gtype, coords = geom.get("type"), geom.get("coordinates")
        if gtype in ("LineString", "MultiLineString") or props.get("kind") == "line":
            if gtype not in ("LineString", "MultiLineString") or not isinstance(coords, list):
                builder.issue(source, row, _clean(props.get("Identifier")), "bad_geometry",
                              f"line feature must be a (Multi)LineString, got {gtype}")
                continue
            builder.add_line(source, row, props, [coords] if gtype == "LineString" else coords)
        elif gtype == "Point" and isinstance(coords, list) and len(coords) >= 2:
            builder.add_asset(source, row, props, _float(coords[1]), _float(coords[0]))
        else:
            builder.issue(source, row, _clean(props.get("Identifier")), "bad_geometry",
                          f"asset feature must be a Point, got {gtype}")


def _decode_csv(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise LedgerError(f"{path}: cannot read: {exc}") from exc
    # Excel on Chinese Windows saves CSV as GBK/GB18030; UTF-8 (with or without BOM) first.
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise LedgerError(f"{path}: CSV is neither UTF-8 nor GB18030 text")


def _read_csv(path: Path, builder: _Builder) -> list[str]:
    """Read asset rows; returns the line ids in order of first appearance."""
    reader = csv.DictReader(io.StringIO(_decode_csv(path), newline=""))
    header = [h.strip() for h in reader.fieldnames or []]
    missing = {"Identifier", "Latitude", "Longitude"} - set(header)
    if missing:
        raise LedgerError(f"{path}: CSV header lacks {sorted(missing)}; found {header}")
    order: list[str] = []
    for record in reader:
        row = reader.line_num  # physical line, so the user can find it in an editor
        props = {(k or "").strip(): v for k, v in record.items()}
        builder.add_asset(path.name, row, props, _float(props.get("Latitude")),
                          _float(props.get("Longitude")))
        line_id = _clean(props.get("GroupIdentifier"))
        if line_id and line_id not in order:
            order.append(line_id)
    return order


def _derive_lines(builder: _Builder, line_ids: Iterable[str]) -> None:
    for line_id in line_ids:
        if line_id in builder.lines:
            continue
        members = [a for a in builder.assets.values() if a.line_id == line_id]
        if len(members) >= 2:
            districts = Counter(a.district for a in members if a.district)
            builder.lines[line_id] = LedgerLine(
                identifier=line_id,
                name=line_id,
                coords=tuple((a.lon, a.lat) for a in members),
                corridor_width_m=builder.default_corridor_width_m,
                derived=True,
                district=districts.most_common(1)[0][0] if districts else None,
            )


def _check_line_distances(builder: _Builder, max_line_distance_m: float) -> None:
    assets = list(builder.assets.values())
    surveyed = [ln for ln in builder.lines.values() if not ln.derived]
    if not assets:
        return
    crs = metric_crs([a.lon for a in assets], [a.lat for a in assets])
    to_m = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    line_geoms: dict[str, MultiLineString] = {}
    for ln in surveyed:
        parts = []
        for part in ln.parts:
            xs, ys = to_m.transform([c[0] for c in part], [c[1] for c in part])
            parts.append(LineString(list(zip(xs, ys, strict=True))))
        line_geoms[ln.identifier] = MultiLineString(parts)
    ax, ay = to_m.transform([a.lon for a in assets], [a.lat for a in assets])
    for asset, x, y in zip(assets, ax, ay, strict=True):
        source, row = builder.asset_rows[asset.identifier]
        if asset.line_id is None:
            continue
        if asset.line_id not in builder.lines:
            # Only a ledger that carries line geometries can miss one; a CSV-only ledger
            # simply cannot draw a line through a single pole.
            if surveyed:
                builder.issue(source, row, asset.identifier, "unknown_line",
                              f"GroupIdentifier {asset.line_id} names no line in the ledger")
            continue
        geom = line_geoms.get(asset.line_id)
        if geom is None:
            continue
        distance = float(geom.distance(Point(x, y)))
        if distance > max_line_distance_m:
            builder.issue(source, row, asset.identifier, "far_from_line",
                          f"{distance:.0f} m from its line {asset.line_id} "
                          f"(more than {max_line_distance_m:.0f} m)")


def load_ledger(
    *paths: Path | str,
    default_corridor_width_m: float = DEFAULT_CORRIDOR_WIDTH_M,
    max_line_distance_m: float = DEFAULT_MAX_LINE_DISTANCE_M,
) -> Ledger:
    """Import and validate a ledger from one or more GeoJSON (``.geojson``/``.json``) or CSV files.

    Args:
        paths: ledger files; ids must be unique across all of them.
        default_corridor_width_m: corridor width of lines without ``CorridorWidth``.
        max_line_distance_m: flag assets further than this from their line.

    Returns:
        The valid assets and lines, with one :class:`LedgerIssue` per problem row.

    Raises:
        LedgerError: a file cannot be read or has the wrong overall shape.

    Example:
        >>> ledger = load_ledger("tests/fixtures/drone/ledger.geojson")  # doctest: +SKIP
        >>> [i.code for i in ledger.issues]  # doctest: +SKIP
    """
    if not paths:
        raise LedgerError("no ledger file given")
    builder = _Builder(default_corridor_width_m)
    csv_lines: list[str] = []
    for p in paths:
        path = Path(p)
        if not path.is_file():
            raise LedgerError(f"{path}: no such ledger file")
        suffix = path.suffix.lower()
        if suffix in {".geojson", ".json"}:
            _read_geojson(path, builder)
        elif suffix == ".csv":
            csv_lines.extend(_read_csv(path, builder))
        else:
            raise LedgerError(f"{path}: ledger must be .geojson, .json or .csv")
    _derive_lines(builder, csv_lines)
    _check_line_distances(builder, max_line_distance_m)
    return Ledger(
        assets=tuple(builder.assets.values()),
        lines=tuple(builder.lines.values()),
        issues=tuple(builder.issues),
    )
