"""Inspection files: batch output folders on disk and the photos, crops and thumbnails kept in
the content-addressed store (the media folder or the bucket: field_api.common.storage; rows
keep their sha256).

Owns: where a batch folder may lie (confined to ``settings.vision.inspections_dir``), reading its
records and state file, storing photos and crops, and finding a stored file to serve.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps
from sqlalchemy.orm import Session

from field_api.common.storage import ObjectStore, store_of
from field_api.config import Settings
from field_api.errors import DomainError, Forbidden, NotFound, ValidationFailed
from field_api.inspections.models import InspectionPhoto
from field_api.media.analysis import make_thumbnail, sniff_media_type
from vision import records as rec

RECORDS_FILE = "records.jsonl"
STATE_FILE = "batch.json"


# --- files in the content-addressed store (field_api.common.storage) ------------------------------


def media_type_of(head: bytes) -> str:
    """The content type of a stored image, read from its first bytes (a PNG is served as a
    PNG)."""
    try:
        return sniff_media_type(head).mime
    except DomainError:
        return "application/octet-stream"


def store_thumbnail(settings: Settings, source: Path) -> str | None:
    """A listing thumbnail of a photo (EXIF orientation applied), stored once.

    A drone JPEG cut short (SD card) gets one too: PIL decodes it once the missing end marker
    is appended (the photo's stored bytes stay as they came; PIL's process-wide
    LOAD_TRUNCATED_IMAGES stays off for evidence checks).
    """
    thumb: bytes | None
    try:
        with Image.open(source) as im:
            thumb = make_thumbnail(ImageOps.exif_transpose(im).convert("RGB"))
    except (OSError, ValueError, Image.DecompressionBombError):
        thumb = _truncated_jpeg_thumbnail(source)
    return None if thumb is None else store_of(settings).put_bytes(thumb).sha256


def _truncated_jpeg_thumbnail(source: Path) -> bytes | None:
    try:
        data = source.read_bytes()
        if data[:2] != b"\xff\xd8" or data.rstrip(b"\x00").endswith(b"\xff\xd9"):
            return None  # not a JPEG cut short: unreadable for another reason
        with Image.open(io.BytesIO(data + b"\xff\xd9")) as im:
            return make_thumbnail(ImageOps.exif_transpose(im).convert("RGB"))
    except (OSError, ValueError, Image.DecompressionBombError):
        return None


# --- serving stored files ------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredFile:
    """A stored image to serve: where it is, its real content type and its sha256 (the ETag)."""

    store: ObjectStore
    sha256: str
    media_type: str


def stored_file(settings: Settings, sha: str | None) -> StoredFile:
    """A stored image with its real content type, sniffed from its bytes (never guessed)."""
    if sha is None:
        raise NotFound("no stored file", code="inspection.file_not_stored")
    store = store_of(settings)
    try:
        head = store.head(sha)
    except FileNotFoundError:
        raise NotFound("stored file missing", code="inspection.file_missing") from None
    return StoredFile(store, sha, media_type_of(head))


def get_photo_or_raise(session: Session, photo_id: str) -> InspectionPhoto:
    photo = session.get(InspectionPhoto, photo_id)
    if photo is None:
        raise NotFound(
            f"photo {photo_id} not found",
            code="inspection.photo_not_found",
            params={"photo_id": photo_id},
        )
    return photo


def photo_image(session: Session, settings: Settings, photo_id: str) -> StoredFile:
    """The inspection photo's original bytes."""
    return stored_file(settings, get_photo_or_raise(session, photo_id).stored_sha256)


def photo_thumbnail(session: Session, settings: Settings, photo_id: str) -> StoredFile:
    """The inspection photo's listing thumbnail."""
    return stored_file(settings, get_photo_or_raise(session, photo_id).thumbnail_sha256)


# --- batch output folders ------------------------------------------------------------------------


def inside_inspections_dir(
    settings: Settings, path: Path, *, named: str, refuse_parent: bool = True
) -> Path:
    """``path`` resolved (symlinks followed); 403 when it leaves the inspections folder."""
    root = settings.vision.inspections_dir.resolve()
    resolved = (root / path).resolve()  # an absolute ``path`` replaces ``root`` here
    if (refuse_parent and ".." in path.parts) or not resolved.is_relative_to(root):
        raise Forbidden(
            f"{named} {str(path)!r} is outside the inspections folder; give a folder under it "
            "(no '..', no absolute path elsewhere, no link leading out of it)",
            code="inspection.path_outside",
            params={"path": str(path)},
        )
    return resolved


def resolve_batch_dir(settings: Settings, directory: Path, *, confined: bool = True) -> Path:
    if confined:
        path = inside_inspections_dir(settings, directory, named="batch folder")
    else:
        path = directory if directory.is_absolute() else settings.vision.inspections_dir / directory
        path = path.resolve()
    if not (path / RECORDS_FILE).is_file():
        raise ValidationFailed(
            f"{directory} holds no {RECORDS_FILE}: not a batch output folder",
            code="inspection.not_a_batch_folder",
            params={"records_file": RECORDS_FILE},
        )
    return path


def produced_at(batch_dir: Path) -> datetime:
    state = batch_dir / STATE_FILE
    if state.is_file():
        try:
            data = json.loads(state.read_text(encoding="utf-8"))
            for key in ("finished_at", "updated_at", "started_at"):
                if isinstance(data.get(key), str):
                    value = datetime.fromisoformat(data[key])
                    return value if value.tzinfo else value.replace(tzinfo=UTC)
        except (ValueError, OSError):
            pass
    return datetime.fromtimestamp((batch_dir / RECORDS_FILE).stat().st_mtime, tz=UTC)


def batch_model(batch_dir: Path) -> str | None:
    """The "<card name>@<version>" that `fieldops vision run` stamped in batch.json, if any."""
    try:
        value = json.loads((batch_dir / STATE_FILE).read_text(encoding="utf-8")).get("model")
    except (ValueError, OSError, AttributeError):
        return None
    return value[:200] if isinstance(value, str) else None


def load_records(path: Path) -> list[Any]:
    try:
        return list(rec.read_jsonl(path))
    except rec.RecordError as exc:
        raise ValidationFailed(
            str(exc),
            code="inspection.records_invalid",
            params={"reason": str(exc)},
        ) from exc


def check_photo_paths(settings: Settings, batch_dir: Path, records: list[Any]) -> None:
    """Every photo the records name lies under the inspections folder (403 otherwise)."""
    for record in records:
        if record.kind == "photo":
            named = Path(record.path)
            inside_inspections_dir(
                settings,
                named if named.is_absolute() else batch_dir / named,
                named=f"photo {record.photo_id}",
                refuse_parent=False,
            )
