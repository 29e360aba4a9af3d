"""Gaps and gap areas of a predicted run, as the aggregate stage finds and writes them: time and peak memory.

Runs ``coverage.gaps.gaps_by_layer`` on every layer of ``RUN`` (the run's counties, the
default gap settings) and then ``coverage.gap_areas.split_gaps_in_chunks``, appending each
chunk to a GeoPackage and CSVs in a temporary folder with the aggregate stage's own writer;
prints the gaps, areas, chunks and the peak resident memory of this process and its workers.
It does not run the statistics, H3 or targets (``bench/national.py`` times the whole stage).

Usage::

    .venv/bin/python bench/national.py --terrain --stages predict --out /tmp/national
    .venv/bin/python bench/gap_areas_national.py /tmp/national --workers 2
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from national import PeakMemory  # noqa: E402  (bench/ is the script's folder)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", type=Path, help="a predicted run directory")
    parser.add_argument("--workers", type=int, default=2, help="processes (default 2)")
    args = parser.parse_args(argv)

    from coverage.aggregate import (
        _append_gap_areas,
        _concat_gaps,
        _counties,
        _read_sectors,
        read_report,
        report_layers,
    )
    from coverage.gap_areas import split_gaps_in_chunks
    from coverage.gaps import DEFAULT_GAP_ENVIRONMENT, DEFAULT_MIN_GAP_KM2, gaps_by_layer
    from coverage.layout import RunLayout

    layout = RunLayout(args.run)
    report = read_report(layout)
    sectors = _read_sectors(layout)
    counties = _counties(None, sectors)
    techs = list(report["techs"])
    layers = [lay for tech in techs for lay in report_layers(layout, report, tech)]
    radii = {tech: report["techs"][tech].get("typical_cell_radius_m") for tech in techs}
    out = Path(tempfile.mkdtemp(prefix="gap-areas-bench-"))
    counts = {}
    with PeakMemory() as mem:
        started = time.perf_counter()
        frames = gaps_by_layer([(lay.tech, lay.operator, lay.class_path) for lay in layers], counties,
                               DEFAULT_MIN_GAP_KM2, sectors, radii, environment=DEFAULT_GAP_ENVIRONMENT,
                               workers=args.workers)
        gaps = {tech: _concat_gaps([f for lay, f in zip(layers, frames, strict=True) if lay.tech == tech])
                for tech in techs}
        gaps_s = time.perf_counter() - started
        started = time.perf_counter()
        for tech in techs:
            areas = chunks = 0
            with open(out / f"gap_areas_{tech}.csv", "w", encoding="utf-8-sig", newline="") as csv:
                for frame in split_gaps_in_chunks(gaps[tech], float(report["grid"]["resolution_m"]),
                                                  workers=args.workers):
                    if len(frame):
                        _append_gap_areas(out / "stats.gpkg", tech, csv, frame, header=areas == 0)
                        areas += len(frame)
                        chunks += 1
            counts[tech] = {"gaps": len(gaps[tech]), "gap_km2": round(float(gaps[tech]["area_km2"].sum())),
                            "areas": areas, "chunks": chunks}
        areas_s = time.perf_counter() - started
    gpkg = out / "stats.gpkg"
    print(json.dumps({"gaps_s": round(gaps_s, 1), "gap_areas_s": round(areas_s, 1), "counts": counts,
                      "peak_main_mib": round(mem.self_peak / 2**20),
                      "peak_children_mib": round(mem.children_peak / 2**20),
                      "gpkg_mb": round(gpkg.stat().st_size / 1e6) if gpkg.exists() else 0, "out": str(out)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
