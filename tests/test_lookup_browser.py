"""The location box, the county search and the downloads of the published site, in headless chromium.

The network is cut off (test_publish_browser's ``Watched``): the box loads its
published grids from ``lookup/*.js`` by ``<script>`` over file://.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_publish import make_run
from test_publish_browser import Watched, browser  # noqa: F401  (the fixture)

from coverage import chinacrs
from coverage.lookup import lookup_points

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """(run, public site) of test_publish's fake run."""
    from coverage.publish import write_site

    root = tmp_path_factory.mktemp("lookup_browser")
    run = make_run(root / "run")
    write_site(run, root / "public")
    return run, root / "public"


@pytest.fixture
def watched(browser):  # noqa: F811
    page = Watched(browser)
    yield page
    page.close()


def _answer(page, text: str, datum: str) -> dict[str, str]:
    page.fill("#covmap-locate-input", text)
    page.select_option("#covmap-locate-crs", datum)
    page.click("#covmap-locate-go")
    page.wait_for_selector('#covmap-locate-result[data-state="found"], #covmap-locate-result[data-state="outside"]',
                           timeout=10_000)
    return page.eval_on_selector_all(
        "#covmap-locate-result td[data-layer]",
        "els => Object.fromEntries(els.map(e => [e.getAttribute('data-layer'), e.getAttribute('data-class')]))")


def test_page_coordinate_conversions_match_chinacrs(site, watched):
    page = watched.open(site[1] / "index.html")
    rng = np.random.default_rng(3)
    lon, lat = rng.uniform(74, 134, 60), rng.uniform(4, 53, 60)
    got = page.evaluate("""pts => pts.map(p => [covmap.crs.wgs84ToGcj02(p[0], p[1]), covmap.crs.gcj02ToWgs84(p[0], p[1]),
                          covmap.crs.gcj02ToBd09(p[0], p[1]), covmap.crs.toWgs84(p[0], p[1], "bd09")])""",
                        np.column_stack([lon, lat]).tolist())
    got = np.asarray(got)
    for k, func in enumerate((chinacrs.wgs84_to_gcj02, chinacrs.gcj02_to_wgs84, chinacrs.gcj02_to_bd09,
                              chinacrs.bd09_to_wgs84)):
        want = np.column_stack(func(lon, lat))
        assert np.abs(got[:, k, :] - want).max() < 1e-9, func.__name__
    assert watched.blocked == [] and watched.errors == []


def test_location_box_shows_the_published_classes(site, watched):
    run, out = site
    rng = np.random.default_rng(11)
    points = pd.DataFrame({"point_id": [f"p{i}" for i in range(6)], "lon": rng.uniform(110.02, 110.38, 6),
                           "lat": rng.uniform(30.02, 30.38, 6)})
    points.loc[0, ["lon", "lat"]] = [110.2877 + 0.001, 30.1262]  # beside a site: deep coverage
    answers, _ = lookup_points(run, points)
    page = watched.open(out / "counties/110101.html")
    for i, row in points.iterrows():
        want = {f"{t}_{o}": str(c) for t, o, c in answers[answers["point_id"] == row["point_id"]][
            ["tech", "operator", "coverage"]].itertuples(index=False)}
        assert _answer(page, f"{row['lon']:.7f},{row['lat']:.7f}", "wgs84") == want
        glon, glat = (float(v) for v in chinacrs.wgs84_to_gcj02(row["lon"], row["lat"]))
        assert _answer(page, f"{glon:.8f}，{glat:.8f}", "gcj02") == want  # a full-width comma, as typed in Chinese
        blon, blat = (float(v) for v in chinacrs.wgs84_to_bd09(row["lon"], row["lat"]))
        assert _answer(page, f"{blon:.8f} {blat:.8f}", "bd09") == want
        if i == 0:
            assert want["nbiot_all"] == "deep"
            county = answers[answers["point_id"] == "p0"]["county_code"].astype(str).iloc[0]
            assert page.get_attribute("#covmap-locate-result", "data-county") == county
            assert "深度覆盖" in page.inner_text("#covmap-locate-result")
    assert _answer(page, "115.5,30.1", "wgs84") == {}
    assert "outside" in page.inner_text("#covmap-locate-result")
    page.fill("#covmap-locate-input", "not a place")
    page.click("#covmap-locate-go")
    assert page.get_attribute("#covmap-locate-result", "data-state") == "error"
    assert watched.blocked == [] and watched.errors == [] and watched.dialogs == []


def test_clicking_the_map_answers_there(site, watched):
    page = watched.open(site[1] / "index.html")
    page.click("#covmap-locate-go")  # empty box: a hint, no error
    box = page.locator(".folium-map").bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.45, box["y"] + box["height"] * 0.55)
    page.wait_for_selector('#covmap-locate-result[data-state="found"], #covmap-locate-result[data-state="outside"]',
                           timeout=10_000)
    typed = page.input_value("#covmap-locate-input")
    lon, lat = (float(v) for v in typed.split(","))
    assert page.input_value("#covmap-locate-crs") == "wgs84"
    answers, outside = lookup_points(site[0], pd.DataFrame({"point_id": ["c"], "lon": [lon], "lat": [lat]}))
    shown = page.eval_on_selector_all(
        "#covmap-locate-result td[data-layer]",
        "els => Object.fromEntries(els.map(e => [e.getAttribute('data-layer'), e.getAttribute('data-class')]))")
    want = {} if outside[0] else {f"{t}_{o}": str(c) for t, o, c in
                                  answers[["tech", "operator", "coverage"]].itertuples(index=False)}
    assert shown == want
    assert watched.errors == []


def test_county_search_and_downloads(site, watched):
    _, out = site
    page = watched.open(out / "index.html")
    page.fill("#covmap-search", "丙")
    links = page.eval_on_selector_all("#covmap-search-results a", "els => els.map(e => e.getAttribute('href'))")
    assert links == ["counties/120101.html"]
    page.fill("#covmap-search", "1201")
    assert page.locator("#covmap-search-results a").count() == 2
    page.fill("#covmap-search", "110101")
    page.press("#covmap-search", "Enter")
    page.wait_for_url("**/counties/110101.html", timeout=10_000)
    href = page.get_attribute('.covmap-downloads a[href$="county.csv"]', "href")
    assert href == "../downloads/county.csv" and (out / "downloads/county.csv").is_file()
    table = pd.read_csv(out / "downloads/county.csv", encoding="utf-8-sig", dtype={"code": str})
    assert "sites" not in table.columns and "sectors" not in table.columns
    assert table.loc[(table["code"] == "110101") & (table["operator"] == "all") & (table["tech"] == "nbiot"),
                     "coverage_pct"].iloc[0] == 97.3
    assert watched.blocked == [] and watched.errors == []
