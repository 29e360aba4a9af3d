"""coverage.h3hex: H3 hexagons by the 5G Fund rule, against a hand-made raster.

The raster (100 m, China Albers, 200 × 200 pixels near Xiamen) is built from
straight lines on the Albers plane, so the expected answer of every hexagon can be
counted by hand from H3's own hex-11 centres, with no raster at all:

- layer ``all``: deep (2) west of ``X_DEEP``, outdoor (1) from ``X_DEEP`` to
  ``X_COVER``, not covered (0) east of it; a nodata (255) square inside the county;
- layer ``CT``: outdoor north of ``Y_CT``, else not covered.

The county is a box on pixel edges, so a hex-11 centre is on land exactly when it
lies inside the box (the land of the 5G Fund rule's step ii).
"""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
from h3.api import numpy_int as h3
from pyproj import Transformer
from rasterio.transform import from_origin
from shapely.geometry import box

from coverage.errors import SchemaError
from coverage.h3hex import h3_paths, read_h3, write_h3
from coverage.layout import RunLayout
from coverage.zonal import Layer

ALBERS = "+proj=aea +lat_1=25 +lat_2=47 +lat_0=0 +lon_0=105 +x_0=0 +y_0=0 +datum=WGS84 +units=m"
RES_M = 100.0
SIZE_PX = 200
TO_ALBERS = Transformer.from_crs("EPSG:4326", ALBERS, always_xy=True)
_X, _Y = TO_ALBERS.transform(118.1, 24.5)
WEST_M = round(_X / RES_M) * RES_M
NORTH_M = round(_Y / RES_M) * RES_M
COUNTY_PX = (50, 150)  # the county's first and last+1 column and row
X_DEEP = WEST_M + 80 * RES_M
X_COVER = WEST_M + 100 * RES_M
Y_CT = NORTH_M - 90 * RES_M
NODATA_PX = (60, 70, 60, 70)  # rows 60-69, columns 60-69: beyond reach (255)


def _county_box():
    lo, hi = COUNTY_PX
    return WEST_M + lo * RES_M, NORTH_M - hi * RES_M, WEST_M + hi * RES_M, NORTH_M - lo * RES_M


def _write(path, classes):
    profile = dict(driver="GTiff", width=SIZE_PX, height=SIZE_PX, count=1, dtype="uint8", crs=ALBERS,
                   transform=from_origin(WEST_M, NORTH_M, RES_M, RES_M), nodata=255, tiled=True,
                   blockxsize=64, blockysize=64, compress="deflate")
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(classes, 1)


@pytest.fixture(scope="module")
def hand_run(tmp_path_factory):
    """A run directory with the two hand-made class rasters and the county box (EPSG:4326)."""
    root = tmp_path_factory.mktemp("h3") / "run"
    layout = RunLayout(root)
    layout.raster_dir.mkdir(parents=True)
    (root / "manifest.json").write_text(json.dumps({}), encoding="utf-8")
    cols = np.arange(SIZE_PX)
    rows = np.arange(SIZE_PX)[:, None]
    x_centre = WEST_M + (cols + 0.5) * RES_M
    y_centre = NORTH_M - (rows + 0.5) * RES_M
    all_classes = np.broadcast_to(np.where(x_centre < X_DEEP, 2, np.where(x_centre < X_COVER, 1, 0)),
                                  (SIZE_PX, SIZE_PX)).astype(np.uint8).copy()
    r0, r1, c0, c1 = NODATA_PX
    all_classes[r0:r1, c0:c1] = 255
    ct_classes = np.broadcast_to(np.where(y_centre > Y_CT, 1, 0), (SIZE_PX, SIZE_PX)).astype(np.uint8).copy()
    _write(layout.coverage_class("nbiot"), all_classes)
    _write(layout.coverage_class("nbiot", "CT"), ct_classes)
    west, south, east, north = _county_box()
    county = gpd.GeoDataFrame({"code": ["350299"]}, geometry=[box(west, south, east, north)],
                              crs=ALBERS).to_crs(4326)
    layers = [Layer("nbiot", "all", layout.coverage_class("nbiot")),
              Layer("nbiot", "CT", layout.coverage_class("nbiot", "CT"))]
    return layout, layers, county


def hand_count(cell9: int) -> dict:
    """The 5G Fund rule by hand for one hex-9: its 49 hex-11 centres on the Albers plane."""
    west, south, east, north = _county_box()
    r0, r1, c0, c1 = NODATA_PX
    counts = {"children": 0, "all_covered": 0, "all_deep": 0, "ct_covered": 0}
    for child in h3.cell_to_children(cell9, 11):
        lat, lon = h3.cell_to_latlng(int(child))
        x, y = TO_ALBERS.transform(lon, lat)
        if not (west <= x < east and south < y <= north):
            continue  # off land: not counted (step ii)
        counts["children"] += 1
        col, row = int((x - WEST_M) // RES_M), int((NORTH_M - y) // RES_M)
        nodata = r0 <= row < r1 and c0 <= col < c1
        counts["all_covered"] += int(x < X_COVER and not nodata)
        counts["all_deep"] += int(x < X_DEEP and not nodata)
        counts["ct_covered"] += int(y > Y_CT)
    return counts


@pytest.fixture(scope="module")
def written(hand_run):
    """write_h3 on the hand-made run with the default (simple majority) fraction."""
    layout, layers, county = hand_run
    result = write_h3(layout, layers, county)
    return result, read_h3(h3_paths(layout, "nbiot").res9_parquet), read_h3(h3_paths(layout, "nbiot").res8_parquet)


def test_every_hex9_equals_the_hand_count(written):
    _, res9, _ = written
    all_rows = res9[res9["operator"] == "all"].set_index("h3_index")
    ct_rows = res9[res9["operator"] == "CT"].set_index("h3_index")
    assert len(all_rows) > 900  # ~100 km² of 0.105 km² hexagons, plus the coast's partial ones
    straddling = 0
    for index, row in all_rows.iterrows():
        expected = hand_count(h3.str_to_int(index))
        assert row["children"] == expected["children"], index
        assert row["covered_children"] == expected["all_covered"], index
        assert row["deep_children"] == expected["all_deep"], index
        assert ct_rows.loc[index, "covered_children"] == expected["ct_covered"], index
        assert row["covered"] == (expected["all_covered"] >= 0.5 * expected["children"]), index
        assert row["coverage_pct"] == pytest.approx(100.0 * expected["all_covered"] / expected["children"])
        straddling += 0 < expected["all_covered"] < expected["children"]
    assert straddling > 20  # hexagons cut by the coverage edge, the county's edge or the nodata square
    # a hexagon whose centre is off land but some of whose hex-11 centres are on it is kept
    assert (all_rows["children"] < 49).sum() > 20 and all_rows["children"].min() >= 1
    assert set(all_rows["county_code"]) == {"350299"}


def test_hexagons_outside_the_county_are_left_out(written):
    """A hexagon 4 km outside the county (covered by the raster) has no row."""
    _, res9, _ = written
    lon, lat = Transformer.from_crs(ALBERS, "EPSG:4326", always_xy=True).transform(WEST_M + 505, NORTH_M - 505)
    assert h3.int_to_str(h3.latlng_to_cell(lat, lon, 9)) not in set(res9["h3_index"])


def _other_run(tmp_path) -> RunLayout:
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "manifest.json").write_text("{}", encoding="utf-8")
    return RunLayout(tmp_path / "run")


def test_covered_fraction_sets_the_flag(hand_run, tmp_path):
    _, layers, county = hand_run
    result = write_h3(_other_run(tmp_path), layers[:1], county, covered_fraction=1.0)
    strict = read_h3(result["files"]["nbiot"].res9_parquet)
    assert (strict["covered"] == (strict["covered_children"] == strict["children"])).all()
    partial = strict[(strict["covered_children"] > 0) & (strict["covered_children"] < strict["children"])]
    assert len(partial) and not partial["covered"].any()


def test_res8_sums_its_seven_res9_children(written):
    _, res9, res8 = written
    assert (res8["resolution"] == 8).all() and (res9["resolution"] == 9).all()
    parent = res9["h3_index"].map(lambda c: h3.int_to_str(h3.cell_to_parent(h3.str_to_int(c), 8)))
    sums = res9.assign(parent=parent).groupby(["parent", "operator"])[
        ["children", "covered_children", "deep_children"]].sum()
    got = res8.set_index(["h3_index", "operator"])[["children", "covered_children", "deep_children"]]
    pd.testing.assert_frame_equal(got.sort_index(), sums.rename_axis(["h3_index", "operator"]).sort_index(),
                                  check_dtype=False)
    assert (res8["covered"] == (res8["covered_children"] >= 0.5 * res8["children"])).all()


def test_blocks_change_nothing(hand_run, written, tmp_path):
    """Tiny blocks (many block borders through the county) give the same rows."""
    layout, layers, county = hand_run
    _, res9, res8 = written
    result = write_h3(_other_run(tmp_path), layers, county, block_px=37)
    small9 = read_h3(result["files"]["nbiot"].res9_parquet)
    small8 = read_h3(result["files"]["nbiot"].res8_parquet)
    key = ["h3_index", "operator"]
    pd.testing.assert_frame_equal(small9.sort_values(key).reset_index(drop=True),
                                  res9.sort_values(key).reset_index(drop=True))
    pd.testing.assert_frame_equal(small8.sort_values(key).reset_index(drop=True),
                                  res8.sort_values(key).reset_index(drop=True))
    assert not res9.duplicated(key).any()


def test_worker_processes_write_the_same_bytes(hand_run, tmp_path):
    """Blocks computed in two spawned processes are written in block order: the same four files."""
    _, layers, county = hand_run
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    one = write_h3(_other_run(tmp_path / "one"), layers, county, block_px=37, workers=1)
    two = write_h3(_other_run(tmp_path / "two"), layers, county, block_px=37, workers=2)
    assert one["hexagons"] == two["hexagons"] and one["hexagons"]["nbiot"] > 0
    for name in ("res9_parquet", "res9_csv", "res8_parquet", "res8_csv"):
        assert getattr(one["files"]["nbiot"], name).read_bytes() == getattr(two["files"]["nbiot"], name).read_bytes()


def test_csv_rounded_for_people_parquet_full_precision(written, hand_run):
    layout, _, _ = hand_run
    paths = h3_paths(layout, "nbiot")
    raw = paths.res9_csv.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    csv = pd.read_csv(paths.res9_csv, encoding="utf-8-sig", dtype={"county_code": str})
    _, res9, _ = written
    assert len(csv) == len(res9)
    assert (csv["coverage_pct"] == csv["coverage_pct"].round(1)).all()
    assert not (res9["coverage_pct"] == res9["coverage_pct"].round(1)).all()  # 100·k/49 is rarely a 0.1 step
    np.testing.assert_allclose(csv["coverage_pct"], res9["coverage_pct"], atol=0.05)
    assert list(csv.columns)[:5] == ["h3_index", "resolution", "county_code", "tech", "operator"]
    first = res9.drop_duplicates("h3_index", keep="first")
    assert (first["operator"] == "all").all()  # "all" first in each hexagon


def test_uniformity_code_changes_exactly_where_land_or_a_level_does():
    """The walk's one code per pixel: equal codes exactly when land and every layer's level are equal."""
    from coverage.h3hex import _uniformity_code

    rng = np.random.default_rng(7)
    land = rng.integers(0, 2, (40, 40)).astype(bool)
    classes = [rng.integers(0, 3, (40, 40)).astype(np.uint8) for _ in range(5)]
    code = _uniformity_code(land, classes)
    state = np.stack([land.astype(np.int64)] + [c.astype(np.int64) for c in classes], axis=-1).reshape(-1, 6)
    flat = code.reshape(-1)
    same_code = flat[:, None] == flat[None, :]
    same_state = (state[:, None, :] == state[None, :, :]).all(axis=-1)
    assert (same_code == same_state).all()
    assert code.max() <= 2 * 3 ** 5 - 1 and code.dtype == np.uint16


@pytest.mark.parametrize("res_m", [30.0, 100.0, 250.0])
def test_uniform_window_holds_the_pixels_of_every_hex11_centre(res_m):
    """A cell is counted whole from its centre's class only when its window is uniform: every
    hex-11 centre under a hex-9 or hex-10 must lie in that window, wherever in China."""
    from coverage.h3hex import CHILD_RESOLUTION, H3_RESOLUTION, _uniform_window_px

    rng = np.random.default_rng(5)
    lats, lons = rng.uniform(18.0, 53.0, 600), rng.uniform(74.0, 134.0, 600)
    for resolution in (H3_RESOLUTION, H3_RESOLUTION + 1):
        k = _uniform_window_px(resolution, res_m)
        cells = np.unique([h3.latlng_to_cell(a, b, resolution) for a, b in zip(lats, lons, strict=True)])
        for cell in cells:
            kids = h3.cell_to_children(cell, CHILD_RESOLUTION)
            lat, lon = np.array([h3.cell_to_latlng(int(c)) for c in [cell, *kids]]).T
            x, y = TO_ALBERS.transform(lon, lat)
            col, row = np.floor(x / res_m), np.floor(-y / res_m)
            assert np.abs(col[1:] - col[0]).max() <= k and np.abs(row[1:] - row[0]).max() <= k


def test_operator_rows_copied_batch_by_batch(written, hand_run, tmp_path, monkeypatch):
    """write_operator_rows: exactly one operator's rows, in order, the run's CSV format, read in
    batches smaller than the file (so memory is one batch); none of another operator's."""
    import coverage.h3hex as h3hex

    layout, _, _ = hand_run
    paths = h3_paths(layout, "nbiot")
    monkeypatch.setattr(h3hex, "_COPY_BATCH_ROWS", 7)
    rows = h3hex.write_operator_rows(paths.res9_parquet, tmp_path / "ct.parquet", tmp_path / "ct.csv", "CT")
    _, res9, _ = written
    expected = res9[res9["operator"] == "CT"].reset_index(drop=True)
    assert rows == len(expected) > 7
    pd.testing.assert_frame_equal(read_h3(tmp_path / "ct.parquet"), expected)
    run_csv = paths.res9_csv.read_text(encoding="utf-8-sig").splitlines()
    own_csv = (tmp_path / "ct.csv").read_bytes()
    assert own_csv.startswith(b"\xef\xbb\xbf")
    own_lines = own_csv.decode("utf-8-sig").splitlines()
    assert own_lines[0] == run_csv[0]
    assert own_lines[1:] == [line for line in run_csv[1:] if line.split(",")[4] == "CT"]
    assert h3hex.write_operator_rows(paths.res9_parquet, tmp_path / "x.parquet", tmp_path / "x.csv", "CM") == 0
    assert len(read_h3(tmp_path / "x.parquet")) == 0
    with pytest.raises(FileNotFoundError):
        h3hex.write_operator_rows(tmp_path / "missing.parquet", tmp_path / "y.parquet", tmp_path / "y.csv", "CT")
    assert not list(tmp_path.glob("*y.*"))  # nothing half-written left behind


def test_csv_rule_auto_always_never(written, hand_run, tmp_path, monkeypatch):
    """[h3] csv: "always" writes every CSV (the same bytes as "auto" where both write one),
    "never" none, "auto" only those whose rows fit a sheet; a CSV left out is removed from the
    run (none of an earlier aggregate stays); the Parquet files never change."""
    import coverage.h3hex as h3hex

    layout, layers, county = hand_run
    reference = h3_paths(layout, "nbiot")  # written with the default rule: all rows fit
    run = _other_run(tmp_path)
    paths = h3_paths(run, "nbiot")
    names = ("res9_csv", "res8_csv")

    always = write_h3(run, layers, county, csv="always")
    assert all(getattr(paths, n).read_bytes() == getattr(reference, n).read_bytes() for n in names)
    assert always["csv"]["nbiot"] == {9: True, 8: True}
    parquet = paths.res9_parquet.read_bytes()

    never = write_h3(run, layers, county, csv="never")
    assert never["csv"]["nbiot"] == {9: False, 8: False}
    assert not any(getattr(paths, n).exists() for n in names)  # the "always" CSVs are gone
    assert paths.res9_parquet.read_bytes() == parquet

    rows9, rows8 = never["rows"]["nbiot"][9], never["rows"]["nbiot"][8]
    assert rows9 > rows8 > 0
    monkeypatch.setattr(h3hex, "SPREADSHEET_ROWS", rows8 + 1)  # res-8 fits with its header, res-9 not
    auto = write_h3(run, layers, county)
    assert auto["csv"]["nbiot"] == {9: False, 8: True}
    assert not paths.res9_csv.exists() and paths.res8_csv.read_bytes() == reference.res8_csv.read_bytes()
    monkeypatch.setattr(h3hex, "SPREADSHEET_ROWS", rows8)  # one row too many
    assert write_h3(run, layers, county)["csv"]["nbiot"] == {9: False, 8: False}
    with pytest.raises(SchemaError, match="csv must be one of auto, always, never"):
        write_h3(run, layers, county, csv="yes")
