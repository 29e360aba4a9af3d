"""The aggregate stage: rasters + sectors + boundaries → the stats files of a run.

Reads ``RUN/raster/report.json`` (layers, thresholds, typical cell radii),
``RUN/sectors.parquet`` and the county boundaries, and writes (paths from
:class:`coverage.layout.RunLayout`, see docs/CONTRACTS.md):

- ``stats/county.csv`` and ``stats/township.csv`` (long tables, UTF-8 with BOM);
- ``stats/summary.csv``: national and per-province headline figures per
  technology × operator (see :func:`summary_table`);
- ``stats/coverage.gpkg``: layers ``county`` / ``township`` (one row per unit,
  wide ``<tech>_<op>_coverage_pct`` and ``<tech>_<op>_deep_coverage_pct`` for
  op in ct, cm, cu, cbn, all; empty where the run has no such layer) and
  ``gaps_<tech>``;
- ``stats/gaps_<tech>.csv``: the gaps without geometry;
- ``stats/gap_areas_<tech>.csv`` (and GPKG layers ``gap_areas_<tech>``): each
  county's gaps split into townships / H3 res-7 cells with their built-up area and
  people, ranked (:mod:`coverage.gap_areas`).
- ``stats/h3_res9_<tech>.parquet``/``.csv`` and ``h3_res8_<tech>.*``: the H3 open
  data (:mod:`coverage.h3hex`);
- ``stats/targets.csv`` and ``stats/targets_summary.csv``: the 2027 targets
  (:mod:`coverage.targets`).

Which counties
--------------
By default the counties that contain at least one accepted sector (of any
technology): a national run covers the counties operators submitted sites in,
and the tables do not fill up with thousands of 0 % rows for counties nobody
reported on. Pass ``counties=`` (a GeoDataFrame like
``coverage.boundaries.load_counties``) to choose them yourself.

Gaps are split by county (``unit_code`` = county code). The typical cell radius
of the ``rural`` environment sizes ``sites_needed_estimate`` (an estimate).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from coverage.errors import InputReadError, SchemaError, StageError, UnknownUnitError
from coverage.files import atomic_output, round_for_people, write_csv_bom
from coverage.gap_areas import check_rank, split_gaps_in_chunks
from coverage.gaps import DEFAULT_GAP_ENVIRONMENT, DEFAULT_MIN_GAP_KM2, GAP_COLUMNS, gaps_by_layer
from coverage.h3hex import write_h3
from coverage.layout import ALL_OPERATORS, RunLayout
from coverage.pixel_weights import run_land_cover
from coverage.processes import worker_count
from coverage.schema import OPERATORS, normalise_operator, normalise_tech
from coverage.targets import landcover_of_run, target_tables, write_targets
from coverage.zonal import Layer, unit_table

log = logging.getLogger(__name__)

STAGE = "aggregate"
WIDE_OPERATORS = (*(op.code for op in OPERATORS), ALL_OPERATORS)
COVERAGE_GOOD_PCT = 95.0
COVERAGE_POOR_PCT = 50.0
UNIT_ATTRIBUTES = ("code", "name", "level", "parent", "parent_name", "province_code", "province")
CODE_COLUMNS = ("code", "parent", "province_code", "county_code", "unit_code", "gap_id", "area_id", "gap_ids")

#: Columns of summary.csv.
SUMMARY_COLUMNS = (
    "scope", "province_code", "province", "tech", "operator", "counties",
    "counties_ge_95pct", "counties_lt_50pct", "mean_coverage_pct", "median_coverage_pct",
    "area_km2", "covered_km2", "coverage_pct", "deep_covered_km2", "deep_coverage_pct",
    "sectors", "sites", "population", "population_covered_pct",
)


def aggregate(run_dir, townships=None, population=None, config=None, counties=None,
              progress: Callable[[int, int], None] | None = None, min_gap_km2: float | None = None,
              workers: int | None = None, rank: str | None = None) -> dict:
    """Compute the county (and township) statistics and the gaps of a run; write the stats files.

    Parameters
    ----------
    run_dir : path
        Run directory holding ``raster/report.json``, the rasters and ``sectors.parquet``.
    townships : path or geopandas.GeoDataFrame, optional
        Township boundaries (read with ``coverage.boundaries.read_townships``).
    population : path, optional
        Population raster (people per pixel, any CRS).
    config : path or Config, optional
        Configuration; its gaps ``min_gap_km2`` (default 1.0 km²) is used.
    counties : geopandas.GeoDataFrame, optional
        Counties to report on; default the counties holding at least one sector.
    progress : callable, optional
        ``progress(done, total)`` after each step (county statistics, township
        statistics, gaps).
    min_gap_km2 : float, optional
        Overrides the configuration's smallest reported gap (km²).
    workers : int, optional
        Processes polygonising the counties' gaps side by side (default: one per
        CPU, but at most one per :data:`UNITS_PER_GAP_WORKER` counties), then
        splitting them into gap areas (:func:`coverage.gap_areas.split_gaps`) and
        computing the H3 blocks (:func:`coverage.h3hex.write_h3`). The outputs do
        not depend on it; each process holds only its chunk of counties and the
        polygons it sends back, or one H3 block. With more than one, the gaps are
        found while this process computes the statistics.
        The processes are spawned, so a script calling this with more than one
        must run it under ``if __name__ == "__main__":`` (``workers=1`` needs not).
    rank : str, optional
        Ranking key of the gap areas (``population``, ``built-up``, ``area``);
        default the configuration's ``[gaps] rank`` (``auto``:
        :func:`coverage.gap_areas.default_rank`).

    Returns
    -------
    dict
        ``county_csv``, ``township_csv`` (or None), ``summary_csv``, ``gpkg``,
        ``gaps_csv`` and ``gap_areas_csv`` ({tech: path}), ``gap_rank``, ``counties``, ``townships`` (counts),
        ``min_gap_km2``, ``seconds`` and ``headline``: {tech: {operator:
        {coverage_pct, counties_ge_95pct, counties_lt_50pct, gaps, gap_km2}}}
        (national, area-weighted coverage).

    Raises
    ------
    InputReadError
        report.json, the sectors or the rasters are missing or unreadable.
    StageError
        No county holds a sector, or the boundaries module is unavailable.
    """
    started = time.perf_counter()
    layout = RunLayout(run_dir)
    report = read_report(layout)
    sectors = _read_sectors(layout)
    min_gap_km2 = _min_gap_km2(config) if min_gap_km2 is None else float(min_gap_km2)
    loaded_config = _config(config)
    landcover, class_table = run_land_cover(report, loaded_config)
    rank = check_rank(loaded_config.gaps.rank if rank is None else rank, population is not None,
                      landcover is not None)
    counties = _counties(counties, sectors)
    town_units = _townships(townships, counties)

    techs = list(report["techs"])
    layers = [layer for tech in techs for layer in report_layers(layout, report, tech)]
    n_steps = 5 + (town_units is not None)
    done = 0

    def step():
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, n_steps)

    radii = {tech: report["techs"][tech].get("typical_cell_radius_m") for tech in techs}
    gap_workers = worker_count(workers, len(counties), UNITS_PER_GAP_WORKER)

    def find_gaps():
        return gaps_by_layer([(lay.tech, lay.operator, lay.class_path) for lay in layers], counties, min_gap_km2,
                             sectors, radii, environment=DEFAULT_GAP_ENVIRONMENT, workers=gap_workers)

    # With gap processes, the gaps are found while this process computes the tables
    # (one pass over the rasters, every layer of every technology): the table pass
    # runs on one core, the gaps on all of them. The thread only waits for the
    # processes and assembles their results.
    with ThreadPoolExecutor(max_workers=1) as background:
        pending_gaps = background.submit(find_gaps) if gap_workers > 1 else None
        county_table = unit_table(counties, layers, sectors=sectors, population=population, level="county")
        step()
        town_table = None
        if town_units is not None:
            town_table = unit_table(town_units, layers, sectors=sectors, population=population, level="township")
            step()
        frames = pending_gaps.result() if pending_gaps is not None else find_gaps()
    gaps = {tech: _concat_gaps([f for lay, f in zip(layers, frames, strict=True) if lay.tech == tech])
            for tech in techs}
    step()
    resolution_m = float(report["grid"]["resolution_m"])

    def gap_area_chunks(tech):
        return split_gaps_in_chunks(gaps[tech], resolution_m, townships=town_units, landcover=landcover,
                                    class_table=class_table, population=population, rank=rank, workers=workers)

    summary = summary_table(county_table)
    effective = _effective_config(config)
    h3_result = write_h3(layout, layers, counties, covered_fraction=effective.h3.covered_fraction, workers=workers,
                         csv=effective.h3.csv)
    step()
    targets_csv, targets_summary_csv = _write_targets(layout, report, layers, counties, county_table, town_table,
                                                      sectors, effective)
    step()

    write_csv_bom(county_table, layout.county_csv)
    if town_table is not None:
        write_csv_bom(town_table, layout.township_csv)
    write_csv_bom(summary, layout.summary_csv)
    gaps_csv = {}
    for tech, frame in gaps.items():
        gaps_csv[tech] = write_csv_bom(pd.DataFrame(frame.drop(columns="geometry")), layout.gaps_csv(tech))
    gap_areas_csv = {tech: layout.gap_areas_csv(tech) for tech in techs}
    _write_gpkg(layout.stats_gpkg, counties, county_table, town_units, town_table, gaps, techs,
                {tech: (gap_area_chunks(tech), gap_areas_csv[tech]) for tech in techs})
    step()

    headline = {}
    national = summary[summary["scope"] == "national"]
    for row in national.itertuples(index=False):
        tech_gaps = gaps[row.tech]
        op_gaps = tech_gaps[tech_gaps["operator"] == row.operator]
        headline.setdefault(row.tech, {})[row.operator] = {
            "coverage_pct": float(row.coverage_pct),
            "counties_ge_95pct": int(row.counties_ge_95pct),
            "counties_lt_50pct": int(row.counties_lt_50pct),
            "gaps": int(len(op_gaps)),
            "gap_km2": float(op_gaps["area_km2"].sum()),
        }
    result = {
        "county_csv": layout.county_csv,
        "township_csv": layout.township_csv if town_table is not None else None,
        "summary_csv": layout.summary_csv,
        "gpkg": layout.stats_gpkg,
        "gaps_csv": gaps_csv,
        "gap_areas_csv": gap_areas_csv,
        "gap_rank": rank,
        "h3": {tech: [str(p) for p in (f.res9_parquet, f.res9_csv, f.res8_parquet, f.res8_csv) if Path(p).exists()]
               for tech, f in h3_result["files"].items()},
        "targets_csv": targets_csv,
        "targets_summary_csv": targets_summary_csv,
        "counties": int(len(counties)),
        "townships": int(len(town_units)) if town_units is not None else 0,
        "min_gap_km2": min_gap_km2,
        "headline": headline,
        "seconds": time.perf_counter() - started,
    }
    log.info("aggregated %d counties, %d townships, %s in %.1f s", result["counties"], result["townships"],
             ", ".join(techs), result["seconds"])
    return result


#: A process for the gaps pays for itself above this many units (it starts in about a second).
UNITS_PER_GAP_WORKER = 50


def read_report(layout: RunLayout) -> dict:
    """The predict stage's ``raster/report.json`` (InputReadError if missing or broken)."""
    path = layout.predict_report
    try:
        report = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputReadError(f"{path} not found: run `covmap predict` first") from None
    except (OSError, ValueError) as exc:
        raise InputReadError(f"{path} cannot be read: {exc}") from None
    if not isinstance(report.get("techs"), dict) or not report["techs"]:
        raise InputReadError(f"{path} lists no technologies")
    return report


def report_layers(layout: RunLayout, report: dict, tech: str) -> list[Layer]:
    """The coverage layers of one technology listed in report.json, "all" first."""
    entry = report["techs"][tech]
    thresholds = entry.get("thresholds_dbm") or {}
    ce = thresholds.get("ce") or None
    layers = []
    for item in entry.get("layers", []):
        class_path = layout.raster_dir / item["class"]
        rsrp_path = layout.raster_dir / item["rsrp"] if item.get("rsrp") else None
        if not class_path.exists():
            raise InputReadError(f"{class_path} (listed in {layout.predict_report}) is missing")
        if rsrp_path is not None and not rsrp_path.exists():
            raise InputReadError(f"{rsrp_path} (listed in {layout.predict_report}) is missing")
        layers.append(Layer(tech, item["operator"], class_path, rsrp_path, ce))
    if not layers:
        raise InputReadError(f"{layout.predict_report} lists no layers for {tech}")
    layers.sort(key=lambda lay: (lay.operator != ALL_OPERATORS, lay.operator))
    return layers


def summary_table(county_table: pd.DataFrame) -> pd.DataFrame:
    """National and per-province headline figures from the long county table.

    One row per scope (``national``, then each province) × tech × operator:
    ``counties``; ``counties_ge_95pct`` / ``counties_lt_50pct`` (counties with
    coverage ≥ 95 % / < 50 %); the unweighted ``mean_coverage_pct`` /
    ``median_coverage_pct`` over counties; the summed ``area_km2``,
    ``covered_km2``, ``deep_covered_km2``, ``sectors``, ``sites``,
    ``population``; the area-weighted ``coverage_pct`` / ``deep_coverage_pct``
    (covered / area) and the population-weighted ``population_covered_pct``.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`SUMMARY_COLUMNS`.
    """
    rows = []
    table = county_table.copy()
    table["_pop_cov"] = table["population"] * table["population_covered_pct"] / 100.0
    scopes = [("national", None, None, table)]
    for (code, name), part in table.groupby(["province_code", "province"], sort=True, dropna=False):
        scopes.append(("province", code, name, part))
    for scope, code, name, part in scopes:
        for (tech, op), grp in part.groupby(["tech", "operator"], sort=False):
            area = grp["area_km2"].sum()
            pop = grp["population"].sum(min_count=1)
            rows.append({
                "scope": scope, "province_code": code, "province": name, "tech": tech, "operator": op,
                "counties": int(grp["code"].nunique()),
                "counties_ge_95pct": int((grp["coverage_pct"] >= COVERAGE_GOOD_PCT).sum()),
                "counties_lt_50pct": int((grp["coverage_pct"] < COVERAGE_POOR_PCT).sum()),
                "mean_coverage_pct": grp["coverage_pct"].mean(),
                "median_coverage_pct": grp["coverage_pct"].median(),
                "area_km2": area,
                "covered_km2": grp["covered_km2"].sum(),
                "coverage_pct": 100.0 * grp["covered_km2"].sum() / area if area > 0 else np.nan,
                "deep_covered_km2": grp["deep_covered_km2"].sum(),
                "deep_coverage_pct": 100.0 * grp["deep_covered_km2"].sum() / area if area > 0 else np.nan,
                "sectors": int(grp["sectors"].sum()),
                "sites": int(grp["sites"].sum()),
                "population": pop,
                "population_covered_pct": 100.0 * grp["_pop_cov"].sum() / pop if pop and pop > 0 else np.nan,
            })
    return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))


def county_gaps(run_dir, county=None, operator=None, tech=None) -> pd.DataFrame:
    """The gaps of a run (``stats/gaps_<tech>.csv``), optionally of one county, biggest first.

    Parameters
    ----------
    run_dir : path
        An aggregated run directory.
    county : str, optional
        6-digit county code; default every county.
    operator : str, optional
        Operator (any spelling) or ``all``; default every layer.
    tech : str, optional
        Technology (any spelling); default every technology with a gaps file.

    Returns
    -------
    pandas.DataFrame
        The gaps' columns (docs/CONTRACTS.md, without geometry), ordered by
        area (biggest first). ``frame.attrs["sources"]`` lists the files read.

    Raises
    ------
    InputReadError
        The run has no gaps file (not aggregated yet).
    UnknownUnitError
        ``county`` is not one of the run's counties.
    SchemaError
        ``operator`` or ``tech`` is not recognised.
    """
    frame = read_layer_tables(run_dir, "gaps", county=county, operator=operator, tech=tech, hint="first")
    sources = frame.attrs["sources"]
    frame = frame.sort_values(["area_km2", "gap_id"], ascending=[False, True], kind="stable").reset_index(drop=True)
    frame.attrs["sources"] = sources
    return frame


def read_layer_tables(run_dir, kind: str, county=None, operator=None, tech=None, hint: str = "first") -> pd.DataFrame:
    """A run's per-technology tables ``stats/<kind>_<tech>.csv`` (``gaps``, ``gap_areas``), optionally filtered.

    ``county`` (a code of the run), ``operator`` (any spelling or ``all``) and ``tech``
    (any spelling; default every technology with such a file) as for :func:`county_gaps`;
    ``hint`` ends the "run `covmap aggregate`" advice of a missing file. The files'
    order is kept; ``frame.attrs["sources"]`` lists them.

    Raises
    ------
    InputReadError, UnknownUnitError, SchemaError
        As :func:`county_gaps`.
    """
    layout = RunLayout(run_dir)
    techs = None
    if tech is not None:
        techs = [normalise_tech(tech)]
        if techs[0] is None:
            raise SchemaError(f"unknown technology {tech!r}")
    op = None
    if operator is not None:
        op = ALL_OPERATORS if str(operator).strip().lower() == ALL_OPERATORS else normalise_operator(operator)
        if op is None:
            raise SchemaError(f"unknown operator {operator!r}")
    prefix = f"{kind}_"
    if techs is None:
        techs = sorted(p.stem[len(prefix):] for p in layout.stats_dir.glob(f"{prefix}*.csv"))
    paths = [layout.stats_dir / f"{prefix}{t}.csv" for t in techs]
    missing = [p for p in paths if not p.exists()]
    if not paths or missing:
        raise InputReadError(f"{missing[0] if missing else layout.stats_dir / f'{prefix}*.csv'} not found: "
                             f"run `covmap aggregate {run_dir}` {hint}")
    frame = pd.concat([_read_csv(p) for p in paths], ignore_index=True)
    if county is not None:
        county = str(county).strip()
        known = set(_read_csv(layout.county_csv)["code"]) if layout.county_csv.exists() else set(frame["county_code"])
        if county not in known:
            raise UnknownUnitError(f"county {county} is not in run {run_dir} ({len(known)} counties)")
        frame = frame[frame["county_code"] == county]
    if op is not None:
        frame = frame[frame["operator"] == op]
    frame.attrs["sources"] = [str(p) for p in paths]
    return frame


# ---------------------------------------------------------------- helpers


def _read_csv(path) -> pd.DataFrame:
    return pd.read_csv(path, encoding="utf-8-sig", dtype={c: "string" for c in CODE_COLUMNS})


def _read_sectors(layout: RunLayout) -> gpd.GeoDataFrame:
    try:
        sectors = gpd.read_parquet(layout.sectors)
    except FileNotFoundError:
        raise InputReadError(f"{layout.sectors} not found: run `covmap validate`/`predict` first") from None
    except Exception as exc:  # pyarrow / geopandas raise several types for a broken file
        raise InputReadError(f"{layout.sectors} cannot be read: {exc}") from None
    missing = {"operator", "site_id", "tech"} - set(sectors.columns)
    if missing:
        raise SchemaError(f"{layout.sectors} lacks columns {sorted(missing)}")
    return sectors


def _config(config):
    """The Config of a ``config`` argument (None, a TOML path, a Config; a plain dict counts as the defaults)."""
    from coverage.config import Config, load_config

    if isinstance(config, Config):
        return config
    if isinstance(config, str | os.PathLike):
        return load_config(config)
    return Config()


def _min_gap_km2(config) -> float:
    if config is None:
        return DEFAULT_MIN_GAP_KM2
    if isinstance(config, str | os.PathLike):
        from coverage.config import load_config

        config = load_config(config)
    for holder in (getattr(config, "gaps", None), config):
        value = holder.get("min_gap_km2") if isinstance(holder, dict) else getattr(holder, "min_gap_km2", None)
        if value is not None:
            return float(value)
    return DEFAULT_MIN_GAP_KM2


def _effective_config(config):
    from coverage.config import Config, load_config

    if config is None:
        return Config()
    if isinstance(config, str | os.PathLike):
        return load_config(config)
    return config if hasattr(config, "h3") and hasattr(config, "targets") else Config()


def _write_targets(layout, report, layers, counties, county_table, town_table, sectors, config):
    attrs = county_table.drop_duplicates("code").set_index("code").loc[:, list(UNIT_ATTRIBUTES[1:])]
    units = gpd.GeoDataFrame(attrs.reindex(counties["code"]).reset_index(), geometry=counties.geometry.to_numpy(),
                             crs=counties.crs)
    landcover = landcover_of_run(report, config.terrain.clutter_table)
    table, summary = target_tables(layers, units, township_table=town_table, sectors=sectors, landcover=landcover,
                                   redcap_at_scale_pct=config.targets.redcap_at_scale_pct,
                                   township_reached_pct=config.targets.township_reached_pct,
                                   urban_site_radius_m=config.targets.urban_site_radius_m)
    rules = {"redcap_at_scale_pct": config.targets.redcap_at_scale_pct,
             "township_reached_pct": config.targets.township_reached_pct,
             "urban_site_radius_m": config.targets.urban_site_radius_m,
             "landcover": None if landcover is None else {"path": str(landcover["path"]), "table": landcover["table"],
                                                          "classes": landcover["classes"]}}
    return write_targets(layout, table, summary, rules)


def _counties(counties, sectors) -> gpd.GeoDataFrame:
    if counties is None:
        try:
            from coverage.boundaries import load_counties
        except ImportError as exc:
            raise StageError(STAGE, "county boundaries", f"coverage.boundaries is unavailable ({exc})") from None
        counties = load_counties()
        points = sectors[["geometry"]].to_crs(counties.crs)
        hit = gpd.sjoin(counties[["geometry"]], points, how="inner", predicate="intersects")
        counties = counties.loc[counties.index.isin(hit.index)]
        if counties.empty:
            raise StageError(STAGE, "sectors.parquet", "no county holds any accepted sector")
        log.info("%d counties hold at least one sector", len(counties))
    if not isinstance(counties, gpd.GeoDataFrame) or "code" not in counties.columns:
        raise SchemaError("counties must be a GeoDataFrame with a 'code' column")
    counties = counties.copy()
    counties["code"] = counties["code"].astype(str)
    if "level" not in counties.columns:
        counties["level"] = "county"
    return counties.reset_index(drop=True)


def _townships(townships, counties) -> gpd.GeoDataFrame | None:
    if townships is None:
        return None
    if not isinstance(townships, gpd.GeoDataFrame):
        from coverage.boundaries import read_townships

        townships = read_townships(townships, counties=counties)
    townships = townships.copy()
    townships["code"] = townships["code"].astype(str)
    townships["parent"] = townships["parent"].astype(str)
    for column in ("province_code", "province"):
        if column not in townships.columns and column in counties.columns:
            lookup = dict(zip(counties["code"], counties[column], strict=True))
            townships[column] = townships["parent"].map(lookup)
    if "parent_name" not in townships.columns:
        townships["parent_name"] = townships["parent"].map(dict(zip(counties["code"], counties["name"], strict=True)))
    if "level" not in townships.columns:
        townships["level"] = "township"
    return townships.reset_index(drop=True)


def _concat_gaps(parts) -> gpd.GeoDataFrame:
    parts = [p for p in parts if len(p)]
    if not parts:
        return gpd.GeoDataFrame({c: pd.Series(dtype=object) for c in GAP_COLUMNS},
                                geometry=gpd.GeoSeries([], crs=4326), crs=4326)
    return gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), crs=4326)


def _wide(units, table, techs) -> gpd.GeoDataFrame:
    """Unit attributes + geometry (EPSG:4326) + wide coverage columns."""
    attrs = table.drop_duplicates("code").set_index("code").loc[:, list(UNIT_ATTRIBUTES[1:])]
    out = gpd.GeoDataFrame({"code": units["code"].to_numpy()}, geometry=units.geometry.to_numpy(),
                           crs=units.crs).to_crs(4326)
    out = out.join(attrs, on="code")
    for tech in techs:
        part = table[table["tech"] == tech]
        for metric in ("coverage_pct", "deep_coverage_pct"):
            pivot = part.pivot(index="code", columns="operator", values=metric)
            for op in WIDE_OPERATORS:
                column = f"{tech}_{op.lower()}_{metric}"
                out[column] = out["code"].map(pivot[op]) if op in pivot.columns else np.nan
    return out[["code", *UNIT_ATTRIBUTES[1:], *[c for c in out.columns if c.startswith(tuple(techs))], "geometry"]]


# GeoPackage stamps every table with the time of writing; a fixed stamp keeps the
# same inputs giving byte-identical files (GDAL's OGR_CURRENT_DATE option).
_GPKG_FIXED_DATE = {"OGR_CURRENT_DATE": "2000-01-01T00:00:00.000Z"}


@contextlib.contextmanager
def _gdal_options(options: dict):
    """Set GDAL options of pyogrio's GDAL (not rasterio's: the wheels each bundle one)."""
    import pyogrio

    previous = {key: pyogrio.get_gdal_config_option(key) for key in options}
    pyogrio.set_gdal_config_options(options)
    try:
        yield
    finally:
        pyogrio.set_gdal_config_options(previous)


def _write_gpkg(path, counties, county_table, towns, town_table, gaps, techs, gap_areas=None) -> None:
    """The statistics GeoPackage; ``gap_areas`` maps a technology to (its gap-area chunks, their CSV path):
    each chunk is appended to the layer and the CSV as it comes, so only one is held."""
    with atomic_output(path) as tmp, _gdal_options(_GPKG_FIXED_DATE):
        _wide(counties, county_table, techs).to_file(tmp, layer="county", driver="GPKG")
        if towns is not None:
            _wide(towns, town_table, techs).to_file(tmp, layer="township", driver="GPKG", mode="a")
        for tech, frame in gaps.items():
            frame.to_file(tmp, layer=f"gaps_{tech}", driver="GPKG", mode="a",
                          geometry_type="MultiPolygon" if frame.empty else None)
        for tech, (chunks, csv_path) in (gap_areas or {}).items():
            with atomic_output(csv_path) as csv_tmp, open(csv_tmp, "w", encoding="utf-8-sig", newline="") as csv:
                written = 0
                for frame in chunks:
                    if len(frame):
                        _append_gap_areas(tmp, tech, csv, frame, header=written == 0)
                        written += 1
                if written == 0:  # the layer and the header all the same
                    _append_gap_areas(tmp, tech, csv, frame, header=True)


def _append_gap_areas(gpkg, tech: str, csv, frame, header: bool) -> None:
    # through Arrow: the same features, 2.4 x faster on Qinghai's 719,233 RedCap areas (bench/README)
    frame.to_file(gpkg, layer=f"gap_areas_{tech}", driver="GPKG", mode="a", geometry_type="MultiPolygon",
                  use_arrow=True)
    round_for_people(pd.DataFrame(frame.drop(columns="geometry"))).to_csv(csv, index=False, header=header,
                                                                          lineterminator="\n")


def format_gaps(frame: pd.DataFrame, limit: int | None = 20) -> str:
    """An aligned text table of gaps (biggest first) for the terminal.

    Parameters
    ----------
    frame : pandas.DataFrame
        From :func:`county_gaps`.
    limit : int or None, default 20
        Show at most this many rows (None or 0: all); a last line counts the rest.
    """
    if frame.empty:
        return "no gaps"
    shown = frame if not limit else frame.head(limit)
    table = pd.DataFrame({
        "rank": shown["rank_in_county"].astype("Int64"),
        "county": shown["county_code"].astype(str) + " " + shown["county_name"].fillna("").astype(str),
        "tech": shown["tech"],
        "operator": shown["operator"],
        "area_km2": shown["area_km2"].map(lambda v: f"{v:,.2f}"),
        "sites_est": shown["sites_needed_estimate"].astype("Int64"),
        "lon": shown["centroid_lon"].map(lambda v: f"{v:.4f}"),
        "lat": shown["centroid_lat"].map(lambda v: f"{v:.4f}"),
        "nearest_sector_km": shown["nearest_sector_km"].map(lambda v: "" if pd.isna(v) else f"{v:.1f}"),
    })
    text = table.to_string(index=False)
    if len(shown) < len(frame):
        text += f"\n… {len(frame) - len(shown)} more ({len(frame)} gaps, {frame['area_km2'].sum():,.1f} km² in all)"
    return text
