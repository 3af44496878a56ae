"""Use cases of crew evidence: store an upload, analyse it, read it back, resumable uploads.

An upload is validated on the critical path with cheap checks (magic bytes, size limit per
kind, JPEG marker walk, declared pixel count, EXIF, MP4 box chain), then its row is flushed and
its file renamed into the content-addressed store. The pixel work (full decode, perceptual
hash, thumbnail, barcode decoding, reuse lookup) runs after the response in
:func:`run_analysis`, outside any transaction, and is recorded in a short one. Every read
and write goes through the order's access rules (``work_orders.service.get_for_actor``).
"""

from __future__ import annotations

import io
import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from PIL import Image as PILImage
from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.orm import Session, sessionmaker

from field_api.audit import service as audit
from field_api.common import clock
from field_api.common.actors import Principal, Role
from field_api.common.geodesy import Position
from field_api.common.hashing import sha256_file
from field_api.common.storage import remove_on_rollback, store_of
from field_api.common.uploads import UploadArea, check_upload_id
from field_api.config import MediaSettings, Settings
from field_api.db import READ_OPTIONS
from field_api.errors import Conflict, Forbidden, NotFound, PayloadTooLarge, ValidationFailed
from field_api.jobs import service as jobs
from field_api.leases import service as leases
from field_api.media import rules
from field_api.media.analysis import (
    MediaType,
    analyze_image,
    analyze_video,
    inspect_image,
    load_oriented_image,
    sniff_media_type,
)
from field_api.media.barcode import decode_barcodes, normalize_meter_code, parse_meter_code
from field_api.media.config import size_limits
from field_api.media.models import (
    AnalysisState,
    MediaFlag,
    MediaHashBand,
    MediaItem,
    MeterBinding,
    ResumableUpload,
)
from field_api.media.rules import EvidenceFlag, HashCandidate, MediaKind
from field_api.media.schemas import MediaCreate
from field_api.paging import PageParams
from field_api.work_orders import service as orders
from field_api.work_orders.models import WorkOrder
from field_api.work_orders.rules import Stage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StagedFile:
    """A complete file in the store's temp folder, hashed, not yet at its content address."""

    path: Path
    sha256: str
    size_bytes: int
    head: bytes


def max_upload_bytes(cfg: MediaSettings, kind: MediaKind | None = None) -> int:
    """The most a body may carry before its type is known (larger of photo and video)."""
    limits = size_limits(cfg)
    if kind is None:
        return max([*limits.photo_bytes.values(), limits.video_bytes])
    return limits.max_bytes(kind, is_video=None)


# A multipart body's bytes besides the file: the form fields (at most 16 of 4 KiB, with their
# part headers) and the delimiters. A declared body longer than the file's limit by more than
# this cannot hold a file within the limit.
MULTIPART_OVERHEAD_BYTES = 256 * 1024


def _known_kind(value: str | None) -> MediaKind | None:
    try:
        return MediaKind(value) if value is not None else None
    except ValueError:
        return None  # the form's validation reports it


def streaming_limit(
    cfg: MediaSettings,
    head: bytes,
    *,
    kind: MediaKind | str | None,
    declared_body_bytes: int | None = None,
) -> int:
    """The most bytes a file may have once its first bytes (its type) are known.

    A video gets the video limit; a photo its kind's photo limit, or the largest photo limit
    while the kind is not known yet (a multipart form whose ``kind`` field follows the file).
    Refused at once: an unsupported type, a video for a photo-only kind, and a declared
    multipart body (``declared_body_bytes``) that cannot fit under the limit.

    Raises:
        UnsupportedMedia | ValidationFailed: the type is not accepted (for this kind).
        PayloadTooLarge: the declared body is larger than the limit allows.
    """
    media_type = sniff_media_type(head)
    known = kind if isinstance(kind, MediaKind) else _known_kind(kind)
    limits = size_limits(cfg)
    if not media_type.is_image:
        if known is not None and known in cfg.barcode_kinds:
            raise ValidationFailed(
                f"a {known.value} item must be a photo",
                code="media.photo_required",
                params={"kind": known.value},
            )
        limit = limits.video_bytes
    elif known is None:
        limit = max(limits.photo_bytes.values())
    else:
        limit = limits.max_bytes(known, is_video=False)
    if declared_body_bytes is not None and declared_body_bytes > limit + MULTIPART_OVERHEAD_BYTES:
        raise PayloadTooLarge(
            f"the file may be at most {limit} bytes; the request declares {declared_body_bytes}",
            code="media.upload_too_large",
            params={"limit_bytes": limit},
        )
    return limit


def check_upload_head(cfg: MediaSettings, upload: ResumableUpload, head: bytes) -> None:
    """A resumable upload's first bytes are in: its declared Upload-Length must fit the limit
    of what the file is (a photo's, not a video's)."""
    limit = streaming_limit(cfg, head, kind=upload.kind)
    if upload.length > limit:
        raise PayloadTooLarge(
            f"Upload-Length {upload.length} exceeds the limit of {limit} bytes for this file",
            code="media.upload_too_large",
            params={"limit_bytes": limit},
        )


# --------------------------------------------------------------------------------------------
# Reads


def get(session: Session, media_id: int) -> MediaItem | None:
    return session.get(MediaItem, media_id)


def get_or_raise(session: Session, media_id: int) -> MediaItem:
    item = session.get(MediaItem, media_id)
    if item is None:
        raise NotFound(
            f"media item {media_id} not found",
            code="media.not_found",
            params={"media_id": media_id},
        )
    return item


def ensure_may_read_evidence(actor: Principal) -> None:
    """Evidence (site, meter, signature photos) is for the order's work and its review only.

    A storekeeper reads orders to pick their kits but never their evidence (403).
    """
    if actor.role == Role.storekeeper:
        raise Forbidden(
            f"role {actor.role.value} may not read evidence",
            code="auth.role_forbidden",
            params={"role": actor.role.value, "allowed": ["admin", "crew", "planner", "service"]},
        )


EVIDENCE_WRITERS = (Role.crew, Role.admin)


def order_for_evidence(session: Session, order_id: int, actor: Principal) -> WorkOrder:
    """The order an actor may add evidence to: its own crew's (or any, for an admin).

    Evidence is what the crew saw on site; other roles that may change an order (the service
    desk) never add photos to it (403), so no one but the crew can stand in for its proof.
    """
    if actor.role not in EVIDENCE_WRITERS:
        raise Forbidden(
            f"role {actor.role.value} may not add evidence",
            code="auth.role_forbidden",
            params={"role": actor.role.value, "allowed": sorted(r.value for r in EVIDENCE_WRITERS)},
        )
    return orders.get_for_actor(session, order_id, actor, write=True)


def item_for_actor(session: Session, media_id: int, actor: Principal) -> MediaItem:
    """An item the actor may read: the order's access rules decide (403 otherwise)."""
    ensure_may_read_evidence(actor)
    item = get_or_raise(session, media_id)
    orders.get_for_actor(session, item.order_id, actor, write=False)
    return item


def thumbnail_for_actor(session: Session, media_id: int, actor: Principal) -> tuple[int, str]:
    """The id and thumbnail sha256 of an item the actor may read; 404 until it has one."""
    item = item_for_actor(session, media_id, actor)
    if item.thumbnail_sha256 is None:
        raise NotFound(
            f"media item {media_id} has no thumbnail (yet)",
            code="media.no_thumbnail",
            params={"media_id": media_id},
        )
    return item.id, item.thumbnail_sha256


def get_by_client_id(session: Session, client_id: str) -> MediaItem | None:
    return session.execute(
        select(MediaItem).where(MediaItem.client_id == client_id)
    ).scalar_one_or_none()


def flags_of(session: Session, media_ids: Sequence[int]) -> dict[int, list[MediaFlag]]:
    """Flags per item, oldest first."""
    found: dict[int, list[MediaFlag]] = {i: [] for i in media_ids}
    if not media_ids:
        return found
    rows = session.execute(
        select(MediaFlag).where(MediaFlag.media_id.in_(media_ids)).order_by(MediaFlag.id)
    ).scalars()
    for flag in rows:
        found[flag.media_id].append(flag)
    return found


def list_for_order(
    session: Session, order_id: int, actor: Principal, *, kind: MediaKind | None = None
) -> list[MediaItem]:
    """The order's evidence, oldest first, if the actor may read the order."""
    ensure_may_read_evidence(actor)
    orders.get_for_actor(session, order_id, actor, write=False)
    query = select(MediaItem).where(MediaItem.order_id == order_id).order_by(MediaItem.id)
    if kind is not None:
        query = query.where(MediaItem.kind == kind)
    return list(session.execute(query).scalars())


def list_flags(
    session: Session,
    actor: Principal,
    *,
    code: rules.FlagCode | None = None,
    order_id: int | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[tuple[MediaFlag, MediaItem]]:
    """Flags for review, newest first; planners and admins see every order's."""
    query = flags_query(actor, code=code, order_id=order_id)
    rows = session.execute(query.limit(limit).offset(offset)).all()
    return [(flag, item) for flag, item in rows]


def flags_page(
    session: Session,
    actor: Principal,
    page: PageParams,
    *,
    code: rules.FlagCode | None = None,
    order_id: int | None = None,
) -> list[tuple[MediaFlag, MediaItem]]:
    """One page of the flags for review the actor may read, newest first."""
    rows = page.rows(session, flags_query(actor, code=code, order_id=order_id))
    return [(flag, item) for flag, item in rows]


def flags_with_orders(
    session: Session,
    actor: Principal,
    *,
    code: rules.FlagCode | None = None,
    order_id: int | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[tuple[MediaFlag, MediaItem, WorkOrder]]:
    """:func:`list_flags` with each flag's order (read in one query)."""
    rows = list_flags(session, actor, code=code, order_id=order_id, limit=limit, offset=offset)
    flagged = orders.get_many(session, (flag.order_id for flag, _ in rows))
    return [(flag, item, flagged[flag.order_id]) for flag, item in rows]


def flags_query(
    actor: Principal, *, code: rules.FlagCode | None = None, order_id: int | None = None
) -> Select[MediaFlag, MediaItem]:
    """The evidence flags ``actor`` may review with their items, newest first (a total order)."""
    if actor.role not in (Role.planner, Role.admin, Role.service):
        raise Forbidden(
            f"{actor.role.value} may not review evidence flags",
            code="media.flags_forbidden",
            params={"role": actor.role.value},
        )
    query = (
        select(MediaFlag, MediaItem)
        .join(MediaItem, MediaItem.id == MediaFlag.media_id)
        .order_by(MediaFlag.id.desc())
    )
    if code is not None:
        query = query.where(MediaFlag.code == code)
    if order_id is not None:
        query = query.where(MediaFlag.order_id == order_id)
    return query


def photo_counts(session: Session, order_id: int) -> dict[str, int]:
    """Number of photos on record per kind (for the completion checklist)."""
    rows = session.execute(
        select(MediaItem.kind, func.count())
        .where(
            MediaItem.order_id == order_id,
            MediaItem.media_type.in_([t for t in MediaType if t.is_image]),
        )
        .group_by(MediaItem.kind)
    ).all()
    return {kind.value: int(count) for kind, count in rows}


def latest_barcode(session: Session, order_id: int) -> MediaItem | None:
    """The order's most recent barcode photo (scanned value, decoded value, match)."""
    return session.execute(
        select(MediaItem)
        .where(MediaItem.order_id == order_id, MediaItem.kind == MediaKind.barcode)
        .order_by(MediaItem.id.desc())
        .limit(1)
    ).scalar_one_or_none()


# --------------------------------------------------------------------------------------------
# Writes


def create_item(
    session: Session,
    *,
    order_id: int,
    data: MediaCreate,
    staged: StagedFile,
    file_name: str | None,
    actor: Principal,
    settings: Settings,
    cfg: MediaSettings,
) -> tuple[MediaItem, bool]:
    """Record an uploaded file as evidence of an order; returns ``(item, created)``.

    The same client id with the same bytes returns the original item (``created`` False); with
    other bytes, or for another order, it is a 409. Rejections leave nothing behind: the
    caller discards the staged file, and the row is never flushed.
    """
    order = order_for_evidence(session, order_id, actor)
    existing = _same_upload(session, data, staged, order)
    if existing is not None:
        return existing, False
    media_type = _checked_type(data, staged, cfg)
    store = store_of(settings)
    now = clock.now()
    item = MediaItem(
        client_id=data.client_id,
        order_id=order.id,
        stage=data.stage or order.stage,
        kind=data.kind,
        media_type=media_type,
        sha256=staged.sha256,
        size_bytes=staged.size_bytes,
        file_name=file_name,
        uploaded_by=actor.user_id,
        uploaded_at=now,
    )
    flags = _describe(item, order, staged, now=now, cfg=cfg)
    meter_code = _scanned_meter(item, data, cfg)
    if meter_code is not None:
        _ensure_meter_free(session, meter_code, order)
    session.add(item)
    session.flush()
    if meter_code is not None:
        _bind_meter(session, meter_code, order, item, actor=actor)
    for flag in flags:
        _add_flag(session, item, flag, actor=actor)
    audit.record(session, actor=actor, action="media.create", entity=item)
    if not cfg.analyse_in_process:  # the workers' analysis job runs now, not at its period
        jobs.wake(session, ANALYSE_JOB)
    # The rename comes last: every constraint has been checked by the flush above.
    blob = store.promote(staged.path, staged.sha256)
    remove_on_rollback(session, store, blob)
    return item, True


def _same_upload(
    session: Session, data: MediaCreate, staged: StagedFile, order: WorkOrder
) -> MediaItem | None:
    """The item already recorded under the client id with the same bytes for the same order
    (a retried upload); another order or other bytes under that id is a 409."""
    existing = get_by_client_id(session, data.client_id)
    if existing is None:
        return None
    if existing.sha256 == staged.sha256 and existing.order_id == order.id:
        return existing
    where = "another work order" if existing.order_id != order.id else "different content"
    raise Conflict(
        f"client id {data.client_id} was already used for {where} (item {existing.id})",
        code="media.client_id_used",
        params={"client_id": str(data.client_id), "media_id": existing.id},
    )


def _checked_type(data: MediaCreate, staged: StagedFile, cfg: MediaSettings) -> MediaType:
    """The file's type by its magic bytes, once its declared sha256, its size for its kind and
    a barcode kind's need for a photo are checked."""
    if data.sha256 is not None and data.sha256 != staged.sha256:
        raise ValidationFailed(
            f"the file's sha256 is {staged.sha256}, the client declared {data.sha256}",
            code="media.sha256_mismatch",
            params={"sha256": staged.sha256, "declared": data.sha256},
        )
    media_type = sniff_media_type(staged.head)
    problem = rules.size_violation(
        staged.size_bytes, data.kind, is_video=not media_type.is_image, limits=size_limits(cfg)
    )
    if problem:
        raise PayloadTooLarge(
            problem,
            code="media.too_large_for_kind",
            params={"kind": data.kind.value, "size_bytes": staged.size_bytes},
        )
    if data.kind in cfg.barcode_kinds and not media_type.is_image:
        raise ValidationFailed(
            f"a {data.kind.value} item must be a photo",
            code="media.photo_required",
            params={"kind": data.kind.value},
        )
    return media_type


def _describe(
    item: MediaItem, order: WorkOrder, staged: StagedFile, *, now: datetime, cfg: MediaSettings
) -> list[EvidenceFlag]:
    """Fill in what the file says about itself (size, capture time, position, duration);
    a photo's plausibility and trailing-data flags."""
    flags: list[EvidenceFlag] = []
    if item.media_type.is_image:
        header = inspect_image(staged.path, item.media_type, max_pixels=cfg.max_image_pixels)
        item.width, item.height = header.width, header.height
        if header.captured is not None:
            item.captured_at = rules.as_utc(
                header.captured.at, assumed_utc_offset=cfg.assumed_utc_offset
            )
            item.captured_offset_known = header.captured.has_offset
        if header.gps is not None:
            item.gps_lat, item.gps_lon, item.gps_alt_m = (
                header.gps.lat,
                header.gps.lon,
                header.gps.alt_m,
            )
        flags.extend(_plausibility_flags(order, header, now=now, cfg=cfg))
        trailing = rules.check_trailing_data(header.trailing_bytes)
        if trailing is not None:
            flags.append(trailing)
    else:
        video = analyze_video(staged.path, item.media_type)
        item.duration_s = video.duration_s
        item.captured_at = video.created_at
        item.analysis = AnalysisState.done  # nothing deferred for videos
    return flags


def _scanned_meter(item: MediaItem, data: MediaCreate, cfg: MediaSettings) -> str | None:
    """The meter code a barcode photo binds (its scanned value, checked); any other kind's
    scanned value is only normalised onto the item."""
    if data.kind in cfg.barcode_kinds:
        if not data.scanned_value:
            raise ValidationFailed(
                "a barcode photo needs the value the terminal scanned",
                code="media.barcode_value_missing",
            )
        meter_code = parse_meter_code(
            data.scanned_value, check_digit_rule=cfg.meter_check_digit_rule
        ).value
        item.scanned_value = meter_code
        return meter_code
    if data.scanned_value:
        item.scanned_value = normalize_meter_code(data.scanned_value)
    return None


def record_generated(
    session: Session,
    *,
    order: WorkOrder,
    kind: MediaKind,
    data: bytes,
    client_id: str,
    actor: Principal,
    settings: Settings,
) -> MediaItem:
    """Keep an image the service itself received inside another step (the signature drawn
    on the contract) as evidence of ``kind``, beside the crew's uploads.

    ``client_id`` names it stably, so a retried step finds the same item. The bytes were
    checked by that step; nothing is deferred to the analysis worker (a drawn signature has
    no camera metadata, and look-alike signatures must not be flagged as reused photos).
    """
    existing = get_by_client_id(session, client_id)
    if existing is not None:
        return existing
    media_type = sniff_media_type(data[:64])
    if not media_type.is_image:
        raise ValidationFailed(
            f"a generated {kind.value} item must be an image",
            code="media.image_required",
            params={"kind": kind.value},
        )
    with PILImage.open(io.BytesIO(data)) as image:
        width, height = image.size
    store = store_of(settings)
    blob = store.put_bytes(data)
    remove_on_rollback(session, store, blob)
    item = MediaItem(
        client_id=client_id,
        order_id=order.id,
        stage=order.stage,
        kind=kind,
        media_type=media_type,
        sha256=blob.sha256,
        size_bytes=len(data),
        uploaded_by=actor.user_id,
        uploaded_at=clock.now(),
        width=width,
        height=height,
        analysis=AnalysisState.done,
    )
    session.add(item)
    session.flush()
    audit.record(session, actor=actor, action="media.create", entity=item)
    return item


def _plausibility_flags(
    order: WorkOrder, header: Any, *, now: datetime, cfg: MediaSettings
) -> list[EvidenceFlag]:
    flags: list[EvidenceFlag] = []
    photo_pos = Position(header.gps.lat, header.gps.lon) if header.gps is not None else None
    location = rules.check_location(
        photo_pos, Position(order.lat, order.lon), max_distance_m=cfg.max_distance_m
    )
    if location is not None:
        flags.append(location)
    timing = rules.check_capture_time(
        header.captured.at if header.captured is not None else None,
        accepted_at=order.accepted_at,
        uploaded_at=now,
        tolerance=cfg.clock_tolerance,
        assumed_utc_offset=cfg.assumed_utc_offset,
    )
    if timing is not None:
        flags.append(timing)
    return flags


def _add_flag(
    session: Session, item: MediaItem, flag: EvidenceFlag, *, actor: Principal | None
) -> MediaFlag:
    row = MediaFlag(
        media_id=item.id, order_id=item.order_id, code=flag.code, reason=flag.reason,
        params=flag.params,
    )
    session.add(row)
    session.flush()
    audit.record(session, actor=actor, action="media_flag.raise", entity=row)
    return row


def _ensure_meter_free(session: Session, meter_code: str, order: WorkOrder) -> None:
    binding = session.get(MeterBinding, meter_code)
    if binding is None or binding.order_id == order.id:
        return
    other = session.get(WorkOrder, binding.order_id)
    if other is not None and other.stage == Stage.cancelled:
        return  # the meter went back to stock with the cancelled order
    raise Conflict(
        f"meter {meter_code} is already installed on work order {binding.order_id}",
        code="meter.already_installed",
        params={"meter_code": meter_code, "order_id": binding.order_id},
    )


def _bind_meter(
    session: Session, meter_code: str, order: WorkOrder, item: MediaItem, *, actor: Principal
) -> None:
    binding = session.get(MeterBinding, meter_code)
    if binding is None:
        binding = MeterBinding(meter_code=meter_code, order_id=order.id, media_id=item.id)
        session.add(binding)
    else:
        binding.order_id, binding.media_id, binding.bound_at = order.id, item.id, clock.now()
    session.flush()
    audit.record(session, actor=actor, action="media.bind_meter", entity=binding)


# --------------------------------------------------------------------------------------------
# Deferred analysis


@dataclass(frozen=True)
class _AnalysisInput:
    media_id: int
    sha256: str
    media_type: MediaType
    kind: MediaKind
    scanned_value: str | None

    @classmethod
    def of(cls, item: MediaItem) -> _AnalysisInput:
        return cls(item.id, item.sha256, item.media_type, item.kind, item.scanned_value)


def analyse_in_session(
    session: Session, item: MediaItem, *, settings: Settings, cfg: MediaSettings
) -> None:
    """Analyse a stored item now, in the caller's session (a batch loader such as the demo,
    which has no worker beside it): the same pixel work and the same recording as
    :func:`analyse_claimed`, with the caller's transaction open throughout."""
    session.flush()
    outcome = compute_analysis(settings, cfg, _AnalysisInput.of(item))
    apply_analysis(session, item.id, outcome, cfg=cfg)


@dataclass(frozen=True)
class AnalysisOutcome:
    """The pixel work's results, computed with no database transaction open."""

    error: str | None = None
    problem: dict[str, Any] | None = None
    """The error as a message for people (``media_analysis.<what>``, :func:`analysis_problem`)."""
    phash: int | None = None
    thumbnail_sha256: str | None = None
    decoded: tuple[str, ...] | None = None  # None: not a barcode item
    truncated: bool = False  # the image data ends before its pixels do


# A decoder's refusal (its error code) -> the message people read (media_analysis.<what>).
_ANALYSIS_PROBLEMS: dict[str, str] = {
    "media.image_unreadable": "media_analysis.unreadable",
    "media.image_corrupt": "media_analysis.corrupt",
    "media.jpeg_truncated": "media_analysis.truncated",
    "media.image_empty": "media_analysis.no_pixels",
    "media.decompression_bomb": "media_analysis.too_many_pixels",
}


def analysis_problem(error: ValidationFailed) -> dict[str, Any]:
    """The stored message of an analysis that failed: a known refusal by its own message (the
    pixel counts when the decoder gave them), anything else as "cannot be decoded"."""
    code = _ANALYSIS_PROBLEMS.get(error.code, "media_analysis.other")
    if code == "media_analysis.too_many_pixels" and "max_pixels" not in error.params:
        code = "media_analysis.bomb"
    keep = {"media_analysis.unreadable": ("media_type",),
            "media_analysis.too_many_pixels": ("width", "height", "max_pixels")}.get(code, ())
    return {"code": code, "params": {k: error.params[k] for k in keep if k in error.params}}


def compute_analysis(
    settings: Settings,
    cfg: MediaSettings,
    job: _AnalysisInput,
    *,
    keep_alive: Callable[[], None] = lambda: None,
) -> AnalysisOutcome:
    """Decode (every pixel), hash, thumbnail, check for a cut scan and read barcodes of a
    stored photo (no database).

    ``keep_alive`` is called between the steps (it renews the item's lease).
    """
    store = store_of(settings)
    with store.local_copy(job.sha256) as path:  # the stored file, or a download of it
        try:
            result = analyze_image(path, job.media_type, max_pixels=cfg.max_image_pixels)
        except ValidationFailed as exc:
            return AnalysisOutcome(error=str(exc.detail), problem=analysis_problem(exc))
        keep_alive()
        thumb = store.put_bytes(result.thumbnail_jpeg)  # content-addressed: made once
        decoded: tuple[str, ...] | None = None
        if job.kind in cfg.barcode_kinds and job.scanned_value:
            image = load_oriented_image(path, job.media_type, max_pixels=cfg.max_image_pixels)
            keep_alive()
            decoded = tuple(normalize_meter_code(b.text) for b in decode_barcodes(image))
    keep_alive()
    return AnalysisOutcome(
        phash=result.phash,
        thumbnail_sha256=thumb.sha256,
        decoded=decoded,
        truncated=result.truncated,
    )


def apply_analysis(
    session: Session, media_id: int, outcome: AnalysisOutcome, *, cfg: MediaSettings
) -> None:
    """Record an analysis: hash bands, thumbnail, reuse and barcode flags. Idempotent."""
    item = get_or_raise(session, media_id)
    if item.analysis is not AnalysisState.pending:
        return
    if outcome.error is not None or outcome.phash is None:
        item.analysis = AnalysisState.failed
        item.analysis_error = outcome.error
        _add_flag(
            session,
            item,
            EvidenceFlag.of(
                rules.FlagCode.image_unreadable, problem=outcome.problem or outcome.error
            ),
            actor=None,
        )
        session.flush()
        audit.record(session, actor=None, action="media.analyse", entity=item)
        return
    item.thumbnail_sha256 = outcome.thumbnail_sha256
    item.phash = outcome.phash
    truncated = rules.check_truncated(outcome.truncated)
    if truncated is not None:  # stored and hashed, but never "done" without a word
        _add_flag(session, item, truncated, actor=None)
    match = rules.find_reuse(
        outcome.phash,
        str(item.order_id),
        near_duplicates(session, outcome.phash, exclude_order_id=item.order_id),
        max_hamming=cfg.reuse_max_hamming,
    )
    for band, value in enumerate(rules.phash_bands(outcome.phash)):
        session.add(MediaHashBand(media_id=item.id, band=band, value=value, order_id=item.order_id))
    reuse = rules.reuse_flag(match)
    if reuse is not None:
        _add_flag(session, item, reuse, actor=None)
    if outcome.decoded is not None and item.scanned_value:
        decoded = list(outcome.decoded)
        item.barcode_match = item.scanned_value in decoded
        item.decoded_value = item.scanned_value if item.barcode_match else next(iter(decoded), None)
        barcode_flag = rules.check_barcode(item.scanned_value, decoded)
        if barcode_flag is not None:
            _add_flag(session, item, barcode_flag, actor=None)
    item.analysis = AnalysisState.done
    session.flush()
    audit.record(session, actor=None, action="media.analyse", entity=item)


def near_duplicates(
    session: Session, phash: int, *, exclude_order_id: int | None = None
) -> list[HashCandidate]:
    """Stored photos with a slice among ``phash``'s probe keys: a superset of every photo
    within Hamming distance 7, found through the (band, value) index."""
    by_band: dict[int, list[int]] = {}
    for band, value in rules.phash_probe_keys(phash):
        by_band.setdefault(band, []).append(value)
    # one indexed range per band (a row-value IN makes SQLite scan the table)
    ids = select(MediaHashBand.media_id).where(
        or_(
            *(
                and_(MediaHashBand.band == band, MediaHashBand.value.in_(values))
                for band, values in by_band.items()
            )
        )
    )
    if exclude_order_id is not None:
        ids = ids.where(MediaHashBand.order_id != exclude_order_id)
    rows = session.execute(
        select(MediaItem.id, MediaItem.order_id, MediaItem.phash).where(
            MediaItem.id.in_(ids.distinct()), MediaItem.phash.is_not(None)
        )
    ).all()
    return [
        HashCandidate(item_id=str(i), work_order_id=str(o), phash=int(h))
        for i, o, h in rows
        if h is not None
    ]


ANALYSE_KIND = "media.analyse"
ANALYSE_TTL_S = 120.0
ANALYSE_JOB = "media.analyse_pending"  # the workers' periodic analysis pass (field_api.wiring)


class LeaseLost(Exception):
    """The item's lease expired and another process took the item: drop this analysis."""


class ItemLease:
    """One item's ``media.analyse`` lease, held by one analysis run (its own owner tag)."""

    def __init__(
        self, session_factory: sessionmaker[Session], media_id: int, *, owner: str, ttl_s: float
    ) -> None:
        self.factory = session_factory
        self.key = str(media_id)
        self.owner = owner
        self.ttl_s = ttl_s
        self.renewed_at = clock.now()

    def keep_alive(self) -> None:
        """Renew once a third of the TTL has passed; :class:`LeaseLost` if it was taken over."""
        now = clock.now()
        if (now - self.renewed_at).total_seconds() < self.ttl_s / 3:
            return
        with self.factory.begin() as session:
            held = leases.renew(session, ANALYSE_KIND, self.key, ttl_s=self.ttl_s, owner=self.owner)
        if not held:
            raise LeaseLost(f"media item {self.key}: the analysis lease was taken over")
        self.renewed_at = now

    def release(self) -> None:
        """Give the item back (nothing to record, or the analysis failed)."""
        try:
            with self.factory.begin() as session:
                leases.release(session, ANALYSE_KIND, self.key, owner=self.owner)
        except Exception:  # the lease expires on its own
            log.exception("releasing the analysis lease of media item %s failed", self.key)


def analysis_owner() -> str:
    """A fresh owner id for one analysis run: this process, tagged so that two threads of the
    process (a request's background task, a job worker) never share an item."""
    return leases.owner_id(f"analyse-{secrets.token_hex(4)}")


def pending_ids() -> Select[int]:
    """Items whose deferred analysis is still to do, oldest first (the claim candidates)."""
    return (
        select(MediaItem.id)
        .where(MediaItem.analysis == AnalysisState.pending)
        .order_by(MediaItem.id)
    )


def run_analysis(
    session_factory: sessionmaker[Session],
    media_id: int,
    *,
    settings: Settings,
    cfg: MediaSettings,
    ttl_s: float = ANALYSE_TTL_S,
) -> bool:
    """Claim one item and analyse it (the in-process path right after an upload).

    Returns False when another process or thread holds the item's lease (it analyses it), when
    there is nothing to do, or when the analysis failed (the item stays pending and the next
    ``process_pending`` pass retries it).
    """
    owner = analysis_owner()
    try:
        with session_factory.begin() as session:
            claimed = leases.claim(session, ANALYSE_KIND, str(media_id), ttl_s=ttl_s, owner=owner)
    except Exception:
        log.exception("claiming media item %s for analysis failed", media_id)
        return False
    if not claimed:
        return False
    return analyse_claimed(
        session_factory, media_id, owner=owner, settings=settings, cfg=cfg, ttl_s=ttl_s
    )


def analyse_claimed(
    session_factory: sessionmaker[Session],
    media_id: int,
    *,
    owner: str,
    settings: Settings,
    cfg: MediaSettings,
    ttl_s: float = ANALYSE_TTL_S,
) -> bool:
    """Analyse an item whose lease ``owner`` holds: read it, do the pixel work with no
    transaction open (on SQLite a transaction holds the database write lock), renewing the
    lease between steps, then record the result and release the lease in one short
    transaction — unless the lease was lost meanwhile (then nothing is recorded)."""
    lease = ItemLease(session_factory, media_id, owner=owner, ttl_s=ttl_s)
    try:
        with session_factory() as session:
            session.connection(execution_options=READ_OPTIONS)  # no write lock for a read
            item = get(session, media_id)
            job = _AnalysisInput.of(item) if item is not None else None
            pending = (
                item is not None
                and item.analysis is AnalysisState.pending
                and item.media_type.is_image
            )
            session.rollback()
        if job is None or not pending:
            lease.release()
            return False
        outcome = compute_analysis(settings, cfg, job, keep_alive=lease.keep_alive)
        with session_factory.begin() as session:
            if not leases.renew(session, ANALYSE_KIND, lease.key, ttl_s=ttl_s, owner=owner):
                raise LeaseLost(f"media item {media_id}: the analysis lease was taken over")
            apply_analysis(session, media_id, outcome, cfg=cfg)
            leases.release(session, ANALYSE_KIND, lease.key, owner=owner)
        return True
    except LeaseLost:
        log.warning("media item %s: analysis dropped, another process took it over", media_id)
        return False
    except Exception:  # the item stays pending; the next process_pending pass retries it
        log.exception("analysis of media item %s failed", media_id)
        lease.release()
        return False


def process_pending(
    session_factory: sessionmaker[Session],
    *,
    settings: Settings,
    cfg: MediaSettings,
    ttl_s: float = ANALYSE_TTL_S,
    max_items: int | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> int:
    """Analyse the items still pending, each under its own lease; returns how many were done.

    Items are claimed one at a time, oldest first, in a short transaction (``claim_from``), so
    any number of processes can run this at once: each item is analysed by one of them. An item
    leased by a live process is left to it; one whose lease expired, or whose owner was a
    process of this host that died (a killed server), is taken over at once. Each item is tried
    at most once per call. ``should_stop`` is asked between items (a server shutting down).
    """
    owner = analysis_owner()
    done = tried = 0
    after = 0
    while max_items is None or tried < max_items:
        if should_stop is not None and should_stop():
            break
        try:
            with session_factory.begin() as session:
                keys = leases.claim_from(
                    session,
                    ANALYSE_KIND,
                    pending_ids().where(MediaItem.id > after),
                    ttl_s=ttl_s,
                    limit=1,
                    owner=owner,
                )
        except Exception:
            log.exception("claiming pending media items failed")
            break
        if not keys:
            break
        media_id = int(keys[0])
        after = media_id
        tried += 1
        done += analyse_claimed(
            session_factory, media_id, owner=owner, settings=settings, cfg=cfg, ttl_s=ttl_s
        )
    return done


# --------------------------------------------------------------------------------------------
# tus 1.0 resumable uploads


def upload_area(settings: Settings) -> UploadArea:
    """Where the bytes of resumable uploads accumulate: part files in the media folder, or S3
    multipart uploads with a spool object (field_api.common.uploads)."""
    return store_of(settings).uploads


def checked_upload_id(upload_id: str) -> str:
    """An upload id as the store names it (32 hex digits); 404 for anything else."""
    try:
        return check_upload_id(upload_id)
    except ValueError:
        raise NotFound("no such upload", code="media.upload_not_found") from None


# A PATCH of an upload kept in a bucket holds this lease (any host may continue the upload); a
# host that dies mid-PATCH frees it after this long (a dead local process at once).
PATCH_LEASE_KIND = "media.tus_patch"
PATCH_LEASE_TTL_S = 900.0


def patch_owner() -> str:
    """A fresh lease owner for one PATCH (two PATCHes of one process never share it)."""
    return leases.owner_id(f"tus-{secrets.token_hex(4)}")


def claim_patch(session: Session, upload_id: str, owner: str) -> bool:
    """Take the upload's PATCH lease; False while another PATCH holds it."""
    return leases.claim(session, PATCH_LEASE_KIND, upload_id, ttl_s=PATCH_LEASE_TTL_S, owner=owner)


def release_patch(session: Session, upload_id: str, owner: str) -> None:
    leases.release(session, PATCH_LEASE_KIND, upload_id, owner=owner)


def create_upload(
    session: Session,
    *,
    order_id: int,
    data: MediaCreate,
    length: int,
    file_name: str | None,
    actor: Principal,
    settings: Settings,
    cfg: MediaSettings,
) -> ResumableUpload:
    """Open a resumable upload of ``length`` bytes (tus creation)."""
    order = order_for_evidence(session, order_id, actor)
    limit = max_upload_bytes(cfg, data.kind)
    if length > limit:
        raise PayloadTooLarge(
            f"Upload-Length {length} exceeds the limit of {limit} bytes",
            code="media.upload_too_large",
            params={"limit_bytes": limit},
        )
    if length <= 0:
        raise ValidationFailed("the file is empty", code="media.empty")
    existing = get_by_client_id(session, data.client_id)
    if existing is not None and (
        existing.order_id != order.id
        or (data.sha256 is not None and data.sha256 != existing.sha256)
    ):
        raise Conflict(
            f"client id {data.client_id} was already used (item {existing.id})",
            code="media.client_id_used",
            params={"client_id": str(data.client_id), "media_id": existing.id},
        )
    upload = ResumableUpload(
        id=secrets.token_hex(16),
        order_id=order.id,
        client_id=data.client_id,
        kind=data.kind,
        stage=data.stage,
        length=length,
        expected_sha256=data.sha256,
        file_name=file_name,
        scanned_value=data.scanned_value,
        created_by=actor.user_id,
    )
    upload_area(settings).create(upload.id)
    session.add(upload)
    session.flush()
    audit.record(session, actor=actor, action="media.upload_create", entity=upload)
    return upload


def get_upload_for_actor(session: Session, upload_id: str, actor: Principal) -> ResumableUpload:
    """An upload only its creator (or an admin) may continue."""
    upload = session.get(ResumableUpload, upload_id)
    if upload is None:
        raise NotFound("no such upload", code="media.upload_not_found")
    if actor.role != Role.admin and upload.created_by != actor.user_id:
        raise Forbidden(
            "only the terminal that started an upload may continue it",
            code="media.upload_other_terminal",
        )
    orders.get_for_actor(session, upload.order_id, actor, write=True)
    return upload


def upload_offset(settings: Settings, upload: ResumableUpload) -> int:
    """Bytes received so far (every byte that arrived is kept: the part file's size, or the S3
    parts' and the spool's)."""
    return upload_area(settings).offset(upload.id)


def finish_upload(
    session: Session,
    upload: ResumableUpload,
    *,
    actor: Principal,
    settings: Settings,
    cfg: MediaSettings,
) -> tuple[MediaItem, bool]:
    """Verify the complete upload's sha256 and record it like a single-request upload.

    The bytes are always gone from the upload area afterwards: promoted into the store, or
    deleted with the upload row when the content is refused.
    """
    if upload.media_id is not None:
        return get_or_raise(session, upload.media_id), False
    area = upload_area(settings)
    with area.complete(upload.id) as path:  # the part file, or the S3 upload assembled
        item, created = _record_upload(
            session, upload, path, actor=actor, settings=settings, cfg=cfg
        )
    area.discard(upload.id)
    upload.media_id = item.id
    session.flush()
    audit.record(session, actor=actor, action="media.upload_complete", entity=upload)
    return item, created


def _record_upload(
    session: Session,
    upload: ResumableUpload,
    path: Path,
    *,
    actor: Principal,
    settings: Settings,
    cfg: MediaSettings,
) -> tuple[MediaItem, bool]:
    sha = sha256_file(path)
    with path.open("rb") as fh:
        head = fh.read(64)
    staged = StagedFile(path=path, sha256=sha, size_bytes=path.stat().st_size, head=head)
    data = MediaCreate(
        client_id=upload.client_id,
        kind=upload.kind,
        stage=upload.stage,
        scanned_value=upload.scanned_value,
        sha256=upload.expected_sha256,
    )
    return create_item(
        session,
        order_id=upload.order_id,
        data=data,
        staged=staged,
        file_name=upload.file_name,
        actor=actor,
        settings=settings,
        cfg=cfg,
    )


def expire_uploads(
    session: Session, *, settings: Settings, cfg: MediaSettings, now: datetime | None = None
) -> int:
    """Drop unfinished resumable uploads older than ``cfg.tus_expiry_hours``; returns how many."""
    cutoff = (now or clock.now()) - timedelta(hours=cfg.tus_expiry_hours)
    stale = session.execute(
        select(ResumableUpload).where(
            ResumableUpload.media_id.is_(None), ResumableUpload.created_at < cutoff
        )
    ).scalars()
    count = 0
    for upload in list(stale):
        abandon_upload(session, upload, settings=settings, actor=None, action="media.upload_expire")
        count += 1
    return count


STALE_UPLOAD_AGE = timedelta(hours=1)


def sweep_stale_uploads(
    session: Session, *, settings: Settings, now: datetime | None = None
) -> int:
    """Drop the bytes of uploads no open upload row stands for (a creation whose transaction
    rolled back, a crash between the bytes and the row, a completed upload interrupted before
    its bytes were dropped): part files, or the bucket's multipart uploads and spool objects.
    Only those untouched for :data:`STALE_UPLOAD_AGE`, so an upload being created is left
    alone. Returns how many were dropped."""
    area = upload_area(settings)
    cutoff = (now or clock.now()) - STALE_UPLOAD_AGE
    candidates = [upload_id for upload_id, changed in area.list() if changed < cutoff]
    if not candidates:
        return 0
    open_ids = set(
        session.execute(
            select(ResumableUpload.id).where(
                ResumableUpload.id.in_(candidates), ResumableUpload.media_id.is_(None)
            )
        ).scalars()
    )
    stale = [upload_id for upload_id in candidates if upload_id not in open_ids]
    for upload_id in stale:
        area.discard(upload_id)
    return len(stale)


def abandon_upload(
    session: Session,
    upload: ResumableUpload,
    *,
    settings: Settings,
    actor: Principal | None,
    action: str = "media.upload_cancel",
) -> None:
    """Delete an upload and its bytes (tus termination, refused content, expiry), audited."""
    upload_area(settings).discard(checked_upload_id(upload.id))
    session.delete(upload)
    session.flush()
    audit.record(session, actor=actor, action=action, entity=upload, deleted=True)


def cancel_upload_for_actor(
    session: Session, upload_id: str, *, actor: Principal, settings: Settings
) -> None:
    """tus termination: drop an unfinished upload the actor may continue (409 once complete)."""
    upload = get_upload_for_actor(session, upload_id, actor)
    if upload.media_id is not None:
        raise Conflict(
            "this upload is complete; it is an evidence item now",
            code="media.upload_complete",
        )
    abandon_upload(session, upload, settings=settings, actor=actor)


def refuse_upload(
    session: Session, upload_id: str, *, actor: Principal, settings: Settings
) -> None:
    """Drop an upload whose content was refused (gone already: nothing to do)."""
    upload = session.get(ResumableUpload, upload_id)
    if upload is not None:
        abandon_upload(
            session, upload, settings=settings, actor=actor, action="media.upload_refuse"
        )
