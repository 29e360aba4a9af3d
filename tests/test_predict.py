"""The prediction stage: kernel vs an independent numpy reference, geometry, rasters.

The reference below re-derives the maths with numpy and its own formulas (Hata
1980 / COST 231 path loss, free space, the 3GPP TR 36.814 sector pattern), so the
numba kernel is checked against code that shares nothing with it but the inputs.
``bench/predict.py`` imports :func:`reference_predict_tile_numpy` from here.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from shapely.geometry import Point

from coverage.config import load_config
from coverage.errors import EmptyCoverageError, SchemaError
from coverage.grid import grid_north_bearing_deg, project_lonlat
from coverage.layout import CLASS_NODATA, RSRP_NODATA_DBM, RunLayout
from coverage.predict import (
    SECTOR_FIELDS,
    WORKER_MALLOC_ENV,
    _executor,
    combine_layers,
    predict,
    predict_tile,
    tile_overviews,
)
from coverage.radio import pathloss as pl
from coverage.radio.profiles import PROFILES

# ---------------------------------------------------------------- the numpy reference

SPEED_OF_LIGHT_M_S = 299_792_458.0
HATA_MODELS = {
    pl.OKUMURA_HATA_URBAN: ("hata", "urban"),
    pl.OKUMURA_HATA_DENSE_URBAN: ("hata", "dense"),
    pl.OKUMURA_HATA_SUBURBAN: ("hata", "suburban"),
    pl.OKUMURA_HATA_RURAL: ("hata", "rural"),
    pl.COST231_HATA_URBAN: ("cost231", "urban"),
    pl.COST231_HATA_DENSE_URBAN: ("cost231", "dense"),
    pl.COST231_HATA_SUBURBAN: ("cost231", "suburban"),
    pl.COST231_HATA_RURAL: ("cost231", "rural"),
}
REFERENCE_MODELS = (pl.FREE_SPACE, *HATA_MODELS)


def reference_path_loss_db(model_id, d_m, f_mhz, hb_m, hm_m):
    """Hata (1980) / COST-231 Hata / Friis, written out from the published formulas.

    Okumura-Hata urban (medium city): 69.55 + 26.16 log f − 13.82 log hb − a(hm)
    + (44.9 − 6.55 log hb) log d[km], a(hm) = (1.1 log f − 0.7) hm − (1.56 log f − 0.8);
    large city a(hm) = 3.2 (log 11.75 hm)² − 4.97; suburban −2 (log f/28)² − 5.4;
    open area −4.78 (log f)² + 18.33 log f − 40.94. COST-231: 46.3 + 33.9 log f ...
    + C (3 dB metropolitan). Friis: 20 log(4π d3D f / c). As the library documents,
    distances are clamped to 100 m (Hata family) and 1 m (free space), heights to 1 m.
    """
    hb = np.maximum(hb_m, 1.0)
    hm = np.maximum(hm_m, 1.0)
    if model_id == pl.FREE_SPACE:
        d = np.maximum(d_m, 1.0)
        d3 = np.sqrt(d * d + (hb - hm) ** 2)
        return 20 * np.log10(4 * np.pi * d3 * f_mhz * 1e6 / SPEED_OF_LIGHT_M_S)
    family, variant = HATA_MODELS[model_id]
    d_km = np.maximum(d_m, 100.0) / 1000.0
    lf = np.log10(f_mhz)
    a_medium = (1.1 * lf - 0.7) * hm - (1.56 * lf - 0.8)
    slope = (44.9 - 6.55 * np.log10(hb)) * np.log10(d_km)
    if family == "hata":
        base = 69.55 + 26.16 * lf - 13.82 * np.log10(hb) + slope
        if variant == "dense":
            return base - (3.2 * np.log10(11.75 * hm) ** 2 - 4.97)
    else:
        base = 46.3 + 33.9 * lf - 13.82 * np.log10(hb) + slope
        if variant == "dense":
            return base - a_medium + 3.0
    urban = base - a_medium
    if variant == "suburban":
        return urban - 2 * np.log10(f_mhz / 28) ** 2 - 5.4
    if variant == "rural":
        return urban - 4.78 * lf**2 + 18.33 * lf - 40.94
    return urban


def reference_gain_db(bearing, elevation, azimuth, beamwidth, tilt, v_beamwidth, am_db, sla_db):
    """TR 36.814 Table A.2.1.1-2: A = −min(−(A_H + A_V), Am); A_H = 0 for omni (NaN)."""
    if np.isnan(azimuth):
        a_h = np.zeros_like(bearing)
    else:
        phi = (bearing - azimuth + 180.0) % 360.0 - 180.0
        a_h = -np.minimum(12 * (phi / beamwidth) ** 2, am_db)
    a_v = -np.minimum(12 * ((elevation - tilt) / v_beamwidth) ** 2, sla_db)
    return -np.minimum(-(a_h + a_v), am_db)


def reference_predict_tile_numpy(sectors, col0, row0, width_px, height_px, resolution_m, ue_height_m):
    """The kernel's maths in plain numpy: best server over sectors in input order."""
    xs = (col0 + np.arange(width_px, dtype=np.int64) + 0.5) * resolution_m
    ys = -((row0 + np.arange(height_px, dtype=np.int64) + 0.5) * resolution_m)
    px, py = np.meshgrid(xs, ys)
    best = np.full(px.shape, -np.inf)
    server = np.full(px.shape, -1)
    evaluations = 0
    for s in range(len(sectors["x_m"])):
        dx = px - sectors["x_m"][s]
        dy = py - sectors["y_m"][s]
        d = np.sqrt(dx * dx + dy * dy)
        inside = d <= sectors["reach_m"][s]
        evaluations += int(inside.sum())
        bearing = np.degrees(np.arctan2(dx, dy)) % 360.0
        elevation = np.degrees(np.arctan2(sectors["height_m"][s] - ue_height_m, d))
        gain = reference_gain_db(
            bearing, elevation, sectors["azimuth_deg"][s], sectors["beamwidth_deg"][s],
            sectors["downtilt_deg"][s], sectors["vertical_beamwidth_deg"][s],
            sectors["front_to_back_db"][s], sectors["sla_v_db"][s],
        )
        loss = reference_path_loss_db(
            int(sectors["model_id"][s]), d, sectors["freq_mhz"][s], sectors["height_m"][s], ue_height_m
        )
        value = sectors["rs_eirp_dbm"][s] + gain - loss
        better = inside & (value > best)
        best[better] = value[better]
        server[better] = s
    rsrp = np.where(server >= 0, best, RSRP_NODATA_DBM).astype(np.float32)
    safe = np.maximum(server, 0)
    value32 = rsrp.astype(np.float64)
    cls = np.where(value32 >= np.asarray(sectors["deep_dbm"])[safe], 2,
                   np.where(value32 >= np.asarray(sectors["outdoor_dbm"])[safe], 1, 0))
    cls = np.where(server >= 0, cls, CLASS_NODATA).astype(np.uint8)
    return rsrp, cls, evaluations


def random_sectors(rng, n, centre_x_m, centre_y_m, spread_m):
    """Random sectors of every kind the reference knows (omni and directional)."""
    sectors = {
        "x_m": centre_x_m + rng.uniform(-spread_m, spread_m, n),
        "y_m": centre_y_m + rng.uniform(-spread_m, spread_m, n),
        "rs_eirp_dbm": rng.uniform(20, 50, n),
        "height_m": rng.uniform(0.5, 80, n),
        "freq_mhz": rng.uniform(150, 2000, n),
        "model_id": rng.choice(REFERENCE_MODELS, n),
        "azimuth_deg": np.where(rng.random(n) < 0.3, np.nan, rng.uniform(0, 360, n)),
        "beamwidth_deg": rng.uniform(30, 120, n),
        "downtilt_deg": rng.uniform(-2, 15, n),
        "vertical_beamwidth_deg": rng.uniform(5, 20, n),
        "front_to_back_db": rng.uniform(15, 35, n),
        "sla_v_db": rng.uniform(10, 30, n),
        "reach_m": rng.uniform(0, 1.5 * spread_m, n),
        "outdoor_dbm": rng.uniform(-130, -100, n),
    }
    sectors["deep_dbm"] = sectors["outdoor_dbm"] + rng.uniform(0, 25, n)
    return sectors


@pytest.mark.parametrize("seed", range(8))
def test_kernel_equals_numpy_reference(seed):
    """numba kernel = numpy reference to 0.01 dB, same nodata and (off-threshold) class."""
    rng = np.random.default_rng(seed)
    res = float(rng.choice([30.0, 50.0, 100.0, 250.0]))
    col0, row0 = int(rng.integers(-20_000, 20_000)), int(rng.integers(-60_000, -10_000))
    width, height = 48, 40
    cx, cy = (col0 + width / 2) * res, -(row0 + height / 2) * res
    sectors = random_sectors(rng, 25, cx, cy, spread_m=width * res * 0.7)
    rsrp, cls, n = predict_tile(sectors, col0, row0, width, height, res, ue_height_m=1.5, block_px=0)
    ref_rsrp, ref_cls, ref_n = reference_predict_tile_numpy(sectors, col0, row0, width, height, res, 1.5)
    assert rsrp.dtype == np.float32 and cls.dtype == np.uint8
    assert n == ref_n > 0  # without pruning every pair in reach is evaluated
    pruned_rsrp, pruned_cls, pruned_n = predict_tile(sectors, col0, row0, width, height, res, 1.5, block_px=8)
    assert np.array_equal(pruned_rsrp, rsrp) and np.array_equal(pruned_cls, cls) and pruned_n <= n
    assert np.array_equal(rsrp == RSRP_NODATA_DBM, ref_rsrp == RSRP_NODATA_DBM)
    valid = rsrp != RSRP_NODATA_DBM
    assert valid.sum() > 100
    assert np.max(np.abs(rsrp[valid] - ref_rsrp[valid])) < 0.01
    # class: equal unless the value sits within 0.01 dB of a threshold
    differ = cls != ref_cls
    assert differ.sum() <= 2


def _dense_network(rng, n_sites, width_m):
    """Three-sector sites on a square, NB-IoT-like reach far beyond the site spacing."""
    n = 3 * n_sites
    site_x = np.repeat(rng.uniform(-0.2 * width_m, 1.2 * width_m, n_sites), 3)
    site_y = np.repeat(rng.uniform(-1.2 * width_m, 0.2 * width_m, n_sites), 3)
    # whole-pixel positions too: sites exactly on block edges and pixel centres
    site_x[:9] = np.round(site_x[:9] / 100.0) * 100.0
    site_y[:9] = np.round(site_y[:9] / 100.0) * 100.0 - 50.0
    azimuth = (np.repeat(rng.uniform(0, 120, n_sites), 3) + np.tile([0.0, 120.0, 240.0], n_sites)) % 360
    azimuth[::10] = np.nan  # some omni sectors
    return {
        "x_m": site_x, "y_m": site_y,
        "rs_eirp_dbm": rng.uniform(25, 35, n), "height_m": rng.uniform(20, 45, n),
        "freq_mhz": rng.choice([875.0, 942.5, 3500.0], n),
        "model_id": rng.choice([pl.OKUMURA_HATA_SUBURBAN, pl.OKUMURA_HATA_RURAL, pl.COST231_HATA_URBAN,
                                pl.TR38901_RMA, pl.TR38901_UMA], n),
        "azimuth_deg": azimuth, "beamwidth_deg": np.full(n, 65.0),
        "downtilt_deg": rng.uniform(2, 8, n), "vertical_beamwidth_deg": np.full(n, 10.0),
        "front_to_back_db": np.full(n, 25.0), "sla_v_db": np.full(n, 20.0),
        "reach_m": rng.uniform(0.3, 1.5, n) * width_m,
        "outdoor_dbm": np.full(n, -125.0), "deep_dbm": np.full(n, -105.0),
    }


@pytest.mark.parametrize("seed", range(4))
def test_pruned_blocks_change_no_pixel(seed):
    """Skipping sectors that cannot win a block: same bytes for every block size, far less work."""
    rng = np.random.default_rng(100 + seed)
    width_px = 96
    sectors = _dense_network(rng, 60, width_px * 100.0)
    # an exact duplicate of sector 0: the tie must still go to the first
    twin = {k: np.concatenate([v, v[:1]]) for k, v in sectors.items()}
    full_rsrp, full_cls, full_n = predict_tile(twin, 0, 0, width_px, width_px, 100.0, 1.5, block_px=0)
    assert (full_rsrp != RSRP_NODATA_DBM).all()
    for block_px in (1, 7, 16, 32, 96, 200):
        rsrp, cls, n = predict_tile(twin, 0, 0, width_px, width_px, 100.0, 1.5, block_px=block_px)
        assert np.array_equal(rsrp, full_rsrp), block_px
        assert np.array_equal(cls, full_cls), block_px
        if block_px == 16:
            assert n < 0.5 * full_n  # most pairs are far sectors that never win


def test_pruning_keeps_the_first_of_tied_sectors():
    s = _dense_network(np.random.default_rng(7), 1, 3_000.0)
    one = {k: v[:1] for k, v in s.items()}
    twin = {k: np.concatenate([v, v]) for k, v in one.items()}
    twin["outdoor_dbm"] = np.array([-200.0, 0.0])  # first says covered, second not
    twin["deep_dbm"] = np.array([0.0, 0.0])
    _, cls, _ = predict_tile(twin, 0, 0, 32, 32, 100.0, 1.5, block_px=8)
    inside = cls != CLASS_NODATA
    assert inside.any() and (cls[inside] == 1).all()


def test_kernel_matches_library_pathloss_on_every_model():
    """Every model id (incl. TR 38.901) through the kernel = the library's numpy faces."""
    from coverage.radio.antenna import relative_gain

    rng = np.random.default_rng(11)
    for model in sorted(pl.MODEL_NAMES):
        s = random_sectors(rng, 1, 500.0, -500.0, 10.0)
        s["model_id"] = np.array([model])
        s["reach_m"] = np.array([3_000.0])
        s["freq_mhz"] = np.array([3500.0 if model >= pl.TR38901_RMA else 900.0])
        rsrp, _, _ = predict_tile(s, 0, 0, 40, 40, 100.0, 1.5)
        xs = (np.arange(40) + 0.5) * 100.0
        px, py = np.meshgrid(xs, -xs)
        d = np.sqrt((px - s["x_m"][0]) ** 2 + (py - s["y_m"][0]) ** 2)
        bearing = np.degrees(np.arctan2(px - s["x_m"][0], py - s["y_m"][0])) % 360
        elevation = np.degrees(np.arctan2(s["height_m"][0] - 1.5, d))
        expect = (s["rs_eirp_dbm"][0]
                  + relative_gain(bearing, elevation, s["azimuth_deg"][0], s["beamwidth_deg"][0],
                                  s["downtilt_deg"][0], s["vertical_beamwidth_deg"][0],
                                  s["front_to_back_db"][0], s["sla_v_db"][0])
                  - pl.path_loss(model, d, s["freq_mhz"][0], s["height_m"][0], 1.5))
        inside = d <= 3_000.0
        assert np.array_equal(rsrp != RSRP_NODATA_DBM, inside)
        assert np.max(np.abs(rsrp[inside] - expect[inside])) < 0.01, pl.MODEL_NAMES[model]


def test_predict_tile_without_sectors_is_all_nodata():
    empty = {name: np.zeros(0) for name in SECTOR_FIELDS}
    rsrp, cls, n = predict_tile(empty, 0, 0, 16, 16, 100.0, 1.5)
    assert (rsrp == RSRP_NODATA_DBM).all() and (cls == CLASS_NODATA).all() and n == 0


def test_exact_tie_goes_to_the_first_sector():
    s = random_sectors(np.random.default_rng(2), 1, 800.0, -800.0, 1.0)
    s["reach_m"][:] = 5_000.0
    twin = {k: np.concatenate([v, v]) for k, v in s.items()}
    twin["outdoor_dbm"] = np.array([-200.0, 0.0])  # first says covered, second not
    twin["deep_dbm"] = np.array([0.0, 0.0])
    _, cls, _ = predict_tile(twin, 0, 0, 16, 16, 100.0, 1.5)
    assert (cls == 1).all()


def test_combined_layer_rule():
    rsrp = np.array([[[-100, -9999]], [[-90, -9999]], [[-9999, -9999]]], dtype=np.float32)
    cls = np.array([[[2, 255]], [[0, 255]], [[255, 255]]], dtype=np.uint8)
    all_rsrp, all_cls = combine_layers(rsrp, cls)
    assert all_rsrp.tolist() == [[-90, -9999]]
    assert all_cls.tolist() == [[2, 255]]  # deep by one operator is deep


# ---------------------------------------------------------------- fixtures: sectors and config


def make_config(**overrides):
    """The default configuration, with per-tech profile fields replaced (``nbiot={...}``)."""
    config = load_config()
    profiles = dict(config.profiles)
    for tech, fields_ in overrides.items():
        profiles[tech] = dataclasses.replace(profiles[tech], **fields_)
    return dataclasses.replace(config, profiles=profiles)


def make_sectors(rows):
    """A sectors GeoDataFrame (docs/CONTRACTS.md) from dicts; NB-IoT 900 MHz defaults."""
    base = dict(
        operator="CT", tech="nbiot", freq_mhz=942.5, eirp_dbm=55.0, height_m=30.0,
        azimuth_deg=np.nan, beamwidth_deg=65.0, downtilt_deg=0.0, environment="urban",
        source_file="test.csv",
    )
    records = []
    for i, row in enumerate(rows):
        record = {**base, **row}
        lon, lat = record.pop("lon"), record.pop("lat")
        records.append({"site_id": f"S{i}", "cell_id": f"C{i}", "source_row": i + 1, **record,
                        "geometry": Point(lon, lat)})
    return gpd.GeoDataFrame(records, geometry="geometry", crs="EPSG:4326")


def read(path):
    with rasterio.open(path) as ds:
        return ds.read(1), ds.transform, ds


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _solve_edge_m(rs_eirp_dbm, threshold_dbm, model, f_mhz, hb_m, hm_m, gain_fn):
    """Distance where rs_eirp + gain(d) − PL(d) = threshold (bisection on the reference)."""
    lo, hi = 100.0, 100_000.0
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        value = rs_eirp_dbm + gain_fn(mid) - reference_path_loss_db(model, np.array(mid), f_mhz, hb_m, hm_m)
        lo, hi = (mid, hi) if value >= threshold_dbm else (lo, mid)
    return lo


# ---------------------------------------------------------------- the "must show" list


def test_single_omni_site_covers_pi_r_squared(tmp_path):
    """Flat ground, one omni NB-IoT site: covered area = π r² within 1 %.

    r solves rs_eirp + A_V(θ(r)) − PL_Hata(r) = outdoor threshold, with the exact
    vertical pattern (tilt 0°, θ3dB 10°: −0.01 dB at the edge) included.
    """
    profile = PROFILES["nbiot"]
    sectors = make_sectors([{"lon": 105.0, "lat": 30.0, "environment": "urban"}])
    report = predict(sectors, tmp_path, techs=("nbiot",), resolution_m=100, config=make_config(),
                     scheduler="synchronous", tile_size_px=128)
    cls, _, _ = read(RunLayout(tmp_path).coverage_class("nbiot"))
    rs_eirp = profile.rs_eirp_dbm(55.0, 942.5)
    thresholds = profile.thresholds_dbm("urban")
    model = pl.select_model("nbiot", 942.5, "urban")
    assert model == pl.OKUMURA_HATA_URBAN

    def gain(d):
        return reference_gain_db(np.array(0.0), np.degrees(np.arctan2(28.5, d)), np.nan, 65.0, 0.0,
                                 profile.vertical_beamwidth_deg, profile.front_to_back_db, profile.sla_v_db)

    r_outdoor = _solve_edge_m(rs_eirp, thresholds["outdoor"], model, 942.5, 30.0, 1.5, gain)
    r_deep = _solve_edge_m(rs_eirp, thresholds["deep"], model, 942.5, 30.0, 1.5, gain)
    assert 5_000 < r_outdoor < 30_000  # a real radius, ~120 pixels
    covered_m2 = np.count_nonzero((cls == 1) | (cls == 2)) * 100.0**2
    deep_m2 = np.count_nonzero(cls == 2) * 100.0**2
    assert covered_m2 == pytest.approx(math.pi * r_outdoor**2, rel=0.01)
    assert deep_m2 == pytest.approx(math.pi * r_deep**2, rel=0.01)
    assert report["techs"]["nbiot"]["layers"][-1]["sectors"] == 1
    assert report["evaluations"] == np.count_nonzero(cls != CLASS_NODATA)


def test_tile_size_does_not_change_any_pixel(tmp_path):
    """Tiles of 64 and 256 px: every layer bit-identical on the shared pixels."""
    rng = np.random.default_rng(5)
    rows = [
        {"lon": 105.0 + rng.uniform(-0.3, 0.3), "lat": 30.0 + rng.uniform(-0.3, 0.3),
         "operator": rng.choice(["CT", "CM", "CU"]), "azimuth_deg": rng.choice([np.nan, 0.0, 120.0, 240.0]),
         "environment": rng.choice(["dense_urban", "urban", "suburban"]), "downtilt_deg": 4.0}
        for _ in range(12)
    ]
    sectors = make_sectors(rows)
    runs = {}
    for size in (64, 256):
        predict(sectors, tmp_path / f"t{size}", techs=("nbiot",), resolution_m=200, config=make_config(),
                scheduler="synchronous", tile_size_px=size)
        runs[size] = RunLayout(tmp_path / f"t{size}")
    report = json.loads(runs[64].predict_report.read_text())
    names = [layer[kind] for layer in report["techs"]["nbiot"]["layers"] for kind in ("rsrp", "class")]
    assert len(names) == 8
    for name in names:
        small, small_t, _ = read(runs[64].raster_dir / name)
        large, large_t, large_ds = read(runs[256].raster_dir / name)
        col = round((small_t.c - large_t.c) / 200)
        row = round((large_t.f - small_t.f) / 200)
        window = large[row:row + small.shape[0], col:col + small.shape[1]]
        assert window.shape == small.shape
        assert np.array_equal(window.view(np.uint8), small.view(np.uint8))  # bit for bit
        outside = large.copy()
        outside[row:row + small.shape[0], col:col + small.shape[1]] = large_ds.nodata
        assert (outside == large_ds.nodata).all()
        assert (small != large_ds.nodata).any()


def test_east_pointing_sector_reaches_further_east_by_the_pattern(tmp_path):
    """Azimuth 90°: the east edge and the west edge are where the pattern puts them.

    On the row through the site the bearing is 90° (boresight, A_H = 0) to the east
    and 270° (A_H = −Am, the front-to-back limit) to the west. Each edge distance
    solves rs_eirp + A(φ, θ(d)) − PL(d) = threshold; measured to within one pixel.
    """
    profile = PROFILES["nbiot"]
    res = 50.0
    sectors = make_sectors([{"lon": 105.0, "lat": 30.0, "azimuth_deg": 90.0, "environment": "urban"}])
    predict(sectors, tmp_path, techs=("nbiot",), resolution_m=res, config=make_config(),
            scheduler="synchronous", tile_size_px=256)
    cls, transform, _ = read(RunLayout(tmp_path).coverage_class("nbiot"))
    (x_site,), (y_site,) = project_lonlat([105.0], [30.0])
    assert abs(x_site) < 1e-6  # central meridian: grid north = true north
    row = int((transform.f - y_site) // res)
    xs = transform.c + (np.arange(cls.shape[1]) + 0.5) * res
    covered = (cls[row] == 1) | (cls[row] == 2)
    east = xs[covered & (xs > x_site)].max() - x_site
    west = x_site - xs[covered & (xs < x_site)].min()
    rs_eirp = profile.rs_eirp_dbm(55.0, 942.5)
    threshold = profile.thresholds_dbm("urban")["outdoor"]
    y_centre = -((row + round(-transform.f / res)) + 0.5) * res
    offset_m = abs(y_centre - y_site)  # the row's centre line is this far from the site

    def pattern(bearing):
        return lambda d: reference_gain_db(
            np.array(float(bearing)), np.degrees(np.arctan2(28.5, d)), 90.0, 65.0, 0.0,
            profile.vertical_beamwidth_deg, profile.front_to_back_db, profile.sla_v_db)

    r_east = _solve_edge_m(rs_eirp, threshold, pl.OKUMURA_HATA_URBAN, 942.5, 30.0, 1.5, pattern(90.0))
    r_west = _solve_edge_m(rs_eirp, threshold, pl.OKUMURA_HATA_URBAN, 942.5, 30.0, 1.5, pattern(270.0))
    assert offset_m <= res / 2
    assert east == pytest.approx(r_east, abs=res)
    assert west == pytest.approx(r_west, abs=res)
    # the front-to-back ratio shrinks the west edge by 10^(−Am / (10 n)) with Hata's slope n
    slope_db = 44.9 - 6.55 * math.log10(30.0)
    assert r_west / r_east == pytest.approx(10 ** (-profile.front_to_back_db / slope_db), rel=0.02)
    assert east > 4 * west


def test_azimuths_are_true_north_not_grid_north(tmp_path):
    """At 120°E grid north is 8.7° off true north; a north-pointing sector follows the meridian."""
    res = 200.0
    sectors = make_sectors([{"lon": 120.0, "lat": 30.0, "azimuth_deg": 0.0, "beamwidth_deg": 30.0}])
    predict(sectors, tmp_path, techs=("nbiot",), resolution_m=res, config=make_config(),
            scheduler="synchronous", tile_size_px=128)
    rsrp, transform, _ = read(RunLayout(tmp_path).rsrp("nbiot"))
    (x_site,), (y_site,) = project_lonlat([120.0], [30.0])
    rows, cols = np.nonzero(rsrp != RSRP_NODATA_DBM)
    x = transform.c + (cols + 0.5) * res - x_site
    y = transform.f - (rows + 0.5) * res - y_site
    far = np.hypot(x, y) > 5_000
    strongest = np.argmax(np.where(far, rsrp[rows, cols], -np.inf))
    bearing = math.degrees(math.atan2(x[strongest], y[strongest]))
    expected = float(grid_north_bearing_deg([120.0], [30.0])[0])
    assert expected == pytest.approx(-8.66, abs=0.05)
    assert bearing == pytest.approx(expected, abs=2.5)


def test_combined_layer_is_at_least_every_operator(tmp_path):
    rows = [
        {"lon": 105.00, "lat": 30.00, "operator": "CT"},
        {"lon": 105.08, "lat": 30.02, "operator": "CM", "azimuth_deg": 270.0},
        {"lon": 104.95, "lat": 29.95, "operator": "CM", "environment": "dense_urban"},
    ]
    predict(make_sectors(rows), tmp_path, techs=("nbiot",), resolution_m=250, config=make_config(),
            scheduler="synchronous", tile_size_px=64)
    layout = RunLayout(tmp_path)
    all_rsrp, _, _ = read(layout.rsrp("nbiot"))
    all_cls, _, _ = read(layout.coverage_class("nbiot"))
    op_rsrp = [read(layout.rsrp("nbiot", op))[0] for op in ("CT", "CM")]
    op_cls = [read(layout.coverage_class("nbiot", op))[0] for op in ("CT", "CM")]
    for rsrp, cls in zip(op_rsrp, op_cls, strict=True):
        assert (all_rsrp >= rsrp).all()
        covered = (cls == 1) | (cls == 2)
        assert ((all_cls[covered] == 1) | (all_cls[covered] == 2)).all()
        assert (all_cls[cls == 2] == 2).all()
    assert np.array_equal(all_rsrp, np.maximum(*op_rsrp))
    both_nodata = (op_cls[0] == CLASS_NODATA) & (op_cls[1] == CLASS_NODATA)
    assert np.array_equal(all_cls == CLASS_NODATA, both_nodata)
    # somewhere the union covers more than either operator alone
    union = np.count_nonzero((all_cls == 1) | (all_cls == 2))
    assert union > max(np.count_nonzero((c == 1) | (c == 2)) for c in op_cls)


def test_report_json_has_the_contract_keys(tmp_path):
    rows = [{"lon": 105.0, "lat": 30.0, "operator": "CU"},
            {"lon": 105.1, "lat": 30.0, "operator": "CT", "tech": "redcap", "freq_mhz": 3500.0,
             "eirp_dbm": 63.0, "azimuth_deg": 45.0}]
    report = predict(make_sectors(rows), tmp_path, resolution_m=500, config=make_config(),
                     scheduler="synchronous", tile_size_px=32)
    on_disk = json.loads(RunLayout(tmp_path).predict_report.read_text(encoding="utf-8"))
    run_only = {"timings_s", "evaluations_computed"}  # what the run did: returned, not in the file
    assert on_disk == json.loads(json.dumps({k: v for k, v in report.items() if k not in run_only}))
    assert set(on_disk) == {"grid", "techs", "warnings", "evaluations"}
    assert report["evaluations_computed"] == report["evaluations"]
    assert set(on_disk["grid"]) == {"crs_wkt", "resolution_m", "width", "height", "transform", "tile_size_px"}
    assert "Albers" in on_disk["grid"]["crs_wkt"] and len(on_disk["grid"]["transform"]) == 6
    assert set(on_disk["techs"]) == {"nbiot", "redcap"}
    for entry in on_disk["techs"].values():
        assert {"thresholds_dbm", "typical_cell_radius_m", "layers", "sectors_capped_at_horizon"} <= set(entry)
        assert {"outdoor", "deep", "ce"} <= set(entry["thresholds_dbm"])
        assert entry["thresholds_dbm"]["deep"] > entry["thresholds_dbm"]["outdoor"]
        assert set(entry["typical_cell_radius_m"]) == {"dense_urban", "urban", "suburban", "rural"}
        radii = entry["typical_cell_radius_m"]
        assert 0 < radii["dense_urban"] <= radii["urban"] < radii["rural"]
        for layer in entry["layers"]:
            assert set(layer) == {"operator", "rsrp", "class", "sectors", "evaluations", "fingerprint", "reused"}
            assert len(layer["fingerprint"]) == 64 and layer["reused"] is False
            assert (RunLayout(tmp_path).raster_dir / layer["rsrp"]).exists()
            assert (RunLayout(tmp_path).raster_dir / layer["class"]).exists()
    assert set(on_disk["techs"]["nbiot"]["thresholds_dbm"]["ce"]) == {"CE0", "CE1", "CE2"}
    assert [layer["operator"] for layer in on_disk["techs"]["nbiot"]["layers"]] == ["CU", "all"]
    first = on_disk["techs"]["redcap"]["layers"][0]
    assert {k: first[k] for k in ("operator", "rsrp", "class", "sectors")} == {
        "operator": "CT", "rsrp": "redcap_ct_rsrp.tif", "class": "redcap_ct_class.tif", "sectors": 1}
    assert on_disk["evaluations"] == sum(
        layer["evaluations"] for entry in on_disk["techs"].values() for layer in entry["layers"][:-1])
    assert on_disk["evaluations"] > 0 and report["timings_s"]["total"] > 0


def test_rasters_are_cogs_with_overviews_and_sparse_tiles_stay_nodata(tmp_path):
    """Two sites 700 km apart at 1 km: a >512 px COG whose empty tiles are nodata."""
    sectors = make_sectors([{"lon": 100.0, "lat": 30.0}, {"lon": 107.3, "lat": 30.0}])
    predict(sectors, tmp_path, techs=("nbiot",), resolution_m=1000, config=make_config(),
            scheduler="synchronous", tile_size_px=16)
    for path, dtype, nodata in ((RunLayout(tmp_path).rsrp("nbiot"), "float32", RSRP_NODATA_DBM),
                                (RunLayout(tmp_path).coverage_class("nbiot"), "uint8", CLASS_NODATA)):
        with rasterio.open(path) as ds:
            assert ds.width > 512
            assert ds.dtypes[0] == dtype and ds.nodata == nodata
            assert ds.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
            assert ds.compression.name.lower() == "zstd"
            assert ds.block_shapes[0] == (512, 512)
            assert ds.overviews(1)
            assert ds.crs.to_dict().get("proj") == "aea"
            data = ds.read(1)
        middle = data[:, data.shape[1] // 2 - 20: data.shape[1] // 2 + 20]
        assert (middle == nodata).all()
        assert (data != nodata).sum() > 2 * 100  # both sites' discs are there
    assert not list(RunLayout(tmp_path).raster_dir.glob(".*"))  # no working files left


def test_overviews_are_the_nodata_aware_mean_and_the_centre_class(tmp_path):
    """The COGs' first overview, computed tile by tile, equals the definition over the full raster."""
    sectors = make_sectors([{"lon": 100.0, "lat": 30.0}, {"lon": 103.0, "lat": 30.0}])
    predict(sectors, tmp_path, techs=("nbiot",), resolution_m=500, config=make_config(),
            scheduler="synchronous", tile_size_px=32)
    layout = RunLayout(tmp_path)
    with rasterio.open(layout.rsrp("nbiot")) as ds:
        assert ds.overviews(1)[0] == 2
        rsrp = ds.read(1).astype(np.float64)
        h, w = ds.height // 2, ds.width // 2
        overview = ds.read(1, out_shape=(h, w))
    with rasterio.open(layout.coverage_class("nbiot")) as ds:
        cls = ds.read(1)
        class_overview = ds.read(1, out_shape=(h, w))
    valid = rsrp != RSRP_NODATA_DBM
    total = np.where(valid, rsrp, 0).reshape(h, 2, w, 2).sum(axis=(1, 3))
    count = valid.reshape(h, 2, w, 2).sum(axis=(1, 3))
    with np.errstate(invalid="ignore"):
        expected = np.where(count > 0, total / np.maximum(count, 1), RSRP_NODATA_DBM)
    assert np.array_equal(overview == RSRP_NODATA_DBM, count == 0)
    assert 0 < (count > 0).sum() < count.size
    assert np.max(np.abs(overview - expected)[count > 0]) <= 1 / 256 + 1e-9  # the 1/128 dB step
    assert np.array_equal(class_overview, cls[1::2, 1::2])
    # the full-resolution values are whole steps of 1/128 dB
    assert np.array_equal(rsrp[valid] * 128, np.round(rsrp[valid] * 128))


def test_tile_overviews_by_hand():
    rsrp = np.full((4, 4), RSRP_NODATA_DBM, dtype=np.float32)
    rsrp[0, 0], rsrp[0, 1], rsrp[1, 1] = -90.0, -100.0, -95.5
    rsrp[3, 3] = -80.0
    cls = np.arange(16, dtype=np.uint8).reshape(4, 4)
    (r2, c2), (r4, c4) = tile_overviews(rsrp, cls, [2, 4])
    assert r2.tolist() == [[-95.1640625, RSRP_NODATA_DBM], [RSRP_NODATA_DBM, -80.0]]  # -95.1666… in 1/128 dB
    assert c2.tolist() == [[5, 7], [13, 15]]
    assert r4.tolist() == [[-91.375]] and c4.tolist() == [[10]]


def test_same_inputs_give_byte_identical_files(tmp_path):
    sectors = make_sectors([{"lon": 105.0, "lat": 30.0, "azimuth_deg": 30.0},
                            {"lon": 105.05, "lat": 30.02, "operator": "CBN"}])
    for run in ("a", "b"):
        predict(sectors, tmp_path / run, techs=("nbiot",), resolution_m=300, config=make_config(),
                scheduler="synchronous", tile_size_px=32)
    files = sorted(p.name for p in (tmp_path / "a" / "raster").glob("*.tif"))
    assert len(files) == 6
    for name in files:
        assert sha256(tmp_path / "a" / "raster" / name) == sha256(tmp_path / "b" / "raster" / name)


@pytest.mark.slow
@pytest.mark.parametrize("scheduler", ["processes", "threads"])
def test_dask_schedulers_equal_the_synchronous_run(tmp_path, scheduler):
    """A 2-worker LocalCluster (and threads) writes the same bytes as the plain loop."""
    rows = [{"lon": 105.0 + 0.1 * i, "lat": 30.0, "operator": ("CT", "CM")[i % 2]} for i in range(4)]
    sectors = make_sectors(rows)
    for run, sched in (("sync", "synchronous"), ("dask", scheduler)):
        seen = []
        predict(sectors, tmp_path / run, techs=("nbiot",), resolution_m=500, config=make_config(),
                scheduler=sched, tile_size_px=16, progress=lambda done, total, seen=seen: seen.append((done, total)))
        assert seen and seen[-1][0] == seen[-1][1] == len(seen) > 1
    for path in sorted((tmp_path / "sync" / "raster").glob("*.tif")):
        assert sha256(path) == sha256(tmp_path / "dask" / "raster" / path.name), path.name


def _malloc_environ():
    import os

    return {name: os.environ.get(name) for name in WORKER_MALLOC_ENV}


@pytest.mark.slow
def test_the_worker_processes_keep_freed_tile_arrays_in_their_heap(monkeypatch):
    """Our LocalCluster's workers start with glibc thresholds that keep tile-sized arrays
    (dask's nanny default would unmap and fault them in again for every tile), even when
    an earlier nanny left its 64 KiB in this process's environment, which is left as it was."""
    import os

    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "65536")
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    executor = _executor("processes", 1)
    try:
        seen = executor.client.run(_malloc_environ)
    finally:
        executor.close()
    assert list(seen.values()) == [WORKER_MALLOC_ENV]
    assert os.environ["MALLOC_TRIM_THRESHOLD_"] == "65536" and "MALLOC_MMAP_THRESHOLD_" not in os.environ


# ---------------------------------------------------------------- inputs and warnings


def test_no_sectors_at_all_is_an_empty_coverage_error(tmp_path):
    sectors = make_sectors([{"lon": 105.0, "lat": 30.0, "tech": "redcap", "freq_mhz": 3500.0}])
    with pytest.raises(EmptyCoverageError, match="nbiot"):
        predict(sectors, tmp_path, techs=("nbiot",), config=make_config(), scheduler="synchronous")
    with pytest.raises(EmptyCoverageError):
        predict(sectors, tmp_path, operators=("CM",), config=make_config(), scheduler="synchronous")


def test_tech_without_sectors_is_skipped_with_a_note(tmp_path):
    sectors = make_sectors([{"lon": 105.0, "lat": 30.0}])
    report = predict(sectors, tmp_path, resolution_m=500, config=make_config(), scheduler="synchronous",
                     tile_size_px=32)
    assert set(report["techs"]) == {"nbiot"}
    assert any("redcap" in w and "skipped" in w for w in report["warnings"])
    assert not RunLayout(tmp_path).rsrp("redcap").exists()


def test_model_validity_issues_are_reported_not_raised(tmp_path):
    """A rural Hata sector reaches beyond Hata's 20 km: recorded with a sector count."""
    sectors = make_sectors([{"lon": 105.0, "lat": 30.0, "environment": "rural"},
                            {"lon": 105.1, "lat": 30.0, "environment": "rural"}])
    report = predict(sectors, tmp_path, techs=("nbiot",), resolution_m=1000, config=make_config(),
                     scheduler="synchronous", tile_size_px=64)
    hata = [w for w in report["warnings"] if w.startswith("nbiot:") and "(2 sectors)" in w]
    assert hata, report["warnings"]


def test_blank_environment_is_inferred_and_blank_values_defaulted(tmp_path):
    sectors = make_sectors([{"lon": 105.0, "lat": 30.0, "environment": None, "height_m": np.nan}])
    report = predict(sectors, tmp_path, techs=("nbiot",), resolution_m=1000, config=make_config(),
                     scheduler="synchronous", tile_size_px=32)
    assert any("height_m" in w and "default" in w for w in report["warnings"])
    assert report["evaluations"] > 0


def test_sectors_from_a_parquet_path_and_bad_inputs(tmp_path):
    sectors = make_sectors([{"lon": 105.0, "lat": 30.0}])
    path = tmp_path / "sectors.parquet"
    sectors.to_parquet(path)
    report = predict(path, tmp_path / "run", techs=("nbiot",), resolution_m=1000, config=make_config(),
                     scheduler="synchronous", tile_size_px=32)
    assert report["techs"]["nbiot"]["layers"][0]["operator"] == "CT"
    with pytest.raises(SchemaError, match="eirp_dbm"):
        predict(sectors.drop(columns="eirp_dbm"), tmp_path / "x", config=make_config(), scheduler="synchronous")
    with pytest.raises(ValueError, match="resolution_m"):
        predict(sectors, tmp_path / "x", resolution_m=20, config=make_config(), scheduler="synchronous")
    with pytest.raises(ValueError, match="scheduler"):
        predict(sectors, tmp_path / "x", config=make_config(), scheduler="nope")


# ---------------------------------------------------------------- kernel path loss and the horizon


def test_kernel_path_loss_constants_equal_the_library_on_every_model():
    """Per-sector constants + one log10 per pixel = path_loss_db, to 1e-9 dB.

    Over distances from 0 to 60 km (incl. each side of the TR 38.901 breakpoints and the
    clamp distances), heights below the 1 m clamp and above, and every model id.
    """
    from coverage.predict import _loss_from_coefficients, _sector_loss_coefficients

    rng = np.random.default_rng(4)
    for model in sorted(pl.MODEL_NAMES):
        for _ in range(6):
            f = float(rng.uniform(500, 4000) if model >= pl.TR38901_RMA else rng.uniform(150, 2000))
            hb, hu = float(rng.uniform(0.5, 80)), float(rng.choice([0.5, 1.5, 3.0, 15.0, 22.0]))
            kind, *c = _sector_loss_coefficients(model, f, hb, hu)
            bp = max(c[1], 1.0) if kind == 2 else 1000.0
            d = np.concatenate([rng.uniform(0, 60_000, 200), [0.0, 1.0, 10.0, 100.0, bp * (1 - 1e-9), bp,
                                                             bp * (1 + 1e-9)]])
            got = np.array([_loss_from_coefficients(kind, model, x, hu, *c) for x in d])
            expect = pl.path_loss(model, d, f, hb, hu)
            assert np.max(np.abs(got - expect)) < 1e-9, (pl.MODEL_NAMES[model], f, hb, hu)


def test_radio_horizon_caps_the_reach_of_a_rural_sector(tmp_path):
    """Rural Hata open area at 164 dB MCL would reach ~100 km; coverage stops at the horizon.

    d_km = 4.12 (√30 + √1.5) = 27.6 km. Every pixel with a value is within it, the
    coverage reaches it (the cap, not the model, sets the edge), and report.json
    counts the capped sector. An urban sector (12.6 km) is not capped.
    """
    from coverage.predict import radio_horizon_m

    res = 500.0
    horizon = float(radio_horizon_m(30.0, 1.5))
    assert horizon == pytest.approx(4120.0 * (math.sqrt(30.0) + math.sqrt(1.5)))
    profile = PROFILES["nbiot"]
    model_reach = pl.max_range_m(pl.OKUMURA_HATA_RURAL, profile.max_path_loss_db(55.0, 942.5, "rural"),
                                 942.5, 30.0, 1.5)
    assert model_reach > 2 * horizon
    sectors = make_sectors([{"lon": 105.0, "lat": 35.0, "environment": "rural"},
                            {"lon": 106.0, "lat": 35.0, "environment": "urban", "operator": "CM"}])
    report = predict(sectors, tmp_path, techs=("nbiot",), resolution_m=res, config=make_config(),
                     scheduler="synchronous", tile_size_px=64)
    assert report["techs"]["nbiot"]["sectors_capped_at_horizon"] == 1
    assert report["techs"]["nbiot"]["typical_cell_radius_m"]["rural"] == pytest.approx(horizon)
    rsrp, transform, _ = read(RunLayout(tmp_path).rsrp("nbiot", "CT"))
    (x_site,), (y_site,) = project_lonlat([105.0], [35.0])
    rows, cols = np.nonzero(rsrp != RSRP_NODATA_DBM)
    d = np.hypot(transform.c + (cols + 0.5) * res - x_site, transform.f - (rows + 0.5) * res - y_site)
    assert d.max() <= horizon
    assert d.max() > horizon - res
    # inside the horizon the rural sector still covers: the cap, not the link budget, ends it
    cls, _, _ = read(RunLayout(tmp_path).coverage_class("nbiot", "CT"))
    assert (cls[rows, cols][d > horizon - 2 * res] >= 1).all()
