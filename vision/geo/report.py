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

from vision.geo.ledger import Ledger
from vision.geo.reconcile import STATUS_NAMES, ReconcileResult
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
        photos: photo records in the order given to :func:`vision.geo.reconcile.reconcile`.
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
    _add_ledger_assets(out, batch_id, ledger, photo_ids, result)
    _add_unregistered(out, batch_id, photo_ids, result)
    _add_hazards(out, batch_id, result)
    return out


def _add_ledger_assets(
    out: BatchRecords, batch_id: str, ledger: Ledger, photo_ids: Sequence[str],
    result: ReconcileResult,
) -> None:
    """An asset record per ledger asset, and its issue where it was flown and not seen or
    seen elsewhere."""
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


def _add_unregistered(
    out: BatchRecords, batch_id: str, photo_ids: Sequence[str], result: ReconcileResult
) -> None:
    """An asset record and an issue per asset seen but not in the ledger."""
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


def _add_hazards(out: BatchRecords, batch_id: str, result: ReconcileResult) -> None:
    """A corridor-hazard record per hazard found from a ground point."""
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
            "model": d.model, "model_version": d.model_version,
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
                  "uncertainty_m": _round(p.uncertainty_m), "truncated": p.truncated})
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


# ----------------------------------------------------------------------------- progress


@dataclass(frozen=True)
class BatchProgress:
    """Where a batch stands when its outputs are written: photos done of all, rate, time left.

    A running batch's outputs are rewritten as photos finish, so they can be opened at any
    moment; ``finished`` marks the final write.
    """

    done: int
    total: int
    elapsed_s: float
    finished: bool = False

    @property
    def per_minute(self) -> float | None:
        """Photos per minute so far (None before the first photo)."""
        return 60.0 * self.done / self.elapsed_s if self.done and self.elapsed_s > 0 else None

    @property
    def seconds_left(self) -> float | None:
        """Estimated seconds to the end at the rate so far (None without a rate)."""
        if self.finished:
            return 0.0
        rate = self.per_minute
        return None if rate is None else 60.0 * (self.total - self.done) / rate

    def as_json(self) -> dict[str, object]:
        """``progress.json``: what a script or a page polls."""
        rate, left = self.per_minute, self.seconds_left
        return {
            "state": "finished" if self.finished else "running",
            "done": self.done,
            "total": self.total,
            "elapsed_s": round(self.elapsed_s, 1),
            "photos_per_minute": None if rate is None else round(rate, 1),
            "seconds_left": None if left is None else round(left),
        }


def _duration(seconds: float | None, lang: str) -> str:
    if seconds is None:
        return "—"
    minutes = round(seconds / 60)
    hours, minutes = divmod(minutes, 60)
    if lang == "en":
        return f"{hours} h {minutes} min" if hours else f"{minutes} min"
    return f"{hours} 小时 {minutes} 分钟" if hours else f"{minutes} 分钟"


def progress_line(progress: BatchProgress, lang: str) -> str:
    """The report's status line, in ``lang``."""
    t = _texts(lang)
    rate = progress.per_minute
    values = {
        "done": progress.done, "total": progress.total,
        "rate": "—" if rate is None else f"{rate:.1f}",
        "left": _duration(progress.seconds_left, lang),
        "elapsed": _duration(progress.elapsed_s, lang),
    }
    return (t["progress_finished"] if progress.finished else t["progress_running"]).format(**values)


# ----------------------------------------------------------------------------- HTML + SVG
_COLOURS = {"inspected": "#2e7d32", "uninspected": "#9e9e9e",
            "unregistered": "#1565c0", "position_mismatch": "#ef6c00"}

#: Report languages: zh-CN (the default, as field_api's) and en.
REPORT_LANGUAGES = ("zh-CN", "en")

#: Words for the report, per language. Statuses and issue kinds in words, never raw values.
_TEXTS: dict[str, dict[str, str]] = {
    "zh-CN": {
        "title": "巡检批次 {batch_id}",
        "progress_running": "正在运行：已完成 {done} / {total} 张照片，每分钟 {rate} 张，"
                            "预计还需 {left}（本页随照片完成而更新，每 30 秒自动刷新）",
        "progress_finished": "已完成：{total} 张照片，本次运行用时 {elapsed}",
        "model": "检测模型",
        "photos": "照片",
        "with_problems": "有问题的照片",
        "detections": "检测框",
        "map": "地图",
        "defect": "缺陷",
        "corridor_hazard": "通道隐患",
        "defective_assets": "有缺陷的杆塔",
        "worst_severity": "最高严重度 {severity}",
        "severity": "严重度 {severity}",
        "no_defective_asset": "没有缺陷关联到杆塔。",
        "defects": "全部缺陷",
        "defects_note": "已定位：由照片地面点定位；照片位置：无地面点，按照片所见杆塔；"
                        "按航线推算：照片无位置，由同一航次前后照片按拍摄时间推算；"
                        "未定位：照片无位置。",
        "class": "类别",
        "confidence": "置信度",
        "asset": "杆塔",
        "location": "定位",
        "photo": "照片",
        "evidence": "证据",
        "no_defect": "本批次没有缺陷。",
        "located": "已定位",
        "photo_position": "照片位置",
        "flight_position": "按航线推算",
        "unlocated": "未定位",
        "hazards": "通道隐患",
        "line": "线路",
        "distance_to_line": "距线路（米）",
        "no_hazard": "通道内没有隐患。",
        "ledger_issues": "台账问题",
        "issue": "问题",
        "detail": "说明",
        "problem_photos": "有问题的照片",
        "skipped_files": "跳过的文件（不是照片）",
        "inspected": "已巡检",
        "uninspected": "未巡检",
        "unregistered": "台账外杆塔",
        "position_mismatch": "位置与台账不符",
        "corridor hazards": "通道隐患",
        "not_flown": "未飞到",
        "issue_uninspected": "飞行范围内但没有照片拍到",
        "issue_unregistered": "在 {photos} 张照片中看到 {sightings} 次，台账中没有",
        "issue_position_mismatch": "看到的位置距台账位置 {offset} 米（{sightings} 次）",
    },
    "en": {
        "title": "Inspection batch {batch_id}",
        "progress_running": "Running: {done} of {total} photos done, {rate} photos a minute, "
                            "about {left} left (this page is rewritten as photos finish and "
                            "reloads every 30 s)",
        "progress_finished": "Finished: {total} photos, this run took {elapsed}",
        "model": "Detection model",
        "photos": "photos",
        "with_problems": "with problems",
        "detections": "detections",
        "map": "Map",
        "defect": "defect",
        "corridor_hazard": "corridor hazard",
        "defective_assets": "Defective assets",
        "worst_severity": "worst severity {severity}",
        "severity": "severity {severity}",
        "no_defective_asset": "No defect attached to an asset.",
        "defects": "All defects",
        "defects_note": "located: by the photo's ground point; photo position: no ground point, "
                        "the asset the photo shows; placed from its flight: the photo had no "
                        "position, estimated from the photos taken before and after it; "
                        "unlocated: the photo has no position.",
        "class": "class",
        "confidence": "confidence",
        "asset": "asset",
        "location": "location",
        "photo": "photo",
        "evidence": "evidence",
        "no_defect": "No defect in this batch.",
        "located": "located",
        "photo_position": "photo position",
        "flight_position": "placed from its flight",
        "unlocated": "unlocated",
        "hazards": "Corridor hazards",
        "line": "line",
        "distance_to_line": "distance to line (m)",
        "no_hazard": "None inside the corridors.",
        "ledger_issues": "Ledger issues",
        "issue": "issue",
        "detail": "detail",
        "problem_photos": "Photos with problems",
        "skipped_files": "Skipped files (not photos)",
        "inspected": "inspected",
        "uninspected": "not inspected",
        "unregistered": "not in the ledger",
        "position_mismatch": "position differs from the ledger",
        "corridor hazards": "corridor hazards",
        "not_flown": "not flown",
        "issue_uninspected": "in the flown area but on no photo",
        "issue_unregistered": "seen {sightings} times on {photos} photos, not in the ledger",
        "issue_position_mismatch": "seen {offset} m from its ledger position ({sightings} "
                                   "sightings)",
    },
}

_TEMPLATE = """<!doctype html>
<html lang="{{ lang }}"><head><meta charset="utf-8"><title>{{ title }}</title>
{% if running %}<meta http-equiv="refresh" content="30">{% endif %}
<style>
body{font-family:sans-serif;margin:1.5em;color:#222}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left}svg{background:#f7f5ef;
border:1px solid #bbb}.crop{max-width:260px;max-height:200px;margin:.3em;border:1px solid #888}
.legend span{display:inline-block;margin-right:1em}.sw{width:.8em;height:.8em;
display:inline-block;margin-right:.3em;border-radius:50%}
</style></head><body>
<h1>{{ title }}</h1>
{% if status %}<p id="progress">{{ status }}</p>{% endif %}
{% if models %}<p id="model">{{ t.model }}: {{ models }}</p>{% endif %}
<table><tr><th>{{ t.photos }}</th><td>{{ n_photos }}</td><th>{{ t.with_problems }}</th>
<td>{{ n_problems }}</td><th>{{ t.detections }}</th><td>{{ n_detections }}</td></tr>
{% for name, count in counts %}<tr><th colspan="2">{{ name }}</th><td colspan="4">{{ count }}
</td></tr>{% endfor %}</table>
<h2>{{ t.map }}</h2>
<div class="legend">{% for name, colour in colours %}<span><i class="sw"
 style="background:{{ colour }}"></i>{{ name }}</span>{% endfor %}<span>&#x2716; {{ t.defect }}
</span><span>&#x25B2; {{ t.corridor_hazard }}</span></div>
{{ svg | safe }}
<h2>{{ t.defective_assets }}</h2>
{% for a in defective %}
<section><h3>{{ a.name }} ({{ a.asset_id }}) &mdash; {{ a.status }},
{{ a.worst }}</h3>
{% for d in a.defects %}<figure style="display:inline-block"><img class="crop"
 src="{{ d.evidence_crop }}" alt="{{ d.class_name }}"><figcaption>{{ d.class_name }}
 {{ '%.2f' % d.confidence }}, {{ d.severity_text }}</figcaption></figure>{% endfor %}
</section>
{% else %}<p>{{ t.no_defective_asset }}</p>{% endfor %}
<h2 id="defects">{{ t.defects }}</h2>
{% if defects %}<p>{{ t.defects_note }}</p>
<table><tr><th>{{ t.class }}</th><th>{{ t.confidence }}</th><th>{{ t.asset }}</th>
<th>{{ t.location }}</th><th>{{ t.photo }}</th><th>{{ t.evidence }}</th></tr>
{% for d in defects %}<tr class="{{ d.location_key }}"><td>{{ d.class_name }},
{{ d.severity_text }}</td><td>{{ '%.2f' % d.confidence }}</td><td>{{ d.asset }}</td>
<td>{{ d.location }}</td><td>{{ d.photo }}</td>
<td>{% if d.evidence_crop %}<img class="crop" src="{{ d.evidence_crop }}" alt="">{% endif %}
</td></tr>{% endfor %}</table>{% else %}<p>{{ t.no_defect }}</p>{% endif %}
<h2>{{ t.hazards }}</h2>
{% if hazards %}<table><tr><th>{{ t.line }}</th><th>{{ t.class }}</th>
<th>{{ t.distance_to_line }}</th><th>{{ t.severity_head }}</th><th>{{ t.evidence }}</th></tr>
{% for h in hazards %}<tr><td>{{ h.line_id }}</td><td>{{ h.class_name }}</td>
<td>{{ h.distance_to_line_m }}</td><td>{{ h.severity }}</td>
<td>{% if h.evidence_crop %}<img class="crop" src="{{ h.evidence_crop }}" alt="">{% endif %}
</td></tr>{% endfor %}</table>{% else %}<p>{{ t.no_hazard }}</p>{% endif %}
<h2>{{ t.ledger_issues }}</h2>
<table><tr><th>{{ t.issue }}</th><th>{{ t.asset }}</th><th>{{ t.detail }}</th></tr>
{% for i in issues %}<tr><td>{{ i.kind }}</td><td>{{ i.asset_id }}</td><td>{{ i.detail }}</td>
</tr>{% endfor %}</table>
<h2>{{ t.problem_photos }}</h2>
<table>{% for p in problem_photos %}<tr><td>{{ p.path }}</td><td>{{ p.problems | join('; ') }}
</td></tr>{% endfor %}</table>
{% if skipped %}<h2>{{ t.skipped_files }}</h2>
<ul>{% for name in skipped %}<li>{{ name }}</li>{% endfor %}</ul>{% endif %}
</body></html>
"""


def svg_map(
    ledger: Ledger,
    records: BatchRecords,
    *,
    size_px: int = 900,
    words: dict[str, str] | None = None,
) -> str:
    """A self-contained SVG map (no tiles): lines, assets by status, defects, hazards.

    ``words`` names each status in the report's language (raw values otherwise).
    """
    words = words or {}
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
    frame = _MapFrame.around(points, size_px)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{frame.width:.0f}" '
             f'height="{frame.height:.0f}" viewBox="0 0 {frame.width:.1f} {frame.height:.1f}">']
    routes = ((ln.name, part) for ln in ledger.lines for part in ln.parts)
    for name, route in (r for r in routes if frame.crosses(r[1])):
        pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in (frame.xy(*c) for c in route))
        parts.append(f'<polyline points="{pts}" fill="none" stroke="#555" stroke-width="1.5">'
                     f"<title>{_esc(name)}</title></polyline>")
    for p in records.photos:
        if p.camera and frame.inside(p.camera.lon, p.camera.lat):
            x, y = frame.xy(p.camera.lon, p.camera.lat)
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="1.5" fill="#90a4ae"/>')
    parts += _svg_assets(frame, records, words)
    parts += _svg_findings(frame, records)
    parts.append("</svg>")
    return "\n".join(parts)


@dataclass(frozen=True)
class _MapFrame:
    """The map's extent (the points plus a 10 % margin) and its equirectangular projection."""

    west: float
    east: float
    south: float
    north: float
    kx: float
    scale: float
    pad: float
    width: float
    height: float

    @classmethod
    def around(cls, points: Sequence[tuple[float, float]], size_px: int) -> _MapFrame:
        lons, lats = [p[0] for p in points], [p[1] for p in points]
        margin_lon = max((max(lons) - min(lons)) * 0.1, 0.001)
        margin_lat = max((max(lats) - min(lats)) * 0.1, 0.001)
        west, east = min(lons) - margin_lon, max(lons) + margin_lon
        south, north = min(lats) - margin_lat, max(lats) + margin_lat
        kx = math.cos(math.radians((south + north) / 2.0))  # fine at the scale of a batch
        span_x = max((east - west) * kx, 1e-6)
        span_y = max(north - south, 1e-6)
        pad = 20.0
        scale = (size_px - 2 * pad) / max(span_x, span_y)
        return cls(west, east, south, north, kx, scale, pad,
                   width=span_x * scale + 2 * pad, height=span_y * scale + 2 * pad)

    def inside(self, lon: float, lat: float) -> bool:
        return self.west <= lon <= self.east and self.south <= lat <= self.north

    def crosses(self, route: Sequence[tuple[float, float]]) -> bool:
        xs, ys = [c[0] for c in route], [c[1] for c in route]
        return (min(xs) <= self.east and max(xs) >= self.west
                and min(ys) <= self.north and max(ys) >= self.south)

    def xy(self, lon: float, lat: float) -> tuple[float, float]:
        return (self.pad + (lon - self.west) * self.kx * self.scale,
                self.pad + (self.north - lat) * self.scale)


def _svg_assets(frame: _MapFrame, records: BatchRecords, words: dict[str, str]) -> list[str]:
    """A dot per asset by status (a dashed line to where a misplaced one was seen)."""
    parts: list[str] = []
    for a in records.assets:
        if not frame.inside(a.position.lon, a.position.lat):
            continue
        x, y = frame.xy(a.position.lon, a.position.lat)
        colour = _COLOURS[a.status]
        if a.observed and a.status == "position_mismatch":
            ox, oy = frame.xy(a.observed.lon, a.observed.lat)
            parts.append(f'<line x1="{x:.1f}" y1="{y:.1f}" x2="{ox:.1f}" y2="{oy:.1f}" '
                         f'stroke="{colour}" stroke-dasharray="3,2"/>')
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5" fill="{colour}" stroke="#fff">'
                     f"<title>{_esc(a.name)} ({_esc(a.asset_id)}): "
                     f"{_esc(words.get(a.status, a.status))}</title></circle>")
    return parts


def _svg_findings(frame: _MapFrame, records: BatchRecords) -> list[str]:
    """A cross per located defect and a triangle per corridor hazard."""
    parts: list[str] = []
    for d in records.detections:
        if d.role == "defect" and d.ground and frame.inside(d.ground.lon, d.ground.lat):
            x, y = frame.xy(d.ground.lon, d.ground.lat)
            parts.append(f'<text x="{x:.1f}" y="{y:.1f}" fill="#c62828" font-size="11" '
                         f'text-anchor="middle" dy="4">&#x2716;<title>{_esc(d.class_name)}'
                         f"</title></text>")
    for h in records.hazards:
        if not frame.inside(h.ground.lon, h.ground.lat):
            continue
        x, y = frame.xy(h.ground.lon, h.ground.lat)
        parts.append(f'<text x="{x:.1f}" y="{y:.1f}" fill="#f9a825" font-size="12" '
                     f'text-anchor="middle" dy="4">&#x25B2;<title>{_esc(h.class_name)} '
                     f"{h.distance_to_line_m} m</title></text>")
    return parts


def _esc(text: str) -> str:
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def _texts(lang: str) -> dict[str, str]:
    if lang not in _TEXTS:
        raise ValueError(f"report language {lang!r} is not one of {', '.join(REPORT_LANGUAGES)}")
    return _TEXTS[lang]


def _location_key(d: DetectionRecord, photo: PhotoRecord | None) -> str:
    """located (a ground point), photo_position (the asset its photo shows), flight_position
    (the same, the photo placed from its flight) or unlocated."""
    if d.ground is not None:
        return "located"
    if photo is not None and photo.camera is not None:
        return "flight_position" if photo.position_from_flight else "photo_position"
    return "unlocated"


def _defect_rows(
    records: BatchRecords, photo_of: dict[str, Any], t: dict[str, str]
) -> list[dict[str, Any]]:
    """The report's defect table: worst first, each with where it was located."""
    rows = []
    for d in sorted((d for d in records.detections if d.role == "defect"),
                    key=lambda d: (-d.severity, d.photo_id, d.id)):
        photo = photo_of.get(d.photo_id)
        key = _location_key(d, photo)
        rows.append({
            "class_name": d.class_name,
            "severity_text": t["severity"].format(severity=d.severity),
            "confidence": d.confidence,
            "asset": d.asset_id or "—",
            "location_key": key,
            "location": t[key],
            "photo": Path(photo.path).name if photo else d.photo_id[:12],
            "evidence_crop": d.evidence_crop,
        })
    return rows


def html_report(
    ledger: Ledger,
    records: BatchRecords,
    batch_id: str,
    *,
    lang: str = "zh-CN",
    skipped: Sequence[str] = (),
    progress: BatchProgress | None = None,
) -> str:
    """The batch report as one HTML page (crops referenced relative to the output folder).

    Args:
        ledger: the ledger reconciled against.
        records: the batch's records.
        batch_id: the batch's id.
        lang: ``zh-CN`` (default) or ``en``; statuses and issues are words in that language.
        skipped: files of the photo folder that are not photos, listed as skipped.
        progress: where the run stands (a running batch's page says so and reloads itself).

    Raises:
        ValueError: an unknown language.
    """
    t = _texts(lang)
    by_id = {d.id: d for d in records.detections}
    photo_of = {p.photo_id: p for p in records.photos}
    defective = [
        {"asset_id": a.asset_id, "name": a.name, "status": t[a.status],
         "worst": t["worst_severity"].format(severity=a.max_severity),
         "defects": [{**by_id[i].model_dump(),
                      "severity_text": t["severity"].format(severity=by_id[i].severity)}
                     for i in a.defect_ids if by_id[i].evidence_crop]}
        for a in sorted(records.assets, key=lambda a: -a.max_severity)
        if a.defect_ids
    ]
    defects = _defect_rows(records, photo_of, t)
    counts: dict[str, int] = {}
    for a in records.assets:
        counts[a.status] = counts.get(a.status, 0) + 1
    issues = []
    for i in records.issues:
        detail = t[f"issue_{i.issue}"].format(
            offset=f"{i.offset_m:.1f}" if i.offset_m is not None else "?",
            sightings=i.sightings, photos=len(i.photo_ids),
        )
        issues.append({"kind": t[i.issue], "asset_id": i.asset_id, "detail": detail})
    env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
    return env.from_string(_TEMPLATE).render(
        lang=lang,
        t={**t, "severity_head": t["severity"].format(severity="").strip()},
        title=t["title"].format(batch_id=batch_id),
        n_photos=len(records.photos),
        n_problems=sum(1 for p in records.photos if p.problems),
        n_detections=len(records.detections),
        counts=[*((t[k], v) for k, v in sorted(counts.items())),
                (t["corridor hazards"], len(records.hazards))],
        colours=[(t[k], v) for k, v in _COLOURS.items()],
        svg=svg_map(ledger, records, words=t),
        defective=defective,
        defects=defects,
        hazards=records.hazards,
        issues=issues,
        problem_photos=[p for p in records.photos if p.problems],
        skipped=list(skipped),
        status=None if progress is None else progress_line(progress, lang),
        models=", ".join(sorted({f"{d.model} v{d.model_version}" if d.model_version
                                 else str(d.model) for d in records.detections if d.model})),
        running=progress is not None and not progress.finished,
    )


#: Every CSV starts with a UTF-8 byte order mark so Excel opens Chinese text correctly.
CSV_BOM = "\ufeff"


def write_outputs(
    out_dir: Path,
    ledger: Ledger,
    records: BatchRecords,
    *,
    lang: str = "zh-CN",
    skipped: Sequence[str] = (),
    progress: BatchProgress | None = None,
) -> dict[str, Path]:
    """Write the GeoJSON layers, CSV summary, ledger validation CSV, HTML report and, with
    ``progress``, ``progress.json``. Each file is replaced atomically, so a reader never sees a
    half-written one while a running batch rewrites them.

    CSV files start with a UTF-8 byte order mark; the report is in ``lang``.
    """
    batch_id = records.photos[0].batch_id if records.photos else "empty"
    files = {
        "assets": ("assets.geojson", asset_layer(ledger, records)),
        "lines": ("lines.geojson", line_layer(ledger)),
        "defects": ("defects.geojson", defect_layer(records)),
        "photos": ("photos.geojson", photo_layer(records)),
        "corridor_hazards": ("corridor_hazards.geojson", hazard_layer(records)),
        "summary": ("summary.csv", CSV_BOM + summary_csv(records)),
        "ledger_validation": ("ledger_validation.csv", CSV_BOM + ledger_validation_csv(ledger)),
        "report": ("report.html", html_report(ledger, records, batch_id, lang=lang,
                                              skipped=skipped, progress=progress)),
    }
    if progress is not None:
        files["progress"] = ("progress.json", json.dumps(progress.as_json(), indent=1) + "\n")
    out: dict[str, Path] = {}
    for key, (name, text) in files.items():
        path = out_dir / name
        _write_text_atomic(path, text)
        out[key] = path
    return out
