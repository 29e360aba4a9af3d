"""Environment inference from the density of an operator's sites."""

import math

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from pyproj import Transformer

from coverage.errors import SchemaError
from coverage.radio.environment import (
    DISTANCE_CRS,
    classify_density,
    infer_environment,
    site_density_per_km2,
)


def _sectors_at(points_m, operator="CM", environment=None, sectors_per_site=3, start=0):
    """Sectors of sites placed at metric offsets (x, y) from 116.4 E, 39.9 N."""
    to_ll = Transformer.from_crs(DISTANCE_CRS, "EPSG:4326", always_xy=True)
    to_m = Transformer.from_crs("EPSG:4326", DISTANCE_CRS, always_xy=True)
    x0, y0 = to_m.transform(116.4, 39.9)
    rows = []
    for k, (dx, dy) in enumerate(points_m):
        lon, lat = to_ll.transform(x0 + dx, y0 + dy)
        for s in range(sectors_per_site):
            rows.append({"operator": operator, "site_id": f"S{start + k}", "cell_id": f"S{start + k}-{s}",
                         "environment": environment, "lon": lon, "lat": lat})
    frame = pd.DataFrame(rows)
    return gpd.GeoDataFrame(frame.drop(columns=["lon", "lat"]),
                            geometry=gpd.points_from_xy(frame.lon, frame.lat), crs="EPSG:4326")


@pytest.fixture
def city_and_countryside():
    """A 7x7 grid of sites 300 m apart (dense core), a 4-site pair far away with
    900 m spacing, one isolated site, and one sector with a given environment."""
    core = [(i * 300.0, j * 300.0) for i in range(7) for j in range(7)]
    town = [(50_000.0 + i * 900.0, j * 900.0) for i in range(2) for j in range(2)]
    lonely = [(0.0, 80_000.0)]
    parts = [
        _sectors_at(core),
        _sectors_at(town, start=100),
        _sectors_at(lonely, start=200),
        _sectors_at([(10.0, 10.0)], environment="rural", sectors_per_site=1, start=300),
    ]
    return pd.concat(parts, ignore_index=True)


def test_site_density_counts_neighbours_within_radius():
    # Points on a line 400 m apart: within 1 km of the middle point lie 5 (−800 … +800).
    x = np.arange(-2000.0, 2001.0, 400.0)
    density = site_density_per_km2(x, np.zeros_like(x), np.zeros(x.size, dtype=int), 1000.0)
    middle = int(np.flatnonzero(x == 0.0)[0])
    assert density[middle] == pytest.approx(5 / math.pi)
    assert density[0] == pytest.approx(3 / math.pi)  # −2000: itself, −1600, −1200
    # Exactly on the radius counts; other groups never count.
    d = site_density_per_km2(np.array([0.0, 1000.0, 0.0]), np.zeros(3), np.array([0, 0, 1]), 1000.0)
    assert d.tolist() == pytest.approx([2 / math.pi, 2 / math.pi, 1 / math.pi])


def test_site_density_matches_brute_force():
    rng = np.random.default_rng(5)
    x, y = rng.uniform(0, 5000, 800), rng.uniform(0, 5000, 800)
    g = rng.integers(0, 3, 800)
    got = site_density_per_km2(x, y, g, 700.0)
    dist2 = (x[:, None] - x[None, :]) ** 2 + (y[:, None] - y[None, :]) ** 2
    same = g[:, None] == g[None, :]
    expected = ((dist2 <= 700.0**2) & same).sum(axis=1) / (math.pi * 0.49)
    np.testing.assert_allclose(got, expected)


def test_classify_density_cutoffs():
    assert classify_density([6.0, 5.99, 2.0, 1.99, 0.4, 0.39]).tolist() == [
        "dense_urban", "urban", "urban", "suburban", "suburban", "rural"]


def test_cluster_is_dense_isolated_is_rural_given_is_kept(city_and_countryside):
    env = infer_environment(city_and_countryside)
    assert env.index.equals(city_and_countryside.index)
    site = city_and_countryside["site_id"]
    # Core centre S24 (3,3): sites within 1 km of a 300 m grid: offsets (i, j) with
    # 300·√(i² + j²) ≤ 1000 → i² + j² ≤ 11.1: 37 sites → 11.8 per km² → dense_urban.
    assert set(env[site == "S24"]) == {"dense_urban"}
    # Core corner S0: quarter of that disc within the grid: 1 + 2·3 + (pairs i, j ≥ 1
    # with i² + j² ≤ 11: (1,1),(1,2),(2,1),(2,2),(1,3),(3,1)) = 13 → 4.1 per km² → urban.
    assert set(env[site == "S0"]) == {"urban"}
    # Town sites 900 m apart: each sees itself + 2 neighbours (the diagonal 1273 m is
    # out): 3 / π = 0.95 per km² → suburban.
    assert set(env[site.isin(["S100", "S101", "S102", "S103"])]) == {"suburban"}
    assert set(env[site == "S200"]) == {"rural"}
    # The sector with a given environment keeps it, although it stands in the core.
    assert env[site == "S300"].tolist() == ["rural"]


def test_other_operators_do_not_count(city_and_countryside):
    other = _sectors_at([(910.0, 910.0)], operator="CT", start=400)  # by the core centre
    env = infer_environment(pd.concat([city_and_countryside, other], ignore_index=True))
    assert env.iloc[-1] == "rural"
    everyone = infer_environment(pd.concat([city_and_countryside, other], ignore_index=True), per_operator=False)
    assert everyone.iloc[-1] == "dense_urban"


def test_blank_strings_and_nan_are_inferred_and_all_given_is_untouched():
    sectors = _sectors_at([(0.0, 0.0), (5000.0, 0.0)], sectors_per_site=2)
    sectors["environment"] = ["urban", "  ", np.nan, None]
    env = infer_environment(sectors)
    assert env.tolist() == ["urban", "rural", "rural", "rural"]
    sectors["environment"] = ["urban", "suburban", "rural", "dense_urban"]
    assert infer_environment(sectors).tolist() == ["urban", "suburban", "rural", "dense_urban"]


def test_bad_input():
    with pytest.raises(SchemaError):
        infer_environment(pd.DataFrame({"environment": [None]}))
    with pytest.raises(SchemaError):
        infer_environment(_sectors_at([(0.0, 0.0)]), radius_m=0.0)
