"""Crew evidence through HTTP: uploads, retries, rejections, access, downloads, flags."""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from field_api.config import MediaSettings, Settings
from field_api.media.models import MediaFlag, MediaItem, MeterBinding
from tests.builders import auth, make_order

from .imaging import (
    BRIGHTON_18,
    BRIGHTON_25,
    METER_CODE,
    code128_image,
    elf_executable,
    jpeg_with_exif,
    mp4_bytes,
    phone_photo,
    png_bomb,
)
from .support import BRIGHTON_POS, Crews, damage_stored, item_count, stored_bytes, stored_files


def upload(
    client: TestClient,
    order_id: int,
    token: str,
    data: bytes,
    *,
    kind: str = "site",
    client_id: str | None = None,
    filename: str = "photo.jpg",
    content_type: str = "image/jpeg",
    **fields: str,
) -> Any:
    form = {"client_id": client_id or str(uuid.uuid4()), "kind": kind, **fields}
    return client.post(
        f"/work-orders/{order_id}/media",
        data=form,
        files={"file": (filename, data, content_type)},
        headers=auth(token),
    )


# -- storing ----------------------------------------------------------------------------------


@pytest.mark.both_stores
def test_photo_upload_stores_content_addressed_file_and_metadata(
    client: TestClient, session: Session, settings: Settings, crews: Crews
) -> None:
    data = BRIGHTON_18.read_bytes()
    r = upload(client, crews.order.id, crews.token_a, data, kind="site")
    assert r.status_code == 201, r.text
    body = r.json()
    import hashlib

    sha = hashlib.sha256(data).hexdigest()
    assert body["sha256"] == sha
    assert body["media_type"] == "jpeg" and body["content_type"] == "image/jpeg"
    assert body["size_bytes"] == len(data)
    assert body["stage"] == "accepted"
    assert body["gps_lat"] == pytest.approx(46.842607, abs=1e-6)
    # naive EXIF time 16:31:59 read at UTC+8 → 08:31:59 UTC
    assert body["captured_at"].startswith("2016-06-23T08:31:59")
    assert body["captured_offset_known"] is False
    assert stored_bytes(settings, sha) == data
    assert not list((settings.media_dir / "tmp").glob("*"))


@pytest.mark.both_stores
def test_deferred_analysis_adds_hash_and_thumbnail_made_once(
    client: TestClient, session: Session, settings: Settings, crews: Crews
) -> None:
    r = upload(client, crews.order.id, crews.token_a, BRIGHTON_18.read_bytes())
    media_id = r.json()["id"]
    item = client.get(f"/media/{media_id}", headers=auth(crews.token_a)).json()
    assert item["analysis"] == "done"
    assert item["thumbnail_url"] == f"/media/{media_id}/thumbnail"
    thumb = client.get(item["thumbnail_url"], headers=auth(crews.token_a))
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    with Image.open(io.BytesIO(thumb.content)) as im:
        assert max(im.size) == 320
    row = session.get(MediaItem, media_id)
    assert row is not None and row.phash is not None
    first_thumb = row.thumbnail_sha256
    assert thumb.headers["etag"] == f'"{first_thumb}"'


def test_failed_plausibility_checks_flag_the_item_for_planners(
    client: TestClient, session: Session, settings: Settings, crews: Crews
) -> None:
    far = make_order(session, crew=crews.crew_a)  # builders' default: Shenzhen
    session.commit()
    r = upload(client, far.id, crews.token_a, BRIGHTON_18.read_bytes())
    assert r.status_code == 201
    codes = {f["code"]: f["reason"] for f in r.json()["flags"]}
    assert "gps_too_far" in codes and "km" not in codes["gps_too_far"]
    assert "limit 100 m" in codes["gps_too_far"]
    assert "time_before_acceptance" in codes  # 2016 photo, order accepted today
    flags = client.get(f"/media/flags?order_id={far.id}", headers=auth(crews.planner))
    assert flags.status_code == 200
    assert {f["flag"]["code"] for f in flags.json()} == {"gps_too_far", "time_before_acceptance"}


def test_flags_carry_code_params_and_a_message_in_the_request_language(
    client: TestClient, session: Session, settings: Settings, crews: Crews
) -> None:
    far = make_order(session, crew=crews.crew_a)
    session.commit()
    r = upload(client, far.id, crews.token_a, BRIGHTON_18.read_bytes())
    assert r.status_code == 201
    zh = {f["code"]: f for f in r.json()["flags"]}["gps_too_far"]  # no language: zh-CN
    assert zh["params"]["limit_m"] == 100
    assert zh["message"] == (
        f"拍摄地点距工单位置 {zh['params']['distance_m']} 米（上限 100 米）"
    )
    assert zh["reason"].startswith("taken ")  # English, as before

    url = f"/media/flags?order_id={far.id}"
    en = client.get(url, headers={**auth(crews.planner), "Accept-Language": "en-US,en;q=0.9"})
    by_code = {f["flag"]["code"]: f["flag"] for f in en.json()}
    assert by_code["gps_too_far"]["message"] == by_code["gps_too_far"]["reason"]
    timing = by_code["time_before_acceptance"]
    assert timing["message"].startswith("taken ") and "China time" in timing["message"]

    client.cookies.set("fo_lang", "zh-CN")  # the page's switch beats the browser's header
    cn = client.get(url, headers={**auth(crews.planner), "Accept-Language": "en"})
    timing = {f["flag"]["code"]: f["flag"] for f in cn.json()}["time_before_acceptance"]
    assert timing["message"].startswith(f"拍摄于 {timing['params']['taken']}（北京时间）")
    client.cookies.set("fo_lang", "en")
    item = client.get(f"/media/{r.json()['id']}", headers=auth(crews.planner)).json()
    messages = {f["code"]: f["message"] for f in item["flags"]}
    assert messages["gps_too_far"].startswith("taken ")
    # crews do not get the planners' review list
    assert client.get("/media/flags", headers=auth(crews.token_a)).status_code == 403


def test_plausible_photo_has_no_flags(
    client: TestClient, session: Session, settings: Settings, crews: Crews, tmp_path: Path
) -> None:
    taken = datetime.now(UTC) + timedelta(hours=8) - timedelta(minutes=5)
    path = jpeg_with_exif(
        tmp_path / "ok.jpg",
        taken=taken.replace(tzinfo=None),
        offset="+08:00",
        gps=(BRIGHTON_POS["lat"] + 0.0003, BRIGHTON_POS["lon"]),  # ~33 m north
    )
    r = upload(client, crews.order.id, crews.token_a, path.read_bytes(), kind="meter_box")
    assert r.status_code == 201, r.text
    assert r.json()["flags"] == []
    assert r.json()["captured_offset_known"] is True


# -- retries ------------------------------------------------------------------------------------


def test_same_client_id_and_bytes_returns_the_original_item(
    client: TestClient, session: Session, settings: Settings, crews: Crews
) -> None:
    cid = str(uuid.uuid4())
    data = BRIGHTON_18.read_bytes()
    first = upload(client, crews.order.id, crews.token_a, data, client_id=cid)
    again = upload(client, crews.order.id, crews.token_a, data, client_id=cid)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert item_count(session) == 1


def test_same_client_id_with_other_bytes_is_409(
    client: TestClient, session: Session, settings: Settings, crews: Crews
) -> None:
    cid = str(uuid.uuid4())
    assert upload(client, crews.order.id, crews.token_a, BRIGHTON_18.read_bytes(), client_id=cid)
    r = upload(client, crews.order.id, crews.token_a, BRIGHTON_25.read_bytes(), client_id=cid)
    assert r.status_code == 409
    assert r.json()["error"] == "Conflict"
    assert item_count(session) == 1
    assert len(stored_files(settings)) == 2  # the first photo and its thumbnail only


@pytest.mark.both_stores
def test_same_bytes_under_two_client_ids_are_stored_once(
    client: TestClient, session: Session, settings: Settings, crews: Crews
) -> None:
    data = BRIGHTON_25.read_bytes()
    a = upload(client, crews.order.id, crews.token_a, data, kind="site")
    b = upload(client, crews.order.id, crews.token_a, data, kind="wiring")
    assert a.status_code == b.status_code == 201
    assert a.json()["id"] != b.json()["id"]
    originals = [p for p in stored_files(settings) if p.name == a.json()["sha256"]]
    assert len(originals) == 1


# -- rejections: clear 4xx, nothing stored -----------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "status", "error"),
    [
        (elf_executable(), 415, "UnsupportedMedia"),
        (b"", 422, "ValidationFailed"),
        (png_bomb(), 422, "ValidationFailed"),
        ("truncated", 422, "ValidationFailed"),
    ],
    ids=["executable-renamed-jpg", "empty", "decompression-bomb", "truncated-jpeg"],
)
@pytest.mark.both_stores
def test_bad_files_are_rejected_and_leave_nothing(
    client: TestClient,
    session: Session,
    settings: Settings,
    crews: Crews,
    payload: bytes | str,
    status: int,
    error: str,
) -> None:
    data = BRIGHTON_18.read_bytes()[:-500] if payload == "truncated" else payload
    assert isinstance(data, bytes)
    r = upload(client, crews.order.id, crews.token_a, data, filename="meter.jpg")
    assert r.status_code == status, r.text
    assert r.json()["error"] == error
    assert item_count(session) == 0
    assert stored_files(settings) == []


def test_oversized_video_is_413_and_leaves_nothing(
    client: TestClient, app: FastAPI, session: Session, settings: Settings, crews: Crews
) -> None:
    app.state.settings.media = MediaSettings(video_max_bytes=10_000)
    small = upload(
        client, crews.order.id, crews.token_a, mp4_bytes(mdat_bytes=4096), kind="wiring",
        filename="v.mp4", content_type="video/mp4",
    )  # fmt: skip
    assert small.status_code == 201, small.text
    assert small.json()["duration_s"] == pytest.approx(5.0)
    big = upload(
        client, crews.order.id, crews.token_a, mp4_bytes(mdat_bytes=64_000), kind="wiring",
        filename="v.mp4", content_type="video/mp4",
    )  # fmt: skip
    assert big.status_code == 413
    assert big.json()["error"] == "PayloadTooLarge"
    assert item_count(session) == 1
    assert len(stored_files(settings)) == 1


def test_photo_size_limit_is_per_kind(
    client: TestClient, app: FastAPI, session: Session, settings: Settings, crews: Crews
) -> None:
    size = len(BRIGHTON_18.read_bytes())
    app.state.settings.media = MediaSettings(signature_max_bytes=size - 1)
    data = BRIGHTON_18.read_bytes()
    assert upload(client, crews.order.id, crews.token_a, data, kind="signature").status_code == 413
    assert upload(client, crews.order.id, crews.token_a, data, kind="site").status_code == 201


def test_bad_form_fields_are_422_and_leave_nothing(
    client: TestClient, session: Session, settings: Settings, crews: Crews
) -> None:
    r = upload(client, crews.order.id, crews.token_a, BRIGHTON_18.read_bytes(), client_id="x1")
    assert r.status_code == 422 and r.json()["error"] == "ValidationFailed"
    r = upload(client, crews.order.id, crews.token_a, BRIGHTON_18.read_bytes(), kind="selfie")
    assert r.status_code == 422
    assert stored_files(settings) == []


def test_bad_form_fields_are_named_like_any_invalid_request(
    client: TestClient, crews: Crews
) -> None:
    """The multipart form's 422 has the framework's shape: the fields in params.errors, and a
    detail naming them in the request's language."""
    data = BRIGHTON_18.read_bytes()
    r = upload(client, crews.order.id, crews.token_a, data, kind="selfie", client_id="x")
    body = r.json()
    assert r.status_code == 422 and body["code"] == "request.invalid"
    assert {tuple(e["loc"]) for e in body["params"]["errors"]} == {
        ("body", "kind"),
        ("body", "client_id"),
    }
    assert "problems" not in body["params"]
    assert body["detail"].startswith("请求参数无效：") and "kind" in body["detail"]
    english = client.post(
        f"/work-orders/{crews.order.id}/media",
        data={"client_id": "x", "kind": "selfie"},
        files={"file": ("photo.jpg", data, "image/jpeg")},
        headers={**auth(crews.token_a), "Accept-Language": "en"},
    ).json()["detail"]
    assert "kind" in english and "client_id" in english and "请求" not in english


def test_json_body_instead_of_multipart_is_415(client: TestClient, crews: Crews) -> None:
    r = client.post(
        f"/work-orders/{crews.order.id}/media", json={"a": 1}, headers=auth(crews.token_a)
    )
    assert r.status_code == 415


# -- access rules -----------------------------------------------------------------------------


def test_other_crew_cannot_upload_list_or_fetch(
    client: TestClient, session: Session, settings: Settings, crews: Crews
) -> None:
    r = upload(client, crews.order.id, crews.token_b, BRIGHTON_18.read_bytes())
    assert r.status_code == 403
    assert stored_files(settings) == []
    mine = upload(client, crews.order.id, crews.token_a, BRIGHTON_18.read_bytes()).json()
    for url in (
        f"/media/{mine['id']}",
        f"/media/{mine['id']}/content",
        f"/media/{mine['id']}/thumbnail",
        f"/work-orders/{crews.order.id}/media",
    ):
        assert client.get(url, headers=auth(crews.token_b)).status_code == 403, url
        assert client.get(url, headers=auth(crews.planner)).status_code == 200, url
    # planners read but do not upload
    r = upload(client, crews.order.id, crews.planner, BRIGHTON_25.read_bytes())
    assert r.status_code == 403
    assert client.get(f"/media/{mine['id']}").status_code == 401


@pytest.mark.both_stores
def test_download_uses_sha256_etag_and_304(
    client: TestClient, session: Session, settings: Settings, crews: Crews
) -> None:
    data = BRIGHTON_18.read_bytes()
    item = upload(client, crews.order.id, crews.token_a, data).json()
    r = client.get(f"/media/{item['id']}/content", headers=auth(crews.token_a))
    assert r.status_code == 200
    assert r.content == data  # streamed from the folder or the bucket, never a redirect
    assert r.headers["etag"] == f'"{item["sha256"]}"'
    assert r.headers["content-type"] == "image/jpeg"
    assert r.headers["content-length"] == str(len(data))
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["content-disposition"] == f'inline; filename="media-{item["id"]}.jpg"'
    cached = client.get(
        f"/media/{item['id']}/content",
        headers=auth(crews.token_a, **{"If-None-Match": f'"{item["sha256"]}"'}),
    )
    assert cached.status_code == 304 and cached.content == b""
    stale = client.get(
        f"/media/{item['id']}/content", headers=auth(crews.token_a, **{"If-None-Match": '"abc"'})
    )
    assert stale.status_code == 200


def test_missing_item_is_404(client: TestClient, crews: Crews) -> None:
    r = client.get("/media/999999", headers=auth(crews.token_a))
    assert r.status_code == 404 and r.json()["error"] == "NotFound"


# -- reused photos ------------------------------------------------------------------------------


def _reencoded(path: Path) -> bytes:
    with Image.open(path) as im:
        out = io.BytesIO()
        im.resize((im.width - 20, im.height - 11)).save(out, "JPEG", quality=60)
    return out.getvalue()


def test_photo_reused_on_another_order_is_flagged(
    client: TestClient, session: Session, settings: Settings, crews: Crews
) -> None:
    first = upload(client, crews.order.id, crews.token_a, BRIGHTON_18.read_bytes()).json()
    # a second shot of the same scene on the same order is normal
    same_order = upload(client, crews.order.id, crews.token_a, _reencoded(BRIGHTON_18)).json()
    # the same scene re-encoded and resized: other bytes, nearly the same perceptual hash
    again = upload(client, crews.order_b.id, crews.token_b, _reencoded(BRIGHTON_18)).json()
    # a different scene on another order
    other = upload(client, crews.order_b.id, crews.token_b, BRIGHTON_25.read_bytes()).json()

    def flags(media_id: int, token: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = client.get(f"/media/{media_id}", headers=auth(token)).json()[
            "flags"
        ]
        return found

    reused = [f for f in flags(again["id"], crews.token_b) if f["code"] == "reused_photo"]
    assert len(reused) == 1
    # the closest photo on order A is named (both shots there are near-identical)
    assert any(f"photo {i['id']} " in reused[0]["reason"] for i in (first, same_order))
    assert f"work order {crews.order.id}" in reused[0]["reason"]
    for media_id, token in ((other["id"], crews.token_b), (same_order["id"], crews.token_a)):
        assert "reused_photo" not in {f["code"] for f in flags(media_id, token)}


# -- barcodes -----------------------------------------------------------------------------------


def _barcode_jpeg(angle: float = 30.0, text: str = METER_CODE) -> bytes:
    out = io.BytesIO()
    phone_photo(code128_image(text), angle_deg=angle).save(out, "JPEG", quality=85)
    return out.getvalue()


@pytest.mark.both_stores
def test_barcode_photo_decoded_and_matched_with_the_scan(
    client: TestClient, session: Session, settings: Settings, crews: Crews
) -> None:
    r = upload(
        client, crews.order.id, crews.token_a, _barcode_jpeg(), kind="barcode",
        scanned_value=METER_CODE,
    )  # fmt: skip
    assert r.status_code == 201, r.text
    item = client.get(f"/media/{r.json()['id']}", headers=auth(crews.token_a)).json()
    assert item["decoded_value"] == METER_CODE
    assert item["barcode_match"] is True
    assert "barcode_mismatch" not in {f["code"] for f in item["flags"]}
    binding = session.get(MeterBinding, METER_CODE)
    assert binding is not None and binding.order_id == crews.order.id


def test_barcode_scan_that_differs_from_the_photo_is_flagged(
    client: TestClient, session: Session, settings: Settings, crews: Crews
) -> None:
    typed = METER_CODE[:-1] + "9"
    r = upload(
        client, crews.order.id, crews.token_a, _barcode_jpeg(), kind="barcode",
        scanned_value=typed,
    )  # fmt: skip
    item = client.get(f"/media/{r.json()['id']}", headers=auth(crews.token_a)).json()
    assert item["barcode_match"] is False
    assert item["decoded_value"] == METER_CODE
    mismatch = [f for f in item["flags"] if f["code"] == "barcode_mismatch"]
    assert mismatch and METER_CODE in mismatch[0]["reason"]


def test_meter_installed_on_another_order_is_409(
    client: TestClient, session: Session, settings: Settings, crews: Crews
) -> None:
    photo = _barcode_jpeg()
    ok = upload(
        client, crews.order.id, crews.token_a, photo, kind="barcode", scanned_value=METER_CODE
    )
    assert ok.status_code == 201
    again = upload(
        client, crews.order.id, crews.token_a, photo, kind="barcode", scanned_value=METER_CODE
    )
    assert again.status_code == 201  # the same order may photograph its meter again
    r = upload(
        client, crews.order_b.id, crews.token_b, photo, kind="barcode", scanned_value=METER_CODE
    )
    assert r.status_code == 409
    assert r.json()["params"]["order_id"] == crews.order.id
    assert f"已安装在工单 {crews.order.id}" in r.json()["detail"]
    assert (
        session.execute(
            select(func.count())
            .select_from(MediaItem)
            .where(MediaItem.order_id == crews.order_b.id)
        ).scalar_one()
        == 0
    )


@pytest.mark.parametrize("scanned", [None, "12345", "32401012345678901234AB"])
def test_barcode_photo_needs_a_valid_scanned_meter_code(
    client: TestClient, session: Session, settings: Settings, crews: Crews, scanned: str | None
) -> None:
    fields = {} if scanned is None else {"scanned_value": scanned}
    r = upload(client, crews.order.id, crews.token_a, _barcode_jpeg(0), kind="barcode", **fields)
    assert r.status_code == 422, r.text
    assert stored_files(settings) == []


def test_flag_rows_carry_the_order(
    client: TestClient, session: Session, settings: Settings, crews: Crews
) -> None:
    far = make_order(session, crew=crews.crew_a)
    session.commit()
    r = upload(client, far.id, crews.token_a, BRIGHTON_18.read_bytes())
    flags = (
        session.execute(select(MediaFlag).where(MediaFlag.media_id == r.json()["id"]))
        .scalars()
        .all()
    )
    assert flags and {f.order_id for f in flags} == {far.id}


@pytest.mark.both_stores
def test_a_failed_analysis_says_why_in_the_request_language(
    client: TestClient, session: Session, settings: Settings, crews: Crews
) -> None:
    from field_api.media import service
    from field_api.media.models import AnalysisState

    r = upload(client, crews.order.id, crews.token_a, BRIGHTON_18.read_bytes())
    assert r.status_code == 201, r.text
    item = session.get(MediaItem, r.json()["id"])
    assert item is not None
    # the stored file is cut short on disk (a failing disk, a copy interrupted): analysed again,
    # the decoder refuses it
    data = stored_bytes(settings, item.sha256)
    damage_stored(settings, item.sha256, data[: len(data) // 2])
    item.analysis = AnalysisState.pending
    service.analyse_in_session(session, item, settings=settings, cfg=settings.media)
    session.commit()

    url = f"/media/{item.id}"
    zh = client.get(url, headers=auth(crews.token_a)).json()  # no language: zh-CN
    assert zh["analysis"] == "failed"
    assert zh["analysis_error"] == "the JPEG is truncated or corrupt (no end-of-image marker)"
    assert zh["analysis_message"] == "JPEG 文件不完整或已损坏（没有图像结束标记）"
    flag = {f["code"]: f for f in zh["flags"]}["image_unreadable"]
    assert flag["params"]["problem"] == {"code": "media_analysis.truncated", "params": {}}
    assert flag["message"] == "照片无法解码：JPEG 文件不完整或已损坏（没有图像结束标记）"
    en = client.get(url, headers={**auth(crews.token_a), "Accept-Language": "en"}).json()
    assert en["analysis_message"] == "the JPEG is truncated or corrupt (no end-of-image marker)"
    client.cookies.set("fo_lang", "en")  # the page's switch beats the browser's header
    try:
        by_cookie = client.get(url, headers={**auth(crews.token_a), "Accept-Language": "zh"})
    finally:
        client.cookies.clear()
    assert by_cookie.json()["analysis_message"] == en["analysis_message"]
    assert {f["code"]: f for f in by_cookie.json()["flags"]}["image_unreadable"]["message"] == (
        "the photo cannot be decoded: the JPEG is truncated or corrupt (no end-of-image marker)"
    )
