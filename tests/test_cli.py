"""The command group: exit-code contract, version, shared option types."""

import click
import pytest

from cli import CoverageGroup, SchedulerType, TechListType, main
from coverage import __version__
from coverage.errors import InputReadError


def _group_with(command_body):
    @click.group(cls=CoverageGroup)
    @click.option("-v", "--verbose", count=True)
    @click.pass_context
    def group(ctx, verbose):
        ctx.obj = {"verbosity": verbose}

    group.command("run")(command_body)
    return group


def test_coverage_error_is_one_line_and_exit_2(runner):
    def run():
        raise InputReadError("sites.csv: no coordinate columns")

    result = runner.invoke(_group_with(run), ["run"])
    assert result.exit_code == 2
    assert result.output.strip() == "Error: sites.csv: no coordinate columns"


def test_a_bug_exits_2_not_1_and_shows_the_traceback_only_with_v(runner):
    def run():
        raise RuntimeError("kaput")

    quiet = runner.invoke(_group_with(run), ["run"])
    assert quiet.exit_code == 2
    assert "internal error: RuntimeError: kaput" in quiet.output and "Traceback" not in quiet.output
    verbose = runner.invoke(_group_with(run), ["-v", "run"])
    assert verbose.exit_code == 2 and "Traceback" in verbose.output


def test_version(runner):
    result = runner.invoke(main, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output


@pytest.mark.parametrize(("text", "expected"), [("nbiot", ("nbiot",)), ("NB-IoT,5G RedCap", ("nbiot", "redcap")),
                                                ("redcap,redcap", ("redcap",))])
def test_tech_list(text, expected):
    assert TechListType().convert(text, None, None) == expected


@pytest.mark.parametrize("text", ["lte", ","])
def test_tech_list_rejects(text):
    with pytest.raises(click.BadParameter):
        TechListType().convert(text, None, None)


@pytest.mark.parametrize("text", ["processes", "synchronous", "tcp://10.0.0.1:8786"])
def test_scheduler_accepts(text):
    assert SchedulerType().convert(text, None, None) == text


def test_scheduler_rejects():
    with pytest.raises(click.BadParameter):
        SchedulerType().convert("mpi", None, None)
