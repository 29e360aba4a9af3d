"""GCJ-02 <-> WGS-84 conversion: published reference vectors, round trip, aliases."""

from __future__ import annotations

import numpy as np
import pytest
from pyproj import Geod

from coverage.chinacrs import (
    bd09_to_gcj02,
    bd09_to_wgs84,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    in_china_bbox,
    normalise_crs_name,
    to_wgs84,
    wgs84_to_bd09,
    wgs84_to_gcj02,
)

GEOD = Geod(ellps="WGS84")

# (wgs_lon, wgs_lat, gcj_lon, gcj_lat): test vectors published with the eviltransform
# implementations (github.com/googollee/eviltransform, go/transform_test.go).
REFERENCE = [
    (121.5272106, 31.1774276, 121.531541859215, 31.17530398364597),  # Shanghai
    (113.912316, 22.543847, 113.9171764808363, 22.540796131694766),  # Shenzhen
    (116.377817, 39.911954, 116.38404722455657, 39.91334545536069),  # Beijing
]


@pytest.mark.parametrize(("wlon", "wlat", "glon", "glat"), REFERENCE)
def test_forward_matches_published_vectors(wlon, wlat, glon, glat):
    lon, lat = wgs84_to_gcj02(wlon, wlat)
    assert float(lon) == pytest.approx(glon, abs=1e-9)
    assert float(lat) == pytest.approx(glat, abs=1e-9)
    _, _, offset_m = GEOD.inv(wlon, wlat, glon, glat)
    assert 300 < offset_m < 800  # GCJ-02 shifts by hundreds of metres


@pytest.mark.parametrize(("wlon", "wlat", "glon", "glat"), REFERENCE)
def test_inverse_recovers_published_wgs84(wlon, wlat, glon, glat):
    lon, lat = gcj02_to_wgs84(glon, glat)
    _, _, err_m = GEOD.inv(float(lon), float(lat), wlon, wlat)
    assert err_m < 0.01


def test_vectorised_matches_scalar():
    wlon = np.array([r[0] for r in REFERENCE])
    wlat = np.array([r[1] for r in REFERENCE])
    lon, lat = wgs84_to_gcj02(wlon, wlat)
    assert lon.shape == (3,)
    np.testing.assert_allclose(lon, [r[2] for r in REFERENCE], atol=1e-9)
    np.testing.assert_allclose(lat, [r[3] for r in REFERENCE], atol=1e-9)


def test_round_trip_under_one_metre_over_china():
    rng = np.random.default_rng(42)
    wlon = rng.uniform(73.5, 135.0, 20_000)
    wlat = rng.uniform(18.0, 53.5, 20_000)
    glon, glat = wgs84_to_gcj02(wlon, wlat)
    back_lon, back_lat = gcj02_to_wgs84(glon, glat)
    _, _, err_m = GEOD.inv(back_lon, back_lat, wlon, wlat)
    assert err_m.max() < 0.01
    _, _, offset_m = GEOD.inv(wlon, wlat, glon, glat)
    assert 10 < np.median(offset_m) < 1000


def test_outside_china_unchanged_and_nan_passes_through():
    lon, lat = wgs84_to_gcj02([2.35, -104.99, np.nan], [48.85, 39.74, 30.0])
    np.testing.assert_array_equal(lon[:2], [2.35, -104.99])
    np.testing.assert_array_equal(lat[:2], [48.85, 39.74])
    assert np.isnan(lon[2])
    back_lon, back_lat = gcj02_to_wgs84([2.35, np.nan], [48.85, 1.0])
    assert float(back_lon[0]) == 2.35 and np.isnan(back_lon[1])
    assert in_china_bbox([116.4, 2.35, np.nan], [39.9, 48.85, 1.0]).tolist() == [True, False, False]


@pytest.mark.parametrize(
    ("alias", "name"),
    [
        ("EPSG:4326", "wgs84"), ("WGS-84", "wgs84"), ("wgs84", "wgs84"), ("4326", "wgs84"),
        ("EPSG:4490", "cgcs2000"), ("CGCS2000", "cgcs2000"), ("国家2000", "cgcs2000"),
        ("GCJ02", "gcj02"), ("gcj-02", "gcj02"), ("火星坐标", "gcj02"), ("火星坐标系", "gcj02"),
        ("EPSG:3857", None), ("", None), (None, None),
    ],
)
def test_normalise_crs_name(alias, name):
    assert normalise_crs_name(alias) == name


def test_to_wgs84_dispatch():
    wlon, wlat, glon, glat = REFERENCE[2]
    lon, lat = to_wgs84(glon, glat, "火星坐标")
    assert float(lon) == pytest.approx(wlon, abs=1e-8) and float(lat) == pytest.approx(wlat, abs=1e-8)
    lon, lat = to_wgs84([glon], [glat], "EPSG:4490")  # CGCS2000 = WGS-84 here (centimetres apart)
    assert lon.tolist() == [glon] and lat.tolist() == [glat]
    with pytest.raises(ValueError, match="unknown coordinate system"):
        to_wgs84(1.0, 1.0, "EPSG:3857")
    with pytest.raises(ValueError, match="same shape"):
        to_wgs84([1.0, 2.0], [1.0], "wgs84")


# BD-09: wandergis/coordtransform's published example (test/app.js; the same figures are
# the test vectors of hutool's CoordinateUtilTest and coordtransform-rs).
BD09_FROM_GCJ02 = (116.404, 39.915, 116.41036949371029, 39.92133699351021)
# Its approximate closed-form inverse of (116.404, 39.915); ours iterates, so ~1 m apart at most.
GCJ02_FROM_BD09_APPROX = (116.404, 39.915, 116.39762729119315, 39.90865673957631)


def test_bd09_forward_matches_published_vector():
    glon, glat, blon, blat = BD09_FROM_GCJ02
    lon, lat = gcj02_to_bd09(glon, glat)
    assert float(lon) == pytest.approx(blon, abs=1e-12)
    assert float(lat) == pytest.approx(blat, abs=1e-12)


def test_bd09_inverse_close_to_published_approximation_and_exact_round_trip():
    blon, blat, glon, glat = GCJ02_FROM_BD09_APPROX
    lon, lat = bd09_to_gcj02(blon, blat)
    _, _, err_m = GEOD.inv(float(lon), float(lat), glon, glat)
    assert err_m < 1.5
    back_lon, back_lat = gcj02_to_bd09(lon, lat)
    assert float(back_lon) == pytest.approx(blon, abs=1e-9)
    assert float(back_lat) == pytest.approx(blat, abs=1e-9)


def test_bd09_round_trip_to_wgs84_over_china_and_offset_size():
    rng = np.random.default_rng(7)
    wlon = rng.uniform(73.5, 135.0, 20_000)
    wlat = rng.uniform(18.0, 53.5, 20_000)
    blon, blat = wgs84_to_bd09(wlon, wlat)
    _, _, offset_m = GEOD.inv(blon, blat, wlon, wlat)
    assert np.median(offset_m) > 500  # BD-09 sits ~0.5–1.2 km from WGS-84
    back_lon, back_lat = to_wgs84(blon, blat, "BD-09")
    _, _, err_m = GEOD.inv(back_lon, back_lat, wlon, wlat)
    assert err_m.max() < 0.01
    back_lon2, back_lat2 = bd09_to_wgs84(blon, blat)
    np.testing.assert_array_equal(back_lon, back_lon2)
    np.testing.assert_array_equal(back_lat, back_lat2)


@pytest.mark.parametrize("alias", ["bd09", "BD-09", "baidu", "百度坐标", "百度经纬度", "BD09LL"])
def test_bd09_aliases(alias):
    assert normalise_crs_name(alias) == "bd09"
