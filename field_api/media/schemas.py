"""Request and response bodies of crew evidence."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from field_api import messages
from field_api.media.analysis import MediaType
from field_api.media.models import AnalysisState, MediaFlag, MediaItem
from field_api.media.rules import FlagCode, MediaKind
from field_api.types import Text
from field_api.work_orders.rules import Stage


class MediaCreate(BaseModel):
    """The form fields sent with an upload (multipart) or in tus Upload-Metadata."""

    model_config = ConfigDict(extra="forbid")

    client_id: Text = Field(
        min_length=1,
        max_length=36,
        description="The terminal's own UUID for this item (retry key).",
    )
    kind: MediaKind
    stage: Stage | None = Field(default=None, description="Default: the order's current stage.")
    scanned_value: Text | None = Field(
        default=None, max_length=200, description="What the terminal's scanner read (barcode)."
    )
    sha256: Text | None = Field(
        default=None, pattern=r"^[0-9a-f]{64}$", description="Expected sha256 (tus: verified)."
    )

    @field_validator("client_id")
    @classmethod
    def _uuid(cls, value: str) -> str:
        try:
            return str(uuid.UUID(value))
        except ValueError as exc:
            raise ValueError("client_id must be a UUID") from exc


class FlagRead(BaseModel):
    """An evidence flag: ``message`` is its text in the request's language (from ``code`` and
    ``params``, see ``field_api.messages``); ``reason`` the same in English."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    media_id: int
    order_id: int
    code: FlagCode
    params: dict[str, Any] = Field(description="What the message needs, in no language.")
    message: str = Field(description="The flag's text in the request's language.")
    reason: str = Field(description="The flag's text in English.")
    created_at: datetime

    @classmethod
    def of(cls, flag: MediaFlag, language: str = messages.DEFAULT_LANGUAGE) -> FlagRead:
        if flag.params is None:  # stored before the catalogue: English only
            params: dict[str, Any] = {}
            message = flag.reason
        else:
            params = dict(flag.params)
            message = messages.render(f"media_flag.{flag.code.value}", params, language)
        return cls(
            id=flag.id,
            media_id=flag.media_id,
            order_id=flag.order_id,
            code=flag.code,
            params=params,
            message=message,
            reason=flag.reason,
            created_at=flag.created_at,
        )


class MediaRead(BaseModel):
    id: int
    client_id: str
    order_id: int
    stage: Stage
    kind: MediaKind
    media_type: MediaType
    content_type: str
    sha256: str
    size_bytes: int
    file_name: str | None
    uploaded_by: int | None
    uploaded_at: datetime
    captured_at: datetime | None
    captured_offset_known: bool | None
    gps_lat: float | None
    gps_lon: float | None
    gps_alt_m: float | None
    width: int | None
    height: int | None
    duration_s: float | None
    scanned_value: str | None
    decoded_value: str | None
    barcode_match: bool | None
    analysis: AnalysisState
    analysis_error: str | None = Field(description="Why the analysis failed, in English.")
    analysis_message: str | None = Field(
        default=None, description="Why the analysis failed, in the request's language."
    )
    content_url: str
    thumbnail_url: str | None
    flags: list[FlagRead]

    @classmethod
    def of(
        cls, item: MediaItem, flags: list[MediaFlag], language: str = messages.DEFAULT_LANGUAGE
    ) -> MediaRead:
        return cls(
            id=item.id,
            client_id=item.client_id,
            order_id=item.order_id,
            stage=item.stage,
            kind=item.kind,
            media_type=item.media_type,
            content_type=item.media_type.mime,
            sha256=item.sha256,
            size_bytes=item.size_bytes,
            file_name=item.file_name,
            uploaded_by=item.uploaded_by,
            uploaded_at=item.uploaded_at,
            captured_at=item.captured_at,
            captured_offset_known=item.captured_offset_known,
            gps_lat=item.gps_lat,
            gps_lon=item.gps_lon,
            gps_alt_m=item.gps_alt_m,
            width=item.width,
            height=item.height,
            duration_s=item.duration_s,
            scanned_value=item.scanned_value,
            decoded_value=item.decoded_value,
            barcode_match=item.barcode_match,
            analysis=item.analysis,
            analysis_error=item.analysis_error,
            analysis_message=_analysis_message(item, flags, language),
            content_url=f"/media/{item.id}/content",
            thumbnail_url=f"/media/{item.id}/thumbnail" if item.thumbnail_sha256 else None,
            flags=[FlagRead.of(f, language) for f in flags],
        )


class FlaggedItemRead(BaseModel):
    """A planner's review line: the flag, its item and its order."""

    flag: FlagRead
    kind: MediaKind
    stage: Stage
    uploaded_at: datetime
    thumbnail_url: str | None


def _analysis_message(item: MediaItem, flags: list[MediaFlag], language: str) -> str | None:
    """Why the analysis failed, for people: the problem stored with the item's image_unreadable
    flag, in ``language``; the English decoder text for an item analysed before."""
    if item.analysis_error is None:
        return None
    for flag in flags:
        problem = (flag.params or {}).get("problem")
        if flag.code is FlagCode.image_unreadable and messages.is_message(problem):
            return messages.param_text(problem, language)  # type: ignore[no-any-return]
    return item.analysis_error
