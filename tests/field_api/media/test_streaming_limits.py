"""Size limits while the body streams in, and request bodies that go quiet.

The body is a generator the app pulls chunk by chunk (``asgi.call_streaming``), so each test can
assert how much of it the server read before it stopped: a photo is cut off at the photo
limit, not after the video limit.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from field_api.config import MediaSettings, Settings
from tests.builders import auth

from .asgi import StreamedResult, call_streaming
from .imaging import mp4_bytes
from .support import Crews, item_count, stored_files

BOUNDARY = "limit-test-boundary"
CHUNK = 16 * 1024
JPEG_HEAD = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(64)
TUS = {"Tus-Resumable": "1.0.0"}


def _part(name: str, value: str) -> bytes:
    return (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
    ).encode()


def _form(
    file_head: bytes,
    file_size: int,
    *,
    before: dict[str, str],
    after: dict[str, str] | None = None,
) -> tuple[list[bytes], int]:
    """A multipart body as chunks: the fields ``before``, the file (its head, then zeros),
    the fields ``after``; and its total length."""
    start = b"".join(_part(k, v) for k, v in before.items())
    start += (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="p.jpg"\r\n'
        "Content-Type: image/jpeg\r\n\r\n"
    ).encode()
    chunks = [start, file_head]
    left = file_size - len(file_head)
    while left > 0:
        chunks.append(bytes(min(CHUNK, left)))
        left -= CHUNK
    end = b"\r\n" + b"".join(_part(k, v) for k, v in (after or {}).items())
    chunks.append(end + f"--{BOUNDARY}--\r\n".encode())
    return chunks, sum(len(c) for c in chunks)


def _post(
    app: FastAPI,
    crews: Crews,
    chunks: list[bytes],
    *,
    declared: int | None = None,
    stall: bool = False,
) -> StreamedResult:
    headers = auth(crews.token_a, **{"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})
    if declared is not None:
        headers["Content-Length"] = str(declared)
    return call_streaming(
        app, "POST", f"/work-orders/{crews.order.id}/media", headers, iter(chunks), stall=stall
    )


def _error(result: StreamedResult) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(result.body)
    return body


def _temp_files(settings: Settings) -> list[str]:
    tmp = settings.media_dir / "tmp"
    return sorted(p.name for p in tmp.iterdir()) if tmp.is_dir() else []


def test_a_photo_is_cut_off_at_the_photo_limit_not_the_video_limit(
    app: FastAPI, session: Session, settings: Settings, crews: Crews
) -> None:
    app.state.settings.media = MediaSettings(
        photo_max_bytes=200_000, signature_max_bytes=100_000, video_max_bytes=4_000_000
    )
    # no kind field yet: the largest photo limit (of any kind) applies
    chunks, _ = _form(JPEG_HEAD, 3_000_000, before={"client_id": str(uuid.uuid4())})
    result = _post(app, crews, chunks)  # no Content-Length: only the stream tells
    assert result.status == 413, result.body
    error = _error(result)
    assert error["code"] == "media.upload_too_large"
    assert error["params"] == {"limit_bytes": 200_000}
    # the server stopped reading at the limit (plus the chunk that crossed it)
    assert result.consumed <= 200_000 + 2 * CHUNK
    assert item_count(session) == 0
    assert _temp_files(settings) == [] and stored_files(settings) == []


def test_a_video_may_stream_past_the_photo_limit_up_to_its_own(
    app: FastAPI, session: Session, settings: Settings, crews: Crews
) -> None:
    app.state.settings.media = MediaSettings(photo_max_bytes=200_000, video_max_bytes=1_000_000)
    head = mp4_bytes()[:64]
    chunks, _ = _form(head, 3_000_000, before={"client_id": str(uuid.uuid4()), "kind": "wiring"})
    result = _post(app, crews, chunks)
    assert result.status == 413, result.body
    assert _error(result)["params"] == {"limit_bytes": 1_000_000}
    assert 1_000_000 < result.consumed <= 1_000_000 + 2 * CHUNK
    assert _temp_files(settings) == []


def test_a_declared_length_over_the_photo_limit_is_refused_at_the_first_bytes(
    app: FastAPI, session: Session, settings: Settings, crews: Crews
) -> None:
    app.state.settings.media = MediaSettings(photo_max_bytes=200_000)
    before = {"client_id": str(uuid.uuid4()), "kind": "site"}
    chunks, total = _form(JPEG_HEAD, 3_000_000, before=before)
    result = _post(app, crews, chunks, declared=total)
    assert result.status == 413, result.body
    assert _error(result)["params"] == {"limit_bytes": 200_000}
    # the form's head and the file's first bytes (the reader holds back a possible delimiter)
    assert result.consumed <= len(chunks[0]) + len(chunks[1]) + CHUNK
    assert item_count(session) == 0 and _temp_files(settings) == []


def test_the_kind_field_before_the_file_sets_its_limit_while_streaming(
    app: FastAPI, session: Session, settings: Settings, crews: Crews
) -> None:
    app.state.settings.media = MediaSettings(photo_max_bytes=200_000, signature_max_bytes=50_000)
    before = {"client_id": str(uuid.uuid4()), "kind": "signature"}
    chunks, _ = _form(JPEG_HEAD, 150_000, before=before)
    result = _post(app, crews, chunks)
    assert result.status == 413, result.body
    assert _error(result)["params"] == {"limit_bytes": 50_000}
    assert result.consumed <= 50_000 + 2 * CHUNK
    assert _temp_files(settings) == []


def test_a_kind_field_after_the_file_is_checked_once_the_form_is_complete(
    app: FastAPI, session: Session, settings: Settings, crews: Crews
) -> None:
    # documented: until the kind is known the largest photo limit applies while streaming
    app.state.settings.media = MediaSettings(photo_max_bytes=200_000, signature_max_bytes=50_000)
    chunks, total = _form(
        JPEG_HEAD, 150_000, before={"client_id": str(uuid.uuid4())}, after={"kind": "signature"}
    )
    result = _post(app, crews, chunks)
    assert result.status == 413, result.body
    assert _error(result)["code"] == "media.too_large_for_kind"
    assert result.consumed == total
    assert item_count(session) == 0
    assert _temp_files(settings) == [] and stored_files(settings) == []


def test_a_multipart_body_that_goes_quiet_ends_with_408_and_leaves_nothing(
    app: FastAPI, session: Session, settings: Settings, crews: Crews
) -> None:
    app.state.settings.media = MediaSettings(body_idle_timeout_s=0.2)
    chunks, total = _form(JPEG_HEAD, 500_000, before={"client_id": str(uuid.uuid4())})
    result = _post(app, crews, chunks[:5], declared=total, stall=True)
    assert result.status == 408, result.body
    assert _error(result)["code"] == "media.body_idle_timeout"
    assert result.headers["connection"] == "close"
    assert item_count(session) == 0
    assert _temp_files(settings) == [] and stored_files(settings) == []


# -- tus --------------------------------------------------------------------------------------


def _create_upload(client: TestClient, crews: Crews, length: int, kind: str = "site") -> str:
    meta = {"client_id": str(uuid.uuid4()), "kind": kind, "filename": "p.jpg"}
    encoded = ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in meta.items())
    r = client.post(
        f"/work-orders/{crews.order.id}/media/uploads",
        headers=auth(crews.token_a, **TUS, **{"Upload-Length": str(length),
                                              "Upload-Metadata": encoded}),
    )  # fmt: skip
    assert r.status_code == 201, r.text
    location: str = r.headers["location"]
    return location


def _patch(
    app: FastAPI,
    crews: Crews,
    url: str,
    chunks: Iterator[bytes],
    *,
    offset: int = 0,
    declared: int | None = None,
    stall: bool = False,
) -> StreamedResult:
    headers = auth(
        crews.token_a,
        **TUS,
        **{"Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream"},
    )
    if declared is not None:
        headers["Content-Length"] = str(declared)
    return call_streaming(app, "PATCH", url, headers, chunks, stall=stall)


def _zeros(total: int) -> Iterator[bytes]:
    yield JPEG_HEAD
    left = total - len(JPEG_HEAD)
    while left > 0:
        yield bytes(min(CHUNK, left))
        left -= CHUNK


def test_a_tus_photo_declared_over_the_photo_limit_stops_at_its_first_bytes(
    app: FastAPI, client: TestClient, session: Session, settings: Settings, crews: Crews
) -> None:
    app.state.settings.media = MediaSettings(photo_max_bytes=200_000, video_max_bytes=10_000_000)
    url = _create_upload(client, crews, 3_000_000)  # fits the video limit: the type is unknown
    result = _patch(app, crews, url, _zeros(3_000_000))
    assert result.status == 413, result.body
    assert _error(result)["params"] == {"limit_bytes": 200_000}
    assert result.consumed == len(JPEG_HEAD)
    # refused content: the upload and its bytes are gone
    assert client.head(url, headers=auth(crews.token_a, **TUS)).status_code == 404
    assert list((settings.media_dir / "uploads").iterdir()) == []


def test_a_tus_patch_declaring_more_than_the_upload_holds_is_refused_unread(
    app: FastAPI, client: TestClient, crews: Crews
) -> None:
    url = _create_upload(client, crews, 100_000)
    result = _patch(app, crews, url, _zeros(200_000), declared=200_000)
    assert result.status == 422, result.body
    assert _error(result)["code"] == "media.tus_body_too_long"
    assert result.consumed == 0


def test_a_tus_patch_that_goes_quiet_ends_with_408_and_keeps_what_arrived(
    app: FastAPI, client: TestClient, settings: Settings, crews: Crews
) -> None:
    app.state.settings.media = MediaSettings(body_idle_timeout_s=0.2)
    url = _create_upload(client, crews, 100_000)
    sent = [JPEG_HEAD, bytes(CHUNK)]
    result = _patch(app, crews, url, iter(sent), declared=100_000, stall=True)
    assert result.status == 408, result.body
    assert result.headers["connection"] == "close"
    arrived = sum(len(c) for c in sent)
    assert result.headers["upload-offset"] == str(arrived)
    # a resumable upload keeps its bytes: the terminal resumes from the offset
    r = client.head(url, headers=auth(crews.token_a, **TUS))
    assert r.headers["upload-offset"] == str(arrived)
