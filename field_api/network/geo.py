"""Positions in metres: transformers and LV lines projected once, searchable by distance.

Distances are metres in a transverse-Mercator projection centred on the network (scale error
below 0.1 % within 250 km of the centre); a shapely STRtree finds candidates among many
transformers, and a vectorised scan does the same without the index (the benchmark's baseline).
Pure: no web or database imports.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import shapely
from pyproj import Transformer as _Projection
from shapely import LineString, Point, STRtree


class SchemeInputError(ValueError):
    """The request or network data cannot be computed with (bad coordinates, unknown cable...)."""


@dataclass(frozen=True, slots=True)
class SupplyTransformer:
    """A distribution transformer (配变) as the engine sees it."""

    id: str
    rated_kva: float
    load_kva: float
    lon: float
    lat: float


@dataclass(frozen=True, slots=True)
class LvLine:
    """A low-voltage line fed by one transformer; ``coords`` are (lon, lat) pairs."""

    id: str
    transformer_id: str
    coords: tuple[tuple[float, float], ...]


class Network:
    """Transformers and LV lines projected once to metres, searchable by distance.

    ``spatial_index=True`` answers radius queries with an STRtree; ``False`` scans every
    transformer (vectorised), which the benchmark compares against.
    """

    def __init__(
        self,
        transformers: Sequence[SupplyTransformer],
        lines: Sequence[LvLine] = (),
        *,
        spatial_index: bool = True,
        origin: tuple[float, float] | None = None,
    ) -> None:
        ids = [t.id for t in transformers]
        if len(set(ids)) != len(ids):
            raise SchemeInputError("transformer ids must be unique")
        for t in transformers:
            check_lon_lat(t.lon, t.lat, f"transformer {t.id}")
            if t.rated_kva <= 0 or t.load_kva < 0:
                raise SchemeInputError(f"transformer {t.id}: rated kVA > 0 and load ≥ 0 needed")
        self.transformers = tuple(transformers)
        lons = np.array([t.lon for t in transformers], dtype=float)
        lats = np.array([t.lat for t in transformers], dtype=float)
        if origin is None:
            origin = (float(lons.mean()), float(lats.mean())) if len(lons) else (0.0, 0.0)
        self.origin = origin
        self._proj = _Projection.from_crs(
            "EPSG:4326",
            f"+proj=tmerc +lat_0={origin[1]} +lon_0={origin[0]} +k=1 +x_0=0 +y_0=0 "
            "+ellps=WGS84 +units=m +no_defs",
            always_xy=True,
        )
        xs, ys = self._proj.transform(lons, lats)
        self._xs = np.asarray(xs, dtype=float)
        self._ys = np.asarray(ys, dtype=float)
        self._tree = STRtree(shapely.points(self._xs, self._ys)) if spatial_index else None
        self._index = {t.id: i for i, t in enumerate(transformers)}
        self._lines: dict[str, list[LineString]] = {}
        for line in lines:
            if line.transformer_id not in self._index:
                raise SchemeInputError(f"line {line.id}: unknown transformer {line.transformer_id}")
            if len(line.coords) < 2:
                raise SchemeInputError(f"line {line.id}: needs at least two points")
            for lon, lat in line.coords:
                check_lon_lat(lon, lat, f"line {line.id}")
            lx, ly = self._proj.transform([c[0] for c in line.coords], [c[1] for c in line.coords])
            self._lines.setdefault(line.transformer_id, []).append(
                LineString(np.column_stack([lx, ly]))
            )

    @property
    def uses_spatial_index(self) -> bool:
        """Whether radius queries go through the STRtree."""
        return self._tree is not None

    def to_metres(self, lon: float, lat: float) -> tuple[float, float]:
        """Project a WGS84 position to this network's local metric plane."""
        check_lon_lat(lon, lat, "position")
        x, y = self._proj.transform(lon, lat)
        return float(x), float(y)

    def within(
        self, lon: float, lat: float, radius_m: float
    ) -> list[tuple[SupplyTransformer, float]]:
        """Transformers within ``radius_m`` of a position with their distances, nearest first."""
        x, y = self.to_metres(lon, lat)
        if self._tree is not None:
            idx = self._tree.query(Point(x, y), predicate="dwithin", distance=radius_m)
            idx = np.asarray(idx, dtype=np.intp)
            dist = np.hypot(self._xs[idx] - x, self._ys[idx] - y)
        else:
            all_dist = np.hypot(self._xs - x, self._ys - y)
            idx = np.flatnonzero(all_dist <= radius_m)
            dist = all_dist[idx]
        order = np.argsort(dist, kind="stable")
        return [(self.transformers[int(idx[k])], float(dist[k])) for k in order]

    def route_m(
        self, transformer: SupplyTransformer, lon: float, lat: float, *,
        detour_factor: float, max_service_drop_m: float,
    ) -> tuple[float, Literal["along_line", "straight_line"], float]:
        """Route length from a transformer to a customer: (length_m, method, straight_m).

        Along one of the transformer's LV lines when the customer is within
        ``max_service_drop_m`` of it: the distance along the line between the transformer's
        and the customer's projections plus both short drops; otherwise straight × detour.
        """
        x, y = self.to_metres(lon, lat)
        i = self._index[transformer.id]
        tx, ty = float(self._xs[i]), float(self._ys[i])
        straight = math.hypot(x - tx, y - ty)
        lines = self._lines.get(transformer.id, [])
        if not lines:
            return straight * detour_factor, "straight_line", straight
        customer, source = Point(x, y), Point(tx, ty)
        best: float | None = None
        for line in lines:
            drop, feed = line.distance(customer), line.distance(source)
            if drop > max_service_drop_m or feed > max_service_drop_m:
                continue
            along = abs(line.project(customer) - line.project(source)) + drop + feed
            best = along if best is None else min(best, along)
        if best is not None:
            return best, "along_line", straight
        return straight * detour_factor, "straight_line", straight


def check_lon_lat(lon: float, lat: float, what: str) -> None:
    """Raise SchemeInputError unless (lon, lat) is a finite WGS84 position."""
    if not (math.isfinite(lon) and math.isfinite(lat) and -180 <= lon <= 180 and -90 <= lat <= 90):
        raise SchemeInputError(f"{what}: longitude/latitude out of range ({lon}, {lat})")


