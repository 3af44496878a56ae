"""Batch outputs: finding records, GeoJSON layers, a CSV summary and an offline HTML report.

Layers (RFC 7946 GeoJSON, WGS84 lon/lat, open directly in QGIS):

* ``assets.geojson``: every ledger asset with its ledger ``Identifier``, ``Name`` and
  ``GroupIdentifier`` plus ``status`` ∈ {inspected, uninspected, unregistered, position_mismatch};
  unregistered assets are added at the position they were seen.
* ``defects.geojson``: defect detections at their ground point, with their asset.
* ``photos.geojson``: photo ground footprints (polygons).
* ``corridor_hazards.geojson``: hazards inside line corridors with their distance to the line.
* ``lines.geojson``: the ledger's lines with their corridor width.

``report.html`` needs no network and no tile server: an inline SVG map of lines, assets,
defects and hazards on a plain background, then one section per defective asset with its
annotated evidence crops. Every file is written to a temporary name and renamed into place.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from jinja2 import Environment, select_autoescape
from pydantic import BaseModel

from vision.ledger import Ledger
from vision.reconcile import STATUS_NAMES, ReconcileResult
from vision.records import (
    AssetRecord,
    CorridorHazardRecord,
    DetectionRecord,
    GeoPoint,
    LedgerIssueRecord,
    LineRecord,
    PhotoRecord,
    stable_id,
)


@dataclass
class BatchRecords:
    """All finding records of one batch, by kind."""

    lines: list[LineRecord] = field(default_factory=list)
    photos: list[PhotoRecord] = field(default_factory=list)
    detections: list[DetectionRecord] = field(default_factory=list)
    assets: list[AssetRecord] = field(default_factory=list)
    hazards: list[CorridorHazardRecord] = field(default_factory=list)
    issues: list[LedgerIssueRecord] = field(default_factory=list)

    def all(self) -> Iterator[BaseModel]:
        """Every record, lines and photos first (the order an importer needs for references)."""
        yield from self.lines
        yield from self.photos
        yield from self.detections
        yield from self.assets
        yield from self.hazards
        yield from self.issues


def _round(value: float | None, digits: int = 2) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(value, digits)


def build_records(
    batch_id: str,
    ledger: Ledger,
    photos: Sequence[PhotoRecord],
    detections: Sequence[DetectionRecord],
    result: ReconcileResult,
) -> BatchRecords:
    """Turn a reconciliation into finding records (see :mod:`vision.records`).

    Args:
        batch_id: the batch's id.
        ledger: the ledger reconciled against.
        photos: photo records in the order given to :func:`vision.reconcile.reconcile`.
        detections: detection records in that order.
        result: the reconciliation.
    """
    out = BatchRecords()
    out.lines = [
        LineRecord(id=stable_id("line", batch_id, ln.identifier), batch_id=batch_id,
                   line_id=ln.identifier, name=ln.name, district=ln.district,
                   corridor_width_m=ln.corridor_width_m, derived=ln.derived,
                   parts=[list(part) for part in ln.parts])
        for ln in ledger.lines
    ]
    out.photos = [p.model_copy(update={"asset_id": a})
                  for p, a in zip(photos, result.photo_asset, strict=True)]
    out.detections = [
        d.model_copy(update={
            "asset_id": a,
            "distance_to_asset_m": _round(float(dist)),
            "attach": how,
        })
        for d, a, dist, how in zip(detections, result.detection_asset,
                                   result.detection_distance_m, result.detection_attach,
                                   strict=True)
    ]
    photo_ids = [p.photo_id for p in photos]
    in_view = result.in_view if len(result.in_view) else np.ones(len(ledger.assets), dtype=bool)
    for i, asset in enumerate(ledger.assets):
        status = STATUS_NAMES[int(result.status[i])]
        det_rows = result.asset_detections.get(i, [])
        defects = [out.detections[r] for r in det_rows if out.detections[r].role == "defect"]
        seen = result.sightings.get(i)
        position = GeoPoint(lat=asset.lat, lon=asset.lon)
        observed = GeoPoint(lat=seen.lat, lon=seen.lon) if seen else None
        pids = [photo_ids[r] for r in result.asset_photos.get(i, [])]
        out.assets.append(AssetRecord(
            id=stable_id("asset", batch_id, asset.identifier),
            batch_id=batch_id,
            asset_id=asset.identifier,
            name=asset.name,
            line_id=asset.line_id,
            status=status,
            position=position,
            observed=observed,
            offset_m=_round(seen.offset_m) if seen else None,
            sightings=seen.sightings if seen else 0,
            photo_ids=pids,
            detection_ids=[out.detections[r].id for r in det_rows],
            defect_ids=[d.id for d in defects],
            max_severity=max((d.severity for d in defects), default=0),
        ))
        if status == "uninspected" and in_view[i]:
            # Only where the flight looked: the rest of the ledger was not flown.
            out.issues.append(LedgerIssueRecord(
                id=stable_id("ledger_issue", batch_id, "uninspected", asset.identifier),
                batch_id=batch_id, issue="uninspected", asset_id=asset.identifier,
                line_id=asset.line_id, position=position,
                detail="no photo of this asset in the batch",
            ))
        elif status == "position_mismatch" and seen is not None:
            out.issues.append(LedgerIssueRecord(
                id=stable_id("ledger_issue", batch_id, "position_mismatch", asset.identifier),
                batch_id=batch_id, issue="position_mismatch", asset_id=asset.identifier,
                line_id=asset.line_id, position=position, observed=observed,
                offset_m=_round(seen.offset_m), sightings=seen.sightings, photo_ids=pids,
                detail=f"seen {seen.offset_m:.1f} m from the ledger position in "
                       f"{seen.sightings} sightings on {seen.photos} photos",
            ))
    for u in result.unregistered:
        det_ids = [out.detections[r].id for r in u.detection_indices]
        defects = [d for d in out.detections if d.asset_id == u.asset_id and d.role == "defect"]
        here = GeoPoint(lat=u.lat, lon=u.lon)
        pids = [photo_ids[r] for r in u.photo_indices]
        out.assets.append(AssetRecord(
            id=stable_id("asset", batch_id, u.asset_id), batch_id=batch_id,
            asset_id=u.asset_id, name=u.asset_id, status="unregistered", position=here,
            observed=here, sightings=len(det_ids), photo_ids=pids,
            detection_ids=det_ids + [d.id for d in defects], defect_ids=[d.id for d in defects],
            max_severity=max((d.severity for d in defects), default=0),
        ))
        out.issues.append(LedgerIssueRecord(
            id=stable_id("ledger_issue", batch_id, "unregistered", u.asset_id),
            batch_id=batch_id, issue="unregistered", asset_id=u.asset_id, position=here,
            observed=here, sightings=len(det_ids), photo_ids=pids,
            detail=f"asset seen {len(det_ids)} times on {len(pids)} photos, not in the ledger",
        ))
    for h in result.hazards:
        d = out.detections[h.detection_index]
        if d.ground is None:  # hazards are only found from a ground point
            continue
        out.hazards.append(CorridorHazardRecord(
            id=stable_id("corridor_hazard", d.id, h.line_id), batch_id=batch_id,
            detection_id=d.id, photo_id=d.photo_id, class_name=d.class_name,
            line_id=h.line_id, distance_to_line_m=round(h.distance_m, 2),
            corridor_width_m=h.corridor_width_m, ground=d.ground, severity=d.severity,
            confidence=d.confidence, evidence_crop=d.evidence_crop,
        ))
    return out


# ----------------------------------------------------------------------------- writing
def _write_text_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def _feature(geometry: dict[str, Any], props: dict[str, Any]) -> dict[str, Any]:
    return {"type": "Feature", "geometry": geometry, "properties": props}


def _point(p: GeoPoint) -> dict[str, Any]:
    return {"type": "Point", "coordinates": [round(p.lon, 7), round(p.lat, 7)]}


def _collection(features: list[dict[str, Any]]) -> str:
    return json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False)


def asset_layer(ledger: Ledger, records: BatchRecords) -> str:
    """GeoJSON of assets: ledger properties kept, ``status`` and evidence counts added."""
    by_id = {a.identifier: a for a in ledger.assets}
    feats = []
    for rec in records.assets:
        src = by_id.get(rec.asset_id)
        props: dict[str, Any] = {
            "Identifier": rec.asset_id,
            "Name": rec.name,
            "GroupIdentifier": rec.line_id,
            "AssetType": src.asset_type if src else None,
            "Height": src.height_m if src else None,
            "District": src.district if src else None,
            "Equipment": src.equipment if src else None,
            "status": rec.status,
            "photos": len(rec.photo_ids),
            "detections": len(rec.detection_ids),
            "defects": len(rec.defect_ids),
            "max_severity": rec.max_severity,
            "offset_m": rec.offset_m,
            "observed_lat": rec.observed.lat if rec.observed else None,
            "observed_lon": rec.observed.lon if rec.observed else None,
        }
        feats.append(_feature(_point(rec.position), props))
    return _collection(feats)


def _line_geometry(parts: Sequence[Sequence[tuple[float, float]]]) -> dict[str, Any]:
    rounded = [[[round(x, 7), round(y, 7)] for x, y in part] for part in parts]
    if len(rounded) == 1:
        return {"type": "LineString", "coordinates": rounded[0]}
    return {"type": "MultiLineString", "coordinates": rounded}


def line_layer(ledger: Ledger) -> str:
    """GeoJSON of the ledger's lines with their corridor width (drawn ones marked derived)."""
    feats = [
        _feature(_line_geometry(ln.parts),
                 {"Identifier": ln.identifier, "Name": ln.name, "kind": "line",
                  "CorridorWidth": ln.corridor_width_m, "derived": ln.derived})
        for ln in ledger.lines
    ]
    return _collection(feats)


def defect_layer(records: BatchRecords) -> str:
    """GeoJSON of geo-referenced defect detections."""
    feats = [
        _feature(_point(d.ground), {
            "id": d.id, "class": d.class_name, "severity": d.severity,
            "confidence": round(d.confidence, 3), "asset": d.asset_id,
            "distance_to_asset_m": d.distance_to_asset_m, "uncertainty_m": _round(d.uncertainty_m),
            "photo_id": d.photo_id, "evidence_crop": d.evidence_crop,
        })
        for d in records.detections if d.role == "defect" and d.ground is not None
    ]
    return _collection(feats)


def photo_layer(records: BatchRecords) -> str:
    """GeoJSON polygons of photo footprints (photos that could be projected)."""
    feats = [
        _feature({"type": "Polygon", "coordinates": [[[round(x, 7), round(y, 7)]
                                                      for x, y in p.footprint]]},
                 {"id": p.id, "path": p.path, "asset": p.asset_id, "detections": p.detections,
                  "captured_at": p.captured_at.isoformat() if p.captured_at else None,
                  "uncertainty_m": _round(p.uncertainty_m)})
        for p in records.photos if p.footprint
    ]
    return _collection(feats)


def hazard_layer(records: BatchRecords) -> str:
    """GeoJSON of corridor hazards with their line and distance."""
    feats = [
        _feature(_point(h.ground), {
            "id": h.id, "class": h.class_name, "line": h.line_id,
            "distance_to_line_m": h.distance_to_line_m, "corridor_width_m": h.corridor_width_m,
            "severity": h.severity, "confidence": round(h.confidence, 3),
            "evidence_crop": h.evidence_crop,
        })
        for h in records.hazards
    ]
    return _collection(feats)


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    # A cell starting with = + - @ runs as a formula in Excel: quote it.
    if text[:1] in {"=", "+", "-", "@"} and not _is_number(text):
        return "'" + text
    return text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def summary_csv(records: BatchRecords) -> str:
    """One row per asset: status, counts, worst severity, offset."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["Identifier", "Name", "GroupIdentifier", "status", "photos", "detections",
                     "defects", "max_severity", "offset_m", "observed_lat", "observed_lon"])
    for a in records.assets:
        writer.writerow([_cell(v) for v in (
            a.asset_id, a.name, a.line_id, a.status, len(a.photo_ids), len(a.detection_ids),
            len(a.defect_ids), a.max_severity, a.offset_m,
            a.observed.lat if a.observed else None, a.observed.lon if a.observed else None,
        )])
    return buf.getvalue()


def ledger_validation_csv(ledger: Ledger) -> str:
    """The ledger import report: one row per problem row."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["source", "row", "Identifier", "problem", "message"])
    for i in ledger.issues:
        writer.writerow([_cell(v) for v in (i.source, i.row, i.identifier, i.code, i.message)])
    return buf.getvalue()


# ----------------------------------------------------------------------------- HTML + SVG
_COLOURS = {"inspected": "#2e7d32", "uninspected": "#9e9e9e",
            "unregistered": "#1565c0", "position_mismatch": "#ef6c00"}

_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Inspection batch {{ batch_id }}</title>
<style>
body{font-family:sans-serif;margin:1.5em;color:#222}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left}svg{background:#f7f5ef;
border:1px solid #bbb}.crop{max-width:260px;max-height:200px;margin:.3em;border:1px solid #888}
.legend span{display:inline-block;margin-right:1em}.sw{width:.8em;height:.8em;
display:inline-block;margin-right:.3em;border-radius:50%}
</style></head><body>
<h1>Inspection batch {{ batch_id }}</h1>
<table><tr><th>photos</th><td>{{ n_photos }}</td><th>with problems</th><td>{{ n_problems }}</td>
<th>detections</th><td>{{ n_detections }}</td></tr>
{% for name, count in counts %}<tr><th colspan="2">{{ name }}</th><td colspan="4">{{ count }}
</td></tr>{% endfor %}</table>
<h2>Map</h2>
<div class="legend">{% for name, colour in colours %}<span><i class="sw"
 style="background:{{ colour }}"></i>{{ name }}</span>{% endfor %}<span>&#x2716; defect</span>
<span>&#x25B2; corridor hazard</span></div>
{{ svg | safe }}
<h2>Defective assets</h2>
{% for a in defective %}
<section><h3>{{ a.name }} ({{ a.asset_id }}) &mdash; {{ a.status }}, worst severity
{{ a.max_severity }}</h3>
{% for d in a.defects %}<figure style="display:inline-block"><img class="crop"
 src="{{ d.evidence_crop }}" alt="{{ d.class_name }}"><figcaption>{{ d.class_name }}
 {{ '%.2f' % d.confidence }}, severity {{ d.severity }}</figcaption></figure>{% endfor %}
</section>
{% else %}<p>No defect attached to an asset.</p>{% endfor %}
<h2>Corridor hazards</h2>
{% if hazards %}<table><tr><th>line</th><th>class</th><th>distance to line (m)</th>
<th>severity</th><th>evidence</th></tr>
{% for h in hazards %}<tr><td>{{ h.line_id }}</td><td>{{ h.class_name }}</td>
<td>{{ h.distance_to_line_m }}</td><td>{{ h.severity }}</td>
<td>{% if h.evidence_crop %}<img class="crop" src="{{ h.evidence_crop }}" alt="">{% endif %}
</td></tr>{% endfor %}</table>{% else %}<p>None inside the corridors.</p>{% endif %}
<h2>Ledger issues</h2>
<table><tr><th>issue</th><th>asset</th><th>detail</th></tr>
{% for i in issues %}<tr><td>{{ i.issue }}</td><td>{{ i.asset_id }}</td><td>{{ i.detail }}</td>
</tr>{% endfor %}</table>
<h2>Photos with problems</h2>
<table>{% for p in problem_photos %}<tr><td>{{ p.path }}</td><td>{{ p.problems | join('; ') }}
</td></tr>{% endfor %}</table>
</body></html>
"""


def svg_map(ledger: Ledger, records: BatchRecords, *, size_px: int = 900) -> str:
    """A self-contained SVG map (no tiles): lines, assets by status, defects, hazards."""
    # The map shows where the batch found something: assets with evidence (a flight covers a
    # few lines of a ledger that may span a province), else the whole ledger. Photos do not
    # set it, so one wild GPS fix cannot shrink everything else to a dot.
    seen = [(a.position.lon, a.position.lat) for a in records.assets
            if a.status != "uninspected"]
    points = seen or [(a.position.lon, a.position.lat) for a in records.assets]
    if not seen:
        points += [c for ln in ledger.lines for part in ln.parts for c in part]
    if not points:
        return '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>'
    lons, lats = [p[0] for p in points], [p[1] for p in points]
    margin_lon = max((max(lons) - min(lons)) * 0.1, 0.001)
    margin_lat = max((max(lats) - min(lats)) * 0.1, 0.001)
    lons += [min(lons) - margin_lon, max(lons) + margin_lon]
    lats += [min(lats) - margin_lat, max(lats) + margin_lat]
    west, east, south, north = min(lons), max(lons), min(lats), max(lats)

    def inside(lon: float, lat: float) -> bool:
        return west <= lon <= east and south <= lat <= north

    def crosses(route: Sequence[tuple[float, float]]) -> bool:
        xs, ys = [c[0] for c in route], [c[1] for c in route]
        return min(xs) <= east and max(xs) >= west and min(ys) <= north and max(ys) >= south

    lat0 = (min(lats) + max(lats)) / 2.0
    kx = math.cos(math.radians(lat0))  # equirectangular: fine at the scale of a batch
    span_x = max((max(lons) - min(lons)) * kx, 1e-6)
    span_y = max(max(lats) - min(lats), 1e-6)
    pad = 20.0
    scale = (size_px - 2 * pad) / max(span_x, span_y)
    width = span_x * scale + 2 * pad
    height = span_y * scale + 2 * pad

    def xy(lon: float, lat: float) -> tuple[float, float]:
        return (pad + (lon - min(lons)) * kx * scale, pad + (max(lats) - lat) * scale)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" '
             f'height="{height:.0f}" viewBox="0 0 {width:.1f} {height:.1f}">']
    routes = ((ln.name, part) for ln in ledger.lines for part in ln.parts)
    for name, route in (r for r in routes if crosses(r[1])):
        pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in (xy(*c) for c in route))
        parts.append(f'<polyline points="{pts}" fill="none" stroke="#555" stroke-width="1.5">'
                     f"<title>{_esc(name)}</title></polyline>")
    for p in records.photos:
        if p.camera and inside(p.camera.lon, p.camera.lat):
            x, y = xy(p.camera.lon, p.camera.lat)
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="1.5" fill="#90a4ae"/>')
    for a in records.assets:
        if not inside(a.position.lon, a.position.lat):
            continue
        x, y = xy(a.position.lon, a.position.lat)
        colour = _COLOURS[a.status]
        if a.observed and a.status == "position_mismatch":
            ox, oy = xy(a.observed.lon, a.observed.lat)
            parts.append(f'<line x1="{x:.1f}" y1="{y:.1f}" x2="{ox:.1f}" y2="{oy:.1f}" '
                         f'stroke="{colour}" stroke-dasharray="3,2"/>')
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5" fill="{colour}" stroke="#fff">'
                     f"<title>{_esc(a.name)} ({_esc(a.asset_id)}): {a.status}</title></circle>")
    for d in records.detections:
        if d.role == "defect" and d.ground and inside(d.ground.lon, d.ground.lat):
            x, y = xy(d.ground.lon, d.ground.lat)
            parts.append(f'<text x="{x:.1f}" y="{y:.1f}" fill="#c62828" font-size="11" '
                         f'text-anchor="middle" dy="4">&#x2716;<title>{_esc(d.class_name)}'
                         f"</title></text>")
    for h in records.hazards:
        if not inside(h.ground.lon, h.ground.lat):
            continue
        x, y = xy(h.ground.lon, h.ground.lat)
        parts.append(f'<text x="{x:.1f}" y="{y:.1f}" fill="#f9a825" font-size="12" '
                     f'text-anchor="middle" dy="4">&#x25B2;<title>{_esc(h.class_name)} '
                     f"{h.distance_to_line_m} m</title></text>")
    parts.append("</svg>")
    return "\n".join(parts)


def _esc(text: str) -> str:
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def html_report(ledger: Ledger, records: BatchRecords, batch_id: str) -> str:
    """The batch report as one HTML page (crops referenced relative to the output folder)."""
    by_id = {d.id: d for d in records.detections}
    defective = [
        {"asset_id": a.asset_id, "name": a.name, "status": a.status,
         "max_severity": a.max_severity,
         "defects": [by_id[i] for i in a.defect_ids if by_id[i].evidence_crop]}
        for a in sorted(records.assets, key=lambda a: -a.max_severity)
        if a.defect_ids
    ]
    counts: dict[str, int] = {}
    for a in records.assets:
        counts[a.status] = counts.get(a.status, 0) + 1
    env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
    return env.from_string(_TEMPLATE).render(
        batch_id=batch_id,
        n_photos=len(records.photos),
        n_problems=sum(1 for p in records.photos if p.problems),
        n_detections=len(records.detections),
        counts=[*sorted(counts.items()), ("corridor hazards", len(records.hazards))],
        colours=list(_COLOURS.items()),
        svg=svg_map(ledger, records),
        defective=defective,
        hazards=records.hazards,
        issues=records.issues,
        problem_photos=[p for p in records.photos if p.problems],
    )


def write_outputs(out_dir: Path, ledger: Ledger, records: BatchRecords) -> dict[str, Path]:
    """Write the GeoJSON layers, CSV summary, ledger validation CSV and HTML report."""
    batch_id = records.photos[0].batch_id if records.photos else "empty"
    files = {
        "assets": ("assets.geojson", asset_layer(ledger, records)),
        "lines": ("lines.geojson", line_layer(ledger)),
        "defects": ("defects.geojson", defect_layer(records)),
        "photos": ("photos.geojson", photo_layer(records)),
        "corridor_hazards": ("corridor_hazards.geojson", hazard_layer(records)),
        "summary": ("summary.csv", summary_csv(records)),
        "ledger_validation": ("ledger_validation.csv", ledger_validation_csv(ledger)),
        "report": ("report.html", html_report(ledger, records, batch_id)),
    }
    out: dict[str, Path] = {}
    for key, (name, text) in files.items():
        path = out_dir / name
        _write_text_atomic(path, text)
        out[key] = path
    return out
