"""Versioned finding records: what an inspection batch hands to field_api.

One record per line of a JSONL file, each tagged with ``kind`` and ``schema_version``:

=================== ======================================================================
``line``            one ledger line: name, district, corridor width, route
``photo``           one photo: where the camera was, where it looked, the asset it shows
``detection``       one box: class and role, severity, ground point, attached asset, crop
``asset``           one ledger asset (or an unregistered one) and its status in the batch
``corridor_hazard`` a hazard detection inside a line corridor, with its distance to the line
``ledger_issue``    a ledger problem: ``unregistered``, ``uninspected``, ``position_mismatch``
=================== ======================================================================

Ids are content-derived (:func:`stable_id`), so running or importing the same batch twice yields
the same ids and an importer can upsert on ``id``. Pure: pydantic and the standard library only,
because field_api imports this module and must stay small.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

# Re-exported: field_api reaches vision only through vision.records (rec.RecordError).
from vision.errors import RecordError as RecordError

#: Bump when a field changes meaning or a required field is added; readers refuse newer ones.
SCHEMA_VERSION: Final = 1

Role = Literal["asset_marker", "defect", "corridor_hazard"]
AssetStatus = Literal["inspected", "uninspected", "unregistered", "position_mismatch"]
LedgerIssueKind = Literal["unregistered", "uninspected", "position_mismatch"]
AttachMethod = Literal["ground_point", "photo", "none"]


def stable_id(*parts: object) -> str:
    """A short content-derived id: the same parts always give the same id.

    Example:
        >>> stable_id("asset", "P-001") == stable_id("asset", "P-001")
        True
    """
    joined = "\x1f".join(str(p) for p in parts)
    return hashlib.sha256(joined.encode("utf-8")).hexdigest()[:24]


def model_parts(model: str | None) -> tuple[str | None, str | None]:
    """``"<card name>@<version>"`` (what batch.json and the batch row hold) → (name, version).

    Example:
        >>> model_parts("cplid-cascade@4"), model_parts("custom"), model_parts(None)
        (('cplid-cascade', '4'), ('custom', None), (None, None))
    """
    if not model:
        return None, None
    name, sep, version = model.rpartition("@")
    if not sep or not name:
        return model, None
    return name, version or None


class GeoPoint(BaseModel):
    """A WGS84 position in degrees."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    lat: float = Field(ge=-90.0, le=90.0)
    lon: float = Field(ge=-180.0, le=180.0)


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = SCHEMA_VERSION
    id: str = Field(min_length=1)
    batch_id: str = Field(min_length=1)


class LineRecord(_Record):
    """A line of the ledger the batch was checked against."""

    kind: Literal["line"] = "line"
    line_id: str
    name: str
    district: str | None = None
    corridor_width_m: float = Field(gt=0.0)
    #: True when the route was drawn through the poles (a CSV ledger has no line geometry).
    derived: bool = False
    #: Route parts, each a list of [lon, lat] pairs (GeoJSON MultiLineString order).
    parts: list[list[tuple[float, float]]]


class PhotoRecord(_Record):
    """One photo of the batch."""

    kind: Literal["photo"] = "photo"
    #: sha256 of the file's bytes: the same photo under another name is the same photo.
    photo_id: str = Field(min_length=64, max_length=64)
    #: Where the photo was read: relative to the photo folder in progress files, absolute
    #: in ``records.jsonl`` so an importer can copy it.
    path: str
    width_px: int = Field(ge=0)
    height_px: int = Field(ge=0)
    captured_at: datetime | None = None
    camera_model: str | None = None
    camera: GeoPoint | None = None
    altitude_m: float | None = None
    height_above_ground_m: float | None = None
    gimbal_yaw_deg: float | None = None
    gimbal_pitch_deg: float | None = None
    #: Ground point of the image centre and its one-sigma uncertainty.
    center: GeoPoint | None = None
    uncertainty_m: float | None = None
    #: Ground footprint ring as [lon, lat] pairs (GeoJSON order), first == last.
    footprint: list[tuple[float, float]] | None = None
    asset_id: str | None = None
    detections: int = Field(default=0, ge=0)
    problems: list[str] = Field(default_factory=list)
    #: True when the photo had no position of its own and ``camera`` was interpolated from
    #: the positioned photos of its flight (``uncertainty_m`` is then that estimate's).
    position_from_flight: bool = False
    #: True when the file is a JPEG cut short (e.g. by an SD card): it was decoded as far as
    #: its bytes go (the rest grey) and still searched; its detections stand.
    truncated: bool = False


class DetectionRecord(_Record):
    """One detected box and what it was matched to."""

    kind: Literal["detection"] = "detection"
    photo_id: str
    class_id: int = Field(ge=0)
    class_name: str
    role: Role
    confidence: float = Field(ge=0.0, le=1.0)
    severity: int = Field(ge=0)
    xyxy: tuple[float, float, float, float]
    ground: GeoPoint | None = None
    uncertainty_m: float | None = None
    asset_id: str | None = None
    #: Ground distance to the asset (to where it was seen, when seen off its ledger point).
    distance_to_asset_m: float | None = None
    #: ``ground_point``: matched by position; ``photo``: no ground point, so the asset the
    #: photo shows; ``none``: not attached.
    attach: AttachMethod = "none"
    #: Annotated crop, relative to the batch output folder.
    evidence_crop: str | None = None
    #: The model card that proposed the box: its name and version (None in older records).
    model: str | None = None
    model_version: str | None = None


class AssetRecord(_Record):
    """A ledger asset (or an unregistered one) and its status in this batch."""

    kind: Literal["asset"] = "asset"
    asset_id: str
    name: str
    line_id: str | None = None
    status: AssetStatus
    #: Ledger position (for an unregistered asset: where it was seen).
    position: GeoPoint
    observed: GeoPoint | None = None
    offset_m: float | None = None
    sightings: int = Field(default=0, ge=0)
    photo_ids: list[str] = Field(default_factory=list)
    detection_ids: list[str] = Field(default_factory=list)
    defect_ids: list[str] = Field(default_factory=list)
    max_severity: int = Field(default=0, ge=0)


class CorridorHazardRecord(_Record):
    """A corridor-hazard detection inside a line's corridor."""

    kind: Literal["corridor_hazard"] = "corridor_hazard"
    detection_id: str
    photo_id: str
    class_name: str
    line_id: str
    distance_to_line_m: float = Field(ge=0.0)
    corridor_width_m: float = Field(gt=0.0)
    ground: GeoPoint
    severity: int = Field(ge=0)
    confidence: float = Field(ge=0.0, le=1.0)
    evidence_crop: str | None = None


class LedgerIssueRecord(_Record):
    """A discrepancy between the ledger and what the photos show."""

    kind: Literal["ledger_issue"] = "ledger_issue"
    issue: LedgerIssueKind
    asset_id: str
    line_id: str | None = None
    position: GeoPoint
    observed: GeoPoint | None = None
    offset_m: float | None = None
    sightings: int = Field(default=0, ge=0)
    photo_ids: list[str] = Field(default_factory=list)
    detail: str = ""


FindingRecord = Annotated[
    LineRecord
    | PhotoRecord
    | DetectionRecord
    | AssetRecord
    | CorridorHazardRecord
    | LedgerIssueRecord,
    Field(discriminator="kind"),
]
_ADAPTER: TypeAdapter[FindingRecord] = TypeAdapter(FindingRecord)


def to_json_line(record: BaseModel) -> str:
    """Serialise one record as a JSON line (no trailing newline)."""
    return record.model_dump_json(exclude_none=False)


def parse_record(line: str | bytes, *, where: str = "record") -> FindingRecord:
    """Parse one JSON line into its record class.

    Raises:
        RecordError: not JSON, unknown ``kind``, a newer ``schema_version`` or invalid fields.
    """
    try:
        raw = json.loads(line)
    except json.JSONDecodeError as exc:
        raise RecordError(f"{where}: not JSON: {exc.msg}") from exc
    if not isinstance(raw, dict):
        raise RecordError(f"{where}: a record must be a JSON object")
    version = raw.get("schema_version")
    if isinstance(version, int) and version > SCHEMA_VERSION:
        raise RecordError(
            f"{where}: schema_version {version} is newer than this reader's {SCHEMA_VERSION}; "
            "upgrade fieldops"
        )
    try:
        return _ADAPTER.validate_python(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise RecordError(f"{where}: {loc}: {first['msg']}") from exc


def read_jsonl(path: Path | str) -> Iterator[FindingRecord]:
    """Stream the records of a JSONL file (blank lines are skipped).

    Raises:
        RecordError: a line is not a valid record (the message names the line).
    """
    path = Path(path)
    try:
        fh = path.open("rb")
    except OSError as exc:
        raise RecordError(f"{path.name}: cannot read: {exc.strerror or exc}") from exc
    with fh:
        number = 0
        while True:
            where = f"{path.name} line {number + 1}"
            try:
                raw = fh.readline()
            except OSError as exc:
                raise RecordError(f"{where}: cannot read: {exc.strerror or exc}",
                                  line=number + 1) from exc
            if not raw:
                return
            number += 1
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]  # a UTF-8 byte order mark (a file saved by Excel or Notepad)
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise RecordError(
                    f"{where}: not UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1});"
                    " records files are UTF-8",
                    line=number,
                ) from exc
            if text.strip():
                try:
                    yield parse_record(text, where=where)
                except RecordError as exc:
                    raise RecordError(str(exc), line=number) from exc


def write_jsonl(records: Iterable[BaseModel], path: Path | str) -> int:
    """Write records to ``path`` atomically (temp file, fsync, rename); returns the count.

    A crash mid-write leaves the previous file (or none), never a half-written one.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    count = 0
    with tmp.open("w", encoding="utf-8") as fh:
        for record in records:
            fh.write(to_json_line(record) + "\n")
            count += 1
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)
    return count

