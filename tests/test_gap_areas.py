"""Gap areas: a county's gaps split by township / H3 res-7, with built-up area and people, ranked."""

from __future__ import annotations

import geopandas as gpd
import h3
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely
from rasterio.transform import from_origin

from coverage.errors import SchemaError
from coverage.gap_areas import (
    GAP_AREA_COLUMNS,
    check_rank,
    format_gap_areas,
    split_gaps,
    split_gaps_in_chunks,
)
from coverage.grid import CHINA_ALBERS_PROJ4 as ALBERS
from coverage.terrain.clutter import builtin_table
from coverage.terrain.landcover import open_landcover

# a lattice-aligned square county of 20 x 20 km near Xiamen (Albers metres)
X0, Y0 = 1_300_000.0, 2_700_000.0
RES_M = 100.0


def square(x0_km, y0_km, x1_km, y1_km):
    """A box in km from (X0, Y0), y upwards."""
    return shapely.box(X0 + x0_km * 1000, Y0 + y0_km * 1000, X0 + x1_km * 1000, Y0 + y1_km * 1000)


def gaps_frame(geoms, operator="CM", tech="redcap", county="350212"):
    return gpd.GeoDataFrame({
        "gap_id": [f"{tech}_{operator.lower()}-{county}-{i + 1}" for i in range(len(geoms))],
        "tech": tech, "operator": operator, "county_code": county, "county_name": "同安区",
        "unit_code": county, "area_km2": [g.area / 1e6 for g in geoms],
    }, geometry=geoms, crs=ALBERS).to_crs(4326)


def townships(county="350212"):
    """Four 10 x 10 km townships tiling the county."""
    geoms = [square(0, 0, 10, 10), square(10, 0, 20, 10), square(0, 10, 10, 20), square(10, 10, 20, 20)]
    return gpd.GeoDataFrame({"code": [f"{county}00{i}" for i in range(1, 5)], "name": [f"T{i}" for i in range(1, 5)],
                             "parent": county}, geometry=geoms, crs=ALBERS).to_crs(4326)


def test_township_pieces_are_the_intersections_and_add_up_to_the_gap():
    gap = square(5, 5, 15, 8)  # 30 km² across townships 1 and 2
    other = square(2, 14, 4, 18)  # 8 km² inside township 3
    areas = split_gaps(gaps_frame([gap, other]), RES_M, townships=townships())
    assert list(areas.columns) == [*GAP_AREA_COLUMNS, "geometry"]
    by_code = areas.set_index("unit_code")["area_km2"]
    assert by_code.to_dict() == pytest.approx({"350212001": 15.0, "350212002": 15.0, "350212003": 8.0}, rel=1e-6)
    assert (areas["unit_kind"] == "township").all()
    assert areas.loc[areas["unit_code"] == "350212003", "gap_ids"].item() == "redcap_cm-350212-2"
    assert areas.loc[areas["unit_code"] == "350212001", "gap_ids"].item() == "redcap_cm-350212-1"
    # no land cover, no population: ranked by area, ties by code
    assert areas.attrs["rank"] == "area"
    assert areas["unit_code"].tolist() == ["350212001", "350212002", "350212003"]
    assert areas["rank_in_county"].tolist() == [1, 2, 3]
    assert areas["built_up_km2"].isna().all() and areas["population"].isna().all()


def test_without_townships_h3_res7_cells_tile_the_gap():
    gap = square(1, 1, 13, 9)  # 96 km²: about 19 res-7 cells
    areas = split_gaps(gaps_frame([gap]), RES_M)
    assert (areas["unit_kind"] == "h3_res7").all()
    assert areas["area_km2"].sum() == pytest.approx(96.0, rel=1e-4)
    assert all(h3.get_resolution(c) == 7 for c in areas["unit_code"])
    assert areas["unit_code"].is_unique
    # no piece is bigger than a res-7 cell (≈ 5.16 km²; a little more in the Albers plane at 24.5° N)
    assert areas["area_km2"].max() < 1.1 * h3.average_hexagon_area(7, unit="km^2")
    # the pieces do not overlap
    pieces = areas.to_crs(ALBERS).geometry
    assert shapely.union_all(pieces.to_numpy()).area / 1e6 == pytest.approx(96.0, rel=1e-4)


def test_gap_outside_the_townships_falls_back_to_h3_cells():
    towns = townships().iloc[:2]  # only the southern half has township polygons
    gap = square(4, 6, 8, 14)  # 32 km²: 16 km² in township 1, 16 km² north of every township
    areas = split_gaps(gaps_frame([gap]), RES_M, townships=towns)
    kinds = areas.groupby("unit_kind")["area_km2"].sum()
    assert kinds["township"] == pytest.approx(16.0, rel=1e-6)
    assert kinds["h3_res7"] == pytest.approx(16.0, rel=1e-4)


def write_raster(path, values, dtype, nodata=None):
    height, width = values.shape
    with rasterio.open(path, "w", driver="GTiff", width=width, height=height, count=1, dtype=dtype, crs=ALBERS,
                       transform=from_origin(X0, Y0 + 20_000, RES_M, RES_M), nodata=nodata) as ds:
        ds.write(values.astype(dtype), 1)
    return path


def test_built_up_and_people_rank_the_areas(tmp_path):
    # land cover (IGBP): class 13 "urban and built-up" over x 10-12 km, y 2-4 km; grassland elsewhere
    lc = np.full((200, 200), 10, np.uint8)
    lc[160:180, 100:120] = 13
    landcover = open_landcover(write_raster(tmp_path / "lc.tif", lc, "uint8", nodata=255))
    # 1,000 people in each pixel of x 2-3 km, y 12-13 km (township 3)
    pop = np.zeros((200, 200), np.float32)
    pop[70:80, 20:30] = 1000.0
    population = write_raster(tmp_path / "pop.tif", pop, "float32", nodata=-1)
    gap = square(0, 0, 20, 20)  # the whole county
    by_built_up = split_gaps(gaps_frame([gap]), RES_M, townships=townships(), landcover=landcover,
                             class_table=builtin_table("igbp"))
    assert by_built_up.attrs["rank"] == "built-up"
    first = by_built_up.iloc[0]
    assert first["unit_code"] == "350212002" and first["built_up_km2"] == pytest.approx(4.0)
    assert by_built_up["built_up_km2"].sum() == pytest.approx(4.0)
    by_people = split_gaps(gaps_frame([gap]), RES_M, townships=townships(), landcover=landcover,
                           class_table=builtin_table("igbp"), population=population)
    assert by_people.attrs["rank"] == "population"
    assert by_people.iloc[0]["unit_code"] == "350212003"
    assert by_people.iloc[0]["population"] == pytest.approx(100_000.0, rel=1e-4)
    assert by_people["population"].sum() == pytest.approx(100_000.0, rel=1e-4)
    forced = split_gaps(gaps_frame([gap]), RES_M, townships=townships(), landcover=landcover,
                        class_table=builtin_table("igbp"), population=population, rank="area")
    assert forced.attrs["rank"] == "area" and forced["rank_in_county"].tolist() == [1, 2, 3, 4]
    text = format_gap_areas(by_people)
    assert "people" in text and "100,000" in text and "ranked by population" in text


def test_rank_keys_need_their_data():
    assert check_rank(None, False, False) == "area"
    assert check_rank("auto", True, False) == "population"
    assert check_rank("BUILT_UP", False, True) == "built-up"
    with pytest.raises(SchemaError, match="population raster"):
        check_rank("population", False, True)
    with pytest.raises(SchemaError, match="land cover"):
        check_rank("built-up", True, False)
    with pytest.raises(SchemaError, match="not one of"):
        check_rank("sites", True, True)


def _county_sized_region():
    """A 40 x 30 km gap with 300 covered holes (pixel-stepped squares): over 1,200 vertices."""
    rng = np.random.default_rng(7)
    holes = [square(x, y, x + w, y + w) for x, y, w in
             zip(rng.uniform(0, 38, 300).round(1), rng.uniform(0, 28, 300).round(1), rng.uniform(0.2, 1.5, 300).round(1),
                 strict=True)]
    return shapely.difference(square(0, 0, 40, 30), shapely.union_all(holes))


def test_cut_gives_shapely_intersections_with_a_many_vertex_region():
    from coverage.gap_areas import CUT_PIECE_VERTICES, cut

    region = _county_sized_region()
    assert shapely.get_num_coordinates(region) > 2 * CUT_PIECE_VERTICES  # so the halving is exercised
    rng = np.random.default_rng(8)
    centres = rng.uniform([-5, -5], [45, 35], (200, 2))
    cutters = np.array([shapely.buffer(shapely.Point(X0 + x * 1000, Y0 + y * 1000), r * 1000, quad_segs=2)
                        for (x, y), r in zip(centres, rng.uniform(0.3, 4.0, 200), strict=True)], dtype=object)
    cutters = np.append(cutters, [square(100, 100, 101, 101)])  # far outside: empty
    fast = cut(region, cutters)
    slow = shapely.intersection(region, cutters)
    assert np.allclose(shapely.area(fast), shapely.area(slow), rtol=1e-9, atol=1e-3)
    assert shapely.is_empty(fast[-1])
    assert (shapely.area(shapely.symmetric_difference(fast, slow)) < 1e-3).all()  # m², the same shapes
    assert shapely.is_valid(fast).all()


def test_a_cell_holding_two_gaps_names_both_and_its_neighbours_only_theirs():
    # an L of 6 x 6 km and a square in its notch: their envelopes overlap, the gaps do not
    left = shapely.difference(square(1, 1, 7, 7), square(3, 3, 7, 7))
    right = square(3.2, 3.2, 7, 7)
    far = square(15, 15, 16, 16)
    areas = split_gaps(gaps_frame([left, right, far]), RES_M)
    ids = areas.set_index("unit_code")["gap_ids"]
    named = {gap for text in ids for gap in text.split(";")}
    assert named == {"redcap_cm-350212-1", "redcap_cm-350212-2", "redcap_cm-350212-3"}
    for cell, text in ids.items():
        hexagon = gpd.GeoSeries([shapely.Polygon([(lng, lat) for lat, lng in h3.cell_to_boundary(cell)])],
                                crs=4326).to_crs(ALBERS).iloc[0]
        expected = [f"redcap_cm-350212-{i + 1}" for i, g in enumerate([left, right, far])
                    if shapely.intersection(g, hexagon).area > 0]
        assert text.split(";") == expected
    assert any(";" in text for text in ids)  # some cell holds both the L and the square


def test_processes_split_the_counties_as_one_does():
    """Counties dealt out to two spawned processes give the same table, in the same order."""
    frames = []
    for k, county in enumerate(["350203", "350205", "350206", "350211", "350212"]):
        frames.append(gaps_frame([square(4 * k, 0, 4 * k + 3, 7), square(4 * k, 9, 4 * k + 2, 12)], county=county))
    gaps = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=4326)
    one = split_gaps(gaps, RES_M, workers=1)
    two = split_gaps(gaps, RES_M, workers=2)
    assert one["county_code"].nunique() == 5
    pd.testing.assert_frame_equal(one.drop(columns="geometry"), two.drop(columns="geometry"))
    assert shapely.equals_exact(one.geometry.to_numpy(), two.geometry.to_numpy(), tolerance=0).all()


def test_processes_split_chunk_after_chunk_as_one_does():
    """Chunks split by processes while the previous one is consumed: the same frames, in order; stopping early ends."""
    frames = []
    for k, county in enumerate(["350203", "350205", "350206", "350211", "350212"]):
        frames.append(gaps_frame([square(4 * k, 0, 4 * k + 3, 7)], county=county))
    gaps = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=4326)
    whole = split_gaps(gaps, RES_M, workers=1)
    chunks = list(split_gaps_in_chunks(gaps, RES_M, workers=2, max_chunk_km2=30.0))  # 21 km² a county: one each
    assert [c["county_code"].unique().tolist() for c in chunks] == [[c] for c in sorted(gaps["county_code"])]
    joined = pd.concat(chunks, ignore_index=True)
    pd.testing.assert_frame_equal(whole.drop(columns="geometry"), joined.drop(columns="geometry"))
    first = split_gaps_in_chunks(gaps, RES_M, workers=2, max_chunk_km2=30.0)
    assert next(first)["county_code"].unique().tolist() == ["350203"]
    first.close()  # the pool is shut down with the next chunk pending, without waiting for the rest


def test_h3_pieces_add_up_to_a_gap_with_holes():
    # a gap with covered islands inside it: h3's own overlap fill left out every cell
    # touching a hole, so the pieces fell short of the gap (observed on national gaps)
    holes = [square(3.0 + 4 * i, 3.0 + 4 * j, 4.2 + 4 * i, 4.2 + 4 * j) for i in range(3) for j in range(3)]
    gap = shapely.Polygon(square(1, 1, 15, 15).exterior.coords, [h.exterior.coords for h in holes])
    areas = split_gaps(gaps_frame([gap]), RES_M)
    assert areas["area_km2"].sum() == pytest.approx(gap.area / 1e6, rel=1e-4)
    centres = gpd.GeoSeries(shapely.centroid(holes), crs=ALBERS).to_crs(4326)
    touching_holes = {h3.latlng_to_cell(p.y, p.x, 7) for p in centres}
    assert touching_holes <= set(areas["unit_code"])


def test_counties_ranked_apart_give_the_whole_frames_ranking_and_order(tmp_path):
    """Each county is ranked in its worker; joined, the table is ranked and ordered as one ranking of it all
    (by layer, then county), and the GeoPackage layer written through Arrow holds the same multipolygons."""
    from coverage.aggregate import _append_gap_areas
    from coverage.gap_areas import rank_areas

    frames = []
    for k, county in enumerate(["350203", "350205", "350206"]):
        for operator, width in (("CT", 3), ("CM", 2)):
            frames.append(gaps_frame([square(4 * k, 0, 4 * k + width, 7), square(4 * k, 9, 4 * k + 1, 12)],
                                     operator=operator, county=county))
    gaps = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=4326)
    for workers in (1, 2):
        areas = split_gaps(gaps, RES_M, workers=workers)
        layers = (areas["tech"] + "/" + areas["operator"]).tolist()
        assert layers == sorted(layers) and set(layers) == {"redcap/CM", "redcap/CT"}
        for _, group in areas.groupby([areas["operator"], areas["county_code"]], sort=False):
            assert group["rank_in_county"].tolist() == list(range(1, len(group) + 1))
        reranked = rank_areas(areas.sample(frac=1.0, random_state=7), "area")
        pd.testing.assert_frame_equal(areas.drop(columns="geometry"), reranked.drop(columns="geometry"))

    gpkg = tmp_path / "areas.gpkg"
    with open(tmp_path / "areas.csv", "w", encoding="utf-8-sig", newline="") as csv:
        _append_gap_areas(gpkg, "redcap", csv, areas, header=True)
    back = gpd.read_file(gpkg, layer="gap_areas_redcap")
    assert set(back.geom_type) == {"MultiPolygon"} and back.crs.to_epsg() == 4326
    assert shapely.equals_exact(back.geometry.to_numpy(), areas.geometry.to_numpy(), tolerance=0).all()
    assert back["area_id"].tolist() == areas["area_id"].tolist()
