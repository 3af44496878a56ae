"""HTTP endpoints of crew evidence: uploads (multipart and tus 1.0), listings, downloads.

Upload bodies are streamed to disk *before* any write transaction opens: the caller is
authenticated and the order's access checked in short read-only sessions, the body is received
into the media store's temp folder, and only then does one transaction record the item (it
commits before the response, so the deferred analysis sees it). Holding a transaction — on
SQLite the database write lock — while a slow terminal trickles in a video would stall every
other writer.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, BackgroundTasks, Depends, Header, Query, Request, Response, status
from fastapi.responses import FileResponse
from pydantic import ValidationError
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from field_api.api_doc import form_body, raw_body, uses_bearer
from field_api.common import clock
from field_api.common.actors import Principal
from field_api.common.csvfiles import csv_response
from field_api.common.downloads import stored_response
from field_api.common.storage import store_of
from field_api.config import MediaSettings, Settings
from field_api.db import READ_OPTIONS, session_scope
from field_api.deps import AppSettings, CurrentUser, DbSession, get_current_user
from field_api.errors import (
    BadRequest,
    Conflict,
    DomainError,
    NotFound,
    PayloadTooLarge,
    PreconditionFailed,
    ServiceUnavailable,
    UnsupportedMedia,
    ValidationFailed,
)
from field_api.language import language_of
from field_api.media import exports, service
from field_api.media.models import AnalysisState, MediaItem, ResumableUpload
from field_api.media.receive import (
    BodyIdleTimeout,
    ReceivedUpload,
    append_stream,
    idle_limited,
    receive_multipart,
)
from field_api.media.rules import FlagCode, MediaKind
from field_api.media.schemas import FlaggedItemRead, FlagRead, MediaCreate, MediaRead
from field_api.paging import Page
from field_api.types import CSV_RESPONSES, CodePath, IdPath, IdQuery, OffsetQuery

router = APIRouter(tags=["media"])

TUS_VERSION = "1.0.0"
TUS_HEADERS = {"Tus-Resumable": TUS_VERSION}
T = TypeVar("T")


class TusVersionMismatch(PreconditionFailed):
    """The client speaks another tus version (tus 1.0: 412 Precondition Failed)."""


# -- dependencies -----------------------------------------------------------------------------


async def get_media_settings(request: Request) -> MediaSettings:
    """The media section of the app's settings (``settings.media``).

    Async on purpose, like the helpers below: a sync dependency costs a worker-thread hop,
    and the upload path is kept to two hops (authenticate, then record).
    """
    settings: Settings = request.app.state.settings
    return settings.media


def _authenticate_briefly(request: Request, order_id: int | None = None) -> Principal:
    """Authenticate (and check write access to ``order_id``) in a short read-only session."""
    factory: sessionmaker[Session] = request.app.state.session_factory
    with factory() as session:
        try:
            # a read transaction: on SQLite it never waits for a writer's lock
            session.connection(execution_options=READ_OPTIONS)
            user = get_current_user(request, session, request.app.state.settings)
            if order_id is not None:
                service.order_for_evidence(session, order_id, user)
            return user
        finally:
            session.rollback()


@uses_bearer
def _order_writer(request: Request, order_id: IdPath) -> Principal:
    return _authenticate_briefly(request, order_id)


@uses_bearer
def _streaming_user(request: Request) -> Principal:
    return _authenticate_briefly(request)


MediaConfig = Annotated[MediaSettings, Depends(get_media_settings)]
StreamingUser = Annotated[Principal, Depends(_streaming_user)]
OrderWriter = Annotated[Principal, Depends(_order_writer)]


def _require_tus(tus_resumable: str | None) -> None:
    if tus_resumable != TUS_VERSION:
        raise TusVersionMismatch(
            f"Tus-Resumable {TUS_VERSION} is required",
            headers={"Tus-Version": TUS_VERSION, **TUS_HEADERS},
            code="media.tus_version",
            params={"version": TUS_VERSION},
        )


async def _in_transaction(request: Request, work: Callable[[Session], T]) -> T:
    """Run ``work`` in one committed transaction on a worker thread."""
    factory: sessionmaker[Session] = request.app.state.session_factory

    def _run() -> T:
        with contextlib.contextmanager(session_scope)(factory) as session:
            return work(session)

    return await run_in_threadpool(_run)


def _read(session: Session, item: MediaItem, language: str) -> MediaRead:
    return MediaRead.of(item, service.flags_of(session, [item.id])[item.id], language)


def _parse_create(fields: dict[str, Any]) -> MediaCreate:
    try:
        return MediaCreate.model_validate(fields)
    except ValidationError as exc:
        # the same body as the framework's request.invalid: the fields in params.errors, the
        # detail a sentence naming them in the request's language
        errors = [
            {
                "loc": ["body", *e.get("loc", ())],
                "type": str(e.get("type", "")),
                "msg": str(e.get("msg", "")),
            }
            for e in exc.errors()
        ]
        raise ValidationFailed(
            "invalid request fields", code="request.invalid", params={"errors": errors}
        ) from exc


def _declared_length(request: Request) -> int | None:
    raw = request.headers.get("content-length")
    return int(raw) if raw is not None and raw.isdigit() else None


# -- single-request upload ----------------------------------------------------------------


@router.post(
    "/work-orders/{order_id}/media",
    status_code=status.HTTP_201_CREATED,
    # the route streams and parses the form itself; the document still describes it
    openapi_extra=form_body(
        MediaCreate,
        files={"file": "The photo (JPEG, PNG, HEIC) or video (MP4, MOV); send it after kind."},
    ),
)
async def upload_media(
    order_id: IdPath,
    request: Request,
    response: Response,
    background: BackgroundTasks,
    user: OrderWriter,
    cfg: MediaConfig,
) -> MediaRead:
    """Upload a photo or short video (multipart: client_id, kind, stage, scanned_value, file).

    Limits apply while the body streams: once the file's first bytes show a photo, the photo
    limit of its kind (send ``kind`` before ``file``; a kind sent after the file gets the
    largest photo limit while streaming and its own once the form is complete), a video the
    video limit; a declared Content-Length that cannot fit is refused at the first bytes. A body
    that sends nothing for ``FIELDOPS_MEDIA_BODY_IDLE_TIMEOUT_S`` ends with 408.
    """
    settings: Settings = request.app.state.settings
    received = await _receive_form(request, cfg, settings)
    try:
        data = _parse_create(received.fields)
        staged = service.StagedFile(
            path=received.file.path,
            sha256=received.file.sha256,
            size_bytes=received.file.size,
            head=received.file.head,
        )

        def _create(session: Session) -> tuple[MediaRead, bool, bool]:
            item, created = service.create_item(
                session,
                order_id=order_id,
                data=data,
                staged=staged,
                file_name=received.file_name,
                actor=user,
                settings=settings,
                cfg=cfg,
            )
            pending = item.analysis == AnalysisState.pending
            return _read(session, item, language_of(request)), created, pending

        body, created, pending = await _in_transaction(request, _create)
    finally:
        received.file.discard()  # no-op once promoted into the store
    if not created:
        response.status_code = status.HTTP_200_OK
    elif pending:
        _analyse_later(request, background, body.id, settings=settings, cfg=cfg)
    return body


async def _receive_form(request: Request, cfg: MediaSettings, settings: Settings) -> ReceivedUpload:
    """Stream the multipart body into the store's temp folder under the upload limits: a
    declared Content-Length that cannot fit is refused at once (413), an interrupted body
    leaves nothing (400)."""
    limit = service.max_upload_bytes(cfg)
    declared = _declared_length(request)
    if declared is not None and declared > limit + 64 * 1024:
        raise PayloadTooLarge(
            f"the upload may be at most {limit} bytes",
            code="media.upload_too_large",
            params={"limit_bytes": limit},
        )

    def _file_limit(fields: dict[str, str], head: bytes) -> int:
        # the photo or video limit of what the file is, as soon as its first bytes are in
        kind = fields.get("kind")
        return service.streaming_limit(cfg, head, kind=kind, declared_body_bytes=declared)

    try:
        return await receive_multipart(
            request.headers.get("content-type", ""),
            idle_limited(request.stream(), cfg.body_idle_timeout_s),
            store_of(settings),
            max_file_bytes=limit,
            limit_for=_file_limit,
        )
    except ClientDisconnect as exc:
        raise BadRequest(
            "the upload was interrupted; nothing was stored",
            code="media.upload_interrupted",
        ) from exc


def _analyse_later(
    request: Request,
    background: BackgroundTasks,
    media_id: int,
    *,
    settings: Settings,
    cfg: MediaSettings,
) -> None:
    """Run a new photo's analysis after the response, when this process analyses."""
    if cfg.analyse_in_process:
        background.add_task(
            service.run_analysis,
            request.app.state.session_factory,
            media_id,
            settings=settings,
            cfg=cfg,
        )


# -- reads ------------------------------------------------------------------------------------


@router.get("/work-orders/{order_id}/media")
def list_order_media(
    page: Page,
    request: Request,
    order_id: IdPath,
    session: DbSession,
    user: CurrentUser,
    kind: MediaKind | None = None,
) -> list[MediaRead]:
    """The order's photos and videos with their evidence flags (each with its message in the
    request's language)."""
    items = service.list_for_order(session, order_id, user, kind=kind)
    flags = service.flags_of(session, [i.id for i in items])
    return page.apply([MediaRead.of(i, flags[i.id], language_of(request)) for i in items])


@router.get("/media/flags")
def list_media_flags(
    page: Page,
    request: Request,
    session: DbSession,
    user: CurrentUser,
    code: FlagCode | None = None,
    order_id: IdQuery = None,
) -> list[FlaggedItemRead]:
    """Evidence flagged for review (planners), newest first, each with its reason."""
    rows = service.flags_page(session, user, page, code=code, order_id=order_id)
    return [
        FlaggedItemRead(
            flag=FlagRead.of(flag, language_of(request)),
            kind=item.kind,
            stage=item.stage,
            uploaded_at=item.uploaded_at,
            thumbnail_url=f"/media/{item.id}/thumbnail" if item.thumbnail_sha256 else None,
        )
        for flag, item in rows
    ]


@router.get("/media/flags.csv", response_class=Response, responses=CSV_RESPONSES)
def media_flags_csv(
    request: Request,
    session: DbSession,
    user: CurrentUser,
    code: FlagCode | None = None,
    order_id: IdQuery = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 500,
    offset: OffsetQuery = 0,
) -> Response:
    """The evidence flags of ``/media/flags`` as CSV, newest first: each order's crew and
    district by code and name; the flag's ``message``, the evidence kind and the stage in the
    request's language."""
    language = language_of(request)
    lines = exports.flag_rows(
        session, user, language, code=code, order_id=order_id, limit=limit, offset=offset
    )
    name = f"evidence-flags-{clock.china_today()}"
    return csv_response(request, lines, exports.FLAG_COLUMNS, filename=name)


@router.get("/media/{media_id:int}")
def get_media(
    request: Request, media_id: IdPath, session: DbSession, user: CurrentUser
) -> MediaRead:
    """One item's metadata and flags."""
    return _read(session, service.item_for_actor(session, media_id, user), language_of(request))


def _etag_matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    for candidate in if_none_match.split(","):
        tag = candidate.strip()
        tag = tag[2:] if tag.startswith("W/") else tag
        if tag == etag:
            return True
    return False


_EXTENSIONS = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/heic": "heic",
    "video/mp4": "mp4",
    "video/quicktime": "mov",
}
_INLINE_TYPES = frozenset({"image/jpeg", "image/png"})  # what a browser shows as an image


def _content_disposition(stem: str, content_type: str) -> str:
    """Images a browser renders inline, with a filename; anything else an attachment.

    ``content_type`` is the type the service checked (magic bytes, decoded), never the client's.
    """
    filename = f"{stem}.{_EXTENSIONS.get(content_type, 'bin')}"
    kind = "inline" if content_type in _INLINE_TYPES else "attachment"
    return f'{kind}; filename="{filename}"'


def _file_response(
    settings: Settings,
    sha256: str,
    content_type: str,
    if_none_match: str | None,
    *,
    stem: str,
) -> Response:
    etag = f'"{sha256}"'
    # content-addressed: the bytes behind this ETag never change
    headers = {
        "ETag": etag,
        "Cache-Control": "private, max-age=31536000, immutable",
        "Content-Disposition": _content_disposition(stem, content_type),
        "X-Content-Type-Options": "nosniff",  # also set by the middleware: files never sniffed
    }
    if _etag_matches(if_none_match, etag):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    try:  # streamed from the media folder or the bucket (never a presigned URL)
        return stored_response(store_of(settings), sha256, media_type=content_type, headers=headers)
    except FileNotFoundError:
        raise ServiceUnavailable(
            "the stored file is missing from the media folder",
            code="media.file_missing",
        ) from None


@router.get("/media/{media_id:int}/content", response_class=FileResponse)
def download_media(
    media_id: IdPath,
    session: DbSession,
    user: CurrentUser,
    settings: AppSettings,
    if_none_match: Annotated[str | None, Header(max_length=512)] = None,
) -> Response:
    """The original bytes; ETag is the sha256 (If-None-Match gives 304)."""
    item = service.item_for_actor(session, media_id, user)
    return _file_response(
        settings, item.sha256, item.media_type.mime, if_none_match, stem=f"media-{item.id}"
    )


@router.get("/media/{media_id:int}/thumbnail", response_class=FileResponse)
def download_thumbnail(
    media_id: IdPath,
    session: DbSession,
    user: CurrentUser,
    settings: AppSettings,
    if_none_match: Annotated[str | None, Header(max_length=512)] = None,
) -> Response:
    """A JPEG of at most 320 px, made once when the photo was analysed."""
    item_id, thumbnail = service.thumbnail_for_actor(session, media_id, user)
    return _file_response(
        settings, thumbnail, "image/jpeg", if_none_match, stem=f"media-{item_id}-thumb"
    )


# -- tus 1.0 resumable uploads ----------------------------------------------------------------


@router.options("/media/uploads", status_code=status.HTTP_204_NO_CONTENT)
def tus_options(cfg: MediaConfig) -> Response:
    """tus discovery: version, extensions and the largest accepted upload."""
    return Response(
        status_code=status.HTTP_204_NO_CONTENT,
        headers={
            **TUS_HEADERS,
            "Tus-Version": TUS_VERSION,
            "Tus-Extension": "creation,termination",
            "Tus-Max-Size": str(service.max_upload_bytes(cfg)),
        },
    )


def _parse_upload_metadata(raw: str | None) -> dict[str, str]:
    values: dict[str, str] = {}
    for pair in (raw or "").split(","):
        pair = pair.strip()
        if not pair:
            continue
        key, _, encoded = pair.partition(" ")
        try:
            values[key] = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise BadRequest(
                f"Upload-Metadata value of {key!r} is not base64 UTF-8",
                code="media.tus_metadata_invalid",
                params={"key": key},
            ) from exc
    return values


@router.post(
    "/work-orders/{order_id}/media/uploads",
    status_code=status.HTTP_201_CREATED,
    response_class=Response,  # Location and Upload-Offset headers, no body
    responses={412: {"description": "Tus-Resumable: 1.0.0 is required."}},
)
def tus_create(
    order_id: IdPath,
    session: DbSession,
    user: CurrentUser,
    settings: AppSettings,
    cfg: MediaConfig,
    upload_length: Annotated[str | None, Header(max_length=20)] = None,
    upload_metadata: Annotated[str | None, Header(max_length=4096)] = None,
    tus_resumable: Annotated[str | None, Header(max_length=16)] = None,
) -> Response:
    """tus creation: open a resumable upload (metadata: client_id, kind, filename, ...)."""
    _require_tus(tus_resumable)
    if upload_length is None or not upload_length.isdigit():
        raise BadRequest(
            "Upload-Length is required (deferred length is not supported)",
            code="media.tus_length_required",
        )
    meta = _parse_upload_metadata(upload_metadata)
    file_name = meta.pop("filename", None)
    data = _parse_create(meta)
    upload = service.create_upload(
        session,
        order_id=order_id,
        data=data,
        length=int(upload_length),
        file_name=file_name,
        actor=user,
        settings=settings,
        cfg=cfg,
    )
    return Response(
        status_code=status.HTTP_201_CREATED,
        headers={**TUS_HEADERS, "Location": f"/media/uploads/{upload.id}", "Upload-Offset": "0"},
    )


@router.head("/media/uploads/{upload_id}", response_class=Response)  # headers, no body
def tus_head(
    upload_id: CodePath,
    session: DbSession,
    user: CurrentUser,
    settings: AppSettings,
    tus_resumable: Annotated[str | None, Header(max_length=16)] = None,
) -> Response:
    """tus offset: how many bytes the server holds."""
    _require_tus(tus_resumable)
    upload = service.get_upload_for_actor(session, upload_id, user)
    return Response(
        status_code=status.HTTP_200_OK,
        headers={
            **TUS_HEADERS,
            "Upload-Offset": str(service.upload_offset(settings, upload)),
            "Upload-Length": str(upload.length),
            "Cache-Control": "no-store",
        },
    )


@contextlib.asynccontextmanager
async def _exclusive(request: Request, settings: Settings, upload_id: str) -> AsyncIterator[None]:
    """One PATCH at a time per upload (across processes, and hosts for a bucket): a second one
    gets 409."""
    area = service.upload_area(settings)
    if not area.shared:
        with area.lock(upload_id) as held:
            if not held:
                raise _busy()
            yield
        return
    owner = service.patch_owner()
    if not await _in_transaction(request, lambda s: service.claim_patch(s, upload_id, owner)):
        raise _busy()
    try:
        yield
    finally:
        await _in_transaction(request, lambda s: service.release_patch(s, upload_id, owner))


def _busy() -> Conflict:
    return Conflict("another PATCH of this upload is in progress", code="media.tus_patch_busy")


@router.patch(
    "/media/uploads/{upload_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    openapi_extra=raw_body(
        "application/offset+octet-stream",
        "The file's next bytes, from Upload-Offset (tus 1.0.0 core).",
    ),
)
async def tus_patch(
    upload_id: CodePath,
    request: Request,
    background: BackgroundTasks,
    user: StreamingUser,
    cfg: MediaConfig,
    upload_offset: Annotated[str | None, Header(max_length=20)] = None,
    tus_resumable: Annotated[str | None, Header(max_length=16)] = None,
) -> Response:
    """tus append: bytes at Upload-Offset; the last PATCH verifies the sha256 and records it."""
    settings: Settings = request.app.state.settings
    _require_tus(tus_resumable)
    if request.headers.get("content-type", "") != "application/offset+octet-stream":
        raise UnsupportedMedia(
            "PATCH needs Content-Type application/offset+octet-stream",
            code="media.tus_content_type",
        )
    if upload_offset is None or not upload_offset.isdigit():
        raise BadRequest("Upload-Offset is required", code="media.tus_offset_required")
    patch = _Patch(request, upload_id, user, settings, cfg)
    upload = await _in_transaction(request, patch.load)
    if upload.media_id is not None:
        raise Conflict(
            "this upload is already complete",
            code="media.upload_complete",
            headers=TUS_HEADERS,
        )
    area = service.upload_area(settings)
    if not await run_in_threadpool(area.exists, upload.id):
        raise NotFound("no such upload", code="media.upload_not_found")
    async with _exclusive(request, settings, upload.id):
        offset = await patch.append(upload, upload_offset)
        headers = {**TUS_HEADERS, "Upload-Offset": str(offset)}
        if offset < upload.length:
            return Response(status_code=status.HTTP_204_NO_CONTENT, headers=headers)
        body, created, pending = await patch.finish()
    if created and pending:
        _analyse_later(request, background, body.id, settings=settings, cfg=cfg)
    headers["Content-Location"] = f"/media/{body.id}"
    return Response(status_code=status.HTTP_204_NO_CONTENT, headers=headers)


class _Patch:
    """The steps of one tus PATCH, each in its own short transaction or on the stream."""

    def __init__(
        self,
        request: Request,
        upload_id: str,
        user: Principal,
        settings: Settings,
        cfg: MediaSettings,
    ) -> None:
        self.request, self.upload_id, self.user = request, upload_id, user
        self.settings, self.cfg = settings, cfg

    def load(self, session: Session) -> ResumableUpload:
        return service.get_upload_for_actor(session, self.upload_id, self.user)

    async def refuse(self) -> None:
        """Drop the upload whose content was refused, bytes and row."""
        await _in_transaction(
            self.request,
            lambda s: service.refuse_upload(
                s, self.upload_id, actor=self.user, settings=self.settings
            ),
        )

    async def append(self, upload: ResumableUpload, claimed: str) -> int:
        """Append the body at ``claimed`` (the server's offset, else 409); the new offset.
        An idle body keeps what arrived (408); a dropped one asks to resume (400)."""
        area = service.upload_area(self.settings)
        writer = await run_in_threadpool(area.writer, upload.id)
        offset = writer.offset
        try:
            self._check_offset(upload, offset, claimed)
        except DomainError:
            await run_in_threadpool(writer.close)  # nothing written: nothing changes
            raise
        refused: list[DomainError] = []

        def _check_head(head: bytes) -> None:
            try:
                service.check_upload_head(self.cfg, upload, head)
            except DomainError as exc:
                refused.append(exc)
                raise

        try:
            written, complete_body = await append_stream(
                writer,
                idle_limited(self.request.stream(), self.cfg.body_idle_timeout_s),
                max_bytes=upload.length - offset,
                check_head=_check_head,
            )
        except BodyIdleTimeout as exc:
            # what arrived is kept: the client resumes from the new offset
            exc.headers = {
                **TUS_HEADERS,
                "Connection": "close",
                "Upload-Offset": str(
                    await run_in_threadpool(service.upload_offset, self.settings, upload)
                ),
            }
            raise
        except DomainError:
            if refused:  # refused content (a photo declared over the photo limit): drop it
                await self.refuse()
            raise
        if not complete_body:
            raise BadRequest(
                "the connection dropped; resume from Upload-Offset",
                code="media.upload_interrupted",
                headers={**TUS_HEADERS, "Upload-Offset": str(offset + written)},
            )
        return offset + written

    def _check_offset(self, upload: ResumableUpload, offset: int, claimed: str) -> None:
        if int(claimed) != offset:
            raise Conflict(
                f"Upload-Offset {claimed} does not match the server's offset {offset}",
                headers={**TUS_HEADERS, "Upload-Offset": str(offset)},
                code="media.tus_offset_mismatch",
                params={"offset": offset, "got": claimed},
            )
        declared = _declared_length(self.request)
        if declared is not None and declared > upload.length - offset:
            raise ValidationFailed(
                "the PATCH body is longer than the declared Upload-Length",
                code="media.tus_body_too_long",
            )

    async def finish(self) -> tuple[MediaRead, bool, bool]:
        """Record the complete upload: ``(body, created, analysis pending)``."""

        def _finish(session: Session) -> tuple[MediaRead, bool, bool]:
            fresh = service.get_upload_for_actor(session, self.upload_id, self.user)
            item, created = service.finish_upload(
                session, fresh, actor=self.user, settings=self.settings, cfg=self.cfg
            )
            pending = item.analysis == AnalysisState.pending
            return _read(session, item, language_of(self.request)), created, pending

        try:
            return await _in_transaction(self.request, _finish)
        except DomainError:
            # refused content: the bytes are gone, so is the upload
            await self.refuse()
            raise


@router.delete("/media/uploads/{upload_id}", status_code=status.HTTP_204_NO_CONTENT)
def tus_delete(
    upload_id: CodePath,
    session: DbSession,
    user: CurrentUser,
    settings: AppSettings,
    tus_resumable: Annotated[str | None, Header(max_length=16)] = None,
) -> Response:
    """tus termination: drop an unfinished upload and its bytes."""
    _require_tus(tus_resumable)
    service.cancel_upload_for_actor(session, upload_id, actor=user, settings=settings)
    return Response(status_code=status.HTTP_204_NO_CONTENT, headers=TUS_HEADERS)
