"""Best-server prediction: the per-tile numba kernel and the Dask tile scheduler.

The model of a pixel
--------------------
For every pixel centre ``p`` of a tile and every candidate sector ``s`` whose
reach disc holds ``p`` (2-D distance ``d ≤ reach_m[s]``)::

    rsrp(p, s) = rs_eirp_dbm[s]
                 + relative_gain_db(bearing(s→p), elevation(s→p), antenna of s)
                 - path_loss_db(model_id[s], d, freq_mhz[s], height_m[s], ue_height_m)

with the bearing clockwise from north and the elevation the angle below the
horizon from the antenna (``height_m``) to the device (``ue_height_m``) on flat
ground: ``atan2(height_m − ue_height_m, d)``. A pixel keeps the strongest sector
(the best server; on an exact tie the first sector in the canonical order of
:func:`prepare_sectors`, so the order of the input rows changes nothing). Distances are
float64 throughout (float32 distances moved the coverage edge by dB).

Outputs per pixel: ``rsrp`` (float32 dBm in steps of :data:`RSRP_STEP_DB`, 1/128 dB,
:data:`~coverage.layout.RSRP_NODATA_DBM` where no sector is in reach) and ``class``
(uint8): 255 outside every sector's
reach, else 2 (deep) when rsrp reaches the best server's deep threshold, 1
(outdoor) when it reaches its outdoor threshold, 0 otherwise. The thresholds are
those of the best server's environment (``TechProfile.thresholds_dbm``); the class
is decided on the float32 rsrp that is written, so a consumer comparing the raster
with the thresholds gets the same answer.

A sector's reach is the largest distance at which its boresight (0 dB relative
gain, the maximum) still delivers the outdoor threshold: ``max_range_m(model,
rs_eirp_dbm − outdoor_dbm, …)``, capped at the radio horizon
(:func:`radio_horizon_m`, ``4.12 (√h_bs_m + √h_ue_m)`` km over a 4/3 Earth: 27.6 km
for a 30 m mast and a 1.5 m device). None of the empirical models includes the
Earth's curvature, and beyond the horizon diffraction losses grow far faster than
they predict: without the cap a rural NB-IoT sector (Hata open area, far beyond
its 20 km validity, 164 dB MCL) would reach ~100 km. ``report.json`` records per
technology how many sectors were capped (``sectors_capped_at_horizon``). The
pattern only subtracts, so beyond the reach the sector cannot cover anything:
those pixels are nodata, not "0".

Operators and the combined layer
--------------------------------
Each tile is computed per operator (only that operator's sectors), then the
combined layer ("all") takes, per pixel, the maximum of the operators' rsrp
(identical to the best server over all sectors) and the maximum of the operators'
classes where they are not nodata: a pixel is covered (deep) when ANY operator
covers it (deeply). It is nodata only where every operator is.

Execution
---------
Tiles (only those with a candidate sector; the others stay nodata) run through
Dask: ``scheduler="processes"`` starts a ``LocalCluster`` of one single-threaded
worker process per CPU inside :func:`predict` and closes it at the end;
``"threads"`` a threaded in-process cluster (the kernel releases the GIL);
``"tcp://HOST:PORT"`` connects to an existing ``dask.distributed`` scheduler;
``"synchronous"`` runs the tiles in a plain loop in this process (debugging, small
runs). At most ``2 × workers + 2`` tiles are in flight. Each task also computes
its tile's share of every overview level (:func:`tile_overviews`: nodata-aware
``average`` for rsrp, ``nearest`` for class, whose categories must not be
averaged). Each finished tile is written at once into its window of a tiled,
ZSTD-compressed working GeoTIFF per layer and of one file per overview level
(``.ovr`` chained), so memory is bounded by the tile size, not the extent (the
levels narrower than 32 px per tile are held in memory: 1/1024 of the extent's
pixels). Each working GeoTIFF is then copied with its overviews into a
Cloud-Optimized GeoTIFF (GDAL's COG driver, 512-pixel blocks, ZSTD) and
atomically moved into place; GDAL no longer resamples the whole (national,
mostly empty) extent for the overviews.
No timestamps are written, so the same inputs give byte-identical files, and
since a pixel's coordinates come from the global lattice
(:mod:`coverage.grid`), the pixels do not depend on the tile size. Workers of a
``tcp://`` cluster must be able to import this package.

The report (``raster/report.json``)
-----------------------------------
As docs/CONTRACTS.md shows. The thresholds depend on the environment (through
the shadow-fading margin): ``thresholds_dbm.outdoor``/``deep`` are those of
:data:`REPORT_REFERENCE_ENVIRONMENT` (urban) and ``thresholds_dbm.by_environment``
holds all four; ``ce`` (NB-IoT) does not depend on it. ``evaluations`` counts the
pixel × sector pairs the kernel evaluated (each one path-loss evaluation; the pairs
of sectors that the block bounds skip are not counted), per layer and
in total (a reused layer keeps its count, so the total describes the layers, not
this run's work); ``warnings`` holds skipped technologies, defaulted columns and
the path-loss validity issues (one line per distinct message, with its number of
sectors); ``sectors_capped_at_horizon`` per technology. Each layer also has a
``fingerprint`` and ``reused``. The file holds no timings, so the same inputs
(and the same previous run) give a byte-identical report; :func:`predict`
returns the timings (``timings_s``) and this run's kernel work
(``evaluations_computed``) beside it.

Reusing layers (the monthly update)
-----------------------------------
``predict(..., reuse=True)`` keeps an operator's layer of a technology when the
previous ``raster/report.json`` has the same grid (``Grid.as_dict()``; the grid
follows the extent of all reach discs, so moving an outlying site can change it,
and then everything is recomputed, with a log line saying why), the same layer
fingerprint (:func:`layer_fingerprint`: that operator's kernel inputs, the
configuration, the grid, the covmap version and :data:`KERNEL_VERSION`) and both
of its files. Its kernel work is skipped and its files are not touched; the
combined layer is recomputed for every tile, reading the kept operators' tiles
from their COGs (the combination is exact, so the bytes equal a clean run's).
A killed run is safe: before any layer file is replaced the old report is
rewritten without the fingerprints of the layers being replaced, each file is
replaced atomically, and the new report is written last; so a rerun recomputes
whatever the report on disk does not vouch for.

Terrain and land cover
----------------------
With ``dem`` and/or ``clutter`` (:func:`predict`), each sector's site gets a ground
height, an antenna height above sea level and effective heights per 10° direction
(ITU-R P.1546 Annex 5), and its reach becomes that of each direction's effective
height (a site on a plateau reaches farther; :mod:`.terrain_sites`). Each tile then
reads the terrain on a lattice of every k-th pixel centre (k from ``[terrain]
sweep_step_m``, by default the DEM's resolution: 8 at 100 m on the national 30″
DEM, 1 on a ≤ 100 m DEM), its pixels' ground and land-cover class, and one radial
sweep per site gives the Bullington diffraction excess over smooth ground and the
effective-height change to every lattice point in reach (:mod:`.terrain_tile`,
:mod:`coverage.terrain.sweep`). The kernel (:mod:`.terrain_kernel`) adds them
bilinearly, uses the true elevation angle from the antenna to the device, and takes
the receiver environment from the pixel's land-cover class. ``raster/report.json``
then has a ``terrain`` entry (the sources with their sha256, resolution, CRS, the
share of the lattice points read that were nodata and filled; the lattice step; the
diffraction weight), and the sources' sha256 and the terrain arrays enter every
layer's fingerprint. Without either, the prediction is the flat-earth one above,
byte for byte as before terrain existed.

Sector azimuths are bearings from true north; the kernel works in the grid,
so each azimuth is turned by the meridian convergence at its site
(:func:`coverage.grid.grid_north_bearing_deg`, up to ±17° at China's edges).

Files (each has one job): :mod:`.kernel` the numba kernel of one tile and the
combination of layers; :mod:`.sectors` the sectors as kernel arrays (defaults,
models, reach, canonical order) and the checks of ``predict``'s arguments;
:mod:`.overviews` a tile's share of each overview level; :mod:`.writers` the
working GeoTIFFs and their COGs; :mod:`.executors` where tiles run (in this
process or on Dask); :mod:`.tiles` the tile scheduler (what to compute, what to
combine, what to write); :mod:`.reuse` the report and the layers a run may keep;
:mod:`.terrain_sites` the terrain sources and what each sector needs of them;
:mod:`.terrain_tile` one tile's terrain inputs and its sites' sweeps;
:mod:`.terrain_kernel` the kernel over terrain and land cover;
this file :func:`predict`, which ties them together. The note on numba's
on-disk cache is in :mod:`.kernel`.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence

import numpy as np

from coverage.errors import ConfigError, EmptyCoverageError
from coverage.files import atomic_output
from coverage.grid import check_resolution, check_tile_size, grid_for_sectors, sectors_by_tile
from coverage.layout import ALL_OPERATORS, RunLayout
from coverage.predict.executors import SCHEDULERS, WORKER_MALLOC_ENV, _executor
from coverage.predict.kernel import (
    KERNEL_VERSION,
    PRUNE_BLOCK_PX,
    RSRP_STEP_DB,
    SECTOR_FIELDS,
    _loss_from_coefficients,
    _sector_loss_coefficients,
    combine_layers,
    predict_tile,
)
from coverage.predict.overviews import overview_factors, tile_overviews
from coverage.predict.reuse import (
    _combined_fingerprint,
    _invalidate_previous_report,
    _json_sha256,
    _previous_report,
    _report_text,
    _reusable_layers,
    layer_fingerprint,
)
from coverage.predict.sectors import (
    RADIO_HORIZON_M_PER_SQRT_M,
    REPORT_REFERENCE_ENVIRONMENT,
    REQUIRED_COLUMNS,
    PreparedTech,
    _config_grid_value,
    _environments,
    _load_config,
    _normalise_operators,
    _normalise_techs,
    _read_sectors,
    _thresholds_entry,
    prepare_sectors,
    radio_horizon_m,
    typical_cell_radius_m,
)
from coverage.predict.terrain_sites import TerrainSetup, check_sites, resolve_terrain, tech_terrain  # noqa: F401
from coverage.predict.tiles import _run_tiles
from coverage.predict.writers import GDAL_CACHE_MB
from coverage.schema import normalise_operator, normalise_tech

__all__ = [
    "GDAL_CACHE_MB",
    "KERNEL_VERSION",
    "PRUNE_BLOCK_PX",
    "RADIO_HORIZON_M_PER_SQRT_M",
    "REPORT_REFERENCE_ENVIRONMENT",
    "REQUIRED_COLUMNS",
    "RSRP_STEP_DB",
    "SCHEDULERS",
    "SECTOR_FIELDS",
    "WORKER_MALLOC_ENV",
    "PreparedTech",
    "combine_layers",
    "layer_fingerprint",
    "overview_factors",
    "predict",
    "predict_tile",
    "prepare_sectors",
    "radio_horizon_m",
    "tile_overviews",
    "typical_cell_radius_m",
    # private names the tests import
    "_executor",
    "_loss_from_coefficients",
    "_sector_loss_coefficients",
]

log = logging.getLogger(__name__)


def predict(
    sectors,
    out_dir,
    techs: Sequence[str] = ("nbiot", "redcap"),
    resolution_m: float | None = None,
    config=None,
    scheduler: str = "processes",
    tile_size_px: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    operators: Sequence[str] | None = None,
    reuse: bool = False,
    dem=None,
    clutter=None,
) -> dict:
    """Predict best-server coverage rasters for every technology and operator.

    Parameters
    ----------
    sectors : GeoDataFrame or path
        Sectors as in docs/CONTRACTS.md (EPSG:4326 points), or a ``sectors.parquet``.
    out_dir : path
        Run directory; rasters go to ``out_dir/raster/`` (:class:`~coverage.layout.RunLayout`).
    techs : sequence of str, default ("nbiot", "redcap")
        Technologies to predict; one without sectors is skipped with a warning.
    resolution_m : float, optional
        Pixel size, metres, 30-1000; default from the config (100 m).
    config : Config, path or None
        :func:`coverage.config.load_config` result or a TOML path; None = defaults.
    scheduler : str, default "processes"
        ``processes``, ``threads``, ``synchronous`` or ``tcp://HOST:PORT``.
    tile_size_px : int, optional
        Tile edge in pixels (multiple of 16); default from the config (512).
        Does not change any output pixel.
    progress : callable, optional
        Called as ``progress(done, total)`` after each tile (tiles of all techs).
    operators : sequence of str, optional
        Only these operators (codes or names); default every operator present.
    reuse : bool, default False
        Keep an operator's layers from the previous run in ``out_dir`` when its
        ``raster/report.json`` has the same grid and that layer's fingerprint
        (:func:`layer_fingerprint`) and both its files exist; the combined layers
        are always recomputed (see "Reusing layers" in the module docstring).
    dem : path, "default", "none", DemSource or None, default None
        Terrain: a GeoTIFF/COG/VRT in any CRS, a folder of SRTM ``.hgt`` tiles or a
        CF NetCDF (:func:`coverage.terrain.dem.open_dem`); ``"default"`` the embedded
        national 30″ DEM (:mod:`coverage.terrain.data`); None or ``"none"`` flat
        earth, as before terrain existed.
    clutter : path, "default", "none", LandCoverSource or None, default None
        Land cover whose class sets each pixel's receiver environment
        (:mod:`coverage.terrain.clutter`; the class table from ``[terrain]
        clutter_table``); ``"default"`` the embedded MODIS MCD12C1; None or
        ``"none"``: every pixel takes its best server's own environment.

    Returns
    -------
    dict
        The report, also written to ``raster/report.json``: ``grid``, ``techs``
        (thresholds, typical cell radius per environment, sectors capped at the
        radio horizon, layers with their evaluations, fingerprint and ``reused``),
        ``warnings``, ``evaluations`` (pixel × sector pairs within reach, all
        layers). Only in the returned dict: ``evaluations_computed`` (this run's
        kernel work) and ``timings_s``.

    Raises
    ------
    EmptyCoverageError
        No sector of the requested technologies and operators.
    ConfigError
        Resolution, tile size, scheduler, technology or operator not valid.
    TerrainSourceError, TerrainCoverageError
        A DEM or land cover cannot be read, or does not cover the sites and the
        run's extent (the message names the file and the uncovered extent).
    SchemaError, CRSMismatchError, InputReadError
        The sectors are not readable or not as the contract says.
    """
    started = time.perf_counter()
    timings: dict[str, float] = {}
    techs = _normalise_techs(techs)
    wanted_operators = _normalise_operators(operators)
    config = _load_config(config)
    resolution_m = check_resolution(
        resolution_m if resolution_m is not None else _config_grid_value(config, "resolution_m", 100.0)
    )
    tile_size_px = check_tile_size(
        tile_size_px if tile_size_px is not None else _config_grid_value(config, "tile_size_px", 512)
    )
    n_workers = os.cpu_count() or 1
    if not (scheduler in SCHEDULERS or str(scheduler).startswith("tcp://")):
        raise ConfigError(f"scheduler={scheduler!r} is not one of {', '.join(SCHEDULERS)} or tcp://HOST:PORT")

    frame = _read_sectors(sectors)
    frame = frame.assign(
        tech=frame["tech"].map(normalise_tech), operator=frame["operator"].map(normalise_operator)
    ).reset_index(drop=True)
    # environments from the whole table, so they do not depend on --tech / operators
    frame = frame.assign(environment=_environments(frame) if len(frame) else frame["environment"])
    keep = frame["tech"].isin(techs) & frame["operator"].notna()
    if wanted_operators is not None:
        keep &= frame["operator"].isin(wanted_operators)
    frame = frame[keep]
    if len(frame) == 0:
        raise EmptyCoverageError(
            f"no sectors of {', '.join(techs)}"
            + (f" for operator(s) {', '.join(sorted(wanted_operators))}" if wanted_operators else "")
            + " to predict"
        )
    frame = frame.reset_index(drop=True)
    terrain = resolve_terrain(dem, clutter, config, resolution_m)
    if terrain is not None:
        lon_all, lat_all = frame.geometry.x.to_numpy(), frame.geometry.y.to_numpy()
        check_sites(terrain, lon_all, lat_all)
    env_all = frame["environment"].to_numpy(dtype=object)
    warnings: list[str] = []
    prepared: dict[str, PreparedTech] = {}
    for tech in techs:
        rows = np.flatnonzero((frame["tech"] == tech).to_numpy())
        if rows.size == 0:
            warnings.append(f"{tech}: no sectors; technology skipped")
            continue
        prepared[tech] = prepare_sectors(frame.iloc[rows], tech, config, env_all[rows], terrain=terrain)
        warnings += prepared[tech].warnings
    timings["prepare"] = time.perf_counter() - started

    t0 = time.perf_counter()
    grid = grid_for_sectors(
        np.concatenate([p.arrays["x_m"] for p in prepared.values()]),
        np.concatenate([p.arrays["y_m"] for p in prepared.values()]),
        np.concatenate([p.arrays["reach_m"] for p in prepared.values()]),
        resolution_m=resolution_m,
        tile_size_px=tile_size_px,
    )
    binned = {
        tech: sectors_by_tile(grid, p.arrays["x_m"], p.arrays["y_m"], p.arrays["reach_m"])
        for tech, p in prepared.items()
    }
    timings["grid"] = time.perf_counter() - t0
    log.info(
        "grid %d x %d px at %g m, %d tiles; tiles with sectors: %s",
        grid.width, grid.height, resolution_m, grid.n_tiles, {t: len(b) for t, b in binned.items()},
    )

    layout = RunLayout(out_dir)
    layout.raster_dir.mkdir(parents=True, exist_ok=True)
    grid_dict = grid.as_dict()
    config_fp = config.fingerprint() if hasattr(config, "fingerprint") else _json_sha256(config)
    terrain_fp = None if terrain is None else terrain.fingerprint()
    fingerprints = {
        tech: {op: layer_fingerprint(prep, op, config_fp, grid_dict, terrain_fp) for op in prep.operators}
        for tech, prep in prepared.items()
    }
    tile_terrain = None if terrain is None else {
        tech: (terrain, tech_terrain(terrain, config.profiles[tech])) for tech in prepared
    }
    previous = _previous_report(layout)
    reused = _reusable_layers(previous, grid_dict, fingerprints, layout) if reuse else {}
    # from here on the old report must not vouch for any layer this run replaces
    _invalidate_previous_report(layout, previous, prepared, reused)
    layer_evaluations = _run_tiles(grid, prepared, binned, layout, scheduler, n_workers, progress, timings, reused,
                                   tile_terrain)
    lattice_read, lattice_filled = timings.pop("terrain_lattice", (0, 0))

    report = {"grid": grid_dict, "techs": {}, "warnings": warnings, "evaluations": 0}
    if terrain is not None:
        # the share of the terrain lattice points this run read that were nodata, filled
        report["terrain"] = terrain.report(round(lattice_filled / lattice_read, 6) if lattice_read else None)
    computed = 0
    for tech, prep in prepared.items():
        layers = []
        for op in prep.operators:
            old = reused.get(tech, {}).get(op)
            n = int(old["evaluations"]) if old is not None else int(layer_evaluations[tech][op])
            computed += 0 if old is not None else n
            layers.append({
                "operator": op,
                "rsrp": layout.rsrp(tech, op).name,
                "class": layout.coverage_class(tech, op).name,
                "sectors": prep.sectors_per_operator[op],
                "evaluations": n,
                "fingerprint": fingerprints[tech][op],
                "reused": old is not None,
            })
        tech_evaluations = sum(layer["evaluations"] for layer in layers)
        layers.append({
            "operator": ALL_OPERATORS,
            "rsrp": layout.rsrp(tech).name,
            "class": layout.coverage_class(tech).name,
            "sectors": prep.n,
            "evaluations": tech_evaluations,
            "fingerprint": _combined_fingerprint(fingerprints[tech]),
            "reused": False,
        })
        report["evaluations"] += tech_evaluations
        report["techs"][tech] = {
            "thresholds_dbm": _thresholds_entry(tech, config),
            "typical_cell_radius_m": typical_cell_radius_m(tech, config),
            "sectors_capped_at_horizon": prep.capped_at_horizon,
            "layers": layers,
        }
    # written last, so that it vouches only for layers already in place
    with atomic_output(layout.predict_report) as tmp:
        tmp.write_text(_report_text(report), encoding="utf-8")
    timings["total"] = time.perf_counter() - started
    log.info("predicted %s: %d evaluations computed (%d in the layers) in %.1f s",
             ", ".join(prepared), computed, report["evaluations"], timings["total"])
    # what this run did (not part of the file: it would make the file depend on the run)
    return {**report, "evaluations_computed": computed, "timings_s": timings}
