"""A real browser on the Compare page with the shipped real bundle (issue 22): upload two
takes, see both answers with the valence/arousal plane, the cue bars and the per-frame
strip, and download one analysis as the HTML handout, which holds the same content.

Needs Debian's Chromium (``/usr/bin/chromium``) and the shared real data (the clips are
a RAVDESS face and RAVDESS speech, ``bench/bench_analyze.make_clip``)."""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Iterator

import pytest
from served_app import free_port, streamlit_app

from pipeline.core import paths

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("AVE_CHROMIUM", "/usr/bin/chromium"))
pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def real_server(tmp_path_factory) -> Iterator[str]:
    if not CHROMIUM.is_file():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    tmp = tmp_path_factory.mktemp("explain_browser")
    port = free_port()
    env = {**os.environ, "AVE_BUNDLE": str(paths.shipped_bundle()), "AVE_RUNS": str(tmp / "runs"),
           "AVE_DATA": str(tmp / "data"), "TF_CPP_MIN_LOG_LEVEL": "2", "AVE_DETECTOR": "haar"}
    with streamlit_app([str(REPO / "dashboard" / "app.py"), "--server.headless", "true",
                        "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
                       port=port, env=env, log_path=tmp / "streamlit.log", timeout=90) as url:
        yield url


def test_compare_two_takes_and_download_the_handout(real_server: str, shared_data: Path, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    sys.path.insert(0, str(REPO / "bench"))
    import bench_analyze

    clip = bench_analyze.make_clip(4, tmp_path / "take.mp4")
    other = bench_analyze.make_clip(5, tmp_path / "take5.mp4")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
        page.goto(f"{real_server}/compare", wait_until="networkidle")
        expect(page.get_by_text("Compare two clips").first).to_be_visible(timeout=60_000)
        inputs = page.locator("input[type=file]")
        expect(inputs).to_have_count(2, timeout=30_000)
        inputs.nth(0).set_input_files(str(clip))
        # B is given once A's answer is up, as a person does: a file set on B's uploader
        # while the page re-renders for A was seen lost (B's uploader empty) under load
        expect(page.get_by_text("The voice sounds").first).to_be_visible(timeout=240_000)
        expect(page.locator("input[type=file]")).to_have_count(2, timeout=30_000)
        page.locator("input[type=file]").nth(1).set_input_files(str(other))
        expect(page.get_by_text("The voice sounds")).to_have_count(2, timeout=240_000)
        expect(page.get_by_text("Where the answers sit on the valence x arousal plane").first).to_be_visible()
        expect(page.get_by_text("Pitch level and range").first).to_be_visible()
        button = page.get_by_role("button", name="Download this analysis (HTML handout, works offline)").first
        expect(button).to_be_visible(timeout=60_000)
        with page.expect_download(timeout=60_000) as info:
            button.click()
        saved = tmp_path / "handout.html"
        info.value.save_as(saved)
        html = saved.read_text()
        assert "The voice sounds" in html and "Warriner" in html and "data:image/png;base64," in html
        # the handout opens offline: everything is inline
        offline = browser.new_page()
        offline.route("**/*", lambda route: route.abort() if not route.request.url.startswith("file:")
                      else route.continue_())
        offline.goto(saved.as_uri())
        expect(offline.get_by_role("heading", name="What in the voice")).to_be_visible()
        expect(offline.locator(".js-plotly-plot").first).to_be_visible(timeout=30_000)
        browser.close()
