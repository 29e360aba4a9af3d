"""Terrain and land cover for prediction: the sources, and what each sector needs of them.

:func:`resolve_terrain` turns the ``dem``/``clutter`` arguments of
:func:`coverage.predict.predict` into a :class:`TerrainSetup` (the opened sources, the
class table and the terrain lattice step), or None for today's flat-earth prediction
with the sectors' own environments.

:func:`sector_terrain` adds to one technology's kernel arrays (main process, before
the sectors are binned into tiles, since it changes their reach):

* ``ground_m``: the DEM at the site (bilinear), so ``h_ts_m = ground_m + height_m``;
* ``heff_m``: the site's effective height per azimuth bin of
  :data:`~coverage.terrain.sweep.HEFF_BINS` (``h_ts`` minus the mean terrain 3-15 km
  along the bin's grid bearing, sampled every :data:`HEFF_SAMPLE_KM` on a 1 km
  lattice of the China Albers plane computed window by window around the sites, so
  the DEM is never read whole; beyond the DEM's edge the edge's heights);
* ``env_index`` and ``model_by_env``: the sector's own environment and its model in
  each receiver environment a land-cover class can choose;
* the reach in each direction (between two bin centres), recomputed so that no pixel
  the sector could reach is left out: the largest distance at which its boresight
  still delivers the outdoor threshold of any environment a pixel can have, with the
  P.1546 ramp of the larger effective height of the two bins (rounded up to
  :data:`HEFF_REACH_QUANTUM_M`; terrain only ever lowers the signal through
  diffraction, but raises it through the effective height: a site on a plateau
  reaches farther), capped at the radio horizon of the largest h1 it gives;
  ``site_reach_by_bearing_m`` is the largest of the sectors sharing the site's
  position, height and frequency (the sweep's table is the site's), ``reach_m`` and
  ``site_reach_m`` their largest over the directions (the disc the tiles are binned
  by; beyond a direction's reach the site's table holds +inf and the kernel skips it).
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field, replace

import numpy as np
from numba import njit, prange

from coverage.errors import ConfigError
from coverage.predict.sectors import RADIO_HORIZON_M_PER_SQRT_M
from coverage.radio import ENVIRONMENTS
from coverage.radio.diffraction import (
    HEFF_MAX_M,
    HEFF_MIN_M,
    hata_height_correction_db,
    ramped_effective_height_m,
)
from coverage.radio.pathloss import path_loss_db
from coverage.terrain.sweep import HEFF_BINS, lattice_bilinear

log = logging.getLogger(__package__)

# P.1546-6 Annex 5 §3.1: the mean terrain height between 3 and 15 km from the site
HEFF_FROM_KM = 3.0
HEFF_TO_KM = 15.0
HEFF_SAMPLE_KM = 1.0
# the lattice the effective heights are sampled on (the national DEM's 30″ is ~0.9 km)
HEFF_LATTICE_STEP_M = 1000.0
# that lattice is computed in windows of this many steps square (~200 km: bounded memory)
HEFF_BAND_ROWS = 200
# effective heights are rounded up to this before the reach in each direction is sought
HEFF_REACH_QUANTUM_M = 8.0
SOURCE_NAMES = ("default", "none")


@dataclass(frozen=True)
class TerrainSetup:
    """What the prediction uses of terrain and land cover (picklable: sent to the tile tasks).

    Attributes
    ----------
    dem : DemSource or None
        None: flat ground at 0 m (land cover alone).
    landcover : LandCoverSource or None
        None: every pixel takes its best server's own environment.
    class_table : ClassTable or None
    lattice_k : int
        The terrain lattice is every ``lattice_k``-th pixel centre (step
        ``lattice_k × resolution_m``).
    diffraction_weight : float
    earth_curvature_per_km : float
    class_offsets_db : dict
        ``{tech: {class code: dB}}`` of ``[terrain.class_offsets_db]`` (calibrated), empty by default.
    """

    dem: object | None
    landcover: object | None
    class_table: object | None
    lattice_k: int
    resolution_m: float
    diffraction_weight: float
    earth_curvature_per_km: float
    class_offsets_db: dict = field(default_factory=dict)

    @property
    def lattice_step_m(self) -> float:
        return self.lattice_k * self.resolution_m

    def fingerprint(self) -> dict:
        """What the layers depend on (their sha256, the class table, the lattice)."""
        return {
            "dem": None if self.dem is None else self.dem.sha256,
            "landcover": None if self.landcover is None else self.landcover.sha256,
            "class_table": None if self.class_table is None else self.class_table.fingerprint(),
            "lattice_step_m": self.lattice_step_m,
        }

    def report(self, filled_share: float | None) -> dict:
        """The ``terrain`` entry of ``raster/report.json``."""
        dem = None if self.dem is None else {**_jsonable(self.dem.info()), "filled_share": filled_share}
        clutter = None
        if self.landcover is not None:
            clutter = {**_jsonable(self.landcover.info()), "class_table": self.class_table.name}
        return {"dem": dem, "clutter": clutter, "lattice_step_m": self.lattice_step_m,
                "diffraction_weight": self.diffraction_weight,
                "earth_curvature_per_km": self.earth_curvature_per_km}


def _jsonable(info: dict) -> dict:
    out = {}
    for key, value in info.items():
        if isinstance(value, tuple):
            value = list(value)
        elif not isinstance(value, (str, int, float, bool, list, dict, type(None))):
            value = str(value)
        out[key] = value
    return out


def open_terrain_source(spec, kind: str):
    """The source a ``dem`` (``kind="dem"``) or ``clutter`` (``kind="clutter"``) argument names.

    None or ``"none"``: None; ``"default"``: the embedded data
    (:mod:`coverage.terrain.data`); a path: :func:`~coverage.terrain.dem.open_dem` or
    :func:`~coverage.terrain.landcover.open_landcover`; an opened source as it is.

    Raises
    ------
    TerrainSourceError
        The file cannot be opened, or the embedded data is not installed.
    """
    if spec is None:
        return None
    if not isinstance(spec, (str, os.PathLike)):
        return spec  # an opened source
    text = str(spec)
    if text == "none":
        return None
    from coverage.terrain import data

    if kind == "dem":
        if text == "default":
            return data.open_default_dem()
        from coverage.terrain.dem import open_dem

        return open_dem(spec)
    if text == "default":
        return data.open_default_landcover()
    from coverage.terrain.landcover import open_landcover

    return open_landcover(spec)


def resolve_terrain(dem, clutter, config, resolution_m: float) -> TerrainSetup | None:
    """The :class:`TerrainSetup` for ``dem`` and ``clutter`` (None, ``"none"``, ``"default"``, a path or a source).

    Raises
    ------
    TerrainSourceError
        A source cannot be opened (the message names it; for ``default``: run
        ``covmap data fetch``).
    ConfigError
        The class table cannot be guessed from the land cover's classes.
    """
    from coverage.radio.diffraction import earth_curvature_per_km
    from coverage.terrain.clutter import builtin_table, guess_table, load_class_table

    dem_source = open_terrain_source(dem, "dem")
    landcover = open_terrain_source(clutter, "clutter")
    if dem_source is None and landcover is None:
        return None
    terrain = config.terrain
    table = None
    if landcover is not None:
        spec = terrain.clutter_table
        if spec == "auto":
            spec = "igbp" if str(clutter) == "default" else guess_table(_class_sample(landcover),
                                                                       source=str(landcover.path))
        table = builtin_table(spec) if spec in ("worldcover", "igbp") else load_class_table(spec)
    step_m = float(terrain.sweep_step_m)
    if step_m <= 0:
        dem_m = 0.0 if dem_source is None else min(dem_source.info()["resolution_m"])
        step_m = max(resolution_m, dem_m)
    lattice_k = max(1, int(round(step_m / resolution_m)))
    return TerrainSetup(dem=dem_source, landcover=landcover, class_table=table, lattice_k=lattice_k,
                        resolution_m=float(resolution_m), diffraction_weight=float(terrain.diffraction_weight),
                        earth_curvature_per_km=earth_curvature_per_km(terrain.earth_k_factor),
                        class_offsets_db=dict(getattr(terrain, "class_offsets_db", {})))


def run_terrain_setup(report: dict, config, resolution_m: float) -> TerrainSetup | None:
    """What a later step predicting again for a run uses (plan, calibration): the run's :class:`~coverage.predict.terrain_sites.TerrainSetup` from its report, or None (flat run).

    A source whose sha256 is that of the embedded DEM or land cover is opened as
    ``"default"`` (with the nodata and CRS :mod:`coverage.terrain.data` assigns: opened
    by its path alone, the DEM's −999 sea fill would be read as ground); any other
    by its path, and its sha256 must be the one the run recorded. The class table is
    the one the run used when it is a built-in one.

    Raises
    ------
    TerrainSourceError
        A source is missing or has changed since the run.
    """
    from coverage.errors import TerrainSourceError
    from coverage.terrain import data

    entry = report.get("terrain") or {}
    dem, clutter = entry.get("dem"), entry.get("clutter")
    if not dem and not clutter:
        return None

    def spec(used, item):
        if not used:
            return None
        return "default" if used.get("sha256") == item.sha256 else used["path"]

    if clutter and clutter.get("class_table") in ("worldcover", "igbp"):
        config = replace(config, terrain=replace(config.terrain, clutter_table=clutter["class_table"]))
    setup = resolve_terrain(spec(dem, data.DEFAULT_DEM), spec(clutter, data.DEFAULT_LANDCOVER), config,
                            resolution_m)
    for name, used, source in (("DEM", dem, setup.dem), ("land cover", clutter, setup.landcover)):
        if used and source.sha256 != used["sha256"]:
            raise TerrainSourceError(f"the run's {name} {used['path']} has changed since the run "
                                     f"(sha256 {source.sha256[:12]}… not {used['sha256'][:12]}…)")
    if not math.isclose(setup.lattice_step_m, float(entry.get("lattice_step_m", setup.lattice_step_m))):
        log.warning("terrain lattice %g m differs from the run's %g m (configuration changed?)",
                    setup.lattice_step_m, entry["lattice_step_m"])
    return setup


def _class_sample(landcover) -> list[int]:
    """The class codes of a land-cover raster, from a decimated read (for guessing its legend)."""
    import rasterio

    with rasterio.open(landcover.path) as ds:
        scale = max(1, max(ds.width, ds.height) // 2048)
        data = ds.read(1, out_shape=(max(1, ds.height // scale), max(1, ds.width // scale)))
    return sorted(int(v) for v in np.unique(data))


def check_sites(setup: TerrainSetup, lon_deg, lat_deg) -> None:
    """Every site, and the extent of the sites, inside the DEM and the land cover.

    Raises
    ------
    TerrainCoverageError
        Naming the file, the extent it covers and the part of the sites' extent it
        does not (or the sites outside it). Pixels within reach of a site but beyond
        the source's edge take the edge's values, as nodata does (counted as filled).
    """
    lon = np.asarray(lon_deg, dtype=np.float64)
    lat = np.asarray(lat_deg, dtype=np.float64)
    for source in (setup.dem, setup.landcover):
        if source is None or lon.size == 0:
            continue
        source.check_covers(float(lon.min()), float(lat.min()), float(lon.max()), float(lat.max()))
        source.check_points_inside(lon, lat)


@dataclass(frozen=True)
class TechTerrain:
    """Per-technology lookups sent with each tile task (see :mod:`coverage.predict.terrain_tile`)."""

    env_lut: np.ndarray  # uint8[256]: land-cover class -> pixel environment code
    extra_lut: np.ndarray  # float64[256]: class -> foliage + extra loss, dB
    outdoor_by_env: np.ndarray  # float64[4]
    deep_by_env: np.ndarray  # float64[4]


def tech_terrain(setup: TerrainSetup, profile) -> TechTerrain:
    """The land-cover lookups of one technology (foliage at its default band) and its thresholds."""
    from coverage.terrain.clutter import SECTOR, environment_lut, extra_loss_lut

    if setup.class_table is None:
        env_lut = np.full(256, SECTOR, dtype=np.uint8)
        extra = np.zeros(256, dtype=np.float64)
    else:
        env_lut = environment_lut(setup.class_table)
        extra = extra_loss_lut(setup.class_table, profile.freq_mhz, profile.ue_height_m,
                               setup.class_offsets_db.get(profile.tech))
    thresholds = [profile.thresholds_dbm(env) for env in ENVIRONMENTS]
    return TechTerrain(env_lut=np.ascontiguousarray(env_lut, dtype=np.uint8),
                       extra_lut=np.ascontiguousarray(extra, dtype=np.float64),
                       outdoor_by_env=np.array([t["outdoor"] for t in thresholds], dtype=np.float64),
                       deep_by_env=np.array([t["deep"] for t in thresholds], dtype=np.float64))


@njit(cache=True)
def _heff_from_lattice(z, x_origin, y_origin, step, sx, sy, h_ts, out, n_bins, from_km, to_km, sample_km):
    n_samples = int(round((to_km - from_km) / sample_km)) + 1
    for s in range(sx.shape[0]):
        for b in range(n_bins):
            theta = 2.0 * math.pi * b / n_bins
            ux = math.sin(theta)
            uy = math.cos(theta)
            total = 0.0
            for k in range(n_samples):
                r_m = 1000.0 * (from_km + k * sample_km)
                total += lattice_bilinear(z, x_origin, y_origin, step, sx[s] + r_m * ux, sy[s] + r_m * uy)
            out[s, b] = h_ts[s] - total / n_samples


def effective_heights_m(dem, x_m, y_m, h_ts_m) -> np.ndarray:
    """Each site's height above the mean terrain 3-15 km away, per grid-bearing bin, metres.

    Shape (sites, :data:`HEFF_BINS`); bin ``b`` looks along grid bearing
    ``b · 360 / HEFF_BINS`` degrees. The terrain comes from a lattice of
    :data:`HEFF_LATTICE_STEP_M` computed in windows around the sites, so memory stays bounded.
    """
    n = x_m.size
    out = np.empty((n, HEFF_BINS), dtype=np.float64)
    if n == 0:
        return out
    step = HEFF_LATTICE_STEP_M
    margin = HEFF_TO_KM * 1000.0 + 2.0 * step
    # sites grouped by square windows of HEFF_BAND_ROWS lattice steps: only land with sites is read
    window = HEFF_BAND_ROWS * step
    cell = np.floor(x_m / window).astype(np.int64) * 1_000_003 + np.floor(-y_m / window).astype(np.int64)
    order = np.argsort(cell, kind="stable")
    sorted_cell = cell[order]
    starts = np.flatnonzero(np.r_[True, sorted_cell[1:] != sorted_cell[:-1]])
    ends = np.r_[starts[1:], n]
    for a, b in zip(starts, ends, strict=True):
        idx = order[a:b]
        x0 = math.floor((x_m[idx].min() - margin) / step)
        x1 = math.ceil((x_m[idx].max() + margin) / step)
        j0 = math.floor((-y_m[idx].max() - margin) / step)
        j1 = math.ceil((-y_m[idx].min() + margin) / step)
        z, _ = dem.lattice(x0 * step, -j0 * step, step, x1 - x0 + 1, j1 - j0 + 1, edge=True)
        z = np.where(np.isfinite(z), z, 0.0).astype(np.float64)
        part = np.empty((idx.size, HEFF_BINS), dtype=np.float64)
        _heff_from_lattice(z, x0 * step, -j0 * step, step, np.ascontiguousarray(x_m[idx]),
                           np.ascontiguousarray(y_m[idx]), np.ascontiguousarray(h_ts_m[idx]), part,
                           HEFF_BINS, HEFF_FROM_KM, HEFF_TO_KM, HEFF_SAMPLE_KM)
        out[idx] = part
    return out


_REACH_SCAN_POINTS = 192
# beyond this the reach is not looked for (a 200 m effective height's radio horizon is 63 km)
_REACH_UPPER_M = 100_000.0


@njit(cache=True)
def _ramped_reach_scalar_m(model, budget_db, freq_mhz, h_a_m, h_eff_max_m, h_ue_m, hata):
    """Largest distance where a sector's boresight still meets ``budget_db`` and the radio horizon.

    The loss is the kernel's: the model at the antenna's height above ground plus, for
    the Hata family, the effective-height change with the P.1546 ramp of the site's
    highest effective height (no direction has a higher one, and the change only
    falls as h1 rises), so no pixel the sector can cover is farther. The horizon is
    that of h1 at the distance (``4.12 (√h1 + √h_ue)`` km).
    """
    d_min = 10.0
    ratio = math.log(_REACH_UPPER_M / d_min) / (_REACH_SCAN_POINTS - 1)
    last_ok = 0.0
    next_bad = d_min
    ok_prev = False
    for i in range(_REACH_SCAN_POINTS + 2):
        if i < _REACH_SCAN_POINTS:
            d = d_min * math.exp(ratio * i)
        else:  # the ends of the ramp, where the loss's slope changes
            d = 1000.0 * (HEFF_FROM_KM if i == _REACH_SCAN_POINTS else HEFF_TO_KM)
        ok = _reach_ok(model, budget_db, freq_mhz, h_a_m, h_eff_max_m, h_ue_m, hata, d)
        if ok and d > last_ok:
            last_ok = d
            ok_prev = True
    if not ok_prev:
        return 0.0
    # the first scan point beyond the last one that met the budget, then bisect to 1 mm
    next_bad = _REACH_UPPER_M
    for i in range(_REACH_SCAN_POINTS):
        d = d_min * math.exp(ratio * i)
        if d > last_ok:
            next_bad = d
            break
    if last_ok >= _REACH_UPPER_M:
        return _REACH_UPPER_M
    lo = last_ok
    hi = next_bad
    for _ in range(200):
        if hi - lo <= 1e-3:
            break
        mid = 0.5 * (lo + hi)
        if _reach_ok(model, budget_db, freq_mhz, h_a_m, h_eff_max_m, h_ue_m, hata, mid):
            lo = mid
        else:
            hi = mid
    return hi


@njit(cache=True, inline="always")
def _reach_ok(model, budget_db, freq_mhz, h_a_m, h_eff_max_m, h_ue_m, hata, d_m):
    d_km = d_m / 1000.0
    h1 = ramped_effective_height_m(h_a_m, h_eff_max_m, d_km) if hata else h_a_m
    loss = path_loss_db(model, d_m, freq_mhz, h_a_m, h_ue_m)
    if hata:
        loss += hata_height_correction_db(h1, h_a_m, d_km)
    horizon_m = RADIO_HORIZON_M_PER_SQRT_M * (math.sqrt(max(h1, 0.0)) + math.sqrt(max(h_ue_m, 0.0)))
    return loss <= budget_db and d_m <= horizon_m


@njit(cache=True, parallel=True)
def _ramped_reach_many(models, budgets, freqs, h_a, h_eff_max, h_ue_m, hata):
    out = np.empty(models.size)
    for i in prange(models.size):
        out[i] = _ramped_reach_scalar_m(models[i], budgets[i], freqs[i], h_a[i], h_eff_max[i], h_ue_m, hata[i])
    return out


def reach_by_bearing_m(models, budgets_db, freq_mhz, h_a_m, heff_quanta, ue_height_m) -> np.ndarray:
    """The reach of each sector (rows) in each direction (columns of ``heff_quanta``), metres.

    ``heff_quanta`` are effective heights in units of :data:`HEFF_REACH_QUANTUM_M`
    (rounded up). Each distinct (model, budget, frequency, height, effective height) is
    computed once (:func:`_ramped_reach_scalar_m`); a national run has a few hundred
    thousand of them for its 54 million sector-directions.
    """
    import pandas as pd

    from coverage.radio.pathloss import COST231_HATA_RURAL, OKUMURA_HATA_URBAN

    n, bins = heff_quanta.shape
    groups = pd.DataFrame({"m": models, "b": budgets_db, "f": freq_mhz, "h": h_a_m})
    group = groups.groupby(list(groups.columns), sort=False).ngroup().to_numpy().astype(np.int64)
    hata = (groups["m"].to_numpy() >= OKUMURA_HATA_URBAN) & (groups["m"].to_numpy() <= COST231_HATA_RURAL)
    # directions do not matter without the effective height: one quantum per sector
    quanta = np.where(hata[:, None], heff_quanta, 0)
    q_min = int(quanta.min())
    span = int(quanta.max()) - q_min + 1
    key = group[:, None] * span + (quanta - q_min)
    unique_key, inverse = np.unique(key.reshape(-1), return_inverse=True)
    del key
    row = np.empty(int(group.max()) + 1, dtype=np.int64)
    row[group] = np.arange(n)
    first = row[unique_key // span]
    heff_m = ((unique_key % span) + q_min) * HEFF_REACH_QUANTUM_M
    reach = _ramped_reach_many(np.ascontiguousarray(groups["m"].to_numpy(np.int64)[first]),
                               np.ascontiguousarray(groups["b"].to_numpy(np.float64)[first]),
                               np.ascontiguousarray(groups["f"].to_numpy(np.float64)[first]),
                               np.ascontiguousarray(groups["h"].to_numpy(np.float64)[first]),
                               heff_m.astype(np.float64), float(ue_height_m), np.ascontiguousarray(hata[first]))
    return reach[inverse].reshape(n, bins)


def sector_terrain(setup: TerrainSetup, tech: str, profile, lon_deg, lat_deg, x_m, y_m, values: dict,
                   environment, rs_eirp_dbm, ue_height_m: float):
    """Terrain arrays and the terrain-aware reach of one technology's sectors (module docstring).

    Returns ``(arrays, reach_m, capped)``: ``arrays`` holds ``ground_m``, ``h_ts_m``,
    ``heff_m``, ``env_index``, ``model_by_env``, ``site_reach_m``; ``capped`` counts
    the sectors whose reach the radio horizon cut.
    """
    import pandas as pd

    from coverage.predict.sectors import radio_horizon_m
    from coverage.radio.pathloss import COST231_HATA_RURAL, OKUMURA_HATA_URBAN, select_model

    n = x_m.size
    height_m = values["height_m"]
    freq = values["freq_mhz"]
    if setup.dem is not None:
        ground, _ = setup.dem.sample_lonlat(lon_deg, lat_deg)
        if not np.all(np.isfinite(ground)):
            raise ConfigError(f"{int((~np.isfinite(ground)).sum())} site(s) have no terrain height")
    else:
        ground = np.zeros(n, dtype=np.float64)
    h_ts = ground + height_m
    sites = pd.DataFrame({"x": x_m, "y": y_m, "h": h_ts})
    site_id = sites.groupby(["x", "y", "h"], sort=False).ngroup().to_numpy()
    first = np.unique(site_id, return_index=True)[1]
    if setup.dem is not None:
        heff_sites = effective_heights_m(setup.dem, x_m[first], y_m[first], h_ts[first])
    else:
        heff_sites = np.repeat(height_m[first][:, None], HEFF_BINS, axis=1)
    heff = heff_sites[site_id]
    env_index = pd.Categorical(environment, categories=ENVIRONMENTS).codes.astype(np.int64)
    pairs = pd.factorize(freq)
    model_by_env = np.empty((n, len(ENVIRONMENTS)), dtype=np.int64)
    for e, env in enumerate(ENVIRONMENTS):
        model_by_env[:, e] = np.array([select_model(tech, f, env) for f in pairs[1]], dtype=np.int64)[pairs[0]]
    # the reach in each direction: interval b (between bin centres b and b + 1) can have no
    # higher effective height than the larger of its two bins (quantised upward, so that
    # rows repeat and each distinct one is computed once; the reach only grows with it)
    interval_heff = np.maximum(heff, np.roll(heff, -1, axis=1))
    thresholds = [profile.thresholds_dbm(env) for env in ENVIRONMENTS]
    if setup.landcover is not None:
        from coverage.terrain.clutter import extra_loss_lut

        bonus = max(0.0, -float(extra_loss_lut(setup.class_table, profile.freq_mhz, profile.ue_height_m,
                                               setup.class_offsets_db.get(tech)).min()))
        envs = range(len(ENVIRONMENTS))
    else:
        bonus = 0.0
        envs = None
    reach_bins = np.zeros((n, HEFF_BINS), dtype=np.float64)
    quantum = np.ceil(interval_heff / HEFF_REACH_QUANTUM_M).astype(np.int64)
    for e in range(len(ENVIRONMENTS)):
        mine = np.ones(n, dtype=bool) if envs is not None else env_index == e
        if not mine.any():
            continue
        budget = rs_eirp_dbm[mine] - thresholds[e]["outdoor"] + bonus
        reach_bins[mine] = np.maximum(reach_bins[mine], reach_by_bearing_m(
            model_by_env[mine, e], budget, freq[mine], height_m[mine], quantum[mine], ue_height_m))
    # the rounding up is for the loss only: the horizon is that of the largest h1 the unrounded
    # effective height gives (on flat land the antenna's own height, as without terrain)
    hata_family = (model_by_env >= OKUMURA_HATA_URBAN) & (model_by_env <= COST231_HATA_RURAL)
    h1_max = np.where(hata_family.any(axis=1)[:, None],
                      np.minimum(np.maximum(np.maximum(height_m[:, None], interval_heff), np.minimum(height_m, HEFF_MIN_M)[:, None]),
                                 np.maximum(height_m, HEFF_MAX_M)[:, None]),
                      height_m[:, None])
    reach_bins = np.minimum(reach_bins, radio_horizon_m(h1_max, ue_height_m))
    reach = reach_bins.max(axis=1)
    # how many the horizon cut: those whose budget alone would reach beyond the antenna's own horizon
    capped = int(np.count_nonzero(reach >= radio_horizon_m(height_m, ue_height_m) - 1.0))
    key = pd.DataFrame({"s": site_id, "f": freq})
    site_reach = pd.Series(reach).groupby([key["s"], key["f"]], sort=False).transform("max").to_numpy()
    site_bins = pd.DataFrame(reach_bins).groupby([key["s"], key["f"]], sort=False).transform("max").to_numpy()
    arrays = {"ground_m": ground.astype(np.float64), "h_ts_m": h_ts.astype(np.float64), "heff_m": heff,
              "env_index": env_index, "model_by_env": model_by_env, "site_reach_m": site_reach,
              "site_reach_by_bearing_m": site_bins}
    return arrays, reach, capped


TERRAIN_FIELDS = ("ground_m", "h_ts_m", "heff_m", "env_index", "model_by_env", "site_reach_m",
                  "site_reach_by_bearing_m")
