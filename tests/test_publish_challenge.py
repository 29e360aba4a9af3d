"""The published site with a challenge: challenged hexagons drawn, listed per county, no site leaked.

The run is test_publish's fake run (four 0.2° counties, sites of CT and CM) with a
CT NB-IoT layer; challenge tests put one res-8 hexagon of 甲县 (110101) in the
``challenged`` state, one in ``insufficient`` (never published) and one, rebutted,
in 丙县 (120101).
"""

from __future__ import annotations

import re
import shutil

import h3
import pytest
from test_challenge import NEGATIVE_DBM, POSITIVE_DBM, frame_of
from test_publish import SITES, coordinate_pairs, make_run, near_sites, site_text_files
from test_publish_browser import Watched, browser  # noqa: F401 (a fixture)

from coverage.layout import RunLayout
from coverage.measure.challenge import assess_challenges, write_challenge

# 1.4 km from CT-0001, inside its 4 km outdoor coverage; the hexagon holding CT-0001 itself
CHALLENGED_HEX = h3.latlng_to_cell(30.05, 110.085, 8)
SITE_HEX = h3.latlng_to_cell(SITES[0][3], SITES[0][2], 8)
REBUTTED_HEX = h3.latlng_to_cell(30.2877 - 0.005, 110.3123, 8)  # beside CT-0003, in 120102


def _negatives(hex_id, cells=4, day="2024-05-10"):
    kids = sorted(h3.cell_to_children(hex_id, 9))
    return [(kids[i % cells], f"{day} {'08:00' if i % 2 else '14:00'}", NEGATIVE_DBM) for i in range(6)]


@pytest.fixture(scope="module")
def challenged_run(tmp_path_factory):
    """The fake run with a CT NB-IoT layer and challenge/ written."""
    root = make_run(tmp_path_factory.mktemp("pubchallenge") / "run")
    layout = RunLayout(root)
    shutil.copy(layout.coverage_class("nbiot"), layout.coverage_class("nbiot", "CT"))
    tests = frame_of(_negatives(CHALLENGED_HEX) + _negatives(SITE_HEX, cells=3) + _negatives(REBUTTED_HEX))
    kids = sorted(h3.cell_to_children(REBUTTED_HEX, 9))
    answer = frame_of([(kids[i % 5], f"2024-06-20 {'09:00' if i % 2 else '16:00'}", POSITIVE_DBM)
                       for i in range(40)])
    result = assess_challenges(root, tests, answer)
    write_challenge(result, root)
    return root, result


@pytest.fixture(scope="module")
def published(challenged_run, tmp_path_factory):
    from coverage.publish import write_site

    root, result = challenged_run
    out = tmp_path_factory.mktemp("pubchallenge_site") / "maps"
    write_site(root, out)
    return out, result


def test_the_run_has_the_three_states(challenged_run):
    _, result = challenged_run
    status = dict(zip(result.hexes["h3_res8"], result.hexes["status"], strict=True))
    assert status == {CHALLENGED_HEX: "challenged", SITE_HEX: "insufficient", REBUTTED_HEX: "rebutted"}


def test_county_page_lists_its_challenged_hexagons(published):
    out, result = published
    county = result.hexes.set_index("h3_res8").loc[CHALLENGED_HEX, "county_code"]
    assert county == "110101"
    text = (out / f"counties/{county}.html").read_text(encoding="utf-8")
    listed = re.findall(r'<tr class="(\w+)" data-h3="(\w+)"><td>\w+</td><td>([^<]*)</td><td>(\d+)/(\d+)</td>', text)
    assert listed == [("challenged", CHALLENGED_HEX, "NB-IoT · 中国电信 China Telecom", "6", "6")]
    assert "受质疑区域 Challenged areas (1)" in text
    assert SITE_HEX not in text  # insufficient: stays in the run
    drawn = re.search(r'covmap\.challenges\(\w+, "nbiot", (\{.*?\})\);', text)
    assert drawn and CHALLENGED_HEX in drawn.group(1) and '"k":6' in drawn.group(1)


def test_rebutted_hexagon_is_listed_not_drawn(published):
    out, result = published
    county = result.hexes.set_index("h3_res8").loc[REBUTTED_HEX, "county_code"]
    text = (out / f"counties/{county}.html").read_text(encoding="utf-8")
    assert f'<tr class="rebutted" data-h3="{REBUTTED_HEX}">' in text and "已反驳 rebutted" in text
    assert "covmap.challenges(" not in text


def test_national_page_draws_challenged_hexagons(published):
    out, _ = published
    text = (out / "index.html").read_text(encoding="utf-8")
    assert text.count("covmap.challenges(") == 1 and CHALLENGED_HEX in text and REBUTTED_HEX not in text
    assert "受质疑区域 challenged area (H3)" in text


def test_public_edition_with_challenges_has_no_site_coordinates(published):
    """The coordinate scan of test_publish over every file of the site with challenges."""
    out, _ = published
    scanned = 0
    for path, text in site_text_files(out):
        pairs = coordinate_pairs(text)
        scanned += len(pairs)
        assert near_sites(pairs, SITES) == set(), path
        for site_id, *_ in SITES[:1] + SITES[2:]:
            assert site_id not in text, path
    assert scanned > 1000


def test_site_without_challenge_dir_has_no_challenge_layer(tmp_path):
    from coverage.publish import write_site

    run = make_run(tmp_path / "run")
    write_site(run, tmp_path / "maps")
    text = (tmp_path / "maps/counties/110101.html").read_text(encoding="utf-8")
    assert "covmap.challenges(" not in text and "Challenged areas" not in text


@pytest.mark.browser
def test_county_page_draws_the_hexagon_in_chromium(published, browser):  # noqa: F811
    """Chromium, network cut off: the challenged hexagon is an SVG path with its H3 id, shown with NB-IoT."""
    out, _ = published
    watched = Watched(browser)
    try:
        page = watched.open(out / "counties/110101.html")
        page.wait_for_selector(f'path[data-h3="{CHALLENGED_HEX}"]', state="attached", timeout=10_000)
        assert page.locator("#covmap-challenges tr.challenged").count() == 1
        box = page.locator(f'path[data-h3="{CHALLENGED_HEX}"]').bounding_box()
        assert box and box["width"] > 5 and box["height"] > 5
        page.select_option("#covmap-tech", "redcap")
        assert page.locator(f'path[data-h3="{CHALLENGED_HEX}"]').count() == 0  # NB-IoT's layer only
        assert watched.blocked == [] and watched.errors == [] and watched.dialogs == []
    finally:
        watched.close()
