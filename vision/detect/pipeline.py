"""The inspection batch: read → detect → geo-reference → reconcile → write.

``run_batch`` streams photos through a detector in small batches (a bounded decode queue, so
memory does not grow with the folder), geo-references every photo and detection, and appends
one line per finished photo to ``progress.jsonl`` (flushed and fsynced). When every photo is
done it reconciles the batch with the ledger and writes the outputs:

- ``batch.json``: the batch's identity: id, photo folder, ledger sha256, model;
- ``progress.jsonl``: append-only, one line per processed photo (photo + detection records);
- ``records.jsonl``: the versioned finding records for field_api (:mod:`vision.records`);
- ``assets.geojson`` (with status), ``lines.geojson``, ``defects.geojson``,
  ``photos.geojson`` (footprints), ``corridor_hazards.geojson``;
- ``summary.csv`` (one row per asset) and ``ledger_validation.csv`` (the ledger import report);
- ``report.html``: annotated crops per defective asset and an SVG map;
- ``crops/``: evidence crops, one per defect or hazard detection.

Crash safety: a photo counts as done only once its progress line is on disk; a rerun with the
same ``--out`` skips those photos, drops a torn last line, and writes every other output
atomically, so nothing is duplicated or half-written.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import math
import os
import statistics
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw
from pydantic import BaseModel, ConfigDict, ValidationError
from tqdm import tqdm  # type: ignore[import-untyped]

from vision.detect.detections import Detections
from vision.detect.images import IMAGE_SUFFIXES, ImageRecord, ImageStream, iter_image_paths
from vision.errors import BatchError, GeoreferenceError
from vision.geo.camera import Camera, ErrorModel, camera_for, centre_for
from vision.geo.ledger import Ledger, load_ledger
from vision.geo.metadata import PhotoMetadata, read_metadata
from vision.geo.reconcile import (
    ROLE_CODES,
    DetectionObservations,
    PhotoObservations,
    ReconcileOptions,
    ReconcileResult,
    locate_from_flight,
    reconcile,
)
from vision.geo.report import BatchProgress, BatchRecords, build_records, write_outputs
from vision.hashing import sha256_file
from vision.records import (
    DetectionRecord,
    GeoPoint,
    PhotoRecord,
    model_parts,
    stable_id,
    write_jsonl,
)
from vision.train.model_card import CardClass

BgrImage = NDArray[np.uint8]
#: The detector seam: a list of BGR photos in, one Detections per photo out.
DetectorFn = Callable[[Sequence[BgrImage]], list[Detections]]


@runtime_checkable
class StreamingDetector(Protocol):
    """A detector that also takes a stream of photos, one Detections per photo yielded in
    order (:class:`vision.detect.inference.Detector`): :func:`run_batch` feeds it the whole
    batch as one stream, so its networks never wait for a chunk to drain."""

    def __call__(self, images: Sequence[BgrImage]) -> list[Detections]: ...

    def stream(self, images: Iterable[BgrImage]) -> Iterator[Detections]: ...


STATE_FILE = "batch.json"
LOCK_FILE = ".batch.lock"
PROGRESS_FILE = "progress.jsonl"
RECORDS_FILE = "records.jsonl"
#: A running batch's records so far (the importer waits for records.jsonl: a finished batch).
PARTIAL_RECORDS_FILE = "records.partial.jsonl"
CROPS_DIR = "crops"
STATE_VERSION = 1


@dataclass(frozen=True)
class BatchOptions:
    """How a batch runs; distances live in :class:`ReconcileOptions`."""

    #: Photos per detector call (a streaming detector: decoded photos held ready ahead of it);
    #: with the decode queue this bounds memory.
    batch_size: int = 4
    #: Terrain elevation (same datum as the camera's absolute altitude), else RelativeAltitude.
    ground_elevation_m: float | None = None
    #: Height of the plane asset markers and defects are projected onto (fittings sit near the
    #: pole top); None takes the median ledger Height, or the ground when the ledger has none.
    fitting_height_m: float | None = None
    min_depression_deg: float = 10.0
    errors: ErrorModel = field(default_factory=ErrorModel)
    reconcile: ReconcileOptions = field(default_factory=ReconcileOptions)
    crop_margin: float = 0.25
    progress: bool = True
    batch_id: str | None = None
    model_name: str = "unknown"
    #: Language of report.html: zh-CN or en.
    report_lang: str = "zh-CN"
    #: Seconds between rewrites of a running batch's outputs, and never more often than 10x the
    #: time the last rewrite took, so they cost under 10 %; 0: after every detector call.
    live_every_s: float = 20.0


@dataclass(frozen=True)
class BatchSummary:
    """What a finished batch did."""

    batch_id: str
    out_dir: Path
    photos: int
    skipped: int
    processed: int
    photos_with_problems: int
    detections: int
    #: Rows of the ledger files that were rejected or flagged (see ledger_validation.csv).
    ledger_issues: int
    counts: dict[str, int]
    outputs: dict[str, Path]
    #: Files of the photo folder that are not photos (by suffix), relative to it.
    skipped_files: tuple[str, ...] = ()


class ProgressEntry(BaseModel):
    """One line of ``progress.jsonl``: a processed photo and its detections."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str
    photo: PhotoRecord
    detections: list[DetectionRecord]


@dataclass(frozen=True)
class PhotoContext:
    """Everything per-photo processing needs besides the photo itself (plain values only, so
    it can be shipped to another process or a Ray worker)."""

    batch_id: str
    out_dir: Path
    classes: Mapping[int, CardClass]
    fitting_height_m: float
    options: BatchOptions


def photo_key(path: Path, root: Path) -> str:
    """The photo's key in the progress file: its path relative to the photo folder."""
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.resolve().as_posix()


def resolve_fitting_height(ledger: Ledger, options: BatchOptions) -> float:
    """The plane height for fittings: the option, else the median ledger Height, else 0."""
    if options.fitting_height_m is not None:
        return options.fitting_height_m
    heights = [a.height_m for a in ledger.assets if a.height_m]
    return float(statistics.median(heights)) if heights else 0.0


# ----------------------------------------------------------------------------- per photo
#: Evidence crops show at least this much context and are enlarged to at least this size.
_MIN_CONTEXT_PX = 128
_MIN_CROP_PX = 240


def _crop(
    image: BgrImage, box: tuple[float, float, float, float], label: str, margin: float
) -> Image.Image:
    h, w = image.shape[:2]
    x1, y1, x2, y2 = box
    cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
    half_w = max((x2 - x1) * (0.5 + margin), _MIN_CONTEXT_PX / 2.0)
    half_h = max((y2 - y1) * (0.5 + margin), _MIN_CONTEXT_PX / 2.0)
    left, top = max(0, int(cx - half_w)), max(0, int(cy - half_h))
    right, bottom = min(w, int(np.ceil(cx + half_w))), min(h, int(np.ceil(cy + half_h)))
    rgb = np.ascontiguousarray(image[top:bottom, left:right, ::-1])
    crop = Image.fromarray(rgb)
    # Small boxes on small photos are enlarged (pixel-exact) so a reviewer can see them.
    scale = max(1, int(np.ceil(_MIN_CROP_PX / max(crop.width, crop.height, 1))))
    if scale > 1:
        crop = crop.resize((crop.width * scale, crop.height * scale), Image.Resampling.NEAREST)
    draw = ImageDraw.Draw(crop)
    draw.rectangle(((x1 - left) * scale, (y1 - top) * scale, (x2 - left) * scale,
                    (y2 - top) * scale), outline=(255, 40, 40), width=2)
    text_box = draw.textbbox((3, 3), label)
    draw.rectangle(text_box, fill=(0, 0, 0))
    draw.text((3, 3), label, fill=(255, 255, 0))
    return crop


def _jpeg(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=85)
    return buf.getvalue()


def write_crops(out_dir: Path, crops: Mapping[str, bytes]) -> None:
    """Write evidence crops (relative name → JPEG bytes) atomically under ``out_dir``."""
    for rel, data in crops.items():
        path = out_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(data)
        tmp.replace(path)


def _project_boxes(
    camera: Camera | None, dets: Detections, roles: Sequence[str], fitting_height_m: float
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    n = len(dets)
    lat, lon, sigma = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    if camera is None or n == 0:
        return lat, lon, sigma
    xyxy = dets.xyxy.astype(np.float64)
    hazard = np.array([r == "corridor_hazard" for r in roles], dtype=bool)
    u = (xyxy[:, 0] + xyxy[:, 2]) / 2.0
    # Hazards stand on the ground: their box bottom is where they touch it. Fittings hang on
    # the pole: their box centre is near the fitting plane.
    v = np.where(hazard, xyxy[:, 3], (xyxy[:, 1] + xyxy[:, 3]) / 2.0)
    for mask, height in ((hazard, 0.0), (~hazard, fitting_height_m)):
        if mask.any():
            la, lo, _, _, sg, ok = camera.project(u[mask], v[mask], target_height_m=height)
            idx = np.flatnonzero(mask)
            lat[idx[ok]], lon[idx[ok]], sigma[idx[ok]] = la[ok], lo[ok], sg[ok]
    return lat, lon, sigma


def _geo(lat: float | None, lon: float | None) -> GeoPoint | None:
    if lat is None or lon is None or not (np.isfinite(lat) and np.isfinite(lon)):
        return None
    return GeoPoint(lat=lat, lon=lon)


def _photo_view(
    meta: PhotoMetadata, ctx: PhotoContext, problems: list[str]
) -> tuple[Camera | None, GeoPoint | None, float | None, list[tuple[float, float]] | None]:
    opts = ctx.options
    try:
        camera = camera_for(meta, ground_elevation_m=opts.ground_elevation_m,
                            errors=opts.errors, min_depression_deg=opts.min_depression_deg)
    except GeoreferenceError as exc:
        if meta.readable:
            problems.append(f"not geo-referenced: {exc}")
        return None, None, None, None
    centre: GeoPoint | None = None
    sigma: float | None = None
    try:
        point = centre_for(meta, camera)
        centre, sigma = GeoPoint(lat=point.lat, lon=point.lon), point.uncertainty_m
    except GeoreferenceError as exc:
        problems.append(f"image centre not on the ground: {exc}")
    return camera, centre, sigma, camera.footprint()


@dataclass(frozen=True)
class PhotoResult:
    """A processed photo: its progress entry and its evidence crops (name → JPEG bytes).

    Crops travel with the entry instead of being written where the photo was processed, so a
    Ray worker on another machine hands them back to the driver that owns the output folder.
    """

    entry: ProgressEntry
    crops: dict[str, bytes]


def process_photo(
    record: ImageRecord, detections: Detections | None, key: str, ctx: PhotoContext
) -> PhotoResult:
    """Geo-reference one photo and its detections and cut its evidence crops.

    Args:
        record: the decoded photo (or its read error).
        detections: the detector's output for it (None when it could not be read).
        key: the photo's progress key.
        ctx: batch-wide settings.

    Returns:
        The progress entry to append and the crops to write; problems are recorded in the
        entry, never raised.
    """
    path = record.path
    meta = read_metadata(path)
    problems = list(meta.problems)
    if record.error:
        problems.append(f"unreadable image: {record.error}")
    if record.truncated:
        problems.append("truncated JPEG: decoded as far as the file goes, the rest grey")
    photo_id = sha256_file(path)
    camera, centre, sigma, footprint = _photo_view(meta, ctx, problems)
    det_records: list[DetectionRecord] = []
    crops: dict[str, bytes] = {}
    if detections is not None and len(detections):
        det_records = _detection_records(record, detections, photo_id, meta, camera, ctx,
                                         problems, crops)
    xmp = meta.xmp
    photo = PhotoRecord(
        id=stable_id("photo", photo_id),
        batch_id=ctx.batch_id,
        photo_id=photo_id,
        path=key,
        width_px=meta.width_px,
        height_px=meta.height_px,
        captured_at=meta.captured_at,
        camera_model=meta.model,
        camera=_geo(meta.lat, meta.lon),
        altitude_m=meta.alt_m,
        height_above_ground_m=camera.pose.height_above_ground_m if camera else None,
        gimbal_yaw_deg=xmp.gimbal_yaw_deg if xmp else None,
        gimbal_pitch_deg=xmp.gimbal_pitch_deg if xmp else None,
        center=centre,
        uncertainty_m=sigma,
        footprint=footprint,
        detections=len(det_records),
        problems=problems,
        truncated=record.truncated,
    )
    return PhotoResult(ProgressEntry(key=key, photo=photo, detections=det_records), crops)


def _detection_records(
    record: ImageRecord,
    detections: Detections,
    photo_id: str,
    meta: PhotoMetadata,
    camera: Camera | None,
    ctx: PhotoContext,
    problems: list[str],
    crops: dict[str, bytes],
) -> list[DetectionRecord]:
    """One record per detection, placed on the ground where the camera allows; the evidence
    crops (of all but asset markers) go into ``crops``, problems into ``problems``."""
    roles = []
    for cid in detections.class_id.tolist():
        cls = ctx.classes.get(int(cid))
        if cls is None:
            raise BatchError(f"detector returned class id {cid}, not in the model card")
        roles.append(cls.role)
    box_camera = camera
    if record.image is not None and record.image.shape[:2] != (meta.height_px, meta.width_px):
        # The decoder turned the photo (EXIF orientation): boxes are not in the camera's
        # pixel frame, so placing them on the ground would be wrong.
        problems.append("decoded image is rotated against the sensor: boxes not geo-referenced")
        box_camera = None
    lat, lon, dsig = _project_boxes(box_camera, detections, roles, ctx.fitting_height_m)
    model, model_version = model_parts(ctx.options.model_name)
    out: list[DetectionRecord] = []
    for i in range(len(detections)):
        cls = ctx.classes[int(detections.class_id[i])]
        box = tuple(round(float(c), 1) for c in detections.xyxy[i])
        x1, y1, x2, y2 = box
        det_id = stable_id("detection", photo_id, cls.id, x1, y1, x2, y2)
        crop_rel: str | None = None
        if cls.role != "asset_marker" and record.image is not None:
            label = f"{cls.name} {float(detections.confidence[i]):.2f}"
            img = _crop(record.image, (x1, y1, x2, y2), label, ctx.options.crop_margin)
            crop_rel = f"{CROPS_DIR}/{det_id}.jpg"
            crops[crop_rel] = _jpeg(img)
        out.append(
            DetectionRecord(
                id=det_id,
                batch_id=ctx.batch_id,
                photo_id=photo_id,
                class_id=cls.id,
                class_name=cls.name,
                role=cls.role,
                confidence=float(detections.confidence[i]),
                severity=int(detections.severity[i]),
                xyxy=(x1, y1, x2, y2),
                ground=_geo(float(lat[i]), float(lon[i])),
                uncertainty_m=float(dsig[i]) if np.isfinite(dsig[i]) else None,
                evidence_crop=crop_rel,
                model=model,
                model_version=model_version,
            )
        )
    return out


# ----------------------------------------------------------------------------- state files
def _write_json_atomic(path: Path, data: Mapping[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
    tmp.replace(path)


def load_progress(path: Path, *, repair: bool = True) -> dict[str, ProgressEntry]:
    """Read ``progress.jsonl``; a torn last line (crash mid-write) is dropped and cut off.

    Raises:
        BatchError: a line other than the last is corrupt (the file was edited by hand).
    """
    done: dict[str, ProgressEntry] = {}
    if not path.exists():
        return done
    raw = path.read_bytes()
    good_end = 0
    lines = raw.split(b"\n")
    offset = 0
    for number, line in enumerate(lines, start=1):
        end = offset + len(line) + 1
        complete = end <= len(raw)  # the last chunk has no newline: torn or empty
        if line.strip():
            try:
                if not complete:
                    raise ValueError("no newline: torn write")
                entry = ProgressEntry.model_validate_json(line)
            except (ValueError, ValidationError) as exc:
                if number >= len(lines) - 1:
                    break
                raise BatchError(f"{path} line {number} is corrupt: {exc}") from exc
            # A key seen twice would be a bug; the first line wins so ids never change.
            done.setdefault(entry.key, entry)
        if complete:
            good_end = end
        offset = end
    if repair and good_end < len(raw):
        with path.open("r+b") as fh:
            fh.truncate(good_end)
    return done


def _ledger_sha(paths: Sequence[Path]) -> str:
    digest = hashlib.sha256()
    for p in paths:
        digest.update(sha256_file(p).encode())
    return digest.hexdigest()


def _open_state(
    out_dir: Path, photos_root: Path, keys: Sequence[str], ledger_sha: str, options: BatchOptions
) -> str:
    """Create or check ``batch.json``; returns the batch id."""
    state_path = out_dir / STATE_FILE
    root = photos_root.resolve().as_posix()
    if state_path.exists():
        try:
            state = json.loads(state_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise BatchError(f"{state_path} is unreadable: {exc}") from exc
        for name, now in (("photos_root", root), ("ledger_sha256", ledger_sha),
                          ("model", options.model_name)):
            if state.get(name) != now:
                raise BatchError(
                    f"{out_dir} holds a batch with another {name} ({state.get(name)!r}, now "
                    f"{now!r}); use a new --out folder to start a new batch"
                )
        return str(state["batch_id"])
    batch_id = options.batch_id or stable_id("batch", ledger_sha, *sorted(keys))[:16]
    _write_json_atomic(state_path, {
        "state_version": STATE_VERSION,
        "batch_id": batch_id,
        "photos_root": root,
        "ledger_sha256": ledger_sha,
        "model": options.model_name,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
    })
    return batch_id


def _mark_finished(state_path: Path) -> None:
    """Stamp ``finished_at`` in the state file (field_api orders re-imported runs by it)."""
    state = json.loads(state_path.read_text(encoding="utf-8"))
    state["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    _write_json_atomic(state_path, state)


def detected_records(
    detector: DetectorFn, records: Iterator[ImageRecord], chunk: int
) -> Iterator[tuple[ImageRecord, Detections | None]]:
    """Each record with its detections (None for an unreadable photo), in order: through the
    detector's stream when it has one (:class:`StreamingDetector`), else ``chunk`` records per
    call."""
    if not isinstance(detector, StreamingDetector):
        for records_of_call in _chunks(records, chunk):
            yield from zip(records_of_call, detect_records(detector, records_of_call),
                           strict=True)
        return
    waiting: deque[ImageRecord] = deque()

    def photos() -> Iterator[BgrImage]:
        for rec in records:
            waiting.append(rec)
            if rec.image is not None:
                yield rec.image

    for dets in detector.stream(photos()):
        while waiting[0].image is None:  # unreadable photos keep their place
            yield waiting.popleft(), None
        yield waiting.popleft(), dets
    while waiting:  # unreadable photos after the last readable one
        yield waiting.popleft(), None


def _chunks(stream: Iterator[ImageRecord], size: int) -> Iterator[list[ImageRecord]]:
    chunk: list[ImageRecord] = []
    for rec in stream:
        chunk.append(rec)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def append_entry(fh: IO[str], entry: ProgressEntry) -> None:
    """Append one progress line and push it to disk before returning."""
    fh.write(entry.model_dump_json() + "\n")
    fh.flush()
    os.fsync(fh.fileno())


def detect_records(
    detector: DetectorFn, chunk: Sequence[ImageRecord]
) -> list[Detections | None]:
    """Run the detector on the readable photos of ``chunk``; None for unreadable ones."""
    images = [r.image for r in chunk if r.image is not None]
    found = detector(images) if images else []
    if len(found) != len(images):
        raise BatchError(f"detector returned {len(found)} results for {len(images)} photos")
    it = iter(found)
    return [next(it) if r.image is not None else None for r in chunk]


# ----------------------------------------------------------------------------- the batch
@dataclass
class PreparedBatch:
    """A batch whose state file is written and whose remaining photos are known."""

    out_dir: Path
    photos_root: Path
    ledger: Ledger
    batch_id: str
    context: PhotoContext
    all_keys: list[str]
    todo: list[tuple[str, Path]]
    done: dict[str, ProgressEntry]


@contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """Hold an advisory lock on ``lock_path``; released by the OS if the process dies."""
    with lock_path.open("a") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise BatchError(
                f"another run is writing to {lock_path.parent}; wait for it or use another --out"
            ) from exc
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


@contextmanager
def open_batch(
    photos: Path,
    ledger_paths: Sequence[Path],
    out_dir: Path,
    classes: Sequence[CardClass],
    options: BatchOptions,
) -> Iterator[PreparedBatch]:
    """Load the ledger, list photos, create or resume the batch state, and hold the output
    folder's lock while the caller runs the batch (two runs appending to one progress file
    would duplicate photos).

    Raises:
        BatchError: no photos, unusable ledger, an output folder of another batch, or one
            another run is using.
    """
    from vision.errors import ImageSourceError, LedgerError

    if options.batch_size < 1:
        raise BatchError("batch size must be at least 1")
    try:
        ledger = load_ledger(*ledger_paths)
        paths = list(iter_image_paths([photos]))
    except (LedgerError, ImageSourceError) as exc:
        raise BatchError(str(exc)) from exc
    # An output folder inside the photo folder must not feed its own crops back in.
    out_resolved = out_dir.resolve()
    paths = [p for p in paths if not p.resolve().is_relative_to(out_resolved)]
    if not ledger.assets:
        raise BatchError("the ledger holds no usable asset")
    if not paths:
        raise BatchError(f"no photos under {photos}")
    root = photos if photos.is_dir() else photos.parent
    keyed = [(photo_key(p, root), p) for p in paths]
    out_dir.mkdir(parents=True, exist_ok=True)
    with _exclusive(out_dir / LOCK_FILE):
        batch_id = _open_state(out_dir, root, [k for k, _ in keyed],
                               _ledger_sha(list(ledger_paths)), options)
        done = load_progress(out_dir / PROGRESS_FILE)
        ctx = PhotoContext(
            batch_id=batch_id,
            out_dir=out_dir,
            classes={c.id: c for c in classes},
            fitting_height_m=resolve_fitting_height(ledger, options),
            options=options,
        )
        todo = [(k, p) for k, p in keyed if k not in done]
        yield PreparedBatch(out_dir, root, ledger, batch_id, ctx, [k for k, _ in keyed], todo,
                            done)


def run_batch(
    photos: Path,
    ledger_paths: Sequence[Path],
    out_dir: Path,
    detector: DetectorFn,
    classes: Sequence[CardClass],
    *,
    options: BatchOptions | None = None,
) -> BatchSummary:
    """Run (or resume) an inspection batch on one machine.

    Args:
        photos: a folder of photos (walked recursively) or a single photo.
        ledger_paths: ledger GeoJSON/CSV files.
        out_dir: output folder; rerunning with the same folder resumes.
        detector: BGR photos → one Detections per photo.
        classes: the model card's classes (id, name, role, severity).
        options: batch settings.

    Returns:
        Counts and output paths.

    Raises:
        BatchError: the batch cannot start (see :func:`open_batch`).

    Example:
        >>> run_batch(Path("flight/"), [Path("ledger.csv")], Path("out/"),
        ...           Detector("cplid-cascade"), card.classes)  # doctest: +SKIP
    """
    opts = options or BatchOptions()
    with open_batch(photos, ledger_paths, out_dir, classes, opts) as batch:
        skipped = len(batch.done)
        keys = {p: k for k, p in batch.todo}
        processed = 0
        live = LiveOutputs(batch, total=len(batch.all_keys), done=skipped)
        with (
            (out_dir / PROGRESS_FILE).open("a", encoding="utf-8") as fh,
            tqdm(total=len(batch.all_keys), initial=skipped, unit="photo", desc="photos",
                 disable=not opts.progress) as bar,
            ImageStream([p for _, p in batch.todo], prefetch=max(2, opts.batch_size)) as stream,
        ):
            for rec, dets in detected_records(detector, stream, opts.batch_size):
                done = process_photo(rec, dets, keys[rec.path], batch.context)
                # Crops first: a crash between the two redoes the photo and rewrites the same
                # crop names, never leaving a progress line without its evidence.
                write_crops(out_dir, done.crops)
                append_entry(fh, done.entry)  # flushed and synced
                processed += 1
                bar.update(1)
                live.photos_done(1)
        return finish_batch(batch, skipped=skipped, processed=processed,
                            elapsed_s=live.elapsed_s())


class LiveOutputs:
    """Rewrites a running batch's records, layers and report as photos finish (throttled)."""

    def __init__(self, batch: PreparedBatch, *, total: int, done: int) -> None:
        self.batch, self.total, self.done = batch, total, done
        self.resumed_with = done  # the rate counts this run's photos only
        self.started = time.monotonic()
        self.last_write = -math.inf
        self.last_cost = 0.0

    def elapsed_s(self) -> float:
        return time.monotonic() - self.started

    def photos_done(self, n: int) -> None:
        self.done += n
        every = self.batch.context.options.live_every_s
        every = max(every, 10 * self.last_cost) if every > 0 else 0.0
        now = time.monotonic()
        if self.done >= self.total or now - self.last_write < every:
            return  # the last photos are written by finish_batch
        write_partial(self.batch, BatchProgress(
            done=self.done - self.resumed_with, total=self.total - self.resumed_with,
            elapsed_s=now - self.started,
        ))
        self.last_write = time.monotonic()
        self.last_cost = self.last_write - now


def write_partial(batch: PreparedBatch, progress: BatchProgress) -> None:
    """Write the outputs of the photos processed so far: ``records.partial.jsonl`` (never
    ``records.jsonl``, which marks a finished batch), the GeoJSON layers, CSVs, the report and
    ``progress.json``, each replaced atomically."""
    entries = load_progress(batch.out_dir / PROGRESS_FILE, repair=False)
    ordered = [entries[k] for k in batch.all_keys if k in entries]
    if not ordered:
        return
    records, _ = _records_of(batch, ordered)
    write_outputs(batch.out_dir, batch.ledger, records, lang=batch.context.options.report_lang,
                  skipped=not_photos(batch.photos_root, batch.out_dir), progress=progress)
    tmp = batch.out_dir / f".{PARTIAL_RECORDS_FILE}.tmp"
    write_jsonl(records.all(), tmp)
    os.replace(tmp, batch.out_dir / PARTIAL_RECORDS_FILE)


def _records_of(
    batch: PreparedBatch, ordered: Sequence[ProgressEntry]
) -> tuple[BatchRecords, dict[str, int]]:
    """The records of ``ordered`` and the reconciliation's counts per status."""
    result, photos, dets = reconcile_entries(batch.ledger, ordered, batch.context.options)
    # Records name photos by absolute path so an importer can copy them from anywhere.
    photos = [p.model_copy(update={"path": (batch.photos_root / p.path).resolve().as_posix()})
              for p in photos]
    return build_records(batch.batch_id, batch.ledger, photos, dets, result), result.counts()


def finish_batch(
    batch: PreparedBatch, *, skipped: int, processed: int, elapsed_s: float | None = None
) -> BatchSummary:
    """Reconcile every processed photo with the ledger and write all outputs."""
    entries = load_progress(batch.out_dir / PROGRESS_FILE, repair=False)
    missing = [k for k in batch.all_keys if k not in entries]
    if missing:
        raise BatchError(f"{len(missing)} photos are not processed yet, e.g. {missing[0]}")
    ordered = [entries[k] for k in batch.all_keys]
    records, counts = _records_of(batch, ordered)
    skipped_files = not_photos(batch.photos_root, batch.out_dir)
    progress = BatchProgress(done=processed, total=processed, elapsed_s=elapsed_s or 0.0,
                             finished=True)
    outputs = write_outputs(batch.out_dir, batch.ledger, records,
                            lang=batch.context.options.report_lang, skipped=skipped_files,
                            progress=progress)
    # records.jsonl last: its presence marks a complete batch for field_api's import.
    outputs["records"] = batch.out_dir / RECORDS_FILE
    write_jsonl(records.all(), outputs["records"])
    (batch.out_dir / PARTIAL_RECORDS_FILE).unlink(missing_ok=True)
    _mark_finished(batch.out_dir / STATE_FILE)
    return BatchSummary(
        batch_id=batch.batch_id,
        out_dir=batch.out_dir,
        photos=len(ordered),
        skipped=skipped,
        processed=processed,
        photos_with_problems=sum(1 for p in records.photos if p.problems),
        detections=len(records.detections),
        ledger_issues=len(batch.ledger.issues),
        counts=counts,
        outputs=outputs,
        skipped_files=tuple(skipped_files),
    )


def not_photos(root: Path, out_dir: Path) -> list[str]:
    """Files under the photo folder that are not photos (by suffix), outside the output folder.

    They are skipped by the batch and listed in its report and summary.
    """
    if not root.is_dir():
        return []
    out_resolved = out_dir.resolve()
    return sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and p.suffix.lower() not in IMAGE_SUFFIXES
        and not p.name.startswith(".")
        and not p.resolve().is_relative_to(out_resolved)
    )


def reconcile_entries(
    ledger: Ledger, entries: Sequence[ProgressEntry], options: BatchOptions
) -> tuple[ReconcileResult, list[PhotoRecord], list[DetectionRecord]]:
    """Reconcile processed photos (duplicates by content dropped) with the ledger."""
    photos: list[PhotoRecord] = []
    dets: list[DetectionRecord] = []
    det_photo: list[int] = []
    seen: dict[str, str] = {}
    for entry in entries:
        if entry.photo.photo_id in seen:
            # The same file under two names is one photo: counting it twice would double
            # every sighting and id.
            continue
        seen[entry.photo.photo_id] = entry.key
        index = len(photos)
        photos.append(entry.photo)
        for d in entry.detections:
            dets.append(d)
            det_photo.append(index)
    # A photo without a position takes one from its flight (interpolated, larger uncertainty).
    photos = locate_from_flight(photos)
    obs = PhotoObservations.from_lists(
        [(p.camera.lon, p.camera.lat) if p.camera else None for p in photos],
        [(p.center.lon, p.center.lat) if p.center else None for p in photos],
        [p.footprint for p in photos],
    )
    det_obs = DetectionObservations(
        photo_index=np.asarray(det_photo, dtype=np.int64),
        role=np.asarray([ROLE_CODES[d.role] for d in dets], dtype=np.int8),
        severity=np.asarray([d.severity for d in dets], dtype=np.int16),
        lon=np.asarray([d.ground.lon if d.ground else np.nan for d in dets], dtype=np.float64),
        lat=np.asarray([d.ground.lat if d.ground else np.nan for d in dets], dtype=np.float64),
        uncertainty_m=np.asarray(
            [d.uncertainty_m if d.uncertainty_m is not None else np.nan for d in dets],
            dtype=np.float64,
        ),
    )
    result = reconcile(ledger, obs, det_obs, options=options.reconcile)
    return result, photos, dets


__all__ = [
    "BatchOptions",
    "BatchRecords",
    "BatchSummary",
    "DetectorFn",
    "PhotoResult",
    "ProgressEntry",
    "StreamingDetector",
    "detected_records",
    "load_progress",
    "process_photo",
    "run_batch",
]
