"""Coverage gaps: areas, ranks, small ones dropped, outside the raster, nearest sector."""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely
from pyproj import Geod, Transformer
from rasterio.transform import from_origin

from coverage.errors import SchemaError
from coverage.gaps import GAP_COLUMNS, find_gaps, find_layer_gaps, hexagon_area_m2

try:
    from coverage.grid import CHINA_ALBERS_PROJ4 as ALBERS
except ImportError:  # pragma: no cover - grid.py not there yet
    ALBERS = "+proj=aea +lat_0=0 +lon_0=105 +lat_1=25 +lat_2=47 +x_0=0 +y_0=0 +datum=WGS84 +units=m +no_defs"

X0, Y0 = 100_000.0, 3_900_000.0
RES_M = 100.0


def box(x_min_m, y_min_m, x_max_m, y_max_m):
    """A box in metres relative to the raster's top-left corner (y downwards)."""
    return shapely.box(X0 + x_min_m, Y0 - y_max_m, X0 + x_max_m, Y0 - y_min_m)


def point(x_m, y_m):
    return shapely.Point(X0 + x_m, Y0 - y_m)


@pytest.fixture
def gap_raster(tmp_path):
    """100×100 at 100 m, covered (1/2) except: a 2×2 km hole (x 2-4 km, y 3-5 km),
    a 1.0×1.5 km hole (x 6-7 km, y 6-7.5 km) and a 200×200 m hole (x 8-8.2, y 1-1.2 km)."""
    cls = np.ones((100, 100), np.uint8)
    cls[:50, 80:] = 2
    cls[30:50, 20:40] = 0
    cls[60:75, 60:70] = 0
    cls[10:12, 80:82] = 0
    cls[0, 0] = 255  # nodata pixel: uncovered but tiny
    path = tmp_path / "nbiot_class.tif"
    with rasterio.open(path, "w", driver="GTiff", width=100, height=100, count=1, dtype="uint8", crs=ALBERS,
                       transform=from_origin(X0, Y0, RES_M, RES_M), nodata=255) as ds:
        ds.write(cls, 1)
    return path


def county(geom, code="110101", name="东城区"):
    return gpd.GeoDataFrame({"code": [code], "name": [name]}, geometry=[geom], crs=ALBERS).to_crs(4326)


def test_known_square_gaps_ranked_and_small_dropped(gap_raster):
    gaps = find_gaps(gap_raster, county(box(50.5, 50.5, 9950.5, 9950.5)), min_gap_km2=1.0,
                     typical_cell_radius_m={"rural": 1000.0, "urban": 300.0}, tech="nbiot")
    assert list(gaps.columns) == [*GAP_COLUMNS, "geometry"]
    assert gaps.crs.to_epsg() == 4326
    assert len(gaps) == 2
    assert gaps["area_km2"].tolist() == pytest.approx([4.0, 1.5], rel=1e-6)
    assert gaps["rank_in_county"].tolist() == [1, 2]
    assert gaps["county_code"].tolist() == ["110101", "110101"]
    assert gaps["county_name"].iloc[0] == "东城区"
    assert gaps["gap_id"].tolist() == ["nbiot-110101-1", "nbiot-110101-2"]
    # rural hexagon of r = 1 km: 2.598 km² -> 2 sites for 4 km², 1 for 1.5 km²
    assert gaps["sites_needed_estimate"].tolist() == [2, 1]
    assert gaps["nearest_sector_km"].isna().all()
    lon, lat = Transformer.from_crs(ALBERS, 4326, always_xy=True).transform(X0 + 3000.0, Y0 - 4000.0)
    assert gaps["centroid_lon"].iloc[0] == pytest.approx(lon, abs=1e-7)
    assert gaps["centroid_lat"].iloc[0] == pytest.approx(lat, abs=1e-7)
    # with a lower threshold the 0.04 km² hole appears too, ranked last
    small = find_gaps(gap_raster, county(box(50.5, 50.5, 9950.5, 9950.5)), min_gap_km2=0.01)
    assert small["area_km2"].tolist() == pytest.approx([4.0, 1.5, 0.04], rel=1e-6)
    assert small["rank_in_county"].tolist() == [1, 2, 3]
    assert small["sites_needed_estimate"].isna().all()


def test_gap_clipped_to_unit_and_outside_raster_is_uncovered(gap_raster):
    # 4 km wide, half of it west of the raster (x < 0): 2 × 3.05 km of "no raster" is a gap
    unit = county(box(-2000.0, 950.0, 2000.0, 4000.0))
    gaps = find_gaps(gap_raster, unit, min_gap_km2=0.5)
    assert len(gaps) == 1
    assert gaps["area_km2"].iloc[0] == pytest.approx(2.0 * 3.05, rel=1e-6)
    # a gap cut by the unit edge (x 2-4 km hole, unit ends at x = 3.333 km)
    cut = find_gaps(gap_raster, county(box(1000.0, 2000.0, 3333.3, 6000.0)), min_gap_km2=0.5)
    assert cut["area_km2"].tolist() == pytest.approx([1.3333 * 2.0], rel=1e-4)


def test_gaps_split_by_township_keep_their_county(gap_raster):
    towns = gpd.GeoDataFrame(
        {"code": ["110101001", "110101002"], "name": ["甲街道", "乙街道"],
         "parent": ["110101", "110101"], "parent_name": ["东城区", "东城区"]},
        geometry=[box(0.0, 0.0, 3000.0, 10_000.0), box(3000.0, 0.0, 10_000.0, 10_000.0)], crs=ALBERS)
    gaps = find_gaps(gap_raster, towns, min_gap_km2=0.5)
    # the 2 × 2 km hole is cut in two 1 × 2 km halves at x = 3 km
    assert sorted(gaps["area_km2"].round(6).tolist()) == [1.5, 2.0, 2.0]
    assert set(gaps["county_code"]) == {"110101"}
    assert gaps["rank_in_county"].tolist() == [1, 2, 3]
    assert sorted(gaps.loc[gaps["area_km2"].round(6) == 2.0, "unit_code"]) == ["110101001", "110101002"]


def test_nearest_sector_km_of_the_layer_operator(gap_raster):
    sectors = gpd.GeoDataFrame(
        {"operator": ["CT", "CM", "CT"], "site_id": ["a", "b", "c"], "tech": ["nbiot", "nbiot", "redcap"]},
        geometry=[point(5000.0, 4000.0), point(4300.0, 4000.0), point(4100.0, 4000.0)], crs=ALBERS).to_crs(4326)
    unit = county(box(50.5, 50.5, 9950.5, 9950.5))
    gaps = find_gaps(gap_raster, unit, min_gap_km2=1.0, sectors=sectors, tech="nbiot", operator="CT")
    to_lonlat = Transformer.from_crs(ALBERS, 4326, always_xy=True)
    geod = Geod(ellps="WGS84")
    lon0, lat0 = to_lonlat.transform(X0 + 4000.0, Y0 - 4000.0)  # east edge of the 2 km hole
    lon1, lat1 = to_lonlat.transform(X0 + 5000.0, Y0 - 4000.0)
    expected_km = geod.inv(lon0, lat0, lon1, lat1)[2] / 1000.0
    big = gaps.iloc[0]
    assert big["nearest_sector_km"] == pytest.approx(expected_km, rel=1e-6)
    assert big["nearest_sector_km"] == pytest.approx(1.0, rel=0.03)
    # the combined layer takes every operator's nbiot sectors: CM's is 300 m away
    combined = find_gaps(gap_raster, unit, min_gap_km2=1.0, sectors=sectors, tech="nbiot")
    assert combined["nearest_sector_km"].iloc[0] == pytest.approx(0.3, rel=0.03)
    assert combined["operator"].iloc[0] == "all"


def test_hexagon_area_and_bad_input(gap_raster):
    assert hexagon_area_m2(2000.0) == pytest.approx(1.5 * math.sqrt(3) * 4e6)
    with pytest.raises(SchemaError):
        find_gaps(gap_raster, county(box(0, 0, 100, 100)).drop(columns="code"))
    with pytest.raises(SchemaError):
        find_gaps(gap_raster, county(box(0, 0, 100, 100)), typical_cell_radius_m={"urban": 300.0})


def write_class(path, cls):
    """Write a class raster (nodata 255) whose top-left corner is (X0, Y0)."""
    with rasterio.open(path, "w", driver="GTiff", width=cls.shape[1], height=cls.shape[0], count=1, dtype="uint8",
                       crs=ALBERS, transform=from_origin(X0, Y0, RES_M, RES_M), nodata=255) as ds:
        ds.write(cls, 1)
    return path


def test_mostly_uncovered_unit_is_the_unit_minus_the_covered_pixels(tmp_path):
    # 2 × 2 km covered square in an uncovered 10 × 10 km raster: the one gap is the
    # unit with a hole (few covered pixels, so they are the ones polygonised)
    cls = np.zeros((100, 100), np.uint8)
    cls[40:60, 40:60] = 1
    path = write_class(tmp_path / "c.tif", cls)
    unit = box(1234.5, 1234.5, 8765.5, 8765.5)
    gaps = find_gaps(path, county(unit), min_gap_km2=1.0)
    assert len(gaps) == 1
    assert gaps["area_km2"].iloc[0] == pytest.approx(unit.area / 1e6 - 4.0, rel=1e-6)
    geom = gpd.GeoSeries(gaps.geometry, crs=4326).to_crs(ALBERS).iloc[0]
    assert len(geom.interiors) == 1


def test_gaps_across_polygonise_tiles(tmp_path):
    # 80 × 80 km raster (several 256-px polygonising tiles): an uncovered cross
    # through tile borders is one gap, covered blocks are not
    cls = np.ones((800, 800), np.uint8)
    cls[250:262, 100:700] = 0  # 1.2 × 60 km, across the row-256 border and 3 tile columns
    cls[100:700, 510:520] = 0  # 60 × 1.0 km, across the column-512 border
    path = write_class(tmp_path / "big.tif", cls)
    gaps = find_gaps(path, county(box(50.0, 50.0, 79_950.0, 79_950.0)), min_gap_km2=1.0)
    assert len(gaps) == 1
    assert gaps["area_km2"].iloc[0] == pytest.approx(72.0 + 60.0 - 1.2, rel=1e-9)
    # the same raster mostly uncovered: the gap is the unit minus the covered cross
    inverted = write_class(tmp_path / "inv.tif", (1 - cls).astype(np.uint8))
    unit = box(50.0, 50.0, 79_950.0, 79_950.0)
    gaps = find_gaps(inverted, county(unit), min_gap_km2=1.0)
    assert gaps["area_km2"].sum() == pytest.approx(unit.area / 1e6 - (72.0 + 60.0 - 1.2), rel=1e-9)
    assert len(gaps) == 1  # the cross does not reach the unit edges: one gap around it


def test_layer_gaps_in_one_pass_equal_the_single_layer_gaps(gap_raster, tmp_path):
    other = np.ones((100, 100), np.uint8)
    other[10:40, 10:40] = 0
    other_path = write_class(tmp_path / "nbiot_ct_class.tif", other)
    unit = county(box(50.5, 50.5, 9950.5, 9950.5))
    both = find_layer_gaps({"all": gap_raster, "CT": other_path}, unit, 1.0, tech="nbiot")
    single = pd.concat([find_gaps(gap_raster, unit, 1.0, tech="nbiot"),
                        find_gaps(other_path, unit, 1.0, tech="nbiot", operator="CT")], ignore_index=True)
    assert both["gap_id"].tolist() == single["gap_id"].tolist() == ["nbiot-110101-1", "nbiot-110101-2",
                                                                      "nbiot_ct-110101-1"]
    assert both["area_km2"].tolist() == pytest.approx(single["area_km2"].tolist(), rel=1e-12)
    assert both["area_km2"].tolist() == pytest.approx([4.0, 1.5, 9.0], rel=1e-6)


@pytest.mark.parametrize(("chunk_vertices", "segments_per_piece"), [(1_000_000, 32), (40, 32), (1_000_000, 1),
                                                                    (40, 5)])
def test_nearest_sector_by_boundary_segments_equals_the_polygon_search(chunk_vertices, segments_per_piece,
                                                                         monkeypatch):
    """Gaps with holes around sectors: the search by runs of boundary segments = GEOS nearest on
    whole polygons, in any chunks and runs (rings of 65 vertices end in a shorter run)."""
    import coverage.gaps
    from coverage.gaps import _nearest_sector_km

    monkeypatch.setattr(coverage.gaps, "_NEAREST_CHUNK_VERTICES", chunk_vertices)
    monkeypatch.setattr(coverage.gaps, "_SEGMENTS_PER_PIECE", segments_per_piece)

    rng = np.random.default_rng(3)
    sites = rng.uniform([X0, Y0 - 40_000], [X0 + 40_000, Y0], (60, 2))
    discs = shapely.union_all(shapely.buffer(shapely.points(sites[:40]), 1_500.0))
    region = shapely.box(X0, Y0 - 40_000, X0 + 40_000, Y0).difference(discs)
    gaps = shapely.get_parts(region)
    sectors = gpd.GeoDataFrame({"operator": ["CT"] * 60, "tech": ["nbiot"] * 60},
                               geometry=shapely.points(sites), crs=ALBERS).to_crs(4326)
    got = _nearest_sector_km(gaps, ALBERS, sectors, "nbiot", "CT")
    points = shapely.points(sites)
    tree = shapely.STRtree(points)
    gap_idx, pt_idx = tree.query_nearest(gaps, all_matches=False)
    lines = shapely.shortest_line(gaps[gap_idx], points[pt_idx])
    xy = shapely.get_coordinates(lines).reshape(-1, 2, 2)
    to_lonlat = Transformer.from_crs(ALBERS, 4326, always_xy=True)
    lon0, lat0 = to_lonlat.transform(xy[:, 0, 0], xy[:, 0, 1])
    lon1, lat1 = to_lonlat.transform(xy[:, 1, 0], xy[:, 1, 1])
    expected = np.asarray(Geod(ellps="WGS84").inv(lon0, lat0, lon1, lat1)[2]) / 1000.0
    assert len(gaps) >= 1 and np.isfinite(got).all()
    assert np.allclose(got[gap_idx], expected, rtol=1e-9, atol=1e-9)
    assert (got == 0).sum() >= 1  # the 20 sites without a disc lie inside a gap


@pytest.mark.parametrize("segments_per_piece", [1, 3, 7, 64])
def test_boundary_pieces_hold_every_ring_segment_once(segments_per_piece):
    """The pieces of the gaps' rings hold each boundary segment exactly once, in the gap it bounds."""
    from coverage.gaps import _boundary_pieces

    outer = shapely.Point(0, 0).buffer(1000.0, quad_segs=5)  # 21 vertices, 20 segments
    gaps = np.array([outer.difference(shapely.box(-100, -100, 100, 100)), shapely.box(0, 0, 10, 10)], dtype=object)
    pieces, gap_of_piece = _boundary_pieces(gaps, segments_per_piece)
    assert (shapely.get_num_coordinates(pieces) <= segments_per_piece + 1).all()

    def segments(lines, owners):
        return sorted((int(owner), tuple(map(tuple, xy[k:k + 2].tolist())))
                      for line, owner in zip(lines, owners, strict=True) for xy in [shapely.get_coordinates(line)]
                      for k in range(len(xy) - 1))

    rings, gap_of_ring = shapely.get_rings(gaps, return_index=True)
    assert len(segments(rings, gap_of_ring)) == 20 + 4 + 4
    assert segments(pieces, gap_of_piece) == segments(rings, gap_of_ring)


def test_a_region_across_polygonising_tiles_is_one_polygon_with_only_its_corners():
    """Pixels spanning several polygonising tiles: merged into one polygon, no vertex left on a straight edge."""
    from affine import Affine

    from coverage.gaps import _POLYGONISE_TILE_PX, _pixel_region

    mask = np.zeros((3 * _POLYGONISE_TILE_PX, 3 * _POLYGONISE_TILE_PX), dtype=bool)
    mask[10:2 * _POLYGONISE_TILE_PX + 20, 5:2 * _POLYGONISE_TILE_PX + 30] = True  # a box over 9 tiles
    mask[40:60, 40:60] = False  # with a hole
    mask[2 * _POLYGONISE_TILE_PX + 19, 2 * _POLYGONISE_TILE_PX + 30] = True  # and a notch on its corner
    transform = Affine(100.0, 0.0, 500_000.0, 0.0, -100.0, 4_000_000.0)
    region = _pixel_region(mask, transform)
    assert region.geom_type == "Polygon" and region.is_valid
    assert region.area == pytest.approx(mask.sum() * 100.0 * 100.0)
    # the box with a notch: 6 corners + closing vertex; the hole: 4 + 1
    assert shapely.get_num_coordinates(region.exterior) == 7
    assert [shapely.get_num_coordinates(ring) for ring in region.interiors] == [5]


@pytest.mark.parametrize("window", [(-5, -7, 40, 30), (90, 20, 30, 10), (95, 97, 10, 10), (-50, -50, 10, 10),
                                    (10, 20, 30, 30), (-3, 40, 110, 7)])
def test_windows_leaving_the_raster_read_as_rasterios_boundless_read(gap_raster, window):
    from rasterio.windows import Window

    from coverage.gaps import _read_padded

    with rasterio.open(gap_raster) as ds:
        win = Window(*window)
        expected = ds.read(1, window=win, boundless=True, fill_value=255)
        got = _read_padded(ds, win, 255)
    assert got.shape == (window[3], window[2]) and got.dtype == np.uint8
    assert np.array_equal(got, expected)
