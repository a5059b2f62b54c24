"""Regenerate the UI screenshots in this folder with a real browser (headless Chromium).

Needs the Debian package `chromium` and `pip install playwright` (driving the system Chromium; no browser
download), and a running `recap ui --port PORT` whose instance holds a finished `recap run`:

    recap run && (recap ui --port 3000 &) && python docs/screenshots/capture.py --port 3000

The job's Runs tab and a stale iteration (``job-runs.png``, ``stale-iteration.png``) were captured on an
instance where iteration 2 of push-v3 was re-run with changed settings after a 3-iteration run, so
iteration 3, trained on the old pi^2's rollouts, is stale:

    recap run --preset tiny --tasks push-v3 --iterations 3
    recap iterate --task push-v3 --iteration 2 --preset tiny-with-longer-finetuning.yaml
    python docs/screenshots/capture.py --port 3000 --stale-partition "3|push-v3"
"""

from __future__ import annotations

import argparse
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

OUT = Path(__file__).resolve().parent
PARTITION = "1|push-v3"


def _dismiss_onboarding(page: Page) -> None:
    """The first visit shows a newsletter dialog; skip it once (the choice is kept in the profile)."""
    skip = page.get_by_role("button", name="Skip")
    if skip.count():
        skip.first.click()


def _open(page: Page, path: str) -> None:
    page.goto(path)
    page.wait_for_load_state("networkidle")
    _dismiss_onboarding(page)
    page.wait_for_timeout(1500)


def _shot(page: Page, name: str, shots: list[Path]) -> None:
    shots.append(OUT / f"{name}.png")
    page.screenshot(path=shots[-1])


def _show_first_plot(page: Page) -> None:
    """Plots are Markdown images in the metadata; the UI opens them in a dialog."""
    page.get_by_text("[Show Markdown]").first.click()
    page.wait_for_timeout(2000)


def capture(port: int, stale_partition: str | None = None) -> list[Path]:
    shots: list[Path] = []
    partition = PARTITION.replace("|", "%7C")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1600, "height": 1000}, base_url=f"http://127.0.0.1:{port}")
        _open(page, "/locations/recap/asset-groups/recap_iteration/lineage")
        _shot(page, "asset-graph", shots)
        _open(page, f"/assets/advantages?view=partitions&partition={partition}")
        _shot(page, "iteration-partition", shots)
        _show_first_plot(page)
        _shot(page, "value-along-episodes", shots)
        _open(page, f"/assets/evaluation?view=partitions&partition={partition}")
        _show_first_plot(page)
        _shot(page, "evaluation-plot", shots)
        _open(page, "/assets/indicators?view=checks")
        _shot(page, "checks", shots)
        _open(page, "/locations/recap/schedules/nightly_recap")
        _shot(page, "schedule", shots)
        _open(page, "/locations/recap/jobs/recap_iteration/runs")
        _shot(page, "job-runs", shots)  # CLI runs carry the code location's origin, so the job lists them
        if stale_partition:
            stale = stale_partition.replace("|", "%7C")
            _open(page, f"/assets/experience?view=partitions&partition={stale}")
            _shot(page, "stale-iteration", shots)
        browser.close()
    return shots


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=3000)
    parser.add_argument("--stale-partition", default=None, help='e.g. "3|push-v3" (see above)')
    arguments = parser.parse_args()
    for shot in capture(arguments.port, arguments.stale_partition):
        print(shot)
