"""Read what a drone photo knows about where and how it was taken.

``read_metadata(path)`` returns a :class:`PhotoMetadata` with EXIF GPS position and altitude,
capture time, camera make/model, focal length (and its 35 mm equivalent), image size and, for
DJI cameras, the ``drone-dji`` XMP fields (altitudes, gimbal and flight attitude, the laser
rangefinder target). It never raises for a photo that merely lacks something: every missing or
unreadable part is listed in ``problems`` so a batch can report it and go on.

The XMP packet is read from the raw bytes with a tolerant attribute scan instead of an XML
parser, because real DJI packets are not always well-formed (the Zenmuse XT S declares its
namespace twice) and one odd photo must not stop a batch of thousands.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from PIL import Image
from PIL.ExifTags import IFD

from vision.offline import restore_pillow_open

DJI_NAMESPACE = "http://www.dji.com/drone-dji/1.0/"
# How far into the file to look for an XMP packet when Pillow did not surface one: DJI writes
# it in APP1 right after EXIF, well inside the first megabyte.
_XMP_SCAN_BYTES = 1 << 20

# EXIF tag numbers (IFD0, Exif sub-IFD, GPS sub-IFD).
_MAKE, _MODEL, _DATETIME = 0x010F, 0x0110, 0x0132
_DATETIME_ORIGINAL, _FOCAL, _FOCAL_35 = 0x9003, 0x920A, 0xA405
_EXIF_WIDTH, _EXIF_HEIGHT = 0xA002, 0xA003
_FP_XRES, _FP_YRES, _FP_UNIT = 0xA20E, 0xA20F, 0xA210
_GPS_LAT_REF, _GPS_LAT, _GPS_LON_REF, _GPS_LON = 1, 2, 3, 4
_GPS_ALT_REF, _GPS_ALT = 5, 6
# FocalPlaneResolutionUnit → millimetres per unit (2 = inch, 3 = cm, 4 = mm, 5 = µm).
_FP_UNIT_MM = {2: 25.4, 3: 10.0, 4: 1.0, 5: 0.001}


@dataclass(frozen=True)
class LrfTarget:
    """The laser rangefinder's target, as DJI enterprise cameras record it."""

    lat: float
    lon: float
    abs_alt_m: float | None
    distance_m: float | None


@dataclass(frozen=True)
class DjiXmp:
    """The ``drone-dji`` XMP fields used for geo-referencing (degrees and metres)."""

    absolute_altitude_m: float | None
    relative_altitude_m: float | None
    gimbal_yaw_deg: float | None
    gimbal_pitch_deg: float | None
    gimbal_roll_deg: float | None
    flight_yaw_deg: float | None
    flight_pitch_deg: float | None
    flight_roll_deg: float | None
    lrf: LrfTarget | None = None
    #: Factory calibration of newer DJI cameras, in pixels of the full-size photo.
    calibrated_focal_px: float | None = None
    calibrated_cx_px: float | None = None
    calibrated_cy_px: float | None = None
    #: RTK: ``RtkFlag`` (50 = fixed solution) and the horizontal standard deviation (m).
    rtk_flag: int | None = None
    rtk_std_m: float | None = None


@dataclass(frozen=True)
class PhotoMetadata:
    """What one photo says about itself; absent values are ``None`` with a reason in problems.

    ``width_px``/``height_px`` are the decoded image size (what pixel coordinates refer to);
    ``exif_width_px``/``exif_height_px`` the size the camera recorded, which differs for a
    re-saved thumbnail.
    """

    path: Path
    width_px: int
    height_px: int
    lat: float | None = None
    lon: float | None = None
    alt_m: float | None = None
    captured_at: datetime | None = None
    make: str | None = None
    model: str | None = None
    focal_length_mm: float | None = None
    focal_length_35mm: float | None = None
    exif_width_px: int | None = None
    exif_height_px: int | None = None
    #: Sensor size derived from EXIF FocalPlane*Resolution, when the camera writes it.
    sensor_width_mm: float | None = None
    sensor_height_mm: float | None = None
    xmp: DjiXmp | None = None
    problems: tuple[str, ...] = field(default_factory=tuple)

    @property
    def has_gps(self) -> bool:
        """True when the photo carries a usable EXIF GPS position."""
        return self.lat is not None and self.lon is not None

    @property
    def readable(self) -> bool:
        """True when the file could be opened as an image."""
        return self.width_px > 0 and self.height_px > 0


def _text(value: object) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return None
    # DJI pads Make/Model with NULs to a fixed length.
    cleaned = value.replace("\x00", "").strip()
    return cleaned or None


def _number(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]  # IFDRational, int, float or str
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return number if math.isfinite(number) else None


def _dms(value: object) -> float | None:
    if not isinstance(value, tuple) or len(value) != 3:
        return None
    parts = [_number(v) for v in value]
    if any(p is None for p in parts):
        return None
    deg, minutes, seconds = (float(p) for p in parts if p is not None)
    return deg + minutes / 60.0 + seconds / 3600.0


def _gps(gps: dict[int, object]) -> tuple[float | None, float | None, float | None, list[str]]:
    problems: list[str] = []
    if not gps:
        return None, None, None, ["no EXIF GPS block"]
    lat, lon = _dms(gps.get(_GPS_LAT)), _dms(gps.get(_GPS_LON))
    if lat is None or lon is None:
        return None, None, None, ["EXIF GPS block has no usable latitude/longitude"]
    if _text(gps.get(_GPS_LAT_REF)) == "S":
        lat = -lat
    if _text(gps.get(_GPS_LON_REF)) == "W":
        lon = -lon
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0) or (lat == 0.0 and lon == 0.0):
        # 0/0 is what cameras write before the first fix.
        return None, None, None, [f"EXIF GPS position {lat:.6f},{lon:.6f} is not valid"]
    alt = _number(gps.get(_GPS_ALT))
    if alt is None:
        problems.append("EXIF GPS block has no altitude")
    else:
        ref = gps.get(_GPS_ALT_REF)
        if ref in (1, b"\x01"):
            alt = -alt  # below sea level
    return lat, lon, alt, problems


def _datetime(value: object) -> datetime | None:
    text = _text(value)
    if text is None:
        return None
    try:
        return datetime.strptime(text, "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None


def _xmp_packet(im: Image.Image, path: Path) -> bytes | None:
    packet = im.info.get("xmp")
    if isinstance(packet, bytes) and packet:
        return packet
    with path.open("rb") as fh:
        head = fh.read(_XMP_SCAN_BYTES)
    start = head.find(b"<x:xmpmeta")
    end = head.find(b"</x:xmpmeta>", start)
    if start < 0 or end < 0:
        return None
    return head[start : end + len(b"</x:xmpmeta>")]


def _dji_fields(packet: str) -> dict[str, str] | None:
    """Return ``{field: text}`` of the drone-dji namespace, or None when it is not declared."""
    prefixes = re.findall(r'xmlns:([A-Za-z_][\w.-]*)\s*=\s*"' + re.escape(DJI_NAMESPACE), packet)
    if not prefixes:
        return None
    found: dict[str, str] = {}
    for prefix in set(prefixes):
        p = re.escape(prefix)
        for name, value in re.findall(p + r':(\w+)\s*=\s*"([^"]*)"', packet):
            found.setdefault(name, value)
        for name, value in re.findall(rf"<{p}:(\w+)>([^<]*)</{p}:\1>", packet):
            found.setdefault(name, value.strip())
    return found


def parse_dji_xmp(packet: bytes | str) -> tuple[DjiXmp | None, str | None]:
    """Parse the ``drone-dji`` fields of a raw XMP packet.

    Args:
        packet: the XMP packet bytes (or text) as stored in the JPEG.

    Returns:
        ``(xmp, None)`` on success, or ``(None, reason)`` when the packet has no DJI block.

    Example:
        >>> xmp, _ = parse_dji_xmp('<x:xmpmeta xmlns:drone-dji="http://www.dji.com/drone-dji/1.0/"'
        ...                        ' drone-dji:RelativeAltitude="+39.80"/>')
        >>> xmp.relative_altitude_m
        39.8
    """
    text = packet.decode("utf-8", "replace") if isinstance(packet, bytes) else packet
    fields = _dji_fields(text)
    if fields is None:
        if "http://www.dji.com" in text:
            return None, "XMP uses the legacy DJI namespace, not drone-dji: attitude not trusted"
        return None, "XMP packet has no drone-dji block"

    def num(name: str) -> float | None:
        return _number(fields.get(name))

    lrf: LrfTarget | None = None
    lrf_lat, lrf_lon = num("LRFTargetLat"), num("LRFTargetLon")
    # DJI writes zeros when the rangefinder had no return.
    if lrf_lat is not None and lrf_lon is not None and (lrf_lat, lrf_lon) != (0.0, 0.0):
        abs_alt = num("LRFTargetAbsAlt")
        lrf = LrfTarget(lrf_lat, lrf_lon, abs_alt, num("LRFTargetDistance"))
    xmp = DjiXmp(
        absolute_altitude_m=num("AbsoluteAltitude"),
        relative_altitude_m=num("RelativeAltitude"),
        gimbal_yaw_deg=num("GimbalYawDegree"),
        gimbal_pitch_deg=num("GimbalPitchDegree"),
        gimbal_roll_deg=num("GimbalRollDegree"),
        flight_yaw_deg=num("FlightYawDegree"),
        flight_pitch_deg=num("FlightPitchDegree"),
        flight_roll_deg=num("FlightRollDegree"),
        lrf=lrf,
        calibrated_focal_px=num("CalibratedFocalLength"),
        calibrated_cx_px=num("CalibratedOpticalCenterX"),
        calibrated_cy_px=num("CalibratedOpticalCenterY"),
        rtk_flag=int(flag) if (flag := num("RtkFlag")) is not None else None,
        rtk_std_m=_rtk_std(num("RtkStdLon"), num("RtkStdLat")),
    )
    return xmp, None


def _rtk_std(std_lon: float | None, std_lat: float | None) -> float | None:
    if std_lon is None or std_lat is None:
        return None
    return math.hypot(std_lon, std_lat)


def _sensor_size(
    exif: dict[int, object], width: int | None, height: int | None
) -> tuple[float | None, float | None]:
    unit_mm = _FP_UNIT_MM.get(int(_number(exif.get(_FP_UNIT)) or 0))
    xres, yres = _number(exif.get(_FP_XRES)), _number(exif.get(_FP_YRES))
    if unit_mm is None or not xres or not yres or not width or not height:
        return None, None
    return width / xres * unit_mm, height / yres * unit_mm


#: Pillow formats a drone photo may come in (JPEG also opens DJI multi-picture files as MPO).
PHOTO_FORMATS = ("JPEG", "PNG", "TIFF")


def read_metadata(path: Path | str) -> PhotoMetadata:
    """Read EXIF and DJI XMP metadata of one photo without ever raising for missing data.

    Args:
        path: a JPEG (or any image Pillow opens).

    Returns:
        The metadata; ``problems`` lists what is missing or unusable (no GPS, no DJI XMP,
        unreadable file) so the caller can report the photo and carry on.

    Example:
        >>> meta = read_metadata("tests/fixtures/drone/phantom3_nadir_0018.jpg")
        >>> meta.model, round(meta.xmp.relative_altitude_m, 1)
        ('FC300S', 39.8)
    """
    path = Path(path)
    problems: list[str] = []
    restore_pillow_open()
    try:
        # Only the formats drone cameras write: a plugin registered by someone else in the
        # process (pillow-heif, say) must not change what a broken file reports.
        with Image.open(path, formats=PHOTO_FORMATS) as im:
            width, height = im.size
            exif_all = im.getexif()
            exif = dict(exif_all.get_ifd(IFD.Exif))
            gps = dict(exif_all.get_ifd(IFD.GPSInfo))
            ifd0 = dict(exif_all)
            packet = _xmp_packet(im, path)
    except Exception as exc:
        # Pillow raises OSError, SyntaxError, struct.error, IndexError... on corrupt headers
        # and EXIF blocks; one broken photo must not stop a batch of thousands.
        return PhotoMetadata(path=path, width_px=0, height_px=0, problems=(f"unreadable: {exc}",))

    lat, lon, alt, gps_problems = _gps(gps)
    problems.extend(gps_problems)
    xmp: DjiXmp | None = None
    if packet is None:
        problems.append("no XMP packet")
    else:
        xmp, reason = parse_dji_xmp(packet)
        if reason:
            problems.append(reason)
    exif_w = _number(exif.get(_EXIF_WIDTH))
    exif_h = _number(exif.get(_EXIF_HEIGHT))
    exif_width = int(exif_w) if exif_w else None
    exif_height = int(exif_h) if exif_h else None
    sensor_w, sensor_h = _sensor_size(exif, exif_width or width, exif_height or height)
    focal = _number(exif.get(_FOCAL))
    focal35 = _number(exif.get(_FOCAL_35))
    return PhotoMetadata(
        path=path,
        width_px=width,
        height_px=height,
        lat=lat,
        lon=lon,
        alt_m=alt,
        captured_at=_datetime(exif.get(_DATETIME_ORIGINAL)) or _datetime(ifd0.get(_DATETIME)),
        make=_text(ifd0.get(_MAKE)),
        model=_text(ifd0.get(_MODEL)),
        focal_length_mm=focal if focal else None,
        focal_length_35mm=focal35 if focal35 else None,
        exif_width_px=exif_width,
        exif_height_px=exif_height,
        sensor_width_mm=sensor_w,
        sensor_height_mm=sensor_h,
        xmp=xmp,
        problems=tuple(problems),
    )
