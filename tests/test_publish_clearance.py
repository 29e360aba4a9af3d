"""SiteClearance: published coordinates never lie within 50 m of a submitted site."""

import numpy as np
import pytest
import shapely

from coverage.publish.clearance import SiteClearance

SITES_LON, SITES_LAT = [118.10, 118.1004], [24.50, 24.50]  # two sites 40 m apart


def test_points_near_sites_move_out_and_far_points_stay():
    clear = SiteClearance(SITES_LON, SITES_LAT)
    lon = np.array([118.1001, 118.10, 118.20, 118.1002])
    lat = np.array([24.50, 24.50, 24.60, 24.5003])
    new_lon, new_lat = clear.points(lon, lat)
    assert clear.distance_to_nearest_m(new_lon, new_lat).min() >= 50.0
    assert (new_lon[2], new_lat[2]) == (118.20, 24.60)
    moved_m = np.hypot((new_lon - lon) * 111_320 * np.cos(np.radians(24.5)), (new_lat - lat) * 110_574)
    assert moved_m.max() < 120.0  # invisible at display scales


def test_shared_border_moves_identically_so_no_sliver_opens():
    clear = SiteClearance([118.1001], [24.5])
    # two units sharing a border whose vertex (118.1, 24.5) lies 10 m from the site
    west = shapely.Polygon([(118.0, 24.4), (118.1, 24.4), (118.1, 24.5), (118.1, 24.6), (118.0, 24.6)])
    east = shapely.Polygon([(118.1, 24.4), (118.2, 24.4), (118.2, 24.6), (118.1, 24.6), (118.1, 24.5)])
    moved = clear.geometries([west, east], decimals=5)
    assert shapely.intersection(moved[0], moved[1]).area == pytest.approx(0.0, abs=1e-12)
    assert shapely.union(moved[0], moved[1]).area == pytest.approx(west.area + east.area, rel=1e-9)
    vertices = shapely.get_coordinates(moved)
    assert clear.distance_to_nearest_m(vertices[:, 0], vertices[:, 1]).min() >= 50.0


def test_bounds_grow_until_no_corner_is_near_a_site():
    clear = SiteClearance([118.0], [24.4])
    west, south, east, north = clear.bounds(118.0, 24.4, 118.2, 24.6)
    assert west < 118.0 and south < 24.4 and (east, north) != (118.2, 24.6)
    corners = np.array([[west, south], [east, south], [west, north], [east, north]])
    assert clear.distance_to_nearest_m(corners[:, 0], corners[:, 1]).min() >= 50.0


def test_no_sites_changes_nothing_but_rounding():
    clear = SiteClearance([], [])
    geom = shapely.Point(118.123456789, 24.5)
    assert shapely.get_coordinates(clear.geometries([geom], 5))[0].tolist() == [118.12346, 24.5]
