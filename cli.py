"""covmap: the command line of the mobile-IoT coverage map.

Each command parses its options, makes one call into the ``coverage`` library and
reports. Exit codes are a contract:

* 0: done, nothing to report;
* 1: done, with findings the user must act on (rows rejected, a failed check);
* 2: could not run (bad usage, an unreadable input, a ``CoverageError``), with a
  one-line message naming the input; the traceback only with ``-v``.

Shared options (defined once below): ``--out``, ``--config``, ``--tech``,
``--resolution``, ``--scheduler``, ``--overwrite`` and the group's ``-v/-q``.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from coverage import __version__
from coverage.errors import CoverageError
from coverage.schema import TECH_IDS

log = logging.getLogger("coverage.cli")

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


# ---------------------------------------------------------------- shared options

out_opt = click.option(
    "--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
    help="Run directory to write (created if missing; the tool owns it).",
)
config_opt = click.option(
    "--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None, help="TOML file overriding the default link budgets and settings.",
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
            verbose = (ctx.obj or {}).get("verbosity", 0) > 0
            if verbose:
                log.exception("error")
            click.echo(f"Error: {exc}", err=True)
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


def progress_bar(total: int, label: str, ctx: click.Context | None = None):
    """A tqdm bar on stderr, silent with -q; the library reports through callbacks."""
    from tqdm import tqdm

    quiet = ctx is not None and (ctx.obj or {}).get("verbosity", 0) < 0
    return tqdm(total=total, desc=label, unit="tile", disable=quiet, file=sys.stderr, leave=False)


# ---------------------------------------------------------------- commands
# (each section below belongs to one stage; keep command bodies to one screen)

# === validate (issue 2) ===

# === config show (issue 3) ===

# === predict (issue 3) ===

# === aggregate, gaps (issue 4) ===

# === publish (issue 5) ===

# === build (issue 6) ===


if __name__ == "__main__":
    main()
