"""Site planning: candidates, the lazy greedy choice, a synthetic county with one hole, closing the loop."""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely
from pyproj import Transformer
from rasterio.transform import from_origin

import cli
from coverage.aggregate import aggregate
from coverage.errors import EmptyCoverageError, SchemaError, UnknownUnitError
from coverage.grid import CHINA_ALBERS_PROJ4 as ALBERS
from coverage.ingest import read_submissions
from coverage.plan import plan_sites, read_plan, write_plan
from coverage.plan.candidates import hex_grid_in
from coverage.plan.greedy import greedy_max_coverage
from coverage.predict import predict

TO_LONLAT = Transformer.from_crs(ALBERS, 4326, always_xy=True)
# a 10 x 10 km synthetic county in the hills of inland Fujian (the embedded DEM has relief there)
X0, Y0 = 1_254_000.0, 2_787_000.0  # south-west corner, Albers metres (≈ 117.55° E, 25.8° N)
SIDE_M = 10_000.0
HOLE = shapely.box(X0 + 5_500, Y0 + 5_500, X0 + 9_500, Y0 + 9_500)  # no site here: the one uncovered area
SPACING_M = 1_400.0


def county_frame() -> gpd.GeoDataFrame:
    geom = shapely.box(X0, Y0, X0 + SIDE_M, Y0 + SIDE_M)
    return gpd.GeoDataFrame({"code": ["359999"], "name": ["合成县 (synthetic)"]}, geometry=[geom],
                            crs=ALBERS).to_crs(4326)


def existing_sectors() -> gpd.GeoDataFrame:
    """CT RedCap three-sector sites on a 1.4 km hexagonal grid over the county, none in the hole."""
    area = shapely.box(X0 + 300, Y0 + 300, X0 + SIDE_M - 300, Y0 + SIDE_M - 300).difference(HOLE.buffer(700))
    x, y = hex_grid_in(area, SPACING_M)
    lon, lat = TO_LONLAT.transform(x, y)
    rows = []
    for i, (lo, la) in enumerate(zip(lon, lat, strict=True)):
        for k, azimuth in enumerate((0.0, 120.0, 240.0)):
            rows.append({"operator": "CT", "site_id": f"S{i}", "cell_id": f"S{i}-{k}", "tech": "redcap",
                         "freq_mhz": np.nan, "eirp_dbm": np.nan, "height_m": np.nan, "azimuth_deg": azimuth,
                         "beamwidth_deg": np.nan, "downtilt_deg": np.nan, "environment": "rural",
                         "source_file": "synthetic", "source_row": len(rows) + 1, "lon": lo, "lat": la})
    frame = pd.DataFrame(rows)
    return gpd.GeoDataFrame(frame.drop(columns=["lon", "lat"]),
                            geometry=gpd.points_from_xy(frame["lon"], frame["lat"]), crs=4326)


def make_run(run_dir, sectors, terrain: bool) -> None:
    predict(sectors, run_dir, techs=["redcap"], scheduler="synchronous", dem="default" if terrain else None,
            clutter="default" if terrain else None)
    sectors.to_parquet(run_dir / "sectors.parquet")
    aggregate(run_dir, counties=county_frame(), workers=1)


@pytest.fixture(scope="module")
def flat_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("plan") / "flat"
    make_run(run, existing_sectors(), terrain=False)
    return run


def write_population(path, x_m, y_m, people=10_000.0):
    """A 100 m population raster over the county: ``people`` in the 300 x 300 m around (x_m, y_m), 0 elsewhere."""
    width = height = int(SIDE_M / 100)
    data = np.zeros((height, width), np.float32)
    col, row = int((x_m - X0) / 100), int((Y0 + SIDE_M - y_m) / 100)
    data[row - 1:row + 2, col - 1:col + 2] = people / 9.0
    with rasterio.open(path, "w", driver="GTiff", width=width, height=height, count=1, dtype="float32", crs=ALBERS,
                       transform=from_origin(X0, Y0 + SIDE_M, 100, 100), nodata=-1) as ds:
        ds.write(data, 1)
    return path


def site_xy(plan, order=1):
    row = plan.table.iloc[order - 1]
    x, y = Transformer.from_crs(4326, ALBERS, always_xy=True).transform(row["lon"], row["lat"])
    return float(x), float(y)


def test_first_site_goes_into_the_hole_and_people_pull_it(flat_run, tmp_path):
    report_radius = 1_610.7  # RedCap rural typical cell radius (report.json), the "one cell radius"
    by_area = plan_sites(flat_run, "中国电信", "RedCap", 1, rank="area")
    assert by_area.rank == "area" and len(by_area.table) == 1
    x, y = site_xy(by_area)
    assert HOLE.contains(shapely.Point(x, y))
    # where the most weight is: the centre of the hole's uncovered area
    gaps = gpd.read_file(flat_run / "stats/coverage.gpkg", layer="gaps_redcap").to_crs(ALBERS)
    hole_gap = shapely.union_all(gaps[gaps["operator"] == "CT"].geometry.to_numpy()).intersection(HOLE.buffer(500))
    centre = hole_gap.centroid
    assert math.dist((x, y), (centre.x, centre.y)) < report_radius
    assert by_area.table["gain_km2"].iloc[0] > 3.0
    # people in the hole's south-west corner pull the site there
    people_xy = (HOLE.bounds[0] + 600, HOLE.bounds[1] + 600)
    population = write_population(tmp_path / "pop.tif", *people_xy)
    by_people = plan_sites(flat_run, "CT", "redcap", 1, population=population)
    assert by_people.rank == "population"
    px, py = site_xy(by_people)
    assert math.dist((px, py), people_xy) < math.dist((x, y), people_xy) - 500
    assert by_people.table["gain_people"].iloc[0] == pytest.approx(10_000.0, rel=0.02)


def test_sites_csv_is_a_valid_submission_and_the_outputs_are_written(flat_run, tmp_path):
    result = plan_sites(flat_run, "CT", "redcap", 3)
    paths = write_plan(result, tmp_path / "plan")
    read = read_submissions(paths["sites_csv"])
    assert len(read.rejects) == 0 and len(read.sectors) == 3 * len(result.table)
    assert set(read.sectors["site_id"]) == set(result.table["site_id"])
    assert (read.sectors["environment"] == result.sites["environment"].to_numpy()).all()
    plan_csv = pd.read_csv(paths["plan_csv"], encoding="utf-8-sig")
    assert plan_csv["order"].tolist() == [1, 2, 3]
    assert plan_csv["covered_km2"].is_monotonic_increasing
    np.testing.assert_allclose(plan_csv["gain_km2"], result.table["gain_km2"], atol=0.005)  # rounded for people
    # each site's gain is what it added to the cumulative coverage
    steps = np.diff(np.r_[result.covered_km2_before, result.table["covered_km2"]])
    np.testing.assert_allclose(steps, result.table["gain_km2"], rtol=1e-9)
    summary, sites, new_coverage = read_plan(tmp_path / "plan")
    assert summary["sites"] == 3 and "1 - 1/e" in summary["guarantee"]
    assert len(sites) == 3 and new_coverage["order"].tolist() == [1, 2, 3]
    areas = new_coverage.to_crs(ALBERS).area.to_numpy() / 1e6
    # polygons of the pixels each site newly covers: whole pixels, as the gains count fractions inside the county
    np.testing.assert_allclose(areas, result.table["gain_km2"], rtol=0.02)


@pytest.mark.slow
def test_closing_the_loop_over_terrain_and_land_cover(tmp_path):
    """The proposed sites added and predicted again: the county's coverage is the plan's (within 1 %)."""
    sectors = existing_sectors()
    run = tmp_path / "before"
    make_run(run, sectors, terrain=True)
    result = plan_sites(run, "CT", "redcap", 4)
    assert len(result.table) == 4
    paths = write_plan(result, tmp_path / "plan")
    added = read_submissions(paths["sites_csv"]).sectors
    after = tmp_path / "after"
    make_run(after, gpd.GeoDataFrame(pd.concat([sectors, added], ignore_index=True), crs=4326), terrain=True)
    county = pd.read_csv(after / "stats/county.csv", encoding="utf-8-sig", dtype={"code": str})
    covered = county[(county["operator"] == "CT") & (county["tech"] == "redcap")]["covered_km2"].item()
    planned = result.table["covered_km2"].iloc[-1]
    assert covered == pytest.approx(planned, rel=0.01)
    before = pd.read_csv(run / "stats/county.csv", encoding="utf-8-sig", dtype={"code": str})
    assert before[(before["operator"] == "CT")]["covered_km2"].item() == pytest.approx(result.covered_km2_before,
                                                                                       rel=1e-6)
    assert covered - result.covered_km2_before > 3.0  # the sites really closed some of the hole


def test_lazy_greedy_equals_plain_greedy():
    rng = np.random.default_rng(3)
    n_items = 400
    sets = [np.unique(rng.integers(0, n_items, rng.integers(5, 60))) for _ in range(80)]
    weight = rng.random(n_items)
    covered0 = rng.random(n_items) < 0.2
    chosen, gains = greedy_max_coverage(sets, weight, covered0, 10)
    covered = covered0.copy()
    for i, g in zip(chosen, gains, strict=True):
        best = max(range(len(sets)), key=lambda j: (weight[sets[j][~covered[sets[j]]]].sum(), -j))
        assert i == best
        assert g == pytest.approx(weight[sets[i][~covered[sets[i]]]].sum())
        covered[sets[i]] = True
    assert not covered0.all() and covered0.sum() < covered.sum()


def test_greedy_stops_when_nothing_is_left_to_gain():
    sets = [np.array([0, 1]), np.array([1]), np.array([2])]
    chosen, gains = greedy_max_coverage(sets, np.ones(3), np.array([False, False, True]), 5)
    assert chosen == [0] and gains == [2.0]


def test_hex_grid_inside_the_region_at_the_spacing():
    region = shapely.box(0, 0, 10_000, 5_000).difference(shapely.box(0, 0, 5_000, 5_000))
    x, y = hex_grid_in(region, 1_000.0)
    assert shapely.contains_xy(region, x, y).all() and (x >= 5_000).all()
    points = np.column_stack([x, y])
    d = np.sqrt(((points[:, None] - points[None]) ** 2).sum(-1))
    np.fill_diagonal(d, np.inf)
    np.testing.assert_allclose(d.min(axis=1), 1_000.0)
    assert 20 <= len(x) <= 30  # 25 km² × 2 / (√3 · 1 km²) ≈ 29, less the points on the edge


def test_plan_errors(flat_run):
    with pytest.raises(UnknownUnitError, match="999999"):
        plan_sites(flat_run, "CT", "redcap", 1, counties=["999999"])
    with pytest.raises(SchemaError, match="operator"):
        plan_sites(flat_run, "Vodafone", "redcap", 1)
    with pytest.raises(SchemaError, match="population raster"):
        plan_sites(flat_run, "CT", "redcap", 1, rank="population")
    with pytest.raises(SchemaError, match="no nbiot"):
        plan_sites(flat_run, "CT", "nbiot", 1)
    with pytest.raises(EmptyCoverageError, match="CM has no redcap gap"):
        plan_sites(flat_run, "CM", "redcap", 1)


def test_cli_plan(runner, flat_run, tmp_path):
    out = tmp_path / "p"
    result = runner.invoke(cli.main, ["plan", str(flat_run), "--operator", "中国电信", "--tech", "redcap",
                                      "--sites", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "chosen by area" in result.output and "PLAN-CT-redcap-001" in result.output
    assert (out / "sites.csv").is_file() and (out / "plan.gpkg").is_file()
    bad = runner.invoke(cli.main, ["plan", str(flat_run), "--operator", "CT", "--tech", "redcap", "--sites", "2",
                                   "--county", "999999", "--out", str(tmp_path / "q")])
    assert bad.exit_code == 2 and "999999" in bad.output


def test_operator_edition_shows_the_plan_and_the_public_edition_refuses_it(flat_run, tmp_path):
    from coverage.errors import PublishError
    from coverage.publish import write_site

    result = plan_sites(flat_run, "CT", "redcap", 2)
    write_plan(result, tmp_path / "plan")
    write_site(flat_run, tmp_path / "site", edition="operator", operator="CT", plan_dir=tmp_path / "plan",
               workers=1)
    page = (tmp_path / "site/counties/359999.html").read_text(encoding="utf-8")
    first = result.table.iloc[0]
    assert "PLAN-CT-redcap-001" in page and f"{first['gain_km2']:,.2f} km²" in page
    assert page.count('"PLAN-CT-redcap-001"') >= 1 and '"MultiPolygon"' in page  # its new coverage
    with pytest.raises(PublishError, match="operator edition only"):
        write_site(flat_run, tmp_path / "public", plan_dir=tmp_path / "plan", workers=1)
    with pytest.raises(PublishError, match="CT's, not CM's"):
        write_site(flat_run, tmp_path / "cm", edition="operator", operator="CM", plan_dir=tmp_path / "plan",
                   workers=1)
    write_site(flat_run, tmp_path / "public", workers=1)
    assert not any("PLAN-" in p.read_text(encoding="utf-8") for p in (tmp_path / "public").rglob("*.html"))
