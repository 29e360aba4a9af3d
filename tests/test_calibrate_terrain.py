"""Calibration over terrain and land cover: the diffraction weight and the land-cover class offsets.

A synthetic mountain range (smoothed noise, 0-900 m) and a WorldCover-coded land cover
(built-up, trees, cropland patches) are GeoTIFFs in the grid's CRS whose cells are the
run's 200 m pixels (so the terrain lattice is the pixel grid). The "truth" is the same
run predicted with ``[terrain] diffraction_weight = 0.6`` and +6 dB on tree cover; the
measurements are the truth's own signal plus 1 dB of receiver noise.
"""

from __future__ import annotations

import dataclasses
import tomllib

import numpy as np
import pytest
import rasterio
from measure_helpers import make_sectors, measurements_from_run
from test_predict_terrain import (
    lonlat_of,
    pixel_of,
    rough_terrain,
    worldcover_classes,
    write_albers_tif,
)

from coverage.config import config_from_dict, load_config
from coverage.errors import ConfigError
from coverage.layout import RunLayout
from coverage.measure.calibrate import calibrate_bins, calibrate_run
from coverage.measure.evaluate import bin_measurements, compare_bins
from coverage.measure.terrain_terms import bin_terrain_terms
from coverage.predict import predict
from coverage.terrain.clutter import builtin_table, extra_loss_lut

RES = 200.0
HALF_PX = 150  # a 60 km square: the sites' reach and the 15 km effective-height rings
CENTRE_COL, CENTRE_ROW = pixel_of(113.0, 23.0, RES)
TREES, BUILT_UP, CROPLAND = 10, 50, 40
TRUE_WEIGHT = 0.6
TRUE_TREE_OFFSET_DB = 6.0
# five omni NB-IoT sites (pixel offsets from the centre, environment)
SITES = ((0, 0, "urban"), (-35, 20, "suburban"), (30, -25, "urban"), (25, 35, "suburban"), (-30, -30, "suburban"))


@pytest.fixture(scope="module")
def terrain_files(tmp_path_factory):
    """(DEM path, land-cover path): the mountains and the WorldCover patches over the 60 km square."""
    folder = tmp_path_factory.mktemp("terrain")
    col0, row0 = CENTRE_COL - HALF_PX, CENTRE_ROW - HALF_PX
    dem = write_albers_tif(folder / "mountains.tif", col0, row0, rough_terrain(HALF_PX, seed=11), res=RES)
    classes = worldcover_classes(HALF_PX, seed=5)
    classes[classes == 80] = CROPLAND  # no water: three classes, cropland the commonest (45 %), trees 30 %
    landcover = write_albers_tif(folder / "worldcover.tif", col0, row0, classes, res=RES, dtype="uint8")
    return dem, landcover


def _sectors():
    rows = []
    for dc, dr, env in SITES:
        lon, lat = lonlat_of(CENTRE_COL + dc, CENTRE_ROW + dr, RES)
        rows.append({"lon": lon, "lat": lat, "environment": env})
    return make_sectors(rows, eirp_dbm=40.0)


def _run(folder, terrain_files, config, sectors=None):
    dem, landcover = terrain_files
    sectors = _sectors() if sectors is None else sectors
    RunLayout(folder).root.mkdir(parents=True, exist_ok=True)
    sectors.to_parquet(RunLayout(folder).sectors)
    predict(sectors, folder, techs=("nbiot",), resolution_m=RES, config=config, scheduler="synchronous",
            tile_size_px=128, dem=dem, clutter=landcover)
    return folder


def _truth_config():
    return config_from_dict({"terrain": {"diffraction_weight": TRUE_WEIGHT,
                                         "class_offsets_db": {"nbiot": {str(TREES): TRUE_TREE_OFFSET_DB}}}})


@pytest.fixture(scope="module")
def runs(tmp_path_factory, terrain_files):
    """(model run, truth run): the default configuration, and the truth's weight and tree offset."""
    folder = tmp_path_factory.mktemp("runs")
    model = _run(folder / "model", terrain_files, load_config())
    truth = _run(folder / "truth", terrain_files, _truth_config())
    return model, truth


def _measurements(run_dir, **kwargs):
    """measurements_from_run's samples that fall on the DEM and land cover (not on their clamped edges)."""
    from coverage.grid import project_lonlat

    measurements = measurements_from_run(run_dir, **kwargs)
    x, y = project_lonlat(measurements.geometry.x.to_numpy(), measurements.geometry.y.to_numpy())
    col = np.floor(np.asarray(x) / RES) - CENTRE_COL
    row = np.floor(-np.asarray(y) / RES) - CENTRE_ROW
    inside = (np.abs(col) < HALF_PX) & (np.abs(row) < HALF_PX)
    return measurements[inside].reset_index(drop=True)


def _signal_at(run_dir, cols, rows):
    with rasterio.open(RunLayout(run_dir).rsrp("nbiot", "CT")) as ds:
        values = ds.read(1).astype(np.float64)
        col0, row0 = round(ds.transform.c / RES), round(-ds.transform.f / RES)
        nodata = ds.nodata
    r, c = np.asarray(rows) - row0, np.asarray(cols) - col0
    inside = (r >= 0) & (c >= 0) & (r < values.shape[0]) & (c < values.shape[1])
    out = np.full(r.size, np.nan)
    out[inside] = values[r[inside], c[inside]]
    out[out == nodata] = np.nan
    return out


def test_the_terms_repredict_the_run_and_find_its_classes(runs, terrain_files):
    """The signal predicted again in squares equals the raster bit for bit; the class is the land cover's
    cell (lattice = pixels here); the diffraction term is that of the weight: the run at weight 0.6 minus the
    run at weight 1 is 0.4 × the term where the best server and class offsets agree."""
    model, truth = runs
    measurements = _measurements(model, n_pixels=3000, per_pixel=3, seed=2)
    bins = compare_bins(bin_measurements(measurements, RES, 3), model, load_config())
    terms = bin_terrain_terms(bins, model, load_config())
    assert terms.agree_share == 1.0 and terms.has_dem and terms.has_landcover
    out = terms.bins
    with rasterio.open(terrain_files[1]) as ds:
        classes = ds.read(1)
        col0, row0 = round(ds.transform.c / RES), round(-ds.transform.f / RES)
    r, c = out["row"].to_numpy() - row0, out["col"].to_numpy() - col0
    inside = (r >= 0) & (c >= 0) & (r < classes.shape[0]) & (c < classes.shape[1])
    expected_class = np.full(len(out), 255)  # outside the land cover: its nodata
    expected_class[inside] = classes[r[inside], c[inside]]
    assert inside.all() and np.array_equal(out["land_class"].to_numpy(), expected_class)
    assert (out["diffraction_db"] > 1.0).mean() > 0.2  # a mountain range: many bins in some shadow
    lighter = config_from_dict({"terrain": {"diffraction_weight": TRUE_WEIGHT}})
    light = _run(model.parent / "light", terrain_files, lighter)
    gain = _signal_at(light, out["col"], out["row"]) - out["predicted_dbm"].to_numpy()
    expected = (1.0 - TRUE_WEIGHT) * out["diffraction_db"].to_numpy()
    same = np.abs(gain - expected) < 2.0 / 128
    assert same.mean() > 0.9  # the others changed their best server (less diffraction, another site wins)
    assert (gain[~same] > expected[~same]).all()


def test_calibration_recovers_the_weight_and_the_tree_offset(runs, terrain_files, tmp_path):
    """Weight 0.6 ± 0.1, trees +6 ± 1 dB, the held-out error falls, and a rebuild with the TOML reproduces
    the truth within 0.5 dB on the bins."""
    model, truth = runs
    measurements = _measurements(truth, noise_db=1.0, n_pixels=8000, per_pixel=3, seed=21)
    out = tmp_path / "calibrated.toml"
    calibration = calibrate_run(model, measurements, out, config=load_config())
    groups = calibration.groups.set_index("environment")
    weight = groups.loc["terrain"]
    assert weight["status"] == "fitted"
    assert weight["diffraction_weight"] == pytest.approx(TRUE_WEIGHT, abs=0.1)
    trees = groups.loc[f"class {TREES} tree cover"]
    assert trees["status"] == "fitted"
    assert trees["loss_offset_db"] == pytest.approx(TRUE_TREE_OFFSET_DB, abs=1.0)
    assert groups.loc[f"class {CROPLAND} cropland", "status"] == "reference (offset 0)"  # the commonest
    assert abs(groups.loc[f"class {BUILT_UP} built-up", "loss_offset_db"]) < 1.0
    total = groups.loc["all"]
    assert calibration.improved and total["test_rmse_after_db"] < total["test_rmse_before_db"] - 1.0
    assert total["test_rmse_after_db"] < 2.0

    data = tomllib.loads(out.read_text())
    assert data["terrain"]["diffraction_weight"] == pytest.approx(TRUE_WEIGHT, abs=0.1)
    assert data["terrain"]["class_offsets_db"]["nbiot"][str(TREES)] == pytest.approx(TRUE_TREE_OFFSET_DB, abs=1.0)
    config = load_config(out)
    assert config.fingerprint() != load_config().fingerprint()
    rebuilt = _run(tmp_path / "rebuilt", terrain_files, config)
    bins = calibration.bins
    difference = _signal_at(rebuilt, bins["col"], bins["row"]) - _signal_at(truth, bins["col"], bins["row"])
    difference = difference[np.isfinite(difference)]
    assert difference.size > 1000
    assert abs(float(np.mean(difference))) < 0.5
    assert float(np.median(np.abs(difference))) < 0.5


def test_too_few_bins_keep_the_terrain_defaults(runs):
    """Every group, the weight and every class below min_bins_per_group: nothing fitted, nothing improved."""
    model, truth = runs
    measurements = _measurements(truth, noise_db=1.0, n_pixels=600, per_pixel=3, seed=5)
    strict = config_from_dict({"evaluation": {"min_bins_per_group": 1_000_000}})
    bins = compare_bins(bin_measurements(measurements, RES, 3), model, strict)
    terms = bin_terrain_terms(bins, model, strict)
    calibration = calibrate_bins(terms.bins, strict, terms)
    statuses = set(calibration.groups["status"]) - {"held-out total", "reference (offset 0)"}
    assert statuses == {"default (too few bins)"}
    assert not calibration.improved
    assert calibration.config.terrain.diffraction_weight == 1.0
    assert calibration.config.terrain.class_offsets_db == {}


def test_a_flat_run_fits_no_terrain_term(tmp_path):
    """Without DEM and land cover: no terms, the groups' columns of before, no terrain key in the TOML."""
    from measure_helpers import make_run

    run_dir = make_run(tmp_path / "flat")
    measurements = measurements_from_run(run_dir, offset_db=5.0, noise_db=2.0, n_pixels=3000, seed=3)
    out = tmp_path / "flat.toml"
    calibration = calibrate_run(run_dir, measurements, out)
    assert calibration.terrain is None and calibration.improved
    assert "diffraction_weight" not in calibration.groups.columns
    data = tomllib.loads(out.read_text())
    assert data["terrain"]["diffraction_weight"] == 1.0
    assert "class_offsets_db" not in data["terrain"]


def test_the_kernel_adds_the_class_offset_exactly(terrain_files, runs, tmp_path):
    """+6 dB on trees: every tree pixel of a single-site run is 6 dB lower, every other pixel unchanged."""
    single = make_sectors([{"lon": lonlat_of(CENTRE_COL, CENTRE_ROW, RES)[0],
                            "lat": lonlat_of(CENTRE_COL, CENTRE_ROW, RES)[1], "environment": "urban"}],
                          eirp_dbm=40.0)
    plain = _run(tmp_path / "plain", terrain_files, load_config(), single)
    offset = config_from_dict({"terrain": {"class_offsets_db": {"nbiot": {str(TREES): TRUE_TREE_OFFSET_DB}}}})
    shifted = _run(tmp_path / "shifted", terrain_files, offset, single)
    with rasterio.open(RunLayout(plain).rsrp("nbiot", "CT")) as ds:
        a = ds.read(1).astype(np.float64)
        col0, row0 = round(ds.transform.c / RES), round(-ds.transform.f / RES)
    with rasterio.open(RunLayout(shifted).rsrp("nbiot", "CT")) as ds:
        b = ds.read(1).astype(np.float64)
    with rasterio.open(terrain_files[1]) as ds:
        classes = ds.read(1)
        lc0, lr0 = round(ds.transform.c / RES), round(-ds.transform.f / RES)
    rows, cols = np.nonzero(a > -9000)
    r, c = rows + row0 - lr0, cols + col0 - lc0
    inside = (r >= 0) & (c >= 0) & (r < classes.shape[0]) & (c < classes.shape[1])
    cls = np.full(rows.size, 255)
    cls[inside] = classes[r[inside], c[inside]]
    drop = a[rows, cols] - b[rows, cols]
    assert (cls == TREES).sum() > 1000
    assert np.abs(drop[cls == TREES] - TRUE_TREE_OFFSET_DB).max() <= 1.0 / 128
    assert np.abs(drop[cls != TREES]).max() == 0.0


def test_class_offsets_in_the_configuration():
    config = _truth_config()
    again = config_from_dict(tomllib.loads(config.to_toml()))
    assert again.terrain.class_offsets_db == {"nbiot": {TREES: TRUE_TREE_OFFSET_DB}}
    assert again.fingerprint() == config.fingerprint() != load_config().fingerprint()
    assert "class_offsets_db" not in load_config().as_dict()["terrain"]  # the default fingerprint of before
    lut = extra_loss_lut(builtin_table("worldcover"), 900.0, 1.5, {TREES: 6.0, 20: -2.0, 7: 1.0})
    plain = extra_loss_lut(builtin_table("worldcover"), 900.0, 1.5)
    assert lut[TREES] - plain[TREES] == 6.0 and lut[20] == -2.0 and lut[7] == 1.0 and lut[255] == 0.0
    for table, message in (({"lte": {"10": 1.0}}, "lte"), ({"nbiot": {"255": 1.0}}, "0-254"),
                           ({"nbiot": {"ten": 1.0}}, "0-254"), ({"nbiot": {"10": 50.0}}, "out of range")):
        with pytest.raises(ConfigError, match=message):
            config_from_dict({"terrain": {"class_offsets_db": table}})


def test_the_default_configuration_keeps_its_terrain_setup():
    from coverage.predict.terrain_sites import resolve_terrain

    assert dataclasses.asdict(load_config().terrain)["class_offsets_db"] == {}
    assert resolve_terrain(None, None, load_config(), RES) is None


def test_cli_calibrate_over_terrain_prints_the_weight(runs, tmp_path, runner):
    from cli import main

    model, truth = runs
    measurements = tmp_path / "m.parquet"
    _measurements(truth, noise_db=1.0, n_pixels=4000, per_pixel=3, seed=8).to_parquet(measurements)
    out = tmp_path / "calibrated.toml"
    result = runner.invoke(main, ["calibrate", str(model), "--measurements", str(measurements), "--out", str(out)])
    assert result.exit_code == 0, result.output
    import re

    weight = re.search(r"diffraction weight 1\.000 -> (\d\.\d{3})", result.output)
    assert weight and float(weight.group(1)) == pytest.approx(TRUE_WEIGHT, abs=0.1)
    assert "class 10 tree cover" in result.output
    assert tomllib.loads(out.read_text())["terrain"]["class_offsets_db"]["nbiot"]["10"] > 5.0


def test_a_negative_class_offset_widens_the_reach_so_no_pixel_is_cut(terrain_files, tmp_path):
    """−6 dB on trees lowers their loss: every tree pixel is 6 dB higher, pixels beyond the plain reach get a
    signal where the offset lets the sector reach them (the reach's bonus), and no plain pixel is lost.

    Over flat ground (10 m everywhere): the sweep's rays follow the reach, so over mountains a longer reach
    also resamples the diffraction a little; on flat ground there is none to resample."""
    lon, lat = lonlat_of(CENTRE_COL, CENTRE_ROW, RES)
    single = make_sectors([{"lon": lon, "lat": lat, "environment": "urban"}], eirp_dbm=15.0)  # reach under the horizon
    flat = write_albers_tif(tmp_path / "flat.tif", CENTRE_COL - HALF_PX, CENTRE_ROW - HALF_PX,
                            np.full((2 * HALF_PX + 1, 2 * HALF_PX + 1), 10.0), res=RES)
    files = (flat, terrain_files[1])
    plain = _run(tmp_path / "plain", files, load_config(), single)
    lower = config_from_dict({"terrain": {"class_offsets_db": {"nbiot": {str(TREES): -TRUE_TREE_OFFSET_DB}}}})
    raised = _run(tmp_path / "raised", files, lower, single)
    with rasterio.open(terrain_files[1]) as ds:
        classes = ds.read(1)
        lc0, lr0 = round(ds.transform.c / RES), round(-ds.transform.f / RES)
    layers = []
    for run_dir in (plain, raised):
        with rasterio.open(RunLayout(run_dir).rsrp("nbiot", "CT")) as ds:
            values = ds.read(1).astype(np.float64)
            col0, row0 = round(ds.transform.c / RES), round(-ds.transform.f / RES)
        rows, cols = np.nonzero(values > -9000)
        layers.append({(int(c + col0), int(r + row0)): float(values[r, c]) for r, c in zip(rows, cols, strict=True)})
    before, after = layers
    assert set(before) < set(after)  # more pixels, none lost
    tree = {k for k in after if 0 <= k[1] - lr0 < classes.shape[0] and 0 <= k[0] - lc0 < classes.shape[1]
            and classes[k[1] - lr0, k[0] - lc0] == TREES}
    shared_tree = [k for k in tree if k in before]
    assert len(shared_tree) > 1000
    assert max(abs(after[k] - before[k] - TRUE_TREE_OFFSET_DB) for k in shared_tree) <= 1.0 / 128
    assert all(after[k] == before[k] for k in before if k not in tree)
