"""tus 1.0 resumable uploads, and single uploads cut off mid-body."""

from __future__ import annotations

import base64
import hashlib
import uuid
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from field_api.config import MediaSettings, Settings
from field_api.media.models import ResumableUpload
from tests.builders import auth
from tests.clocks import ChinaClock

from .asgi import call, multipart_body
from .imaging import BRIGHTON_18, mp4_bytes
from .support import Crews, item_count, stored_bytes, stored_files

TUS = {"Tus-Resumable": "1.0.0"}


def _meta(**values: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items())


def _create(client: TestClient, order_id: int, token: str, data: bytes, **meta: str) -> str:
    values = {"client_id": str(uuid.uuid4()), "kind": "wiring", "filename": "v.mp4", **meta}
    r = client.post(
        f"/work-orders/{order_id}/media/uploads",
        headers=auth(token, **TUS, **{"Upload-Length": str(len(data)),
                                      "Upload-Metadata": _meta(**values)}),
    )  # fmt: skip
    assert r.status_code == 201, r.text
    assert r.headers["tus-resumable"] == "1.0.0"
    location: str = r.headers["location"]
    return location


def _patch(client: TestClient, url: str, token: str, offset: int, chunk: bytes) -> object:
    return client.patch(
        url,
        content=chunk,
        headers=auth(
            token,
            **TUS,
            **{"Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream"},
        ),
    )


def _offset(client: TestClient, url: str, token: str) -> int:
    r = client.head(url, headers=auth(token, **TUS))
    assert r.status_code == 200, r.headers
    assert r.headers["cache-control"] == "no-store"
    return int(r.headers["upload-offset"])


def test_options_advertises_version_extensions_and_limit(client: TestClient, app: FastAPI) -> None:
    app.state.settings.media = MediaSettings(video_max_bytes=123_456_789)
    r = client.options("/media/uploads")
    assert r.status_code == 204
    assert r.headers["tus-version"] == "1.0.0"
    assert "creation" in r.headers["tus-extension"]
    assert r.headers["tus-max-size"] == "123456789"


@pytest.mark.both_stores
def test_upload_in_chunks_resumes_after_a_dropped_connection(
    client: TestClient, app: FastAPI, session: Session, settings: Settings, crews: Crews
) -> None:
    data = mp4_bytes(mdat_bytes=300_000)
    sha = hashlib.sha256(data).hexdigest()
    url = _create(client, crews.order.id, crews.token_a, data, sha256=sha)
    assert _offset(client, url, crews.token_a) == 0

    first = _patch(client, url, crews.token_a, 0, data[:100_000])
    assert first.status_code == 204  # type: ignore[attr-defined]
    assert _offset(client, url, crews.token_a) == 100_000

    # the terminal loses signal 50 kB into the next PATCH: what arrived is kept
    cut = call(
        app,
        "PATCH",
        url,
        {
            "authorization": f"Bearer {crews.token_a}",
            "tus-resumable": "1.0.0",
            "upload-offset": "100000",
            "content-type": "application/offset+octet-stream",
            "content-length": str(len(data) - 100_000),
        },
        [data[100_000:125_000], data[125_000:150_000]],
        disconnect=True,
    )
    assert cut.status == 400
    assert _offset(client, url, crews.token_a) == 150_000
    assert item_count(session) == 0

    # resuming from a stale offset is refused with the right one
    stale = _patch(client, url, crews.token_a, 100_000, data[100_000:])
    assert stale.status_code == 409  # type: ignore[attr-defined]
    assert stale.headers["upload-offset"] == "150000"  # type: ignore[attr-defined]

    done = _patch(client, url, crews.token_a, 150_000, data[150_000:])
    assert done.status_code == 204, done.text  # type: ignore[attr-defined]
    assert done.headers["upload-offset"] == str(len(data))  # type: ignore[attr-defined]
    media_url = done.headers["content-location"]  # type: ignore[attr-defined]
    item = client.get(media_url, headers=auth(crews.token_a)).json()
    assert item["sha256"] == sha and item["media_type"] == "mp4"
    assert stored_bytes(settings, sha) == data
    assert not list((settings.media_dir / "uploads").glob("*.part"))


@pytest.mark.both_stores
def test_declared_sha256_mismatch_is_refused_and_cleaned_up(
    client: TestClient, session: Session, settings: Settings, crews: Crews
) -> None:
    data = mp4_bytes()
    url = _create(client, crews.order.id, crews.token_a, data, sha256="0" * 64)
    r = _patch(client, url, crews.token_a, 0, data)
    assert r.status_code == 422  # type: ignore[attr-defined]
    assert "sha256" in r.json()["detail"]  # type: ignore[attr-defined]
    assert item_count(session) == 0
    assert stored_files(settings) == []
    assert client.head(url, headers=auth(crews.token_a, **TUS)).status_code == 404


def test_bad_content_at_the_end_of_a_tus_upload_is_refused(
    client: TestClient, session: Session, settings: Settings, crews: Crews
) -> None:
    data = b"MZ" + b"\x00" * 5000  # a Windows executable
    url = _create(client, crews.order.id, crews.token_a, data)
    r = _patch(client, url, crews.token_a, 0, data)
    assert r.status_code == 415  # type: ignore[attr-defined]
    assert stored_files(settings) == []


def test_protocol_errors(client: TestClient, app: FastAPI, crews: Crews) -> None:
    data = mp4_bytes()
    url = _create(client, crews.order.id, crews.token_a, data)
    no_version = client.head(url, headers=auth(crews.token_a))
    assert no_version.status_code == 412
    assert no_version.headers["tus-version"] == "1.0.0"
    wrong_type = client.patch(
        url,
        content=data,
        headers=auth(crews.token_a, **TUS, **{"Upload-Offset": "0",
                                             "Content-Type": "application/json"}),
    )  # fmt: skip
    assert wrong_type.status_code == 415
    too_long = _patch(client, url, crews.token_a, 0, data + b"extra")
    assert too_long.status_code == 422  # type: ignore[attr-defined]
    app.state.settings.media = MediaSettings(video_max_bytes=1000, photo_max_bytes=1000)
    r = client.post(
        f"/work-orders/{crews.order.id}/media/uploads",
        headers=auth(crews.token_a, **TUS, **{"Upload-Length": "5000",
                     "Upload-Metadata": _meta(client_id=str(uuid.uuid4()), kind="site")}),
    )  # fmt: skip
    assert r.status_code == 413


def test_only_the_creator_may_continue_an_upload(
    client: TestClient, session: Session, crews: Crews
) -> None:
    data = mp4_bytes()
    url = _create(client, crews.order.id, crews.token_a, data)
    assert client.head(url, headers=auth(crews.token_b, **TUS)).status_code == 403
    assert _patch(client, url, crews.token_b, 0, data).status_code == 403  # type: ignore[attr-defined]
    r = client.post(
        f"/work-orders/{crews.order.id}/media/uploads",
        headers=auth(crews.token_b, **TUS, **{"Upload-Length": "10",
                     "Upload-Metadata": _meta(client_id=str(uuid.uuid4()), kind="site")}),
    )  # fmt: skip
    assert r.status_code == 403


def test_termination_deletes_the_partial_bytes(
    client: TestClient, session: Session, settings: Settings, crews: Crews
) -> None:
    data = mp4_bytes()
    url = _create(client, crews.order.id, crews.token_a, data)
    _patch(client, url, crews.token_a, 0, data[:1000])
    upload_id = url.rsplit("/", 1)[1]
    assert (settings.media_dir / "uploads" / f"{upload_id}.part").stat().st_size == 1000
    r = client.delete(url, headers=auth(crews.token_a, **TUS))
    assert r.status_code == 204
    assert not (settings.media_dir / "uploads" / f"{upload_id}.part").exists()
    assert session.get(ResumableUpload, upload_id) is None


# -- single uploads cut off mid-body ------------------------------------------------------------


def _form_headers(token: str, boundary: str, length: int) -> dict[str, str]:
    return {
        "authorization": f"Bearer {token}",
        "content-type": f"multipart/form-data; boundary={boundary}",
        "content-length": str(length),
    }


def test_upload_cut_mid_body_leaves_no_file_and_no_row(
    app: FastAPI, session: Session, settings: Settings, crews: Crews
) -> None:
    boundary = "fieldops-test-boundary"
    body = multipart_body(
        {"client_id": str(uuid.uuid4()), "kind": "site"},
        BRIGHTON_18.read_bytes(),
        boundary=boundary,
    )
    half = len(body) // 2
    result = call(
        app,
        "POST",
        f"/work-orders/{crews.order.id}/media",
        _form_headers(crews.token_a, boundary, len(body)),
        [body[: half // 2], body[half // 2 : half]],
        disconnect=True,
    )
    assert result.status == 400
    assert item_count(session) == 0
    assert stored_files(settings) == []


def test_body_ending_before_the_closing_boundary_is_400(
    app: FastAPI, session: Session, settings: Settings, crews: Crews
) -> None:
    boundary = "fieldops-test-boundary"
    body = multipart_body(
        {"client_id": str(uuid.uuid4()), "kind": "site"},
        BRIGHTON_18.read_bytes(),
        boundary=boundary,
    )
    cut = body[: len(body) - 300]
    result = call(
        app,
        "POST",
        f"/work-orders/{crews.order.id}/media",
        _form_headers(crews.token_a, boundary, len(cut)),
        [cut],
        disconnect=False,
    )
    assert result.status == 400, result.body
    assert b'"code":"media.multipart_malformed"' in result.body
    assert item_count(session) == 0
    assert stored_files(settings) == []


def test_whole_body_through_asgi_is_stored(
    app: FastAPI, session: Session, settings: Settings, crews: Crews, tmp_path: Path
) -> None:
    boundary = "fieldops-test-boundary"
    body = multipart_body(
        {"client_id": str(uuid.uuid4()), "kind": "site"},
        BRIGHTON_18.read_bytes(),
        boundary=boundary,
    )
    chunks = [body[i : i + 7000] for i in range(0, len(body), 7000)]
    result = call(
        app,
        "POST",
        f"/work-orders/{crews.order.id}/media",
        _form_headers(crews.token_a, boundary, len(body)),
        chunks,
        disconnect=False,
    )
    assert result.status == 201, result.body
    assert item_count(session) == 1


@pytest.mark.both_stores
def test_unfinished_uploads_expire_with_their_bytes(
    client: TestClient, session: Session, settings: Settings, crews: Crews
) -> None:
    from datetime import timedelta

    from field_api.common.clock import now as utcnow
    from field_api.media import service

    data = mp4_bytes()
    url = _create(client, crews.order.id, crews.token_a, data)
    _patch(client, url, crews.token_a, 0, data[:500])
    upload_id = url.rsplit("/", 1)[1]
    cfg = MediaSettings(tus_expiry_hours=24)
    later = utcnow() + timedelta(hours=23)
    assert service.expire_uploads(session, settings=settings, cfg=cfg, now=later) == 0
    much_later = utcnow() + timedelta(hours=25)
    assert service.expire_uploads(session, settings=settings, cfg=cfg, now=much_later) == 1
    assert session.get(ResumableUpload, upload_id) is None
    assert not (settings.media_dir / "uploads" / f"{upload_id}.part").exists()


def test_every_upload_row_write_is_on_the_audit_chain(
    client: TestClient, session: Session, settings: Settings, crews: Crews
) -> None:
    from datetime import timedelta

    from sqlalchemy import select

    from field_api.audit import service as audit
    from field_api.audit.models import AuditEvent
    from field_api.common.clock import now as utcnow
    from field_api.media import service
    from field_api.media.models import MediaFlag
    from tests.builders import make_order

    def actions(upload_id: str) -> list[str]:
        session.expire_all()
        return list(
            session.execute(
                select(AuditEvent.action)
                .where(AuditEvent.entity_type == "media_uploads", AuditEvent.entity_id == upload_id)
                .order_by(AuditEvent.seq)
            ).scalars()
        )

    data = mp4_bytes()
    done = _create(client, crews.order.id, crews.token_a, data).rsplit("/", 1)[1]
    assert _patch(client, f"/media/uploads/{done}", crews.token_a, 0, data).status_code == 204  # type: ignore[attr-defined]
    cancelled = _create(client, crews.order.id, crews.token_a, data).rsplit("/", 1)[1]
    assert (
        client.delete(f"/media/uploads/{cancelled}", headers=auth(crews.token_a, **TUS)).status_code
        == 204
    )
    refused = _create(client, crews.order.id, crews.token_a, data, sha256="0" * 64).rsplit("/", 1)[
        1
    ]
    assert _patch(client, f"/media/uploads/{refused}", crews.token_a, 0, data).status_code == 422  # type: ignore[attr-defined]
    expired = _create(client, crews.order.id, crews.token_a, data).rsplit("/", 1)[1]
    later = utcnow() + timedelta(hours=MediaSettings().tus_expiry_hours + 1)
    assert service.expire_uploads(session, settings=settings, cfg=MediaSettings(), now=later) == 1
    session.commit()
    # a photo far from its order raises a flag: flags are audited rows too
    far = make_order(session, crew=crews.crew_a)
    session.commit()
    photo = client.post(
        f"/work-orders/{far.id}/media",
        data={"client_id": str(uuid.uuid4()), "kind": "site"},
        files={"file": ("p.jpg", BRIGHTON_18.read_bytes(), "image/jpeg")},
        headers=auth(crews.token_a),
    )
    assert photo.status_code == 201, photo.text

    assert actions(done) == ["media.upload_create", "media.upload_complete"]
    assert actions(cancelled) == ["media.upload_create", "media.upload_cancel"]
    assert actions(refused) == ["media.upload_create", "media.upload_refuse"]
    assert actions(expired) == ["media.upload_create", "media.upload_expire"]
    flags = session.execute(select(MediaFlag.id)).scalars().all()
    assert flags
    flag_events = session.execute(
        select(AuditEvent.action, AuditEvent.entity_id).where(
            AuditEvent.entity_type == "media_flags"
        )
    ).all()
    assert {i for a, i in flag_events if a == "media_flag.raise"} == {str(f) for f in flags}
    assert audit.verify(session) == []


@pytest.mark.both_stores
def test_upload_bytes_without_an_open_upload_row_are_swept(
    client: TestClient,
    session: Session,
    settings: Settings,
    crews: Crews,
    server_clock: ChinaClock,
) -> None:
    from field_api.media import service

    data = mp4_bytes()
    kept = _create(client, crews.order.id, crews.token_a, data).rsplit("/", 1)[1]
    _patch(client, f"/media/uploads/{kept}", crews.token_a, 0, data[:500])
    area = service.upload_area(settings)
    orphan = uuid.uuid4().hex  # bytes whose row never committed (the creation rolled back)
    area.create(orphan)
    assert {orphan, kept} <= {upload_id for upload_id, _ in area.list()}
    assert service.sweep_stale_uploads(session, settings=settings) == 0  # too recent to judge
    server_clock.advance(hours=2)
    assert service.sweep_stale_uploads(session, settings=settings) == 1
    assert {upload_id for upload_id, _ in area.list()} == {kept}
    assert not area.exists(orphan)
    assert area.offset(kept) == 500  # an open upload keeps every byte
