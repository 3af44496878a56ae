"""Type sniffing, image validation and metadata extraction (pure, no database)."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import imagehash
import pytest
from PIL import Image

from field_api.errors import UnsupportedMedia, ValidationFailed
from field_api.media.analysis import (
    MediaType,
    analyze_image,
    analyze_video,
    jpeg_is_complete,
    phash_to_int64,
    sniff_file,
    sniff_media_type,
)

from .imaging import (
    BRIGHTON_18,
    THERMAL_H20T,
    elf_executable,
    jpeg_with_exif,
    mp4_bytes,
    png_bomb,
)


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# -- sniffing ------------------------------------------------------------------------------


def test_sniff_recognises_each_supported_type_by_content() -> None:
    png = io.BytesIO()
    Image.new("RGB", (4, 4)).save(png, "PNG")
    assert sniff_media_type(BRIGHTON_18.read_bytes()[:64]) is MediaType.jpeg
    assert sniff_media_type(png.getvalue()[:64]) is MediaType.png
    assert sniff_media_type(mp4_bytes()[:64]) is MediaType.mp4
    assert sniff_media_type(mp4_bytes(brand=b"qt  ")[:64]) is MediaType.mov


def test_sniff_recognises_heic_written_by_pillow_heif() -> None:
    import pillow_heif

    pillow_heif.register_heif_opener()
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 10, 10)).save(out, format="HEIF", quality=80)
    assert sniff_media_type(out.getvalue()[:64]) is MediaType.heic


def test_executable_renamed_jpg_is_unsupported(tmp_path: Path) -> None:
    path = _write(tmp_path, "meter.jpg", elf_executable())
    with pytest.raises(UnsupportedMedia, match="not its name"):
        sniff_file(path)


def test_windows_executable_is_unsupported() -> None:
    with pytest.raises(UnsupportedMedia):
        sniff_media_type(b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 56)


def test_empty_file_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValidationFailed, match="empty"):
        sniff_file(_write(tmp_path, "x.jpg", b""))


def test_unknown_iso_brand_is_unsupported() -> None:
    with pytest.raises(UnsupportedMedia, match="brand"):
        sniff_media_type(mp4_bytes(brand=b"crx ", compatible=b"crx ")[:64])


# -- real drone photo fixture -----------------------------------------------------------------


def test_analysis_reads_exif_time_and_gps_of_a_real_drone_photo() -> None:
    result = analyze_image(BRIGHTON_18, MediaType.jpeg)
    assert result.captured is not None
    assert result.captured.at == datetime(2016, 6, 23, 16, 31, 59)
    assert result.captured.has_offset is False
    assert result.captured.source_tag == "DateTimeOriginal"
    assert result.gps is not None
    # 46°50'33.3855" N, 91°59'40.4156" W, 198.309 m (from the original DJI EXIF)
    assert result.gps.lat == pytest.approx(46.842607, abs=1e-6)
    assert result.gps.lon == pytest.approx(-91.994560, abs=1e-6)
    assert result.gps.alt_m == pytest.approx(198.309)
    assert (result.width, result.height) == (400, 225)


def test_phash_is_a_signed_int64_equal_to_imagehash_bits() -> None:
    result = analyze_image(THERMAL_H20T, MediaType.jpeg)
    assert -(2**63) <= result.phash < 2**63
    with Image.open(THERMAL_H20T) as im:
        expected = imagehash.phash(im.convert("RGB"))
    assert result.phash & (2**64 - 1) == int(str(expected), 16)


def test_phash_to_int64_wraps_high_bit_to_negative() -> None:
    all_ones = imagehash.hex_to_hash("ffffffffffffffff")
    top_only = imagehash.hex_to_hash("8000000000000000")
    assert phash_to_int64(all_ones) == -1
    assert phash_to_int64(top_only) == -(2**63)


def test_thumbnail_is_a_jpeg_no_larger_than_320_px() -> None:
    result = analyze_image(BRIGHTON_18, MediaType.jpeg)
    with Image.open(io.BytesIO(result.thumbnail_jpeg)) as thumb:
        assert thumb.format == "JPEG"
        assert max(thumb.size) == 320
        assert thumb.size == (320, 180)


# -- EXIF variants ---------------------------------------------------------------------------


def test_offset_time_original_makes_the_capture_time_aware(tmp_path: Path) -> None:
    path = jpeg_with_exif(tmp_path / "a.jpg", taken=datetime(2026, 3, 2, 9, 15, 0), offset="+08:00")
    result = analyze_image(path, MediaType.jpeg)
    assert result.captured is not None
    assert result.captured.has_offset is True
    assert result.captured.at.astimezone(UTC) == datetime(2026, 3, 2, 1, 15, tzinfo=UTC)
    assert result.captured.at.utcoffset() == timedelta(hours=8)


def test_southern_eastern_gps_signs(tmp_path: Path) -> None:
    path = jpeg_with_exif(tmp_path / "a.jpg", gps=(-33.8568, 151.2153))
    result = analyze_image(path, MediaType.jpeg)
    assert result.gps is not None
    assert result.gps.lat == pytest.approx(-33.8568, abs=1e-4)
    assert result.gps.lon == pytest.approx(151.2153, abs=1e-4)


def test_photo_without_exif_has_no_time_or_gps(tmp_path: Path) -> None:
    path = tmp_path / "plain.png"
    Image.new("RGBA", (50, 40), (0, 0, 0, 0)).save(path, "PNG")
    result = analyze_image(path, MediaType.png)
    assert result.captured is None
    assert result.gps is None
    with Image.open(io.BytesIO(result.thumbnail_jpeg)) as thumb:
        # transparent pixels become white, not black
        assert thumb.convert("RGB").getpixel((10, 10)) == (255, 255, 255)


def test_exif_orientation_is_applied_to_size_and_thumbnail(tmp_path: Path) -> None:
    # Orientation 6: the stored 200x100 image is shown turned 90° clockwise, so the red
    # left half ends up on top and the photo is portrait.
    path = jpeg_with_exif(tmp_path / "turned.jpg", size=(200, 100), orientation=6)
    result = analyze_image(path, MediaType.jpeg)
    assert result.orientation == 6
    assert (result.width, result.height) == (100, 200)
    with Image.open(io.BytesIO(result.thumbnail_jpeg)) as thumb:
        assert thumb.size == (100, 200)
        top = thumb.convert("RGB").getpixel((50, 20))
        bottom = thumb.convert("RGB").getpixel((50, 180))
    assert isinstance(top, tuple) and isinstance(bottom, tuple)
    assert top[0] > 200 and top[2] < 60  # red
    assert bottom[2] > 200 and bottom[0] < 60  # blue


def test_heic_photo_is_analysed(tmp_path: Path) -> None:
    import pillow_heif

    pillow_heif.register_heif_opener()
    path = tmp_path / "photo.heic"
    Image.new("RGB", (64, 48), (200, 10, 10)).save(path, format="HEIF", quality=80)
    result = analyze_image(path, sniff_file(path))
    assert result.media_type is MediaType.heic
    assert (result.width, result.height) == (64, 48)


# -- bad images -------------------------------------------------------------------------------


def test_decompression_bomb_is_refused_without_decoding(tmp_path: Path) -> None:
    path = _write(tmp_path, "bomb.png", png_bomb())
    assert path.stat().st_size < 2000
    with pytest.raises(ValidationFailed, match="decompression bomb"):
        analyze_image(path, sniff_file(path))


def test_configured_pixel_limit_is_enforced(tmp_path: Path) -> None:
    path = tmp_path / "big.jpg"
    Image.new("RGB", (2000, 1000), (10, 20, 30)).save(path, "JPEG")
    with pytest.raises(ValidationFailed, match="exceeds the limit of 1000000"):
        analyze_image(path, MediaType.jpeg, max_pixels=1_000_000)
    assert analyze_image(path, MediaType.jpeg, max_pixels=2_000_000).width == 2000


def test_jpeg_cut_in_half_is_rejected(tmp_path: Path) -> None:
    data = BRIGHTON_18.read_bytes()
    path = _write(tmp_path, "half.jpg", data[: len(data) // 2])
    with pytest.raises(ValidationFailed, match="truncated"):
        analyze_image(path, MediaType.jpeg)


@pytest.mark.parametrize("cut_bytes", [2, 100, 5000])
def test_jpeg_missing_its_last_bytes_is_rejected(tmp_path: Path, cut_bytes: int) -> None:
    # libjpeg pads a short file silently (Pillow may then decode a grey band); the marker
    # walk requires the end-of-image marker after the last scan.
    data = BRIGHTON_18.read_bytes()
    path = _write(tmp_path, "tail.jpg", data[:-cut_bytes])
    assert not jpeg_is_complete(path)
    with pytest.raises(ValidationFailed, match="truncated"):
        analyze_image(path, MediaType.jpeg)


def test_complete_jpeg_passes_the_marker_walk() -> None:
    assert jpeg_is_complete(BRIGHTON_18)


def test_bytes_after_the_end_of_image_marker_are_allowed(tmp_path: Path) -> None:
    # phones append MPO frames or vendor trailers after EOI: accepted, but a trailer that is
    # no image is counted (the rules flag it trailing_data, see test_integrity.py)
    path = _write(tmp_path, "trailer.jpg", BRIGHTON_18.read_bytes() + b"SEFT" + b"\x00" * 64)
    assert jpeg_is_complete(path)
    result = analyze_image(path, MediaType.jpeg)
    assert result.gps is not None
    assert result.trailing_bytes == 68 and result.truncated is False


def test_corrupt_png_is_rejected(tmp_path: Path) -> None:
    out = io.BytesIO()
    Image.new("RGB", (300, 300), (1, 2, 3)).save(out, "PNG")
    data = out.getvalue()
    path = _write(tmp_path, "broken.png", data[: len(data) - 40])
    with pytest.raises(ValidationFailed):
        analyze_image(path, MediaType.png)


def test_video_type_is_not_analysed_as_a_photo(tmp_path: Path) -> None:
    path = _write(tmp_path, "v.mp4", mp4_bytes())
    with pytest.raises(UnsupportedMedia):
        analyze_image(path, MediaType.mp4)


# -- video ------------------------------------------------------------------------------------


def test_video_duration_and_creation_time_from_mvhd(tmp_path: Path) -> None:
    path = _write(tmp_path, "v.mp4", mp4_bytes(duration_ms=7500))
    result = analyze_video(path, sniff_file(path))
    assert result.duration_s == pytest.approx(7.5)
    assert result.created_at == datetime(1904, 1, 1, tzinfo=UTC) + timedelta(seconds=3_700_000_000)


def test_truncated_video_is_rejected(tmp_path: Path) -> None:
    data = mp4_bytes()
    path = _write(tmp_path, "cut.mp4", data[:-1000])
    with pytest.raises(ValidationFailed, match="truncated"):
        analyze_video(path, MediaType.mp4)


def test_video_without_moov_is_rejected(tmp_path: Path) -> None:
    data = mp4_bytes()
    ftyp_len = int.from_bytes(data[:4], "big")
    moov_len = int.from_bytes(data[ftyp_len : ftyp_len + 4], "big")
    path = _write(tmp_path, "nomoov.mp4", data[:ftyp_len] + data[ftyp_len + moov_len :])
    with pytest.raises(ValidationFailed, match="moov"):
        analyze_video(path, MediaType.mp4)


def test_an_analysis_refusal_becomes_a_message_with_its_figures() -> None:
    from field_api import messages
    from field_api.media.service import analysis_problem

    bomb = ValidationFailed(
        "image refused as a decompression bomb: ...", code="media.decompression_bomb",
        params={"width": 40000, "height": 30000, "max_pixels": 100_000_000},
    )
    problem = analysis_problem(bomb)
    assert problem == {
        "code": "media_analysis.too_many_pixels",
        "params": {"width": 40000, "height": 30000, "max_pixels": 100_000_000},
    }
    assert messages.param_text(problem, "zh-CN") == (
        "图像 40000×30000 像素，超过 100000000 像素的上限，拒绝解码"
    )
    bare = ValidationFailed("refused as a decompression bomb", code="media.decompression_bomb")
    assert analysis_problem(bare)["code"] == "media_analysis.bomb"
    odd = ValidationFailed("something new", code="media.something_new")
    assert analysis_problem(odd) == {"code": "media_analysis.other", "params": {}}
