"""Screenshots of the sample's published site for the README: the national page and one county.

Opens ``maps/index.html`` and ``maps/counties/<code>.html`` (the public edition that
``covmap build --sample`` writes) in headless Debian chromium through Playwright, with
every request that is not a ``file://`` URL aborted (the site works offline), and
writes ``docs/national.png`` and ``docs/county.png``.

The Chinese labels need a CJK font where chromium runs (``make fonts``: Debian's
``fonts-noto-cjk``); without one they are drawn as empty boxes, and the script says so.

Usage::

    .venv/bin/python docs/screenshots.py [--site maps] [--county 350203] [--tech redcap] [--out docs]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run"]
VIEWPORT = {"width": 1280, "height": 820}
SETTLE_MS = 1500  # Leaflet's fit-bounds animation and the overlays' decoding


def has_cjk_font() -> bool:
    """True when fontconfig knows a font covering Chinese (fc-list :lang=zh)."""
    if shutil.which("fc-list") is None:
        return False
    listed = subprocess.run(["fc-list", ":lang=zh", "family"], capture_output=True, text=True, check=False)
    return bool(listed.stdout.strip())


def screenshot(page, url: str, path: Path, tech: str | None = None) -> None:
    page.goto(url, wait_until="load")
    page.wait_for_selector(".leaflet-container")
    if tech is not None:
        page.select_option("#covmap-tech", tech)
    page.wait_for_timeout(SETTLE_MS)
    page.screenshot(path=str(path), full_page=False)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--site", type=Path, default=Path("maps"), help="published site [maps]")
    parser.add_argument("--county", default="350203", help="county page to capture [350203 思明区]")
    parser.add_argument("--out", type=Path, default=Path("docs"), help="folder of the PNGs [docs]")
    parser.add_argument("--tech", default="redcap", help="technology shown on the county page [redcap]")
    args = parser.parse_args(argv)

    pages = {"national.png": args.site / "index.html", "county.png": args.site / "counties" / f"{args.county}.html"}
    missing = [str(p) for p in pages.values() if not p.is_file()]
    if missing:
        print(f"missing {', '.join(missing)}: run `covmap build --sample` first", file=sys.stderr)
        return 2
    if not Path(CHROMIUM).exists():
        print(f"{CHROMIUM} is missing: `make chromium` (as root) installs it", file=sys.stderr)
        return 2
    if not has_cjk_font():
        print("warning: no CJK font (fc-list :lang=zh is empty): Chinese labels will be boxes; "
              "`make fonts` installs fonts-noto-cjk", file=sys.stderr)

    from playwright.sync_api import sync_playwright

    args.out.mkdir(parents=True, exist_ok=True)
    blocked = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1)

        def offline(route):
            if route.request.url.startswith("file://"):
                route.continue_()
            else:
                blocked.append(route.request.url)
                route.abort()

        context.route("**/*", offline)
        page = context.new_page()
        for name, source in pages.items():
            screenshot(page, source.resolve().as_uri(), args.out / name, args.tech if name == "county.png" else None)
            print(f"{args.out / name}: {source}")
        browser.close()
    if blocked:
        print(f"warning: {len(blocked)} network requests were blocked, e.g. {blocked[0]}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
