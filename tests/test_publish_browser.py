"""The published site in headless Debian chromium, with the network cut off.

Every request that is not a ``file://`` URL is aborted and recorded; the pages
must draw, react and stay silent (no dialog, no injected console output).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_publish import COUNTIES, EVIL_COUNTY, EVIL_SITE, make_run

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).parent / "artifacts"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def browser():
    """A headless Debian chromium driven by Playwright (skipped when absent)."""
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def sites(tmp_path_factory):
    """Public and 中国电信 operator editions of the fake run: {"public": dir, "operator": dir}."""
    from coverage.publish import write_site

    root = tmp_path_factory.mktemp("browser")
    run = make_run(root / "run")
    write_site(run, root / "public")
    write_site(run, root / "operator", edition="operator", operator="中国电信")
    return {"public": root / "public", "operator": root / "operator"}


class Watched:
    """A page whose network is cut off and whose dialogs and console are recorded."""

    def __init__(self, browser):
        self.context = browser.new_context(viewport={"width": 1280, "height": 860})
        self.blocked: list[str] = []
        self.dialogs: list[str] = []
        self.console: list[str] = []
        self.errors: list[str] = []
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on("dialog", self._dialog)
        self.page.on("console", lambda msg: self.console.append(msg.text))
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))

    def _route(self, route):
        url = route.request.url
        if url.startswith("file://") or url.startswith("data:"):
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort()

    def _dialog(self, dialog):
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def open(self, path: Path):
        self.page.goto(path.resolve().as_uri(), wait_until="load")
        self.page.wait_for_selector("path.leaflet-interactive", state="attached", timeout=10_000)
        return self.page

    def close(self):
        self.context.close()


@pytest.fixture
def watched(browser):
    page = Watched(browser)
    yield page
    page.close()


def _fills(page) -> dict[str, str]:
    return page.eval_on_selector_all(
        "path[data-code]", "els => Object.fromEntries(els.map(e => [e.getAttribute('data-code'), e.getAttribute('fill')]))")


def test_national_page_offline(sites, watched):
    page = watched.open(sites["public"] / "index.html")
    paths = page.locator(".leaflet-overlay-pane path.leaflet-interactive")
    assert paths.count() == len(COUNTIES)
    assert sorted(_fills(page)) == sorted(c[0] for c in COUNTIES)

    page.hover('path[data-code="110101"]')
    tooltip = page.locator(".leaflet-tooltip", has_text="110101")
    tooltip.wait_for(timeout=5_000)
    text = tooltip.inner_text()
    assert "甲县" in text and "110101" in text and "测试省A" in text and "97.3 %" in text

    before = _fills(page)
    page.select_option("#covmap-tech", "redcap")
    after = _fills(page)
    assert before != after
    assert before["110101"] == "#ffea46" and after["110101"] == "#00204d"  # 97.3 % -> 42.0 %
    page.select_option("#covmap-metric", "deep")
    page.select_option("#covmap-op", "ct")
    assert _fills(page)["120101"] == "#bcaf6f"  # RedCap, China Telecom, deep: 90.0 % is in 90–95 %
    page.hover('path[data-code="120101"]')
    assert "90.0 %" in page.locator(".leaflet-tooltip", has_text="丙县").inner_text()

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "publish_index.png"))
    assert watched.blocked == [] and watched.errors == [] and watched.dialogs == []


def test_click_through_to_province_and_county(sites, watched):
    page = watched.open(sites["public"] / "index.html")
    page.click('path[data-code="120101"]')
    link = page.locator(".leaflet-popup a", has_text="县级地图 County map")
    assert page.locator(".leaflet-popup a", has_text="省级地图 Province map").get_attribute("href") == \
        "provinces/120000.html"
    link.click()
    page.wait_for_selector("path.leaflet-interactive", state="attached")
    assert page.url.endswith("counties/120101.html")
    assert page.locator("img.leaflet-image-layer").count() == 1  # the selected technology's overlay
    watched.open(sites["public"] / "counties/110101.html")
    assert page.locator('path[data-code^="110101"]').count() == 4  # townships
    page.hover('path[data-code="110101003"]')
    assert "synthetic" in page.locator(".leaflet-tooltip", has_text="110101003").inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "publish_county.png"))
    assert watched.blocked == [] and watched.errors == [] and watched.dialogs == []


def test_injected_names_show_as_text_and_never_run(sites, watched):
    page = watched.open(sites["public"] / "index.html")
    page.hover('path[data-code="110102"]')
    tip = page.locator(".leaflet-tooltip", has_text="110102")
    tip.wait_for()
    assert EVIL_COUNTY in tip.inner_text()
    assert page.locator(".leaflet-tooltip img").count() == 0
    watched.open(sites["public"] / "counties/110102.html")
    assert page.title().startswith(EVIL_COUNTY)
    assert EVIL_COUNTY in page.locator("#covmap-header h1").inner_text()
    watched.open(sites["public"] / "counties/110101.html")
    page.hover('path[data-code="110101001"]')  # the township named </script><script>alert(3)</script>镇
    assert "</script><script>alert(3)</script>镇" in page.locator(".leaflet-tooltip", has_text="110101001").inner_text()

    page = watched.open(sites["operator"] / "counties/110102.html")
    marker = page.locator(".leaflet-overlay-pane path.leaflet-interactive:not([data-code])")
    marker.first.wait_for(state="attached", timeout=5_000)
    assert marker.count() == 1, watched.errors  # the one CT site in this county, named with a <script> payload
    marker.hover(force=True)
    assert EVIL_SITE in page.locator(".leaflet-tooltip", has_text="site").inner_text()
    assert page.locator(".leaflet-tooltip script").count() == 0
    assert watched.dialogs == [], watched.dialogs
    assert not [m for m in watched.console if "XSS" in m], watched.console
    assert watched.blocked == [] and watched.errors == []


def test_operator_edition_shows_only_own_sites(sites, watched):
    page = watched.open(sites["operator"] / "provinces/120000.html")
    positions = page.evaluate("""() => {
        const found = [];
        for (const key of Object.keys(window)) {
          const v = window[key];
          if (key.startsWith("map_") && v && v.eachLayer) {
            v.eachLayer(l => { if (l.refreshClusters) { l.getLayers().forEach(m => found.push(m.getLatLng())); } });
          }
        }
        return found.map(p => [p.lng, p.lat]);
    }""")
    assert positions == [[110.3123, 30.2877]]  # CT-0003; the two CM sites in this province never reach it
    assert watched.blocked == [] and watched.errors == []


@pytest.fixture(scope="module")
def change_site(tmp_path_factory):
    """The public site of a fake run compared with an earlier one that covered more of 甲县 (110101)."""
    import numpy as np
    import rasterio

    from coverage.compare import compare_runs
    from coverage.publish import write_site

    root = tmp_path_factory.mktemp("browser_change")
    old, new = make_run(root / "old"), make_run(root / "new")
    with rasterio.open(new / "raster" / "nbiot_class.tif", "r+") as ds:  # this month NB-IoT lost ground in 甲县
        classes = ds.read(1)
        covered = np.argwhere(np.isin(classes, (1, 2)))
        rows, cols = covered[:, 0], covered[:, 1]
        west = cols < np.percentile(cols, 15)
        classes[rows[west], cols[west]] = 0
        ds.write(classes, 1)
    compare_runs(old, new, root / "change")
    write_site(new, root / "public", change_dir=root / "change")
    return root / "public"


def test_change_page_diverging_colours_signed_points_and_links(change_site, watched):
    from coverage.publish.change import CHANGE_COLOURS

    page = watched.open(change_site / "change.html")
    fills = _fills(page)
    assert fills["110101"] in CHANGE_COLOURS[:3]  # a loss: a red class
    assert fills["120102"] == CHANGE_COLOURS[3]  # no change
    page.hover('path[data-code="110101"]')
    tip = page.locator(".leaflet-tooltip", has_text="110101").inner_text()
    assert " pp" in tip and "-" in tip.split("coverage change:")[1] and " km²" in tip and "%" not in tip
    assert "sites added" not in tip  # public edition: no site counts
    page.select_option("#covmap-tech", "redcap")
    assert _fills(page)["110101"] == CHANGE_COLOURS[3]  # RedCap did not change
    page.click('path[data-code="110102"]')
    link = page.locator(".leaflet-popup a", has_text="省级地图 Province map")
    assert link.get_attribute("href") == "provinces/110000_change.html"
    link.click()
    page.wait_for_selector("path.leaflet-interactive", state="attached")
    assert page.url.endswith("provinces/110000_change.html")
    assert page.locator("path[data-code]").count() == 2
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "publish_change.png"))
    watched.open(change_site / "index.html")
    assert page.locator("nav a", has_text="Change since").get_attribute("href") == "change.html"
    assert watched.blocked == [] and watched.errors == [] and watched.dialogs == []
