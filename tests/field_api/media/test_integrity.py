"""Evidence integrity: hand-made bad files are stored but flagged, never "done" without a word.

Every bad file is made here: Pillow writes a JPEG, then its scan data is cut and an
end-of-image marker (FFD9) appended (a "repaired tail" that libjpeg decodes without an error),
or a ZIP archive / an HTML page is appended after the end-of-image marker (a polyglot).
"""

from __future__ import annotations

import io
import re
import uuid
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy.orm import Session

from field_api.config import Settings
from field_api.media.analysis import (
    MediaType,
    analyze_image,
    jpeg_end,
    jpeg_is_complete,
    jpeg_scan_is_short,
    trailing_bytes,
)
from field_api.media.rules import FlagCode, check_trailing_data, check_truncated
from tests.builders import auth

from .support import Crews, item_count

HTML = b"<!doctype html><html><body><script>alert(document.cookie)</script></body></html>"


def noise_jpeg(*, seed: int = 7, size: tuple[int, int] = (320, 240), **options: Any) -> bytes:
    """A JPEG with detail in every block (so every byte of its scan matters)."""
    rng = np.random.default_rng(seed)
    pixels = (rng.random((size[1], size[0], 3)) * 255).astype("uint8")
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG", quality=90, **options)
    return out.getvalue()


def repaired_tail(data: bytes, keep: float) -> bytes:
    """Cut the scan data at ``keep`` of the file and put an end-of-image marker after it."""
    cut = data[: int(len(data) * keep)]
    cut = cut.rstrip(b"\xff")  # a dangling FF would be a marker prefix, not data
    return cut + b"\xff\xd9"


def zip_archive() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("payload.txt", "not a photo")
    return out.getvalue()


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# -- the analysis ---------------------------------------------------------------------------


def test_a_complete_jpeg_is_neither_truncated_nor_trailed(tmp_path: Path) -> None:
    path = _write(tmp_path, "ok.jpg", noise_jpeg())
    result = analyze_image(path, MediaType.jpeg)
    assert result.truncated is False
    assert result.trailing_bytes == 0
    assert check_truncated(result.truncated) is None
    assert check_trailing_data(result.trailing_bytes) is None


@pytest.mark.parametrize("keep", [0.3, 0.6, 0.9, 0.995])
@pytest.mark.parametrize(
    "options", [{}, {"progressive": True}, {"restart_marker_blocks": 4}, {"subsampling": 2}]
)
def test_a_repaired_tail_decodes_but_is_found_truncated(
    tmp_path: Path, keep: float, options: dict[str, Any]
) -> None:
    original = noise_jpeg(**options)
    path = _write(tmp_path, "cut.jpg", repaired_tail(original, keep))
    # what fooled the upload: the marker walk reaches EOI and Pillow decodes it "fine"
    assert jpeg_is_complete(path)
    with Image.open(path) as im:
        im.load()
    result = analyze_image(path, MediaType.jpeg)
    assert result.truncated is True
    flag = check_truncated(result.truncated)
    assert flag is not None and flag.code is FlagCode.truncated


@pytest.mark.parametrize("options", [{}, {"progressive": True}, {"subsampling": 2}])
def test_a_cut_at_a_restart_interval_boundary_is_found_truncated(
    tmp_path: Path, options: dict[str, Any]
) -> None:
    # the decoder finds nothing missing in the last interval it reads; the restart markers of
    # the intervals that never arrived are what is missing
    original = noise_jpeg(restart_marker_blocks=3, **options)
    restarts = [m.start() for m in re.finditer(rb"\xff[\xd0-\xd7]", original)]
    assert len(restarts) > 10
    complete = _write(tmp_path, "ok.jpg", original)
    assert jpeg_scan_is_short(complete) is False
    cut = _write(tmp_path, "cut.jpg", original[: restarts[len(restarts) // 2]] + b"\xff\xd9")
    assert jpeg_is_complete(cut)
    assert jpeg_scan_is_short(cut) is True


@pytest.mark.parametrize("options", [{}, {"subsampling": 2}, {"optimize": True}])
def test_a_progressive_jpeg_cut_between_two_scans_is_found_truncated(
    tmp_path: Path, options: dict[str, Any]
) -> None:
    # a complete, coarser image: only the scans' coverage shows the later scans are missing
    original = noise_jpeg(progressive=True, **options)
    scans = [m.start() for m in re.finditer(rb"\xff\xda", original)]
    assert len(scans) > 3
    for cut_at in scans[1:]:
        cut = _write(tmp_path, "cut.jpg", original[:cut_at] + b"\xff\xd9")
        assert jpeg_is_complete(cut)
        assert jpeg_scan_is_short(cut) is True, cut_at


def test_the_real_drone_photo_is_not_truncated(tmp_path: Path) -> None:
    from .imaging import BRIGHTON_18

    assert jpeg_scan_is_short(BRIGHTON_18) is False
    data = BRIGHTON_18.read_bytes()
    assert jpeg_scan_is_short(_write(tmp_path, "cut.jpg", repaired_tail(data, 0.8))) is True


@pytest.mark.parametrize("extra", [zip_archive(), HTML], ids=["zip", "html"])
def test_bytes_after_the_end_of_image_are_counted(tmp_path: Path, extra: bytes) -> None:
    path = _write(tmp_path, "poly.jpg", noise_jpeg() + extra)
    assert jpeg_is_complete(path)  # still a valid JPEG: stored, but flagged
    assert trailing_bytes(path, MediaType.jpeg) == len(extra)
    result = analyze_image(path, MediaType.jpeg)
    assert result.truncated is False and result.trailing_bytes == len(extra)
    flag = check_trailing_data(result.trailing_bytes)
    assert flag is not None and flag.code is FlagCode.trailing_data


def test_more_jpeg_frames_and_zero_padding_after_the_image_are_part_of_it(tmp_path: Path) -> None:
    # a multi-picture (MPO) file: further complete JPEG frames follow the first EOI
    mpo = noise_jpeg() + b"\x00" * 16 + noise_jpeg(seed=8, size=(64, 48))
    assert trailing_bytes(_write(tmp_path, "mpo.jpg", mpo), MediaType.jpeg) == 0
    cut_frame = noise_jpeg() + noise_jpeg(seed=8)[:500]
    assert trailing_bytes(_write(tmp_path, "half.jpg", cut_frame), MediaType.jpeg) == 500


def test_a_png_with_a_zip_after_iend_is_counted(tmp_path: Path) -> None:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (1, 2, 3)).save(out, "PNG")
    clean = _write(tmp_path, "ok.png", out.getvalue())
    assert trailing_bytes(clean, MediaType.png) == 0
    archive = zip_archive()
    poly = _write(tmp_path, "poly.png", out.getvalue() + archive)
    assert trailing_bytes(poly, MediaType.png) == len(archive)
    assert analyze_image(poly, MediaType.png).trailing_bytes == len(archive)


def test_jpeg_end_points_past_the_first_end_marker(tmp_path: Path) -> None:
    data = noise_jpeg()
    assert jpeg_end(_write(tmp_path, "a.jpg", data + HTML)) == len(data)
    assert jpeg_end(_write(tmp_path, "b.jpg", data[:-2])) is None


# -- through the API ------------------------------------------------------------------------


def _upload(client: TestClient, crews: Crews, data: bytes, **fields: str) -> dict[str, Any]:
    form = {"client_id": str(uuid.uuid4()), "kind": "meter_before", **fields}
    r = client.post(
        f"/work-orders/{crews.order.id}/media",
        data=form,
        files={"file": ("photo.jpg", data, "image/jpeg")},
        headers=auth(crews.token_a),
    )
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def _after_analysis(client: TestClient, crews: Crews, media_id: int) -> dict[str, Any]:
    # the TestClient runs the deferred analysis before the upload's response returns
    r = client.get(f"/media/{media_id}", headers=auth(crews.token_a))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _codes(body: dict[str, Any]) -> set[str]:
    return {flag["code"] for flag in body["flags"]}


def test_a_repaired_tail_jpeg_is_stored_and_flagged_truncated(
    client: TestClient, session: Session, settings: Settings, crews: Crews
) -> None:
    clean = _after_analysis(client, crews, _upload(client, crews, noise_jpeg())["id"])
    assert clean["analysis"] == "done"
    assert FlagCode.truncated.value not in _codes(clean)

    cut = repaired_tail(noise_jpeg(seed=11), 0.5)
    body = _after_analysis(client, crews, _upload(client, crews, cut)["id"])
    assert FlagCode.truncated.value in _codes(body)
    reason = next(f["reason"] for f in body["flags"] if f["code"] == "truncated")
    assert "cut short" in reason
    assert body["thumbnail_url"] is not None  # stored and analysed, for a planner to see
    assert item_count(session) == 2


@pytest.mark.both_stores
@pytest.mark.parametrize("extra", [zip_archive(), HTML], ids=["jpeg+zip", "jpeg+html"])
def test_a_polyglot_is_flagged_and_served_only_as_a_jpeg(
    client: TestClient, crews: Crews, extra: bytes
) -> None:
    data = noise_jpeg(seed=12) + extra
    uploaded = _upload(client, crews, data)
    assert FlagCode.trailing_data.value in _codes(uploaded)  # flagged at upload already
    body = _after_analysis(client, crews, uploaded["id"])
    assert FlagCode.trailing_data.value in _codes(body)
    assert FlagCode.truncated.value not in _codes(body)
    assert body["media_type"] == "jpeg"
    r = client.get(f"/media/{uploaded['id']}/content", headers=auth(crews.token_a))
    assert r.status_code == 200
    assert r.headers["content-type"] == "image/jpeg"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.content == data


def test_flags_of_bad_files_are_listed_for_planners(client: TestClient, crews: Crews) -> None:
    _upload(client, crews, repaired_tail(noise_jpeg(seed=13), 0.7))
    _upload(client, crews, noise_jpeg(seed=14) + HTML)
    for code in ("truncated", "trailing_data"):
        r = client.get("/media/flags", params={"code": code}, headers=auth(crews.planner))
        assert r.status_code == 200, r.text
        assert [row["flag"]["code"] for row in r.json()] == [code]
