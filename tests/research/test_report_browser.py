"""The default scenario's report in a real headless Chromium: no console error, data in every chart.

Skips locally when no Chromium is found (``apt-get install chromium``); CI installs it (``.ci/run``),
and with ``CI`` set a missing browser fails the test instead of skipping it.
"""

from __future__ import annotations

import os

import pytest

from app.cli import main
from tests.research.cdp import find_chromium, load_page

CHECK_JS = """(() => [...document.querySelectorAll('figure.chart')].map(f => {
  const svg = f.querySelector('svg'); const box = svg.getBoundingClientRect();
  return {title: f.querySelector('figcaption').textContent, points: Number(f.dataset.points),
          drawn: [...svg.querySelectorAll('path')].filter(p => p.getTotalLength() > 0).length
                 + svg.querySelectorAll('circle').length,
          width: box.width, height: box.height};
}))()"""


@pytest.fixture(scope="module")
def chromium() -> str:
    binary = find_chromium()
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("no Chromium on a CI machine: .ci/run installs Debian's chromium")
        pytest.skip("no Chromium found (apt-get install chromium, or set POLYMM_CHROMIUM)")
    return binary


@pytest.mark.slow
def test_default_scenario_report_loads_in_chromium_without_errors(chromium, tmp_path):
    run = tmp_path / "default"
    assert main(["sim", "--config", "configs/market_maker.yaml", "--out", str(run), "--quiet"]) == 0
    report = run / "report.html"
    assert report.stat().st_size < 3_000_000

    page = load_page(
        chromium, report.as_uri(), tmp_path / "profile", tmp_path / "report.png", CHECK_JS, timeout_s=120
    )

    assert page.errors == []
    charts = page.check
    # 7 run-wide charts, then per market (4) the whole run and a zoom.
    assert len(charts) == 7 + 2 * 4
    for c in charts:
        assert c["points"] > 0 and c["drawn"] > 0, c["title"]
        assert c["width"] > 100 and c["height"] > 50, c["title"]
    png = page.screenshot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 50_000


def test_the_browser_check_sees_console_errors_and_failed_loads(chromium, tmp_path):
    # The check above must be able to fail: a page with a script error and a missing image.
    page_file = tmp_path / "bad.html"
    page_file.write_text(
        '<!DOCTYPE html><html><head><link rel="icon" href="data:,"></head><body>'
        '<script>console.error("boom")</script><img src="missing.png">'
        '<figure class="chart" data-points="0"><figcaption>empty</figcaption><svg></svg></figure>'
        "</body></html>"
    )

    page = load_page(chromium, page_file.as_uri(), tmp_path / "profile", tmp_path / "bad.png", CHECK_JS)

    assert any("boom" in e for e in page.errors)
    assert any("missing.png" in e or "ERR_FILE_NOT_FOUND" in e for e in page.errors)
    assert page.check[0]["points"] == 0 and page.check[0]["drawn"] == 0
