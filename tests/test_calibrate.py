"""Calibration: fitted path-loss corrections, held-out blocks, the TOML and the prediction applying it."""

from __future__ import annotations

import dataclasses
import shutil
import tomllib

import numpy as np
import pytest
import rasterio
from measure_helpers import make_run, make_sectors, measurements_from_run

from cli import main
from coverage.config import CalibrationConfig, config_from_dict, load_config
from coverage.errors import ConfigError
from coverage.grid import project_lonlat
from coverage.layout import RunLayout
from coverage.measure.calibrate import calibrate_run, fit_group, held_out_blocks
from coverage.measure.evaluate import bin_measurements, compare_bins


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """Three omni NB-IoT CT sites near Xiamen predicted flat at 200 m."""
    return make_run(tmp_path_factory.mktemp("run"))


def _site_xy():
    sectors = make_sectors()
    x, y = project_lonlat(sectors.geometry.x.to_numpy(), sectors.geometry.y.to_numpy())
    return np.asarray(x), np.asarray(y)


def _by_global_pixel(run, layer="rsrp"):
    """{(global col, global row): value} of a run's CT NB-IoT layer (its valid pixels)."""
    path = RunLayout(run).rsrp("nbiot", "CT") if layer == "rsrp" else RunLayout(run).coverage_class("nbiot", "CT")
    with rasterio.open(path) as ds:
        values = ds.read(1).astype(float)
        col0, row0 = round(ds.transform.c / ds.transform.a), round(-ds.transform.f / ds.transform.a)
        nodata = ds.nodata
    rows, cols = np.nonzero(values != nodata)
    return {(int(c + col0), int(r + row0)): float(values[r, c]) for r, c in zip(rows, cols, strict=True)}


def test_huber_fit_ignores_outliers():
    rng = np.random.default_rng(1)
    u = rng.uniform(-0.7, 1.2, 2000)
    residual = -(3.0 - 4.0 * u) + rng.normal(0.0, 2.0, u.size)
    residual[:100] -= 40.0  # 5 % glitches (indoor samples, GPS jumps)
    offset, slope = fit_group(residual, u, fit_slope=True)
    assert offset == pytest.approx(3.0, abs=0.3) and slope == pytest.approx(-4.0, abs=0.4)
    offset_only, zero = fit_group(residual, u, fit_slope=False)
    assert zero == 0.0


def test_held_out_blocks_are_whole_blocks():
    rng = np.random.default_rng(0)
    x, y = rng.uniform(0, 50_000, 20_000), rng.uniform(0, 50_000, 20_000)
    held = held_out_blocks(x, y, 2000.0, 5)
    blocks = np.floor(x / 2000.0) * 1e6 + np.floor(y / 2000.0)
    for block in np.unique(blocks)[:200]:
        assert len(set(held[blocks == block])) == 1
    assert 0.12 < held.mean() < 0.28


def test_calibration_recovers_an_injected_offset_and_the_rebuild_meets_it(run_dir, tmp_path):
    """Measured = predicted − 6 dB + N(0, 4 dB): the fitted loss offset is 6 ± 0.5 dB, and the
    prediction rebuilt with the calibrated TOML has a held-out mean error within 1 dB."""
    measurements = measurements_from_run(run_dir, offset_db=6.0, noise_db=4.0, n_pixels=6000, per_pixel=3, seed=21)
    out = tmp_path / "calibrated.toml"
    calibration = calibrate_run(run_dir, measurements, out)
    assert calibration.improved and out.exists()
    fitted = calibration.groups[calibration.groups["status"].str.startswith("fitted")]
    assert set(fitted["environment"]) == {"urban", "suburban"}
    for row in fitted.itertuples():
        assert row.loss_offset_db == pytest.approx(6.0, abs=0.5)
        assert abs(row.loss_slope_db_per_decade) < 1.0
    total = calibration.groups[calibration.groups["status"] == "held-out total"].iloc[0]
    assert total["test_mean_error_before_db"] == pytest.approx(6.0, abs=0.5)
    assert abs(total["test_mean_error_after_db"]) < 1.0
    assert total["test_rmse_after_db"] < total["test_rmse_before_db"]

    # the TOML is a configuration --config accepts, with the corrections
    config = load_config(out)
    assert config.calibration.corrections[("nbiot", "B8", "urban")][0] == pytest.approx(6.0, abs=0.5)
    rebuilt = make_run(tmp_path / "rebuilt", config=config)
    held_out = calibration.bins[calibration.bins["held_out"]]
    bins = bin_measurements(measurements, 200.0, 3)
    again = compare_bins(bins, rebuilt, config)
    keys = ["col", "row"]
    again = again.merge(held_out[keys], on=keys)
    assert len(again) == len(held_out) > 100
    assert abs(float(again["error_db"].mean())) < 1.0


def test_the_prediction_applies_offset_and_slope_exactly(run_dir, tmp_path):
    """Corrections of +3 dB and +5 dB/decade: the rebuilt signal is lower by 3 + 5·log10(d/1 km) where the
    best server is the same site (a single-site run), to the raster's 1/128 dB step."""
    single = make_sectors(rows=[{"lon": 118.10, "lat": 24.50, "environment": "urban"}])
    plain = make_run(tmp_path / "plain", sectors=single)
    corrected_config = dataclasses.replace(
        load_config(), calibration=CalibrationConfig(corrections={("nbiot", "B8", "urban"): (3.0, 5.0)}))
    corrected = make_run(tmp_path / "corrected", sectors=single, config=corrected_config)
    before, after = _by_global_pixel(plain), _by_global_pixel(corrected)
    shared = sorted(set(before) & set(after))
    x = np.array([(c + 0.5) * 200.0 for c, _ in shared])
    y = np.array([-(r + 0.5) * 200.0 for _, r in shared])
    sx, sy = project_lonlat(np.array([118.10]), np.array([24.50]))
    d_km = np.maximum(np.hypot(x - sx[0], y - sy[0]), 100.0) / 1000.0
    drop = np.array([before[k] - after[k] for k in shared])
    expected = 3.0 + 5.0 * np.log10(d_km)
    assert len(shared) > 1000
    assert np.abs(drop - expected).max() < 2.0 / 128
    # more loss everywhere beyond 250 m: the corrected map covers less ground, none of it new
    covered_before = {k for k, v in _by_global_pixel(plain, "class").items() if v in (1, 2)}
    covered_after = {k for k, v in _by_global_pixel(corrected, "class").items() if v in (1, 2)}
    assert covered_after < covered_before


def test_a_negative_slope_widens_the_reach_so_no_pixel_is_cut(tmp_path):
    """−10 dB/decade lowers the far loss: pixels beyond the plain reach get a signal, and every pixel's value is
    the corrected formula's (none cut by the old reach)."""
    single = make_sectors(rows=[{"lon": 118.10, "lat": 24.50, "environment": "urban"}])
    plain = make_run(tmp_path / "plain", sectors=single)
    config = dataclasses.replace(
        load_config(), calibration=CalibrationConfig(corrections={("nbiot", "B8", "urban"): (0.0, -10.0)}))
    corrected = make_run(tmp_path / "corrected", sectors=single, config=config)
    covered_before = sum(v in (1, 2) for v in _by_global_pixel(plain, "class").values())
    covered_after = sum(v in (1, 2) for v in _by_global_pixel(corrected, "class").values())
    assert covered_after > 1.5 * covered_before


def test_the_default_configuration_adds_no_array(run_dir):
    from coverage.predict.kernel import CALIBRATED_SLOPE_FIELD
    from coverage.predict.sectors import prepare_sectors

    prepared = prepare_sectors(make_sectors(), "nbiot", load_config())
    assert CALIBRATED_SLOPE_FIELD not in prepared.arrays
    assert load_config().fingerprint() == config_from_dict({}).fingerprint()


def test_too_few_bins_keep_the_defaults_and_write_nothing(run_dir, tmp_path, runner):
    """Every group below [evaluation] min_bins_per_group: nothing fitted, no TOML, exit 1."""
    config_path = tmp_path / "strict.toml"
    config_path.write_text("[evaluation]\nmin_bins_per_group = 1000000\n")
    measurements = tmp_path / "m.parquet"
    measurements_from_run(run_dir, offset_db=6.0, noise_db=2.0, n_pixels=500, seed=4).to_parquet(measurements)
    out = tmp_path / "calibrated.toml"
    result = runner.invoke(main, ["calibrate", str(run_dir), "--measurements", str(measurements), "--out", str(out),
                                  "--config", str(config_path)])
    assert result.exit_code == 1, result.output
    assert not out.exists()
    assert "default (too few bins)" in result.output
    assert "did not improve" in result.output
    assert (run_dir / "evaluation" / "calibration.csv").read_bytes().startswith(b"\xef\xbb\xbf")


def test_cli_calibrate_writes_the_toml_and_refuses_to_overwrite(run_dir, tmp_path, runner):
    measurements = tmp_path / "m.parquet"
    measurements_from_run(run_dir, offset_db=-4.0, noise_db=3.0, n_pixels=4000, seed=8).to_parquet(measurements)
    out = tmp_path / "calibrated.toml"
    args = ["calibrate", str(run_dir), "--measurements", str(measurements), "--out", str(out)]
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "held-out total" in result.output
    data = tomllib.loads(out.read_text())
    assert data["calibration"]["nbiot"]["B8"]["suburban"]["loss_offset_db"] == pytest.approx(-4.0, abs=0.5)
    again = runner.invoke(main, args)
    assert again.exit_code == 2 and "--overwrite" in again.output
    shutil.copy(out, tmp_path / "copy.toml")
    assert runner.invoke(main, [*args, "--overwrite"]).exit_code == 0


@pytest.mark.parametrize("table, message", [
    ({"nbiot": {"B9": {"urban": {"loss_offset_db": 1.0}}}}, "B9"),
    ({"nbiot": {"B8": {"city": {"loss_offset_db": 1.0}}}}, "city"),
    ({"nbiot": {"B8": {"urban": {"loss_slope_db_per_decade": 20.0}}}}, "out of range"),
    ({"nbiot": {"B8": {"urban": {"offset": 1.0}}}}, "loss_offset_db"),
    ({"lte": {}}, "lte"),
])
def test_calibration_keys_are_validated(table, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict({"calibration": table})


def test_calibration_round_trips_through_toml():
    config = config_from_dict({"calibration": {"nbiot": {"B8": {"urban": {"loss_offset_db": 2.5,
                                                                          "loss_slope_db_per_decade": -1.25}}}}})
    again = config_from_dict(tomllib.loads(config.to_toml()))
    assert again.calibration.corrections == {("nbiot", "B8", "urban"): (2.5, -1.25)}
    assert again.fingerprint() == config.fingerprint() != load_config().fingerprint()


def test_the_terrain_kernel_applies_the_corrections_too(tmp_path):
    """Over a constant DEM (the terrain kernel, flat ground): the same 3 dB + 5 dB/decade drop as flat earth."""
    from conftest import write_constant_dem_tif

    from coverage.predict import predict

    dem = write_constant_dem_tif(tmp_path / "dem.tif", 117.5, 24.0, 118.7, 25.0, elevation_m=10.0)
    single = make_sectors(rows=[{"lon": 118.10, "lat": 24.50, "environment": "urban"}])
    config = dataclasses.replace(
        load_config(), calibration=CalibrationConfig(corrections={("nbiot", "B8", "urban"): (3.0, 5.0)}))
    runs = {}
    for name, cfg in (("plain", None), ("corrected", config)):
        runs[name] = tmp_path / name
        predict(single, runs[name], techs=("nbiot",), resolution_m=200, config=cfg, scheduler="synchronous",
                tile_size_px=128, dem=dem)
    before, after = _by_global_pixel(runs["plain"]), _by_global_pixel(runs["corrected"])
    shared = sorted(set(before) & set(after))
    x = np.array([(c + 0.5) * 200.0 for c, _ in shared])
    y = np.array([-(r + 0.5) * 200.0 for _, r in shared])
    sx, sy = project_lonlat(np.array([118.10]), np.array([24.50]))
    d_km = np.maximum(np.hypot(x - sx[0], y - sy[0]), 100.0) / 1000.0
    drop = np.array([before[k] - after[k] for k in shared])
    assert len(shared) > 1000
    assert np.abs(drop - (3.0 + 5.0 * np.log10(d_km))).max() < 2.0 / 128
