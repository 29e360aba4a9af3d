"""Keep every published coordinate away from the submitted sites.

The public edition draws boundaries, gaps and overlays, never sites. Yet on real
data a boundary vertex, a gap corner or a map bound can fall within a few tens of
metres of a site by chance (a coastal site beside a county border vertex), and a
reader scanning the pages for coordinates could not tell such a coincidence from a
leak. :class:`SiteClearance` moves any such coordinate radially out to
``radius_m + margin_m`` from the site; the move depends on the coordinate alone,
so a vertex shared by two neighbouring units moves the same way in both and no
sliver opens between them. At display scales the shift (under 100 m) is invisible.
"""

from __future__ import annotations

import numpy as np
import shapely

M_PER_DEG_LAT = 110_574.0
M_PER_DEG_LON_EQUATOR = 111_320.0


class SiteClearance:
    """Nudges coordinates lying within ``radius_m`` of a site out to ``radius_m + margin_m``.

    Parameters
    ----------
    lon_deg, lat_deg : array-like
        Site positions, in the coordinate system of what will be published (WGS-84,
        or GCJ-02 for a GCJ-02 base map).
    radius_m : float, default 50
        No published coordinate may lie this close to a site.
    margin_m : float, default 30
        Extra distance a moved coordinate gets, so that rounding it (5 decimals ≈ 1 m,
        4 decimals ≈ 11 m) cannot bring it back inside ``radius_m``.

    Examples
    --------
    >>> clear = SiteClearance([118.1], [24.5])
    >>> lon, lat = clear.points([118.1002, 118.2], [24.5, 24.5])
    >>> bool(clear.distance_to_nearest_m(lon, lat).min() >= 50.0)
    True
    """

    def __init__(self, lon_deg, lat_deg, radius_m: float = 50.0, margin_m: float = 30.0):
        self.lon = np.asarray(lon_deg, dtype=np.float64).ravel()
        self.lat = np.asarray(lat_deg, dtype=np.float64).ravel()
        if self.lon.shape != self.lat.shape:
            raise ValueError("site longitudes and latitudes differ in length")
        self.radius_m = float(radius_m)
        self.target_m = float(radius_m) + float(margin_m)
        self._tree = shapely.STRtree(shapely.points(self.lon, self.lat)) if len(self.lon) else None
        # a degree of longitude is shortest at the northernmost site: search that wide
        cos_min = max(float(np.cos(np.radians(np.abs(self.lat).max()))) if len(self.lat) else 1.0, 0.1)
        self._search_deg = self.target_m / (M_PER_DEG_LON_EQUATOR * cos_min)

    def _offsets_m(self, lon, lat, site):
        dx = (lon - self.lon[site]) * M_PER_DEG_LON_EQUATOR * np.cos(np.radians(self.lat[site]))
        dy = (lat - self.lat[site]) * M_PER_DEG_LAT
        return dx, dy

    def distance_to_nearest_m(self, lon, lat) -> np.ndarray:
        """Distance (m) from each point to its nearest site (inf when none is near)."""
        lon, lat = np.asarray(lon, dtype=np.float64).ravel(), np.asarray(lat, dtype=np.float64).ravel()
        out = np.full(len(lon), np.inf)
        if self._tree is None or not len(lon):
            return out
        point, site = self._tree.query(shapely.points(lon, lat), predicate="dwithin", distance=self._search_deg)
        if len(point):
            dx, dy = self._offsets_m(lon[point], lat[point], site)
            np.minimum.at(out, point, np.hypot(dx, dy))
        return out

    def points(self, lon, lat) -> tuple[np.ndarray, np.ndarray]:
        """The points, each moved radially away from any site closer than ``radius_m``."""
        lon = np.array(lon, dtype=np.float64).ravel()
        lat = np.array(lat, dtype=np.float64).ravel()
        if self._tree is None or not len(lon):
            return lon, lat
        for _ in range(8):  # a move away from one site may approach another
            point, site = self._tree.query(shapely.points(lon, lat), predicate="dwithin",
                                           distance=self._search_deg)
            if not len(point):
                break
            dx, dy = self._offsets_m(lon[point], lat[point], site)
            distance = np.hypot(dx, dy)
            close = distance < self.radius_m
            if not close.any():
                break
            point, site, dx, dy, distance = point[close], site[close], dx[close], dy[close], distance[close]
            # a point exactly on a site moves north; otherwise straight away from it
            ux = np.where(distance > 0, dx / np.where(distance > 0, distance, 1.0), 0.0)
            uy = np.where(distance > 0, dy / np.where(distance > 0, distance, 1.0), 1.0)
            first = np.unique(point, return_index=True)[1]  # one site at a time per point
            point, site, ux, uy = point[first], site[first], ux[first], uy[first]
            cos_lat = np.cos(np.radians(self.lat[site]))
            lon[point] = self.lon[site] + ux * self.target_m / (M_PER_DEG_LON_EQUATOR * cos_lat)
            lat[point] = self.lat[site] + uy * self.target_m / M_PER_DEG_LAT
        return lon, lat

    def geometries(self, geometries, decimals: int) -> np.ndarray:
        """Shapely geometries with every vertex kept clear of the sites, then rounded."""
        scale = 10.0 ** decimals

        def _clear(xy: np.ndarray) -> np.ndarray:
            lon, lat = self.points(xy[:, 0], xy[:, 1])
            return np.round(np.column_stack([lon, lat]) * scale) / scale

        return shapely.transform(np.asarray(geometries, dtype=object), _clear)

    def bounds(self, west: float, south: float, east: float, north: float) -> tuple[float, float, float, float]:
        """A (west, south, east, north) box grown until none of its corners is near a site."""
        for _ in range(8):
            corners_lon = np.array([west, east, west, east])
            corners_lat = np.array([south, south, north, north])
            if self.distance_to_nearest_m(corners_lon, corners_lat).min() >= self.radius_m:
                break
            pad_lon = self.target_m / (M_PER_DEG_LON_EQUATOR * np.cos(np.radians((south + north) / 2)))
            pad_lat = self.target_m / M_PER_DEG_LAT
            west, east, south, north = west - pad_lon, east + pad_lon, south - pad_lat, north + pad_lat
        return west, south, east, north
