"""What an uploaded file really is, and what a photo says about itself.

The type is decided by magic bytes only — never by the file name or the client's content type.
Images are decoded in full under Pillow's decompression-bomb guard (``Image.load()`` with
``ImageFile.LOAD_TRUNCATED_IMAGES`` off), truncated JPEGs are caught by walking their marker
structure to the end-of-image marker, and EXIF capture time, GPS and orientation are read.
Videos (MP4/MOV) are checked as a well-formed chain of ISO-BMFF boxes.

Two kinds of damage a decode does not reveal are measured, for the rules to flag (they are
evidence for review, not rejections):

* a JPEG whose scan data was cut and an end-of-image marker appended (a "repaired tail"):
  libjpeg meets the marker, warns, fills the rest with grey and Pillow reports success. The
  scan is decoded twice — as stored, and with probe bytes put before the end-of-image marker —
  and the two differ exactly when the decoder needed data the file does not hold
  (:func:`jpeg_scan_is_short`).
* bytes after the image's end (EOI for a JPEG, IEND for a PNG) that are not further JPEG frames
  of a multi-picture (MPO) file or zero padding: a ZIP or an HTML page riding on the photo (a
  polyglot). :func:`trailing_bytes` counts them.

Rejections raise :class:`field_api.errors.UnsupportedMedia` (415) or
:class:`field_api.errors.ValidationFailed` (422) with a clear detail. This module is pure: no
database, no web framework; it reads a path and returns values.
"""

from __future__ import annotations

import io
import mmap
import re
import struct
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any, BinaryIO

import imagehash
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from field_api.common.hashing import sha256_chunks
from field_api.errors import UnsupportedMedia, ValidationFailed

# Bytes needed to recognise every supported type (ftyp box header + major brand + a few
# compatible brands).
SNIFF_BYTES = 64
DEFAULT_MAX_IMAGE_PIXELS = 100_000_000  # a 108 MP phone sensor still fits; bombs do not
THUMBNAIL_MAX_PX = 320
# Decode JPEGs at a reduced DCT scale for hashing and thumbnails: still reads every entropy-coded
# byte (so corruption is caught) but is several times faster than a full-resolution decode.
ANALYSIS_DRAFT_PX = 1024

_EXIF_IFD = 0x8769
_GPS_IFD = 0x8825
_TAG_DATETIME_ORIGINAL = 0x9003
_TAG_DATETIME_DIGITIZED = 0x9004
_TAG_OFFSET_TIME = 0x9010
_TAG_OFFSET_TIME_ORIGINAL = 0x9011
_TAG_OFFSET_TIME_DIGITIZED = 0x9012
_TAG_SUBSEC_ORIGINAL = 0x9291
_MP4_EPOCH = datetime(1904, 1, 1, tzinfo=UTC)


class MediaType(StrEnum):
    """A file type recognised by its magic bytes."""

    jpeg = "jpeg"
    png = "png"
    heic = "heic"
    mp4 = "mp4"
    mov = "mov"

    @property
    def mime(self) -> str:
        """The content type served back on download."""
        return _MIME[self]

    @property
    def is_image(self) -> bool:
        """True for photos, False for videos."""
        return self in (MediaType.jpeg, MediaType.png, MediaType.heic)


_MIME = {
    MediaType.jpeg: "image/jpeg",
    MediaType.png: "image/png",
    MediaType.heic: "image/heic",
    MediaType.mp4: "video/mp4",
    MediaType.mov: "video/quicktime",
}
_PIL_FORMATS = {
    MediaType.jpeg: ["JPEG", "MPO"],  # phones write MPO (JPEG + depth/preview frames)
    MediaType.png: ["PNG"],
    MediaType.heic: ["HEIF"],
}
_HEIC_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs"}
_MOV_BRANDS = {b"qt  "}
_MP4_BRANDS = {
    b"isom", b"iso2", b"iso3", b"iso4", b"iso5", b"iso6", b"iso8", b"mp41", b"mp42", b"mp71",
    b"avc1", b"M4V ", b"M4VH", b"M4VP", b"MSNV", b"dash", b"3gp4", b"3gp5", b"3gp6", b"3gp7",
    b"3gp8", b"3gp9", b"3g2a", b"3g2b", b"3g2c", b"f4v ", b"XAVC", b"mmp4",
}  # fmt: skip


@dataclass(frozen=True)
class GeoPoint:
    """A WGS 84 position in decimal degrees (altitude in metres above sea level, if known)."""

    lat: float
    lon: float
    alt_m: float | None = None


@dataclass(frozen=True)
class CaptureTime:
    """When the camera says the photo was taken.

    ``at`` is timezone-aware when the EXIF carried an offset (OffsetTimeOriginal/OffsetTime);
    otherwise it is the naive camera-local wall time and ``has_offset`` is False, so a rule can
    apply its own assumed offset and say so.
    """

    at: datetime
    has_offset: bool
    source_tag: str


@dataclass(frozen=True)
class ImageAnalysis:
    """What a valid photo tells us; width/height are after EXIF orientation."""

    media_type: MediaType
    width: int
    height: int
    orientation: int
    captured: CaptureTime | None
    gps: GeoPoint | None
    phash: int  # signed int64, see :func:`phash_to_int64`
    thumbnail_jpeg: bytes
    truncated: bool = False  # scan data cut short behind an appended end marker
    trailing_bytes: int = 0  # bytes after the image's end (see :func:`trailing_bytes`)


@dataclass(frozen=True)
class VideoAnalysis:
    """What a valid MP4/MOV tells us from its ``moov/mvhd`` box."""

    media_type: MediaType
    duration_s: float | None
    created_at: datetime | None


# --------------------------------------------------------------------------------------------
# Type sniffing


@lru_cache(maxsize=1)
def heic_supported() -> bool:
    """Register pillow-heif's opener once if it is installed; HEIC is refused without it."""
    try:
        import pillow_heif
    except ImportError:  # pragma: no cover - depends on the environment
        return False
    pillow_heif.register_heif_opener()
    return True


def sniff_media_type(head: bytes) -> MediaType:
    """Decide the type from the first bytes of a file.

    Args:
        head: at least the first :data:`SNIFF_BYTES` bytes (fewer only if the file is shorter).

    Returns:
        The recognised :class:`MediaType`.

    Raises:
        ValidationFailed: the file is empty.
        UnsupportedMedia: the bytes are not a supported photo or video.

    Example:
        >>> sniff_media_type(bytes.fromhex("ffd8ffe000104a464946"))
        <MediaType.jpeg: 'jpeg'>
    """
    if not head:
        raise ValidationFailed("the file is empty", code="media.empty")
    if head.startswith(b"\xff\xd8\xff"):
        return MediaType.jpeg
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return MediaType.png
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return _sniff_ftyp(head)
    raise UnsupportedMedia(
        "unsupported file type: expected a JPEG, PNG or HEIC photo or an MP4/MOV video "
        "(the type is read from the file's content, not its name)",
        code="media.unsupported_type",
    )


def _sniff_ftyp(head: bytes) -> MediaType:
    box_size = int.from_bytes(head[0:4], "big")
    major = head[8:12]
    end = min(len(head), box_size if box_size >= 16 else len(head))
    compatible = {head[i : i + 4] for i in range(16, end - 3, 4)}
    brands = {major} | compatible
    if major in _HEIC_BRANDS or (major in (b"mif1", b"msf1") and brands & _HEIC_BRANDS):
        if heic_supported():
            return MediaType.heic
        raise UnsupportedMedia(
            "HEIC photos are not supported on this server",
            code="media.heic_unsupported",
        )
    if major in _MOV_BRANDS:
        return MediaType.mov
    if major in _MP4_BRANDS or brands & _MP4_BRANDS:
        return MediaType.mp4
    raise UnsupportedMedia(
        f"unsupported ISO media brand {major.decode('latin-1')!r}",
        code="media.unsupported_brand",
        params={"brand": major.decode("latin-1")},
    )


def sniff_file(path: Path) -> MediaType:
    """Sniff the type of a file on disk (see :func:`sniff_media_type`)."""
    with path.open("rb") as fh:
        return sniff_media_type(fh.read(SNIFF_BYTES))


# --------------------------------------------------------------------------------------------
# Images


@dataclass(frozen=True)
class ImageHeader:
    """What a photo's header tells without decoding its pixels (cheap: upload critical path)."""

    media_type: MediaType
    width: int
    height: int
    orientation: int
    captured: CaptureTime | None
    gps: GeoPoint | None
    trailing_bytes: int = 0


def inspect_image(
    path: Path, media_type: MediaType, *, max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
) -> ImageHeader:
    """Structural checks and EXIF of a photo without a pixel decode.

    Catches the wrong type, truncated JPEGs (marker walk), decompression bombs (declared size)
    and unreadable headers, and counts bytes after the image's end (a polyglot);
    :func:`analyze_image` later decodes every pixel.

    Raises:
        ValidationFailed: truncated, corrupt header, or too many pixels.
        UnsupportedMedia: ``media_type`` is not an image type.
    """
    with _checked_photo(path, media_type, max_pixels=max_pixels) as (im, exif):
        orientation = _orientation(exif)
        width, height = _oriented_size(im.size, orientation)
    return ImageHeader(
        media_type=media_type,
        width=width,
        height=height,
        orientation=orientation,
        captured=read_capture_time(exif),
        gps=read_gps(exif),
        trailing_bytes=trailing_bytes(path, media_type),
    )


def analyze_image(
    path: Path,
    media_type: MediaType,
    *,
    max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
    thumbnail_px: int = THUMBNAIL_MAX_PX,
) -> ImageAnalysis:
    """Validate a photo completely and extract its evidence metadata.

    Args:
        path: the stored file.
        media_type: its sniffed type (must be an image type).
        max_pixels: refuse images with more pixels than this (decompression bombs).
        thumbnail_px: longest side of the JPEG thumbnail.

    Returns:
        An :class:`ImageAnalysis` with orientation applied to size, hash and thumbnail, and
        whether a JPEG's scan was cut short (``truncated``) or data follows the image's end.

    Raises:
        ValidationFailed: corrupt, truncated or oversized (in pixels) image.
        UnsupportedMedia: ``media_type`` is not an image type.
    """
    with _checked_photo(path, media_type, max_pixels=max_pixels) as (im, exif):
        orientation = _orientation(exif)
        captured = read_capture_time(exif)
        gps = read_gps(exif)
        width, height = _oriented_size(im.size, orientation)  # before draft() shrinks it
        if media_type is MediaType.jpeg:
            # Reduced DCT scale: every entropy-coded byte is still decoded.
            im.draft("RGB", (ANALYSIS_DRAFT_PX, ANALYSIS_DRAFT_PX))
        _load_fully(im)
        oriented = ImageOps.exif_transpose(im)
        rgb = _to_rgb(oriented)
        phash = phash_to_int64(imagehash.phash(rgb))
        thumb = make_thumbnail(rgb, max_px=thumbnail_px)
    truncated = media_type is MediaType.jpeg and jpeg_scan_is_short(path, max_pixels=max_pixels)
    return ImageAnalysis(
        media_type=media_type,
        width=width,
        height=height,
        orientation=orientation,
        captured=captured,
        gps=gps,
        phash=phash,
        thumbnail_jpeg=thumb,
        truncated=truncated,
        trailing_bytes=trailing_bytes(path, media_type),
    )


def load_oriented_image(
    path: Path, media_type: MediaType, *, max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
) -> Image.Image:
    """Decode a photo at full resolution with its EXIF orientation applied (for barcodes)."""
    with _open_image(path, media_type, max_pixels=max_pixels) as im:
        _load_fully(im)
        return _to_rgb(ImageOps.exif_transpose(im))


class _OpenImage:
    """Context manager: open under the bomb guard, always close the file handle."""

    def __init__(self, path: Path, media_type: MediaType, max_pixels: int) -> None:
        self._path = path
        self._media_type = media_type
        self._max_pixels = max_pixels
        self._image: Image.Image | None = None

    def __enter__(self) -> Image.Image:
        if self._media_type is MediaType.heic and not heic_supported():
            raise UnsupportedMedia(
                "HEIC photos are not supported on this server",
                code="media.heic_unsupported",
            )
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                im = Image.open(self._path, formats=_PIL_FORMATS[self._media_type])
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ValidationFailed(
                f"image refused as a decompression bomb: {exc}",
                code="media.decompression_bomb",
            ) from exc
        except (UnidentifiedImageError, *_DECODE_ERRORS) as exc:
            raise ValidationFailed(
                f"the {self._media_type.value} image cannot be read",
                code="media.image_unreadable",
                params={"media_type": self._media_type.value},
            ) from exc
        self._image = im
        width, height = im.size
        if width <= 0 or height <= 0:
            raise ValidationFailed("the image has no pixels", code="media.image_empty")
        if width * height > self._max_pixels:
            im.close()
            raise ValidationFailed(
                f"image refused as a decompression bomb: {width}x{height} = {width * height} "
                f"pixels exceeds the limit of {self._max_pixels}",
                code="media.decompression_bomb",
                params={"width": width, "height": height, "max_pixels": self._max_pixels},
            )
        return im

    def __exit__(self, *exc: object) -> None:
        if self._image is not None:
            self._image.close()


def _open_image(path: Path, media_type: MediaType, *, max_pixels: int) -> _OpenImage:
    return _OpenImage(path, media_type, max_pixels)


_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error)


@contextmanager
def _checked_photo(
    path: Path, media_type: MediaType, *, max_pixels: int
) -> Iterator[tuple[Image.Image, Image.Exif]]:
    """Open a photo after the checks every reader needs; yield it with its EXIF."""
    if not media_type.is_image:
        raise UnsupportedMedia(
            f"{media_type.value} is not a photo",
            code="media.not_a_photo",
            params={"media_type": media_type.value},
        )
    if media_type is MediaType.jpeg and not jpeg_is_complete(path):
        raise ValidationFailed(
            "the JPEG is truncated or corrupt (no end-of-image marker)",
            code="media.jpeg_truncated",
        )
    with _open_image(path, media_type, max_pixels=max_pixels) as im:
        try:
            exif = im.getexif()
        except _DECODE_ERRORS as exc:  # PNG reads ahead to find its eXIf chunk
            raise ValidationFailed(
                f"the image is truncated or corrupt: {exc}",
                code="media.image_corrupt",
            ) from exc
        yield im, exif


def _oriented_size(size: tuple[int, int], orientation: int) -> tuple[int, int]:
    """Width and height as displayed: EXIF orientations 5-8 swap them."""
    return (size[1], size[0]) if orientation in (5, 6, 7, 8) else size


def _orientation(exif: Image.Exif) -> int:
    raw = exif.get(0x0112, 1)
    try:
        value = int(raw)
    except (TypeError, ValueError):
        return 1
    return value if 1 <= value <= 8 else 1


@contextmanager
def _refused_as_evidence() -> Iterator[None]:
    """Decompression bombs and decoding errors inside the block become the service's 422s."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ValidationFailed(
            f"image refused as a decompression bomb: {exc}",
            code="media.decompression_bomb",
        ) from exc
    except _DECODE_ERRORS as exc:
        raise ValidationFailed(
            f"the image is truncated or corrupt: {exc}",
            code="media.image_corrupt",
        ) from exc


def _load_fully(im: Image.Image) -> None:
    """Decode every pixel; a file that ends before its data does is an error, never padded."""
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        raise RuntimeError("ImageFile.LOAD_TRUNCATED_IMAGES must stay off for evidence")
    with _refused_as_evidence():
        im.load()


def _to_rgb(im: Image.Image) -> Image.Image:
    """RGB for hashing/thumbnails; transparent areas become white, not black."""
    if im.mode == "RGB":
        return im
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, (255, 255, 255))
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit PNGs: scale to 8 bits before converting.
        return im.point(lambda v: v / 256).convert("L").convert("RGB")
    return im.convert("RGB")


def make_thumbnail(im: Image.Image, *, max_px: int = THUMBNAIL_MAX_PX) -> bytes:
    """A JPEG whose longest side is at most ``max_px`` (never upscaled)."""
    thumb = im.copy()
    thumb.thumbnail((max_px, max_px), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    thumb.save(out, format="JPEG", quality=82, optimize=True)
    return out.getvalue()


def phash_to_int64(value: Any) -> int:
    """Pack an ``imagehash.ImageHash`` (8x8 bits, row-major) into a signed 64-bit integer.

    Databases store BIGINT signed, so the unsigned 64-bit value is wrapped into
    [-2**63, 2**63); Hamming distances are unaffected (see ``rules.hamming_distance``).
    """
    bits = value.hash.flatten()
    if len(bits) != 64:
        raise ValueError(f"expected a 64-bit hash, got {len(bits)} bits")
    unsigned = 0
    for bit in bits:
        unsigned = (unsigned << 1) | int(bool(bit))
    return unsigned - (1 << 64) if unsigned >= (1 << 63) else unsigned


# --------------------------------------------------------------------------------------------
# EXIF


def read_capture_time(exif: Image.Exif) -> CaptureTime | None:
    """DateTimeOriginal (or DateTimeDigitized) with its EXIF 2.31 offset when present."""
    ifd = exif.get_ifd(_EXIF_IFD)
    candidates = (
        (_TAG_DATETIME_ORIGINAL, _TAG_OFFSET_TIME_ORIGINAL, "DateTimeOriginal"),
        (_TAG_DATETIME_DIGITIZED, _TAG_OFFSET_TIME_DIGITIZED, "DateTimeDigitized"),
    )
    for time_tag, offset_tag, name in candidates:
        moment = _parse_exif_datetime(ifd.get(time_tag))
        if moment is None:
            continue
        if time_tag == _TAG_DATETIME_ORIGINAL:
            moment = moment.replace(microsecond=_parse_subsec(ifd.get(_TAG_SUBSEC_ORIGINAL)))
        offset = _parse_exif_offset(ifd.get(offset_tag)) or _parse_exif_offset(
            ifd.get(_TAG_OFFSET_TIME)
        )
        if offset is not None:
            return CaptureTime(moment.replace(tzinfo=offset), has_offset=True, source_tag=name)
        return CaptureTime(moment, has_offset=False, source_tag=name)
    return None


def _clean_text(raw: object) -> str | None:
    if isinstance(raw, bytes):
        raw = raw.decode("ascii", errors="ignore")
    if not isinstance(raw, str):
        return None
    text = raw.replace("\x00", "").strip()
    return text or None


def _parse_exif_datetime(raw: object) -> datetime | None:
    text = _clean_text(raw)
    if text is None:
        return None
    try:
        return datetime.strptime(text[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None  # "0000:00:00 00:00:00" and other placeholders mean "unknown"


def _parse_subsec(raw: object) -> int:
    text = _clean_text(raw)
    if text is None or not text.isdigit():
        return 0
    return int((text + "000000")[:6])


def _parse_exif_offset(raw: object) -> timezone | None:
    text = _clean_text(raw)
    if text is None or len(text) != 6 or text[0] not in "+-" or text[3] != ":":
        return None
    try:
        hours, minutes = int(text[1:3]), int(text[4:6])
    except ValueError:
        return None
    if hours > 14 or minutes >= 60:
        return None
    delta = timedelta(hours=hours, minutes=minutes)
    return timezone(-delta if text[0] == "-" else delta)


def read_gps(exif: Image.Exif) -> GeoPoint | None:
    """GPS latitude/longitude/altitude from the GPS IFD, or None if absent or implausible."""
    gps = exif.get_ifd(_GPS_IFD)
    lat = _dms_to_degrees(gps.get(2), _clean_text(gps.get(1)), positive="N", negative="S")
    lon = _dms_to_degrees(gps.get(4), _clean_text(gps.get(3)), positive="E", negative="W")
    if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    if lat == 0 and lon == 0:
        return None  # a receiver without a fix often writes 0,0
    alt = _rational(gps.get(6))
    if alt is not None:
        ref = gps.get(5)
        below = ref in (1, b"\x01", "1")
        alt = -alt if below else alt
    return GeoPoint(lat=lat, lon=lon, alt_m=alt)


def _rational(raw: object) -> float | None:
    try:
        value = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return value if value == value and abs(value) != float("inf") else None


def _dms_to_degrees(raw: object, ref: str | None, *, positive: str, negative: str) -> float | None:
    if not isinstance(raw, tuple | list) or len(raw) != 3 or ref not in (positive, negative):
        return None
    parts = [_rational(p) for p in raw]
    if any(p is None for p in parts):
        return None
    d, m, s = (p for p in parts if p is not None)
    degrees = d + m / 60 + s / 3600
    return -degrees if ref == negative else degrees


# --------------------------------------------------------------------------------------------
# JPEG structure


def jpeg_is_complete(path: Path) -> bool:
    """Walk the JPEG markers from SOI through every scan to EOI.

    libjpeg silently pads a file cut short near its end (Pillow then decodes it "fine" with a
    grey band), so a full decode alone does not prove the upload arrived whole. Bytes after
    EOI are allowed: phones append MPO frames and vendor trailers there.
    """
    return jpeg_end(path) is not None


def jpeg_end(path: Path) -> int | None:
    """The offset just past the first image's end-of-image marker, or None if there is none."""
    size = path.stat().st_size
    if size < 4:
        return None
    with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
        return _walk_jpeg(data, size)


def _walk_jpeg(data: mmap.mmap | bytes, n: int, start: int = 0) -> int | None:
    """Walk one JPEG from its SOI at ``start``; the offset just past its EOI, or None."""
    if data[start : start + 2] != b"\xff\xd8":
        return None
    pos = start + 2
    while pos < n:
        if data[pos] != 0xFF:
            return None
        while pos < n and data[pos] == 0xFF:  # fill bytes before a marker
            pos += 1
        if pos >= n:
            return None
        marker = data[pos]
        pos += 1
        if marker == 0xD9:
            return pos
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            continue
        if pos + 2 > n:
            return None
        seg_len = int.from_bytes(data[pos : pos + 2], "big")
        if seg_len < 2:
            return None
        pos += seg_len
        if marker == 0xDA:
            scan_end = _skip_entropy_data(data, pos, n)
            if scan_end is None:
                return None
            pos = scan_end
    return None


# A marker inside entropy-coded data: 0xFF followed by anything but stuffing (00), a restart
# marker (D0-D7) or a fill byte (FF). A regex finds it at C speed (a 4 MB photo has ~16,000
# stuffed FF bytes a byte-by-byte loop would visit).
_SCAN_END = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")


def _skip_entropy_data(data: mmap.mmap | bytes, pos: int, n: int) -> int | None:
    """Position of the marker ending a scan (FF00 stuffing and RSTn belong to the scan)."""
    found = _SCAN_END.search(data, pos)
    return found.start() if found is not None else None


def trailing_bytes(path: Path, media_type: MediaType) -> int:
    """How many bytes follow the image's end that belong to no image: 0 for a clean file.

    A JPEG ends at its first end-of-image marker; further complete JPEG frames (the pictures
    of a multi-picture MPO file, which phones write) and zero padding are part of the photo.
    A PNG ends with its IEND chunk. Anything else there — a ZIP archive, an HTML page, a
    vendor trailer — is counted (a polyglot file; the rules flag it). HEIC is not measured.
    """
    size = path.stat().st_size
    if size == 0 or media_type not in (MediaType.jpeg, MediaType.png):
        return 0
    with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
        if media_type is MediaType.png:
            end = _png_end(data, size)
            return 0 if end is None else size - end
        pos = _walk_jpeg(data, size)
        if pos is None:
            return 0  # not a complete JPEG: refused elsewhere
        while pos < size:
            while pos < size and data[pos] == 0:
                pos += 1
            if pos >= size or data[pos : pos + 3] != b"\xff\xd8\xff":
                break
            frame_end = _walk_jpeg(data, size, pos)
            if frame_end is None:
                break
            pos = frame_end
        return size - pos


def _png_end(data: mmap.mmap | bytes, n: int) -> int | None:
    """The offset just past a PNG's IEND chunk (length, type, data, CRC), or None."""
    pos = 8
    while pos + 12 <= n:
        length = int.from_bytes(data[pos : pos + 4], "big")
        chunk_type = data[pos + 4 : pos + 8]
        pos += 12 + length
        if chunk_type == b"IEND":
            return pos if pos <= n else None
    return None


# Bytes decoded in place of missing scan data (no 0xFF: they must not form a marker). Two
# patterns: one alone can, rarely, decode to the same coefficients as the zeros libjpeg fills
# in (measured over thousands of cut points, the pair never did).
_PROBES = (bytes((i * 167 + 89) % 255 for i in range(256)), b"\xaa" * 256)


def jpeg_scan_is_short(path: Path, *, max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> bool:
    """Whether the JPEG's scan data ends before its pixels do (an end marker put on a cut file).

    libjpeg decodes such a file "successfully": it meets the marker early, warns (Pillow drops
    the warning) and fills every block left with grey. Here the whole image is decoded twice
    at full scale (``Image.load()``): as stored, and with :data:`_PROBES` bytes before the
    end-of-image marker (two probe patterns). After a complete scan the decoder skips extra
    bytes before a marker, so the decodes are identical; a decoder that ran out of data reads
    the probe bytes as coefficients, and the pixels differ. A cut exactly at a restart-interval
    boundary, or between two scans of a progressive JPEG, leaves nothing for the probes to
    change; the scan structure shows it (:func:`_scans_missing`).
    """
    end = jpeg_end(path)
    if end is None:
        return True
    data = path.read_bytes()[:end]
    if _scans_missing(data):
        return True
    marker = end - 2
    while marker > 0 and data[marker - 1] == 0xFF:  # fill bytes belong to the marker
        marker -= 1
    stored = _decoded_digest(data, max_pixels)
    return any(
        _decoded_digest(data[:marker] + probe + data[marker:], max_pixels) != stored
        for probe in _PROBES
    )


_RST = re.compile(rb"\xff[\xd0-\xd7]")
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # frame headers (DHT, JPG, DAC not)


def _scans_missing(data: bytes) -> bool:
    """Whether the scan structure shows data missing, without decoding.

    * A scan holds fewer restart markers than its restart interval (DRI) requires: an encoder
      that sets one ends every interval but the last with an RSTn marker, and a file cut at an
      interval boundary lacks the markers of the missing intervals. (Inside entropy-coded data
      FF is always followed by 00, so every FF D0-D7 there is a restart marker.)
    * A progressive JPEG ends before every coefficient of every component was sent down to its
      last bit (Al = 0): the file was cut between two scans, and what it shows is coarser than
      what was taken.
    """
    pos, end = 2, len(data)
    interval = 0
    size: tuple[int, int] | None = None  # width, height
    sampling: dict[int, tuple[int, int]] = {}  # component id -> (h, v)
    progressive = False
    # progressive: the lowest successive-approximation bit each coefficient was sent down to
    lowest_bit: dict[int, list[int]] = {}
    while pos + 2 <= end:
        if data[pos] != 0xFF:
            return False
        while pos < end and data[pos] == 0xFF:
            pos += 1
        marker = data[pos]
        pos += 1
        if marker == 0xD9:
            # a progressive image is complete once every coefficient of every component has
            # been sent down to its last bit; a file cut between two scans is not
            return progressive and any(
                any(bit != 0 for bit in lowest_bit.get(c, [99] * 64)) for c in sampling
            )
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            continue
        if pos + 2 > end:
            return False
        seg_len = int.from_bytes(data[pos : pos + 2], "big")
        seg = data[pos + 2 : pos + seg_len]
        pos += seg_len
        if marker in _SOF and len(seg) >= 6:
            progressive = marker in (0xC2, 0xC6, 0xCA, 0xCE)
            size = (int.from_bytes(seg[3:5], "big"), int.from_bytes(seg[1:3], "big"))
            count = seg[5]
            sampling = {
                seg[6 + 3 * i]: (seg[7 + 3 * i] >> 4, seg[7 + 3 * i] & 0x0F)
                for i in range(count)
                if 8 + 3 * i <= len(seg)
            }
        elif marker == 0xDD and len(seg) >= 2:
            interval = int.from_bytes(seg[0:2], "big")
        elif marker == 0xDA:
            scan_end = _skip_entropy_data(data, pos, end)
            if scan_end is None:
                return False
            ids = [seg[1 + 2 * i] for i in range(seg[0]) if 2 + 2 * i <= len(seg)] if seg else []
            if progressive and len(seg) >= 4 + 2 * len(ids):
                start, stop = seg[1 + 2 * len(ids)], min(seg[2 + 2 * len(ids)], 63)
                bit = seg[3 + 2 * len(ids)] & 0x0F
                for comp in ids:
                    bits = lowest_bit.setdefault(comp, [99] * 64)
                    for k in range(start, stop + 1):
                        bits[k] = min(bits[k], bit)
            if interval and size is not None and seg:
                mcus = _mcu_count(size, sampling, ids)
                if mcus:
                    expected = -(-mcus // interval) - 1
                    found = sum(1 for _ in _RST.finditer(data, pos, scan_end))
                    if found < expected:
                        return True
            pos = scan_end
    return False


def _mcu_count(size: tuple[int, int], sampling: dict[int, tuple[int, int]], ids: list[int]) -> int:
    """MCUs in a scan of components ``ids`` (one block each when the scan has one component)."""
    if not sampling or not ids or any(i not in sampling for i in ids):
        return 0
    width, height = size
    h_max = max(h for h, _ in sampling.values()) or 1
    v_max = max(v for _, v in sampling.values()) or 1
    if len(ids) == 1:
        h, v = sampling[ids[0]]
        comp_w = -(-width * h // h_max)
        comp_h = -(-height * v // v_max)
        return -(-comp_w // 8) * -(-comp_h // 8)
    return -(-width // (8 * h_max)) * -(-height // (8 * v_max))


def _decoded_digest(data: bytes, max_pixels: int) -> str:
    """A digest of every decoded pixel, hashed in bands of rows (bounded extra memory)."""
    with _refused_as_evidence(), Image.open(io.BytesIO(data), formats=["JPEG"]) as im:
        width, height = im.size
        if width * height > max_pixels:
            raise ValidationFailed(
                f"image refused as a decompression bomb: {width}x{height} pixels",
                code="media.decompression_bomb",
                params={"width": width, "height": height, "max_pixels": max_pixels},
            )
        _load_fully(im)
        bands = (
            im.crop((0, top, width, min(height, top + _DIGEST_ROWS))).tobytes()
            for top in range(0, height, _DIGEST_ROWS)
        )
        return sha256_chunks(bands)


_DIGEST_ROWS = 256


# --------------------------------------------------------------------------------------------
# Video (ISO base media file format)


def analyze_video(path: Path, media_type: MediaType) -> VideoAnalysis:
    """Check an MP4/MOV's top-level boxes chain to the end of the file and read ``mvhd``.

    Raises:
        ValidationFailed: truncated or malformed box structure, or no ``moov`` box.
        UnsupportedMedia: ``media_type`` is not a video type.
    """
    if media_type.is_image:
        raise UnsupportedMedia(
            f"{media_type.value} is not a video",
            code="media.not_a_video",
            params={"media_type": media_type.value},
        )
    size = path.stat().st_size
    seen: set[bytes] = set()
    duration: float | None = None
    created: datetime | None = None
    with path.open("rb") as fh:
        for box_type, body_start, box_end in _iter_boxes(fh, 0, size):
            seen.add(box_type)
            if box_type == b"moov":
                duration, created = _read_mvhd(fh, body_start, box_end)
    if b"moov" not in seen:
        raise ValidationFailed(
            "the video has no 'moov' box (incomplete or not playable)",
            code="media.video_no_moov",
        )
    if b"mdat" not in seen and b"moof" not in seen:
        raise ValidationFailed(
            "the video has no media data ('mdat' box)",
            code="media.video_no_mdat",
        )
    return VideoAnalysis(media_type=media_type, duration_s=duration, created_at=created)


def _iter_boxes(fh: BinaryIO, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    pos = start
    while pos < end:
        if end - pos < 8:
            raise ValidationFailed(
                "the video is truncated (partial box header)",
                code="media.video_truncated",
            )
        fh.seek(pos)
        header = fh.read(8)
        box_size, box_type = struct.unpack(">I4s", header)
        header_len = 8
        if box_size == 1:
            large = fh.read(8)
            if len(large) < 8:
                raise ValidationFailed(
                    "the video is truncated (partial box header)",
                    code="media.video_truncated",
                )
            box_size = struct.unpack(">Q", large)[0]
            header_len = 16
        elif box_size == 0:
            box_size = end - pos  # "extends to the end of the file"
        if box_size < header_len or pos + box_size > end:
            raise ValidationFailed(
                f"the video is truncated or malformed ({box_type!r} box overruns the file)",
                code="media.video_truncated",
            )
        yield box_type, pos + header_len, pos + box_size
        pos += box_size


def _read_mvhd(fh: BinaryIO, start: int, end: int) -> tuple[float | None, datetime | None]:
    for box_type, body, box_end in _iter_boxes(fh, start, end):
        if box_type != b"mvhd":
            continue
        fh.seek(body)
        payload = fh.read(min(box_end - body, 32))
        if len(payload) < 4:
            return None, None
        version = payload[0]
        try:
            if version == 1:
                created_s, _, timescale, duration = struct.unpack(">QQIQ", payload[4:32])
            else:
                created_s, _, timescale, duration = struct.unpack(">IIII", payload[4:20])
        except struct.error:
            return None, None
        seconds = duration / timescale if timescale else None
        created = _MP4_EPOCH + timedelta(seconds=created_s) if created_s else None
        return seconds, created
    return None, None
