"""From a camera pose to points on the ground (pure: numpy and pyproj only).

A pinhole camera (focal length and sensor size from EXIF or :data:`SENSOR_TABLE`) is posed by
the gimbal attitude. On DJI aircraft ``GimbalYawDegree`` is the absolute heading of the camera
(clockwise from true north) — ``FlightYawDegree`` is the airframe's and differs whenever the
gimbal pans — and ``GimbalPitchDegree`` is 0 at the horizon and -90 straight down.

A pixel becomes a ray in a local east-north-up frame centred on the camera (an azimuthal
equidistant projection of the camera position, in metres), the ray meets a horizontal ground
plane at the camera's height above ground, and the hit is converted back to WGS84. Flat ground is
assumed: ``RelativeAltitude`` is height above the take-off point, so give ``ground_elevation_m``
where the terrain differs.

The uncertainty (one sigma, metres) combines GPS position error, height error and attitude
error; the attitude term grows as 1/sin²(depression), so shallow rays are uncertain and rays
closer to the horizon than ``min_depression_deg`` are refused with :class:`GeoreferenceError`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray
from pyproj import Transformer

from vision.errors import GeoreferenceError
from vision.geo.metadata import PhotoMetadata

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

#: drone-dji:RtkFlag of a fixed RTK solution.
RTK_FIXED = 50
# 35 mm film diagonal; EXIF FocalLengthIn35mmFilm scales focal length by this over the sensor's.
_FILM_DIAGONAL_MM = math.hypot(36.0, 24.0)


@dataclass(frozen=True)
class SensorSpec:
    """Physical sensor size of one camera (mm) at its native image width (px)."""

    width_mm: float
    height_mm: float
    native_width_px: int


#: Sensor sizes by EXIF Model. Several DJI payloads share one Model string across lenses
#: (the H20T writes ``ZH20T`` for wide, zoom and thermal), so entries are keyed by
#: (model, native image width); width 0 means "any width". Values from the makers' spec
#: sheets [S]; pass ``sensor_mm`` to override for a camera missing here.
SENSOR_TABLE: dict[tuple[str, int], SensorSpec] = {
    # Phantom 3 Professional/Advanced, 1/2.3" sensor (4:3 sensor; 16:9 photos crop it).
    ("FC300S", 0): SensorSpec(6.17, 4.55, 4000),
    ("FC300X", 0): SensorSpec(6.17, 4.55, 4000),
    ("FC330", 0): SensorSpec(6.17, 4.55, 4000),  # Phantom 4
    ("FC220", 0): SensorSpec(6.17, 4.55, 4000),  # Mavic Pro
    ("FC6310", 0): SensorSpec(13.2, 8.8, 5472),  # Phantom 4 Pro, 1"
    ("FC6310S", 0): SensorSpec(13.2, 8.8, 5472),
    ("L1D-20c", 0): SensorSpec(13.2, 8.8, 5472),  # Mavic 2 Pro, 1"
    # Zenmuse H20T: wide 1/2.3" 4056x3040; zoom 1/1.7" 5184x3888; thermal 640x512 at 12 µm.
    ("ZH20T", 4056): SensorSpec(6.17, 4.55, 4056),
    ("ZH20T", 5184): SensorSpec(7.53, 5.64, 5184),
    ("ZH20T", 640): SensorSpec(7.68, 6.144, 640),
    ("ZH20", 4056): SensorSpec(6.17, 4.55, 4056),
    ("ZH20", 5184): SensorSpec(7.53, 5.64, 5184),
    # Zenmuse XT S: 640x512 microbolometer at 17 µm.
    ("XT S", 640): SensorSpec(10.88, 8.704, 640),
}


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics in pixels of the image as decoded (square pixels, no distortion).

    The principal point defaults to the image centre; DJI's factory calibration moves it.
    """

    focal_px: float
    width_px: int
    height_px: int
    principal_px: tuple[float, float] | None = None

    @property
    def cx(self) -> float:
        """Principal point x."""
        return self.principal_px[0] if self.principal_px else self.width_px / 2.0

    @property
    def cy(self) -> float:
        """Principal point y."""
        return self.principal_px[1] if self.principal_px else self.height_px / 2.0


@dataclass(frozen=True)
class Pose:
    """Camera position (WGS84) and attitude (degrees), and its height above flat ground (m)."""

    lat: float
    lon: float
    height_above_ground_m: float
    yaw_deg: float
    pitch_deg: float
    roll_deg: float = 0.0


@dataclass(frozen=True)
class ErrorModel:
    """One-sigma input errors for the uncertainty estimate; defaults are [U] field practice."""

    gps_m: float = 3.0  # consumer GNSS without RTK
    height_m: float = 2.0  # barometric height plus terrain not flat
    attitude_deg: float = 1.5  # gimbal pitch/yaw reading and mounting


@dataclass(frozen=True)
class GroundPoint:
    """Where a pixel's ray meets the ground: WGS84, local metres from the camera, sigma."""

    lat: float
    lon: float
    east_m: float
    north_m: float
    distance_m: float
    uncertainty_m: float


def intrinsics_for(
    meta: PhotoMetadata, *, sensor_mm: tuple[float, float] | None = None
) -> Intrinsics:
    """Build the pinhole intrinsics of a photo at its decoded size.

    The focal length in pixels comes from, in order: the focal length with the given
    ``sensor_mm``, DJI's ``CalibratedFocalLength`` (with its optical centre), the focal length
    with the EXIF focal-plane resolution, with :data:`SENSOR_TABLE`, and finally the EXIF
    35 mm equivalent (a diagonal-based approximation). Because it scales with the
    decoded width, a re-saved thumbnail keeps the same field of view.

    Raises:
        GeoreferenceError: no way to know the field of view.
    """
    if not meta.readable:
        raise GeoreferenceError("the image could not be read")
    width, height = meta.width_px, meta.height_px
    native_w = meta.exif_width_px or width
    native_h = meta.exif_height_px or height
    scale = width / native_w
    xmp = meta.xmp
    if sensor_mm is None and xmp is not None and xmp.calibrated_focal_px:
        # Factory calibration (Mavic 3E, M30T, ...) beats any spec-sheet sensor size.
        principal = None
        if xmp.calibrated_cx_px is not None and xmp.calibrated_cy_px is not None:
            principal = (xmp.calibrated_cx_px * scale, xmp.calibrated_cy_px * scale)
        return Intrinsics(xmp.calibrated_focal_px * scale, width, height, principal)
    focal = meta.focal_length_mm
    sensor_w: float | None = None
    if sensor_mm is not None:
        sensor_w = sensor_mm[0]
    elif meta.sensor_width_mm:
        sensor_w = meta.sensor_width_mm
    elif meta.model is not None:
        spec = SENSOR_TABLE.get((meta.model, native_w)) or SENSOR_TABLE.get((meta.model, 0))
        if spec is not None:
            # A photo narrower than the sensor's native width is a crop of it (digital zoom).
            sensor_w = spec.width_mm * native_w / spec.native_width_px
    if focal and sensor_w:
        return Intrinsics(focal / sensor_w * width, width, height)
    if meta.focal_length_35mm:
        # The 35 mm equivalent is defined on the diagonal.
        native_diag = math.hypot(native_w, native_h)
        focal_native = meta.focal_length_35mm / _FILM_DIAGONAL_MM * native_diag
        return Intrinsics(focal_native * width / native_w, width, height)
    raise GeoreferenceError(
        f"unknown camera {meta.model!r}: no sensor size in EXIF or the camera table "
        "and no 35 mm equivalent focal length; pass sensor_mm"
    )


def pose_for(meta: PhotoMetadata, *, ground_elevation_m: float | None = None) -> Pose:
    """Build the camera pose of a photo from EXIF GPS and DJI XMP.

    Args:
        meta: the photo's metadata.
        ground_elevation_m: terrain elevation (same datum as the camera's absolute altitude);
            when given, height above ground is camera altitude minus it, otherwise the XMP
            ``RelativeAltitude`` (height over the take-off point) is used.

    Raises:
        GeoreferenceError: no GPS position, no gimbal attitude or no usable height.
    """
    if not meta.has_gps or meta.lat is None or meta.lon is None:
        raise GeoreferenceError("the photo has no GPS position")
    xmp = meta.xmp
    if xmp is None or xmp.gimbal_pitch_deg is None or xmp.gimbal_yaw_deg is None:
        raise GeoreferenceError("the photo has no DJI gimbal attitude (drone-dji XMP)")
    if ground_elevation_m is not None:
        camera_alt = xmp.absolute_altitude_m if xmp.absolute_altitude_m is not None else meta.alt_m
        if camera_alt is None:
            raise GeoreferenceError("no camera altitude to subtract the ground elevation from")
        height = camera_alt - ground_elevation_m
    elif xmp.relative_altitude_m is not None:
        height = xmp.relative_altitude_m
    else:
        raise GeoreferenceError("no RelativeAltitude in XMP and no ground elevation given")
    if not height > 0.0:
        raise GeoreferenceError(f"camera is {height:.1f} m above the ground: nothing to project")
    return Pose(
        lat=meta.lat,
        lon=meta.lon,
        height_above_ground_m=height,
        yaw_deg=xmp.gimbal_yaw_deg,
        pitch_deg=xmp.gimbal_pitch_deg,
        roll_deg=xmp.gimbal_roll_deg or 0.0,
    )


@lru_cache(maxsize=256)
def _local_to_wgs84(lat: float, lon: float) -> Transformer:
    local = f"+proj=aeqd +lat_0={lat!r} +lon_0={lon!r} +datum=WGS84 +units=m +no_defs"
    return Transformer.from_crs(local, "EPSG:4326", always_xy=True)


def _axes(pose: Pose) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Forward, right and up unit vectors of the camera in east-north-up."""
    yaw, pitch, roll = (math.radians(a) for a in (pose.yaw_deg, pose.pitch_deg, pose.roll_deg))
    forward = np.array(
        [math.sin(yaw) * math.cos(pitch), math.cos(yaw) * math.cos(pitch), math.sin(pitch)]
    )
    # Right stays horizontal before roll: the gimbal pans and tilts about a level horizon.
    right = np.array([math.cos(yaw), -math.sin(yaw), 0.0])
    up = np.cross(right, forward)
    # Positive roll lowers the right side (aviation convention).
    right_r = right * math.cos(roll) - up * math.sin(roll)
    up_r = up * math.cos(roll) + right * math.sin(roll)
    return forward, right_r, up_r


class Camera:
    """A posed pinhole camera that projects pixels to the ground.

    Example:
        >>> cam = Camera(Intrinsics(1000.0, 1000, 800), Pose(30.0, 120.0, 50.0, 0.0, -90.0))
        >>> p = cam.ground_point(500.0, 400.0)
        >>> round(p.east_m, 6), round(p.north_m, 6), round(p.distance_m, 6)
        (0.0, 0.0, 0.0)
    """

    def __init__(
        self,
        intrinsics: Intrinsics,
        pose: Pose,
        *,
        errors: ErrorModel | None = None,
        min_depression_deg: float = 10.0,
    ) -> None:
        self.intrinsics = intrinsics
        self.pose = pose
        self.errors = errors or ErrorModel()
        self.min_depression_deg = min_depression_deg
        self._forward, self._right, self._up = _axes(pose)

    def rays(self, u: FloatArray, v: FloatArray) -> FloatArray:
        """Unit ray directions (N, 3) in east-north-up for pixel coordinates ``u``, ``v``."""
        k = self.intrinsics
        x = (np.asarray(u, dtype=np.float64) - k.cx) / k.focal_px
        y = (np.asarray(v, dtype=np.float64) - k.cy) / k.focal_px
        # Image v grows downwards, so it runs against the camera's up vector.
        f, r, up = self._forward[None, :], self._right[None, :], self._up[None, :]
        d = f + x[:, None] * r - y[:, None] * up
        norms: FloatArray = np.linalg.norm(d, axis=1, keepdims=True)
        return d / norms

    def project(
        self, u: FloatArray, v: FloatArray, *, target_height_m: float = 0.0
    ) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray, BoolArray]:
        """Project many pixels at once.

        Args:
            u: pixel x coordinates.
            v: pixel y coordinates.
            target_height_m: height of the plane to meet above the ground (e.g. the top of a
                pole for fittings); 0 is the ground.

        Returns:
            ``(lat, lon, east_m, north_m, uncertainty_m, ok)``; rows with ``ok`` False (ray
            too close to the horizon) hold NaN.
        """
        d = self.rays(u, v)
        drop = self.pose.height_above_ground_m - target_height_m
        sin_dep = -d[:, 2]
        ok = (sin_dep >= math.sin(math.radians(self.min_depression_deg))) & (drop > 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(ok, drop / sin_dep, np.nan)
        east, north = t * d[:, 0], t * d[:, 1]
        horizontal = np.hypot(east, north)
        e = self.errors
        sigma_att = math.radians(e.attitude_deg)
        with np.errstate(divide="ignore", invalid="ignore"):
            along = drop * sigma_att / sin_dep**2  # d(H/tan δ)/dδ = H/sin²δ
            height_term = e.height_m * horizontal / drop  # d(H/tan δ)/dH = 1/tan δ
            across = t * sigma_att  # a yaw error sweeps the point sideways along the ray
        sigma = np.sqrt(e.gps_m**2 + along**2 + height_term**2 + across**2)
        sigma = np.where(ok, sigma, np.nan).astype(np.float64)
        lon, lat = _local_to_wgs84(self.pose.lat, self.pose.lon).transform(
            np.where(ok, east, 0.0), np.where(ok, north, 0.0)
        )
        lat_a = np.where(ok, np.asarray(lat, dtype=np.float64), np.nan)
        lon_a = np.where(ok, np.asarray(lon, dtype=np.float64), np.nan)
        return lat_a, lon_a, east, north, sigma, ok

    def ground_point(self, u: float, v: float, *, target_height_m: float = 0.0) -> GroundPoint:
        """Project one pixel to the ground.

        Raises:
            GeoreferenceError: the ray is less than ``min_depression_deg`` below the horizon.
        """
        lat, lon, east, north, sigma, ok = self.project(
            np.array([u]), np.array([v]), target_height_m=target_height_m
        )
        if not ok[0]:
            down = float(-self.rays(np.array([u]), np.array([v]))[0, 2])
            dep = math.degrees(math.asin(max(-1.0, min(1.0, down))))
            raise GeoreferenceError(
                f"pixel ({u:.0f}, {v:.0f}) looks {dep:.1f}° below the horizon, less than "
                f"{self.min_depression_deg:.0f}°: too close to horizontal to meet the ground"
            )
        return GroundPoint(
            lat=float(lat[0]),
            lon=float(lon[0]),
            east_m=float(east[0]),
            north_m=float(north[0]),
            distance_m=float(math.hypot(east[0], north[0])),
            uncertainty_m=float(sigma[0]),
        )

    def centre(self) -> GroundPoint:
        """Ground point of the image centre (raises like :meth:`ground_point`)."""
        return self.ground_point(self.intrinsics.cx, self.intrinsics.cy)

    def footprint(self, *, max_range_m: float = 500.0) -> list[tuple[float, float]]:
        """The photo's ground footprint as a closed ring of (lon, lat).

        Image edges are sampled; a ray that does not meet the ground (oblique photos show sky)
        is cut at ``max_range_m`` horizontally along its bearing so the ring stays finite.
        """
        k = self.intrinsics
        w, h = float(k.width_px), float(k.height_px)
        corners = self.rays(np.array([0.0, w, w, 0.0]), np.array([0.0, 0.0, h, h]))
        drop = self.pose.height_above_ground_m
        # A plane maps straight image edges to straight ground lines, so four corners are
        # exact while every corner meets the ground within range; otherwise sample the edges
        # to follow the cut at max_range_m.
        corner_dep = -corners[:, 2]
        corner_reach = drop / np.maximum(corner_dep, 1e-9) * np.hypot(corners[:, 0],
                                                                       corners[:, 1])
        n = 1 if bool(np.all(corner_dep > 1e-9) & np.all(corner_reach < max_range_m)) else 8
        ts = np.linspace(0.0, 1.0, n, endpoint=False)
        u = np.concatenate([ts * w, np.full(n, w), w - ts * w, np.zeros(n)])
        v = np.concatenate([np.zeros(n), ts * h, np.full(n, h), h - ts * h])
        d = self.rays(u, v)
        sin_dep = -d[:, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(sin_dep > 1e-9, drop / sin_dep, np.inf)
        horiz = np.hypot(d[:, 0], d[:, 1])
        reach = np.minimum(t * horiz, max_range_m)
        with np.errstate(divide="ignore", invalid="ignore"):
            bearing_e = np.where(horiz > 0, d[:, 0] / horiz, 0.0)
            bearing_n = np.where(horiz > 0, d[:, 1] / horiz, 0.0)
        east, north = reach * bearing_e, reach * bearing_n
        lon, lat = _local_to_wgs84(self.pose.lat, self.pose.lon).transform(east, north)
        ring = [(float(a), float(b)) for a, b in zip(lon, lat, strict=True)]
        ring.append(ring[0])
        return ring


def camera_for(
    meta: PhotoMetadata,
    *,
    ground_elevation_m: float | None = None,
    sensor_mm: tuple[float, float] | None = None,
    errors: ErrorModel | None = None,
    min_depression_deg: float = 10.0,
) -> Camera:
    """Build the posed camera of a photo (see :func:`intrinsics_for` and :func:`pose_for`).

    Raises:
        GeoreferenceError: the photo lacks what geo-referencing needs.
    """
    errors = errors or ErrorModel()
    xmp = meta.xmp
    if xmp is not None and xmp.rtk_std_m is not None and xmp.rtk_flag == RTK_FIXED:
        # A fixed RTK solution reports its own (centimetre) standard deviation.
        errors = replace(errors, gps_m=xmp.rtk_std_m)
    return Camera(
        intrinsics_for(meta, sensor_mm=sensor_mm),
        pose_for(meta, ground_elevation_m=ground_elevation_m),
        errors=errors,
        min_depression_deg=min_depression_deg,
    )


def centre_for(meta: PhotoMetadata, camera: Camera) -> GroundPoint:
    """Ground point of the image centre: the laser rangefinder target when the photo has one
    (a measurement, as good as the GPS), else the flat-ground projection.

    Raises:
        GeoreferenceError: no rangefinder target and the centre ray misses the ground.
    """
    lrf = meta.xmp.lrf if meta.xmp else None
    if lrf is None:
        return camera.centre()
    to_local = _local_to_wgs84(camera.pose.lat, camera.pose.lon)
    east, north = to_local.transform(lrf.lon, lrf.lat, direction="INVERSE")
    return GroundPoint(
        lat=lrf.lat,
        lon=lrf.lon,
        east_m=float(east),
        north_m=float(north),
        distance_m=float(math.hypot(east, north)),
        uncertainty_m=camera.errors.gps_m,
    )

