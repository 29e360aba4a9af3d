"""The report and layer reuse: fingerprints, the previous report, what it vouches for.

See "The report" and "Reusing layers" in :mod:`coverage.predict`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping

import numpy as np

from coverage.files import atomic_output
from coverage.layout import RunLayout
from coverage.predict.kernel import KERNEL_VERSION, SECTOR_FIELDS
from coverage.predict.sectors import PreparedTech
from coverage.predict.terrain_sites import TERRAIN_FIELDS

# Bump when the terrain kernel's or the sweep's maths changes (part of terrain layers' fingerprints).
TERRAIN_KERNEL_VERSION = 1

log = logging.getLogger(__package__)  # "coverage.predict", as before the split: the same log lines


def layer_fingerprint(prep: PreparedTech, operator: str, config_fingerprint: str, grid: Mapping,
                      terrain: Mapping | None = None) -> str:
    """sha256 of everything one operator's layer of one technology depends on.

    The operator's kernel arrays (:data:`SECTOR_FIELDS`, in the canonical order of
    :func:`prepare_sectors`: what the kernel sees, so that an environment inferred
    from another operator's sites counts, and ids or source rows do not), the
    device height, the configuration's fingerprint, the grid (``Grid.as_dict()``),
    the covmap version and :data:`KERNEL_VERSION`; with terrain or land cover also
    ``terrain`` (:meth:`TerrainSetup.fingerprint`: the sources' sha256, the class
    table, the lattice step), :data:`TERRAIN_KERNEL_VERSION` and the terrain arrays
    (:data:`TERRAIN_FIELDS`). A flat run's fingerprints are those of before terrain
    existed, so its layers stay reusable.
    """
    import hashlib

    from coverage import __version__

    digest = hashlib.sha256()
    header = {"covmap": __version__, "kernel": KERNEL_VERSION, "config": config_fingerprint,
              "grid": grid, "tech": prep.tech, "operator": operator, "ue_height_m": prep.ue_height_m}
    fields = SECTOR_FIELDS
    if terrain is not None:
        header = {**header, "terrain": dict(terrain), "terrain_kernel": TERRAIN_KERNEL_VERSION}
        fields = SECTOR_FIELDS + TERRAIN_FIELDS
    digest.update(json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8"))
    rows = prep.operator_index == prep.operators.index(operator)
    for name in fields:
        values = np.ascontiguousarray(prep.arrays[name][rows])
        digest.update(f"|{name}:{values.dtype.str}:{values.size}|".encode())
        digest.update(values.tobytes())
    return digest.hexdigest()


def _combined_fingerprint(per_operator: Mapping[str, str]) -> str:
    return _json_sha256(sorted(per_operator.items()))


def _json_sha256(value) -> str:
    import hashlib

    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _report_text(report: Mapping) -> str:
    return json.dumps(report, indent=2, ensure_ascii=False) + "\n"


def _previous_report(layout: RunLayout) -> dict | None:
    path = layout.predict_report
    if not path.exists():
        return None
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        log.info("%s unreadable (%s): nothing in it is reused", path, exc)
        return None
    return report if isinstance(report, dict) else None


def _reusable_layers(previous, grid_dict, fingerprints, layout) -> dict[str, dict[str, dict]]:
    """Operator layers the previous report vouches for: ``{tech: {operator: old layer entry}}``."""
    if previous is None:
        log.info("no previous %s: every layer is computed", layout.predict_report)
        return {}
    # compare as JSON data: the old grid went through json (tuples became lists)
    if previous.get("grid") != json.loads(json.dumps(grid_dict)):
        log.info("the grid changed since the previous run (extent, resolution or tile size): "
                 "every layer is recomputed")
        return {}
    out: dict[str, dict[str, dict]] = {}
    for tech, wanted in fingerprints.items():
        old_layers = previous.get("techs", {}).get(tech, {}).get("layers", [])
        for entry in old_layers:
            op = entry.get("operator")
            if op not in wanted or entry.get("fingerprint") != wanted[op]:
                continue
            if entry.get("rsrp") != layout.rsrp(tech, op).name or entry.get("class") != layout.coverage_class(tech, op).name:
                continue
            if not (layout.rsrp(tech, op).exists() and layout.coverage_class(tech, op).exists()):
                log.info("%s %s: fingerprint matches but a file is missing: recomputed", tech, op)
                continue
            if not isinstance(entry.get("evaluations"), int):
                continue
            out.setdefault(tech, {})[op] = entry
    for tech, wanted in fingerprints.items():
        kept = sorted(out.get(tech, {}))
        log.info("%s: reusing %s; computing %s", tech, kept or "nothing",
                 sorted(set(wanted) - set(kept)) or "no operator layer")
    return out


def _invalidate_previous_report(layout, previous, prepared, reused) -> None:
    """Rewrite the old report without a fingerprint for every layer this run replaces.

    Layer files are replaced one by one (each atomically) and the new report comes
    last; a run killed in between leaves a report that vouches only for the layers
    still as it describes them, so the next run recomputes the rest.
    """
    if previous is None:
        return
    changed = False
    for tech, entry in previous.get("techs", {}).items():
        for layer in entry.get("layers", []):
            if tech in prepared and layer.get("operator") not in reused.get(tech, {}) and layer.get("fingerprint"):
                layer["fingerprint"] = None
                changed = True
    if changed:
        with atomic_output(layout.predict_report) as tmp:
            tmp.write_text(_report_text(previous), encoding="utf-8")
