"""China's coordinate systems: WGS-84, CGCS2000, GCJ-02 and BD-09, vectorised.

* **WGS-84** (EPSG:4326): GPS, OpenStreetMap, the contracts of this project.
* **CGCS2000** (EPSG:4490): China's official geodetic datum. It differs from the
  current WGS-84 realisation by a few centimetres, far below the precision of
  any site survey or coverage raster, so it is treated as WGS-84 unchanged.
* **GCJ-02** ("火星坐标", Mars coordinates): the obfuscated datum required for
  published maps in China (Amap/高德, Tencent, Google China). Points inside China
  are shifted by a non-linear offset of typically 300–700 m. The forward
  transform (WGS-84 → GCJ-02) is the widely published algorithm (e.g. the
  eviltransform implementations); the inverse has no closed form and is solved
  here by fixed-point iteration to ~1e-9 degrees (millimetres). Points outside
  China's rough bounding box are not shifted, as in the reference algorithm.
* **BD-09** (百度坐标): Baidu Maps' datum, GCJ-02 shifted once more by a further
  ~0.006–0.0065° (~700 m) rotation-and-scale. Crowdsourced Chinese measurements
  (apps built on Baidu's location SDK) often carry it. The forward step
  (GCJ-02 → BD-09) is the widely published one (as in wandergis/coordtransform);
  its inverse is usually given as an approximation good to ~1 m, and is solved
  here by the same fixed-point iteration as GCJ-02's.

All functions accept scalars or array-likes of equal shape and return numpy
float64 arrays (0-d for scalar input: use ``float()`` to unwrap).
"""

from __future__ import annotations

import logging
import re

import numpy as np

log = logging.getLogger(__name__)

WGS84 = "wgs84"
CGCS2000 = "cgcs2000"
GCJ02 = "gcj02"
BD09 = "bd09"
CRS_NAMES = (WGS84, CGCS2000, GCJ02, BD09)

# Krasovsky 1940 ellipsoid as used by the published GCJ-02 algorithm.
_GCJ_A_M = 6378245.0
_GCJ_EE = 0.00669342162296594323

# Bounding box inside which GCJ-02 shifts points (the reference implementation's
# "out of China" test; it is a rectangle, so it includes some neighbours).
CHINA_BBOX_LON = (72.004, 137.8347)
CHINA_BBOX_LAT = (0.8293, 55.8271)

_INVERSE_TOLERANCE_DEG = 1e-10
_INVERSE_MAX_ITERATIONS = 30


def _fold(value: object) -> str:
    return re.sub(r"[\s_\-.:()（）/]+", "", str(value)).lower()


_CRS_ALIASES = {
    WGS84: ("wgs84", "wgs 84", "WGS-84", "epsg:4326", "4326", "gps", "ogc:crs84", "crs84", "地球坐标", "地球坐标系"),
    CGCS2000: ("cgcs2000", "cgcs 2000", "CGCS-2000", "epsg:4490", "4490", "国家2000", "2000国家大地坐标系", "国家大地坐标系"),
    GCJ02: ("gcj02", "gcj-02", "gcj", "火星坐标", "火星坐标系", "国测局坐标", "国测局坐标系", "高德", "amap", "mars"),
    BD09: ("bd09", "bd-09", "bd09ll", "baidu", "百度", "百度坐标", "百度坐标系", "百度经纬度"),
}
_CRS_LOOKUP = {_fold(alias): name for name, aliases in _CRS_ALIASES.items() for alias in (name, *aliases)}


def normalise_crs_name(value: object) -> str | None:
    """Canonical CRS name (``'wgs84'``, ``'cgcs2000'``, ``'gcj02'``, ``'bd09'``) for any alias, or None.

    Parameters
    ----------
    value : object
        A spelling such as ``'EPSG:4326'``, ``'WGS-84'``, ``'EPSG:4490'``, ``'GCJ02'``,
        ``'火星坐标'``. Blank or None gives None.

    Returns
    -------
    str or None

    Examples
    --------
    >>> normalise_crs_name("EPSG:4326"), normalise_crs_name("CGCS2000"), normalise_crs_name("火星坐标")
    ('wgs84', 'cgcs2000', 'gcj02')
    >>> normalise_crs_name("BD-09"), normalise_crs_name("百度坐标")
    ('bd09', 'bd09')
    >>> normalise_crs_name("EPSG:3857") is None
    True
    """
    if value is None:
        return None
    return _CRS_LOOKUP.get(_fold(value))


def _as_arrays(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    lon_arr = np.asarray(lon, dtype=np.float64)
    lat_arr = np.asarray(lat, dtype=np.float64)
    if lon_arr.shape != lat_arr.shape:
        raise ValueError(f"lon and lat must have the same shape, got {lon_arr.shape} and {lat_arr.shape}")
    return lon_arr, lat_arr


def in_china_bbox(lon, lat) -> np.ndarray:
    """True where a point lies in the rectangle inside which GCJ-02 applies its offset.

    Parameters
    ----------
    lon, lat : float or array-like
        Degrees.

    Returns
    -------
    numpy.ndarray of bool (NaN coordinates give False)

    Examples
    --------
    >>> bool(in_china_bbox(116.39, 39.9)), bool(in_china_bbox(2.35, 48.85))
    (True, False)
    """
    lon_arr, lat_arr = _as_arrays(lon, lat)
    return (
        (lon_arr >= CHINA_BBOX_LON[0]) & (lon_arr <= CHINA_BBOX_LON[1])
        & (lat_arr >= CHINA_BBOX_LAT[0]) & (lat_arr <= CHINA_BBOX_LAT[1])
    )


#: Points per block of :func:`_gcj_offset_deg`: its dozen temporaries then stay in the CPU cache (twice as fast
#: on a million points as one pass over all; every value is computed the same way).
_OFFSET_BLOCK = 32_768


def _gcj_offset_deg(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """GCJ-02 offset (dlon, dlat) in degrees at WGS-84 points, ignoring the bbox test."""
    if lon.ndim != 1 or lon.shape != lat.shape or lon.size <= _OFFSET_BLOCK:
        return _gcj_offset_block(lon, lat)
    dlon, dlat = np.empty_like(lon), np.empty_like(lat)
    for start in range(0, lon.size, _OFFSET_BLOCK):
        block = slice(start, start + _OFFSET_BLOCK)
        dlon[block], dlat[block] = _gcj_offset_block(lon[block], lat[block])
    return dlon, dlat


def _gcj_offset_block(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = lon - 105.0
    y = lat - 35.0
    sqrt_abs_x = np.sqrt(np.abs(x))
    x_term = (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0  # in both offsets
    dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * sqrt_abs_x
    dlat += x_term
    dlat += (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
    dlat += (160.0 * np.sin(y / 12.0 * np.pi) + 320.0 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0
    dlon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * sqrt_abs_x
    dlon += x_term
    dlon += (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
    dlon += (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0
    rad_lat = lat / 180.0 * np.pi
    magic = 1.0 - _GCJ_EE * np.sin(rad_lat) ** 2
    sqrt_magic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_GCJ_A_M * (1.0 - _GCJ_EE)) / (magic * sqrt_magic) * np.pi)
    dlon = (dlon * 180.0) / (_GCJ_A_M / sqrt_magic * np.cos(rad_lat) * np.pi)
    return dlon, dlat


def wgs84_to_gcj02(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """Shift WGS-84 coordinates to GCJ-02 (points outside China's box are unchanged).

    Parameters
    ----------
    lon, lat : float or array-like
        WGS-84 longitude and latitude, degrees.

    Returns
    -------
    (lon, lat) : tuple of numpy.ndarray
        GCJ-02 degrees, float64, same shape as the input.

    Examples
    --------
    >>> lon, lat = wgs84_to_gcj02(121.5272106, 31.1774276)   # Shanghai, eviltransform test vector
    >>> round(float(lon), 9), round(float(lat), 9)
    (121.531541859, 31.175303984)
    """
    lon_arr, lat_arr = _as_arrays(lon, lat)
    dlon, dlat = _gcj_offset_deg(lon_arr, lat_arr)
    inside = in_china_bbox(lon_arr, lat_arr)
    return np.where(inside, lon_arr + dlon, lon_arr), np.where(inside, lat_arr + dlat, lat_arr)


def gcj02_to_wgs84(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """Invert GCJ-02 to WGS-84 by fixed-point iteration (error ~1e-9 degrees, millimetres).

    Parameters
    ----------
    lon, lat : float or array-like
        GCJ-02 longitude and latitude, degrees.

    Returns
    -------
    (lon, lat) : tuple of numpy.ndarray
        WGS-84 degrees, float64, same shape as the input.

    Examples
    --------
    >>> lon, lat = gcj02_to_wgs84(121.531541859215, 31.17530398364597)
    >>> round(float(lon), 7), round(float(lat), 7)
    (121.5272106, 31.1774276)
    """
    gcj_lon, gcj_lat = _as_arrays(lon, lat)
    return _invert(wgs84_to_gcj02, gcj_lon, gcj_lat, gcj_lon.copy(), gcj_lat.copy())


def _invert(forward, lon: np.ndarray, lat: np.ndarray, guess_lon: np.ndarray, guess_lat: np.ndarray):
    """The point ``forward`` maps onto ``lon``/``lat``, by fixed-point iteration from the guess.

    Both datum shifts are small and smooth, so subtracting the forward error converges
    to ~1e-10° in a few steps.
    """
    for _ in range(_INVERSE_MAX_ITERATIONS):
        fwd_lon, fwd_lat = forward(guess_lon, guess_lat)
        err_lon, err_lat = fwd_lon - lon, fwd_lat - lat
        guess_lon = guess_lon - err_lon
        guess_lat = guess_lat - err_lat
        worst = np.nanmax(np.abs(np.concatenate([np.ravel(err_lon), np.ravel(err_lat), [0.0]])))
        if worst < _INVERSE_TOLERANCE_DEG:
            break
    return guess_lon, guess_lat


# Baidu's published GCJ-02 → BD-09 constants: the angular frequency of its
# wobble terms (π·3000/180) and its fixed false origin in degrees.
_BD_X_PI = np.pi * 3000.0 / 180.0
_BD_DLON_DEG = 0.0065
_BD_DLAT_DEG = 0.006


def gcj02_to_bd09(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """Convert GCJ-02 to BD-09 (Baidu), the published closed form.

    Parameters
    ----------
    lon, lat : float or array-like
        GCJ-02 degrees.

    Returns
    -------
    (lon, lat) : tuple of numpy.ndarray, BD-09 degrees

    Examples
    --------
    >>> lon, lat = gcj02_to_bd09(116.404, 39.915)
    >>> round(float(lon), 9), round(float(lat), 9)
    (116.410369494, 39.921336994)
    """
    x, y = _as_arrays(lon, lat)
    radius = np.hypot(x, y) + 0.00002 * np.sin(y * _BD_X_PI)
    angle = np.arctan2(y, x) + 0.000003 * np.cos(x * _BD_X_PI)
    return radius * np.cos(angle) + _BD_DLON_DEG, radius * np.sin(angle) + _BD_DLAT_DEG


def bd09_to_gcj02(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """Invert BD-09 to GCJ-02 by fixed-point iteration (~1e-9 degrees).

    The usual closed-form inverse drops the wobble terms' dependence on the
    unknown point and is off by up to ~1 m; iterating the forward step removes that.

    Parameters
    ----------
    lon, lat : float or array-like
        BD-09 degrees.

    Returns
    -------
    (lon, lat) : tuple of numpy.ndarray, GCJ-02 degrees
    """
    bd_lon, bd_lat = _as_arrays(lon, lat)
    return _invert(gcj02_to_bd09, bd_lon, bd_lat, bd_lon - _BD_DLON_DEG, bd_lat - _BD_DLAT_DEG)


def wgs84_to_bd09(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """Convert WGS-84 to BD-09 (through GCJ-02)."""
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


def bd09_to_wgs84(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """Convert BD-09 to WGS-84 (through GCJ-02)."""
    return gcj02_to_wgs84(*bd09_to_gcj02(lon, lat))


def to_wgs84(lon, lat, crs: str) -> tuple[np.ndarray, np.ndarray]:
    """Convert coordinates in ``crs`` to WGS-84.

    Parameters
    ----------
    lon, lat : float or array-like
        Degrees in ``crs``.
    crs : str
        ``'wgs84'``, ``'cgcs2000'``, ``'gcj02'`` or ``'bd09'``, or any alias accepted by
        :func:`normalise_crs_name`. CGCS2000 is returned unchanged (it differs
        from WGS-84 by centimetres).

    Returns
    -------
    (lon, lat) : tuple of numpy.ndarray, WGS-84 degrees

    Raises
    ------
    ValueError
        ``crs`` is not a known name.

    Examples
    --------
    >>> lon, lat = to_wgs84(116.38404722455657, 39.91334545536069, "GCJ-02")
    >>> round(float(lon), 6), round(float(lat), 6)
    (116.377817, 39.911954)
    """
    name = normalise_crs_name(crs)
    if name is None:
        raise ValueError(f"unknown coordinate system {crs!r}; use one of {', '.join(CRS_NAMES)}")
    if name == GCJ02:
        return gcj02_to_wgs84(lon, lat)
    if name == BD09:
        return bd09_to_wgs84(lon, lat)
    return _as_arrays(lon, lat)
