"""Geodesy: positions in WGS 84 degrees and the distance between them on the ellipsoid.

Used by the media slice (how far a photo was taken from the order's site) and the visits slice
(how far from the site an arrival was recorded). Pure: no database, no web framework.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyproj import Geod

_WGS84 = Geod(ellps="WGS84")


@dataclass(frozen=True)
class Position:
    """WGS 84 decimal degrees."""

    lat: float
    lon: float


def distance_m(a: Position, b: Position) -> float:
    """Geodesic distance on the WGS 84 ellipsoid, in metres."""
    _, _, dist = _WGS84.inv(a.lon, a.lat, b.lon, b.lat)
    return float(dist)
