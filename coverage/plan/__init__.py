"""Where the next sites should go: candidate sites evaluated with the engine, chosen greedily.

:func:`plan_sites` takes an aggregated run, an operator and a technology:

1. **Candidates**: a hexagonal grid (spacing ``[plan] spacing_fraction`` × the
   technology's typical rural cell radius, from the run's report) of positions inside
   that operator's gaps of the chosen counties (``stats/coverage.gpkg``), each a
   three-sector site with the technology's default height, EIRP, frequency, tilt and
   beamwidth, azimuths 0/120/240° and the environment covmap would infer for it from
   the operator's site density (:mod:`.candidates`).
2. **Evaluation**: each candidate through the same engine as the run — link budget,
   path loss, antenna pattern, the run's terrain and land cover and configuration —
   giving the pixels of the chosen counties it would cover (:mod:`.engine`).
3. **Choice**: a greedy maximum-coverage choice of ``n_sites`` (:mod:`.greedy`: at
   least 1 − 1/e of the best possible choice of that many candidates), each for the
   most newly covered weight given the ones before it and the run's own coverage. The
   weight of a pixel is the area inside the chosen counties, its built-up area (land
   cover), or its people (a population raster), by ``rank`` (default as for the gap
   areas: :func:`coverage.gap_areas.default_rank`).

What it assumes (the README says so too): the default site parameters everywhere, no
site acquisition constraints (any position in a gap is buildable), no interference or
load model, and the gains are predictions of the same model as the map, no more.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from coverage.errors import (
    EmptyCoverageError,
    InputReadError,
    SchemaError,
    UnknownUnitError,
)
from coverage.files import atomic_output, write_csv_bom
from coverage.gap_areas import check_rank
from coverage.grid import CHINA_ALBERS_PROJ4
from coverage.layout import ALL_OPERATORS, CLASS_DEEP, CLASS_OUTDOOR, RunLayout
from coverage.pixel_weights import (
    GridWindow,
    built_up_mask,
    population_on_window,
    run_land_cover,
    unit_fractions,
)
from coverage.plan.candidates import density_environment, hex_grid_in, rounded_lonlat, site_sectors
from coverage.plan.engine import coverage_sets
from coverage.plan.greedy import greedy_max_coverage
from coverage.schema import normalise_operator, normalise_tech

log = logging.getLogger(__name__)

#: Environment whose typical cell radius sets the candidate spacing (most gaps are rural, as in coverage.gaps).
SPACING_ENVIRONMENT = "rural"
GUARANTEE = ("greedy maximum coverage: covers at least 1 - 1/e (63 %) of the weight the best choice of the same "
             "number of candidate sites could cover (Nemhauser, Wolsey & Fisher 1978)")
PLAN_COLUMNS = (
    "order", "site_id", "county_code", "lon", "lat", "environment", "gain_km2", "gain_built_up_km2", "gain_people",
    "covered_km2", "coverage_pct",
)
#: Columns of sites.csv: a submission in covmap's own schema (coverage.schema), one row per sector.
SITES_CSV_COLUMNS = (
    "operator", "site_id", "cell_id", "tech", "lon", "lat", "crs", "freq_mhz", "eirp_dbm", "height_m",
    "azimuth_deg", "beamwidth_deg", "downtilt_deg", "environment",
)


@dataclass
class Plan:
    """The result of :func:`plan_sites` (plain data; :func:`write_plan` writes it)."""

    operator: str
    tech: str
    counties: list[str]
    rank: str
    spacing_m: float
    candidates: int
    sites: gpd.GeoDataFrame  # the chosen sites' sectors (docs/CONTRACTS.md sectors), in order
    table: pd.DataFrame  # PLAN_COLUMNS, one row per chosen site
    area_km2: float  # of the chosen counties
    covered_km2_before: float
    new_coverage: gpd.GeoDataFrame = field(repr=False)  # per site, the area it newly covers (EPSG:4326)
    timings_s: dict = field(default_factory=dict)

    @property
    def coverage_pct_before(self) -> float:
        return 100.0 * self.covered_km2_before / self.area_km2 if self.area_km2 else 0.0

    def summary(self) -> dict:
        after = float(self.table["covered_km2"].iloc[-1]) if len(self.table) else self.covered_km2_before
        return {
            "operator": self.operator, "tech": self.tech, "counties": self.counties, "rank": self.rank,
            "spacing_m": self.spacing_m, "candidates": self.candidates, "sites": int(len(self.table)),
            "area_km2": self.area_km2, "covered_km2_before": self.covered_km2_before,
            "coverage_pct_before": self.coverage_pct_before, "covered_km2_after": after,
            "coverage_pct_after": 100.0 * after / self.area_km2 if self.area_km2 else 0.0,
            "guarantee": GUARANTEE, "timings_s": self.timings_s,
        }


def plan_sites(run_dir, operator: str, tech: str, n_sites: int, counties=None, rank: str | None = None,
               spacing_m: float | None = None, config=None, population=None,
               progress: Callable[[int, int], None] | None = None) -> Plan:
    """Propose ``n_sites`` new sites for ``operator``'s ``tech`` gaps in ``counties`` (module docstring).

    Parameters
    ----------
    run_dir : path
        An aggregated run (rasters, ``sectors.parquet``, ``stats/coverage.gpkg``).
    operator, tech : str
        Any spelling ``coverage.schema`` accepts (``中国移动``, ``CM``; ``RedCap``).
    n_sites : int
        Sites to propose (≥ 1); fewer when no candidate adds anything.
    counties : sequence of str, optional
        County codes; default every county of the run.
    rank : str, optional
        ``population``, ``built-up`` or ``area`` (the weight each choice maximises).
    spacing_m : float, optional
        Candidate grid spacing; default ``[plan] spacing_fraction`` × the typical rural cell radius.
    config : path or Config, optional
        Default the configuration the run was built with (its manifest), else the defaults.
    population : path, optional
        Population raster (people per pixel, any CRS).
    progress : callable, optional
        ``progress(done, total)`` while the candidates are evaluated.

    Raises
    ------
    InputReadError
        The run is not aggregated, or a file it needs is missing.
    SchemaError, UnknownUnitError
        Unknown operator, technology or county; a rank without its data; n_sites < 1.
    EmptyCoverageError
        The operator has no gap of that technology in the counties.
    TerrainSourceError
        The run's DEM or land cover is not the file the run used any more.
    """
    started = time.perf_counter()
    layout = RunLayout(run_dir)
    op = normalise_operator(operator)
    if op is None or op == ALL_OPERATORS:
        raise SchemaError(f"unknown operator {operator!r}: plan for one operator (中国电信/CT, 中国移动/CM, …)")
    tech_id = normalise_tech(tech)
    if tech_id is None:
        raise SchemaError(f"unknown technology {tech!r}")
    if int(n_sites) < 1:
        raise SchemaError(f"n_sites must be at least 1, got {n_sites}")
    report = _read_json(layout.predict_report)
    if tech_id not in report["techs"]:
        raise SchemaError(f"run {run_dir} has no {tech_id} layers")
    cfg = _run_config(layout, config)
    landcover, class_table = run_land_cover(report, cfg)
    rank = check_rank(cfg.gaps.rank if rank is None else rank, population is not None, landcover is not None)
    units = _counties(layout, counties)
    gaps = _gaps(layout, tech_id, op, units["code"])
    res = float(report["grid"]["resolution_m"])
    if spacing_m is None:
        radius = float(report["techs"][tech_id]["typical_cell_radius_m"][SPACING_ENVIRONMENT])
        spacing_m = cfg.plan.spacing_fraction * radius
    spacing_m = float(spacing_m)
    if not spacing_m >= res:
        raise SchemaError(f"candidate spacing {spacing_m:g} m is finer than the run's {res:g} m pixels")

    units_xy = units.to_crs(CHINA_ALBERS_PROJ4)
    window = GridWindow.around(units_xy.total_bounds, res, pad_px=1)
    fraction = unit_fractions(window, units_xy.geometry.to_numpy())
    area_w = (fraction * window.pixel_area_km2).reshape(-1)
    built_w = (built_up_mask(window, landcover, class_table) * fraction * window.pixel_area_km2).reshape(-1) \
        if landcover is not None else None
    people_w = (population_on_window(window, population) * fraction).reshape(-1) if population is not None else None
    weight = {"area": area_w, "built-up": built_w, "population": people_w}[rank]
    existing = window.read_class(layout.coverage_class(tech_id, op))
    covered0 = ((existing == CLASS_OUTDOOR) | (existing == CLASS_DEEP)).reshape(-1)
    timings = {"weights": time.perf_counter() - started}

    t0 = time.perf_counter()
    gap_xy = shapely.union_all(gaps.to_crs(CHINA_ALBERS_PROJ4).geometry.to_numpy())
    cand_x, cand_y = hex_grid_in(gap_xy, spacing_m)
    if cand_x.size == 0:
        raise EmptyCoverageError(f"no candidate position at {spacing_m:g} m spacing inside the {op} {tech_id} gaps "
                                 f"of {', '.join(units['code'])}: give a smaller --spacing")
    lon, lat = rounded_lonlat(cand_x, cand_y)
    sectors = gpd.read_parquet(layout.sectors)
    own = sectors[(sectors["operator"] == op)].drop_duplicates(["site_id"])
    env = density_environment(lon, lat, own.geometry.x.to_numpy(), own.geometry.y.to_numpy())
    profile = cfg.profiles[tech_id]
    candidates = site_sectors(lon, lat, env, op, tech_id, profile, prefix=f"PLAN-{op}-{tech_id}")
    from coverage.predict.terrain_sites import run_terrain_setup

    terrain = run_terrain_setup(report, cfg, res)
    sets = coverage_sets(candidates, tech_id, cfg, terrain, window, progress=progress)
    timings["candidates"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    chosen, _ = greedy_max_coverage(sets, weight, covered0, int(n_sites),
                                    tie_weight=None if rank == "area" else area_w)
    timings["choice"] = time.perf_counter() - t0
    area_km2 = float(shapely.area(units_xy.geometry.to_numpy()).sum() / 1e6)
    county_of = _county_of(units_xy, cand_x, cand_y)
    table, label = _plan_table(chosen, sets, covered0, area_w, built_w, people_w, lon, lat, env, county_of,
                               area_km2, f"PLAN-{op}-{tech_id}")
    chosen_sectors = _renumbered(candidates, chosen, f"PLAN-{op}-{tech_id}")
    new_coverage = _new_coverage(label, window, table["site_id"].tolist())
    timings["total"] = time.perf_counter() - started
    log.info("plan %s %s: %d of %d candidates chosen in %.1f s", op, tech_id, len(chosen), len(sets),
             timings["total"])
    return Plan(operator=op, tech=tech_id, counties=units["code"].tolist(), rank=rank, spacing_m=spacing_m,
                candidates=len(sets), sites=chosen_sectors, table=table, area_km2=area_km2,
                covered_km2_before=float(area_w[covered0].sum()), new_coverage=new_coverage, timings_s=timings)


def write_plan(plan: Plan, out_dir) -> dict[str, Path]:
    """Write ``sites.csv`` (a submission), ``plan.csv``, ``plan.gpkg`` and ``plan.json`` into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sites = pd.DataFrame(plan.sites.drop(columns="geometry"))
    sites["lon"] = plan.sites.geometry.x.round(7).to_numpy()
    sites["lat"] = plan.sites.geometry.y.round(7).to_numpy()
    sites["crs"] = "wgs84"
    paths = {
        # a submission read back by covmap: every digit kept
        "sites_csv": write_csv_bom(sites.loc[:, list(SITES_CSV_COLUMNS)], out / "sites.csv", for_people=False),
        "plan_csv": write_csv_bom(plan.table, out / "plan.csv"),
    }
    points = gpd.GeoDataFrame(plan.table, geometry=gpd.points_from_xy(plan.table["lon"], plan.table["lat"]),
                              crs=4326)
    with atomic_output(out / "plan.gpkg") as tmp:
        points.to_file(tmp, layer="sites", driver="GPKG")
        plan.new_coverage.to_file(tmp, layer="new_coverage", driver="GPKG", mode="a", geometry_type="MultiPolygon")
    paths["gpkg"] = out / "plan.gpkg"
    with atomic_output(out / "plan.json") as tmp:
        Path(tmp).write_text(json.dumps(plan.summary(), ensure_ascii=False, indent=2), encoding="utf-8")
    paths["json"] = out / "plan.json"
    return paths


def read_plan(plan_dir) -> tuple[dict, gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """``(plan.json, sites layer, new_coverage layer)`` of a plan directory (for the operator edition)."""
    plan_dir = Path(plan_dir)
    summary = _read_json(plan_dir / "plan.json")
    gpkg = plan_dir / "plan.gpkg"
    if not gpkg.exists():
        raise InputReadError(f"{gpkg} not found: not a `covmap plan` output folder")
    return summary, gpd.read_file(gpkg, layer="sites"), gpd.read_file(gpkg, layer="new_coverage")


# ---------------------------------------------------------------- helpers


def _read_json(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputReadError(f"{path} not found") from None
    except (OSError, ValueError) as exc:
        raise InputReadError(f"{path} cannot be read: {exc}") from None


def _run_config(layout: RunLayout, config):
    from coverage.config import Config, load_config

    if isinstance(config, Config):
        return config
    if config is not None:
        return load_config(config)
    manifest = _read_json(layout.manifest) if layout.manifest.exists() else {}
    entry = (manifest.get("inputs") or {}).get("config")
    if entry and entry.get("path"):
        return load_config(entry["path"])
    return Config()


def _counties(layout: RunLayout, codes) -> gpd.GeoDataFrame:
    if not layout.stats_gpkg.exists():
        raise InputReadError(f"{layout.stats_gpkg} not found: run `covmap aggregate {layout.root}` first")
    units = gpd.read_file(layout.stats_gpkg, layer="county", columns=["code", "name"])
    units["code"] = units["code"].astype(str)
    if codes:
        wanted = [str(c).strip() for c in codes]
        unknown = [c for c in wanted if c not in set(units["code"])]
        if unknown:
            raise UnknownUnitError(f"county {', '.join(unknown)} is not in run {layout.root} ({len(units)} counties)")
        units = units[units["code"].isin(wanted)]
    return units.reset_index(drop=True)


def _gaps(layout: RunLayout, tech: str, operator: str, county_codes) -> gpd.GeoDataFrame:
    import pyogrio

    layer = f"gaps_{tech}"
    if layer not in dict(pyogrio.list_layers(layout.stats_gpkg)):
        raise InputReadError(f"{layout.stats_gpkg} has no {layer} layer: run `covmap aggregate {layout.root}` again")
    gaps = gpd.read_file(layout.stats_gpkg, layer=layer)
    gaps = gaps[(gaps["operator"] == operator) & gaps["county_code"].astype(str).isin(set(county_codes))]
    if gaps.empty:
        raise EmptyCoverageError(f"{operator} has no {tech} gap in {', '.join(county_codes)}: nothing to plan")
    return gaps


def _county_of(units_xy: gpd.GeoDataFrame, x, y) -> np.ndarray:
    """County code holding each point (lattice CRS); the first county for a point on a border."""
    out = np.full(len(x), "", dtype=object)
    for code, geom in zip(units_xy["code"], units_xy.geometry, strict=True):
        free = out == ""
        out[free & shapely.intersects_xy(geom, x, y)] = str(code)
    return out


def _plan_table(chosen, sets, covered0, area_w, built_w, people_w, lon, lat, env, county_of, area_km2, prefix):
    """PLAN_COLUMNS per chosen site, and the window label raster (flat: 1-based order of the site newly covering
    a pixel inside the counties, 0 elsewhere)."""
    covered = covered0.copy()
    label = np.zeros(covered.size, dtype=np.int32)
    width = max(3, len(str(len(chosen))))
    rows = []
    for order, i in enumerate(chosen, start=1):
        idx = sets[i]
        fresh = idx[~covered[idx]]
        covered[fresh] = True
        label[fresh[area_w[fresh] > 0]] = order  # what it adds inside the counties
        total = float(area_w[covered].sum())
        rows.append({
            "order": order, "site_id": f"{prefix}-{order:0{width}d}", "county_code": county_of[i],
            "lon": float(lon[i]), "lat": float(lat[i]),
            "environment": env[i], "gain_km2": float(area_w[fresh].sum()),
            "gain_built_up_km2": float(built_w[fresh].sum()) if built_w is not None else np.nan,
            "gain_people": float(people_w[fresh].sum()) if people_w is not None else np.nan,
            "covered_km2": total, "coverage_pct": 100.0 * total / area_km2 if area_km2 else 0.0,
        })
    return pd.DataFrame(rows, columns=list(PLAN_COLUMNS)), label


def _renumbered(candidates: gpd.GeoDataFrame, chosen, prefix: str) -> gpd.GeoDataFrame:
    """The chosen candidates' sectors, renumbered in the order chosen (site ids as in the plan table)."""
    width = max(3, len(str(len(chosen))))
    parts = []
    for order, i in enumerate(chosen, start=1):
        part = candidates[candidates["source_row"] == i + 1].copy()
        site = f"{prefix}-{order:0{width}d}"
        part["site_id"] = site
        part["cell_id"] = [f"{site}-{k + 1}" for k in range(len(part))]
        part["source_row"] = order
        parts.append(part)
    if not parts:
        return candidates.iloc[:0].copy()
    return gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), crs=4326)


def _new_coverage(label: np.ndarray, window: GridWindow, site_ids: list[str]) -> gpd.GeoDataFrame:
    """Per chosen site the pixels it newly covers, as polygons (EPSG:4326)."""
    import rasterio.features
    from shapely.geometry import shape

    grid = label.reshape(window.shape)
    geoms: dict[int, list] = {}
    if grid.any():
        for geom, value in rasterio.features.shapes(grid, mask=grid > 0, transform=window.transform):
            geoms.setdefault(int(value), []).append(shape(geom))
    orders = sorted(geoms)
    polygons = [shapely.multipolygons(shapely.get_parts(shapely.union_all(geoms[k]))) for k in orders]
    frame = gpd.GeoDataFrame({"order": orders, "site_id": [site_ids[k - 1] for k in orders]},
                             geometry=gpd.GeoSeries(polygons, crs=CHINA_ALBERS_PROJ4), crs=CHINA_ALBERS_PROJ4)
    return frame.to_crs(4326)
