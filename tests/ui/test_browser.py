"""A real browser against the real app: start ``streamlit run dashboard/app.py``, upload a
synthetic clip on Analyze and see the MFCC heatmap, the face crops and the three
prediction panels; open Results and see a confusion matrix; screenshot every page
into ``docs/screenshots/``.

Needs Debian's Chromium (``/usr/bin/chromium``, no browser download; skipped with the
reason shown where it is missing). The bundle is ``$AVE_TEST_BUNDLE``, else the default
``bundles/demo`` (``make demo``), else a tiny one trained here by the pipeline itself
(3 synthetic actors, 4 emotions, scikit-learn branches: about a minute), so a clean
checkout in CI runs the whole test. Screenshots go to a temporary folder unless
``$AVE_SCREENSHOTS`` names one: after ``make demo``,
``AVE_SCREENSHOTS=docs/screenshots .venv/bin/python -m pytest tests/ui/test_browser.py``
refreshes the README's pictures (a plain ``make test`` never rewrites tracked files).
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Iterator

import pytest
from served_app import free_port, streamlit_app

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("AVE_CHROMIUM", "/usr/bin/chromium"))
SCREENSHOTS = Path(os.environ.get("AVE_SCREENSHOTS", REPO / "docs" / "screenshots")).resolve()
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.browser
#: What the running app serves (set by the ``server`` fixture): {"bundle": Path}.
SERVED: dict[str, Path] = {}


def _train_tiny_bundle(tmp: Path) -> Path:
    """Corpus -> fusion run -> bundle, through the pipeline's own commands, small enough
    for a test: 3 actors, 4 emotions, an RBF SVM on MFCC statistics and logistic
    regression on 10 face crops of 16 x 16 pixels (enough frames that the blank first
    frames of a WebRTC recording cannot leave the video branch without a face)."""
    import yaml

    from pipeline.research.export import export_bundle
    from pipeline.research.experiments import run_spec
    from pipeline.core.synth.corpus import generate

    corpus = tmp / "synthetic"
    generate(corpus, n_actors=3, seed=7, emotions=["neutral", "happy", "sad", "angry"], progress=False)
    spec = {"name": "browser_fusion", "corpus": {"name": "synthetic", "root": str(corpus)},
            "labels": "four", "protocol": {"kind": "speaker", "folds": 3}, "branch": "fusion",
            "fusion": {"audio": {"features": {"kind": "mfcc_stats"}, "model": {"name": "svm_rbf"}},
                       "video": {"preprocessing": {"n_frames": 10, "crop_size": 16},
                                 "features": {"kind": "frames", "detector": "haar"},
                                 "model": {"name": "logreg"}},
                       "methods": ["lr"], "rules": ["mean"], "inner_folds": 2},
            "variants": [{"name": "speaker"}]}
    path = tmp / "browser_fusion.yaml"
    path.write_text(yaml.safe_dump(spec))
    run_spec(path, out=tmp / "runs", progress=False, cache_dir=tmp / "cache")
    exp = tmp / "runs" / "browser_fusion"
    return export_bundle(exp / "audio", exp / "video", exp / "fusion_lr", out=tmp / "bundle", name="browser")


def _bundle(tmp: Path) -> Path:
    """The bundle the app serves: named, the demo's, or a tiny one trained now."""
    from pipeline.core import paths

    named = os.environ.get("AVE_TEST_BUNDLE")
    found = Path(named) if named else REPO / paths.default_bundle()
    if (found / "bundle.json").is_file():
        return found
    if named:
        pytest.fail(f"AVE_TEST_BUNDLE={named} holds no bundle.json")
    return Path(_train_tiny_bundle(tmp))


def _synthetic_clip(tmp: Path) -> Path:
    """One audio-visual take of the synthetic corpus (an existing one, or made now)."""
    from pipeline.core import paths

    existing = sorted((REPO / paths.data_dir() / "synthetic").glob("Actor_*/01-01-03-02-*.mp4"))
    if existing:
        return existing[0]
    from pipeline.core.synth.corpus import generate

    generate(tmp / "synthetic", n_actors=1, seed=7, emotions=["happy"], progress=False, n_jobs=1)
    return sorted((tmp / "synthetic").glob("Actor_*/01-01-*.mp4"))[0]


@pytest.fixture(scope="module")
def server(tmp_path_factory, results_writer) -> Iterator[str]:
    """The dashboard served on a free port; yields its URL."""
    if not CHROMIUM.is_file():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    tmp = tmp_path_factory.mktemp("browser")
    bundle = _bundle(tmp)
    SERVED["bundle"] = bundle
    global SCREENSHOTS
    if "AVE_SCREENSHOTS" not in os.environ:
        SCREENSHOTS = tmp / "screenshots"  # tests never rewrite the committed pictures
    from pipeline.core import paths
    from pipeline.research import store

    runs = Path(os.environ.get("AVE_TEST_RUNS") or REPO / paths.runs_dir())
    if not store.list_experiments(runs):  # no `make demo` results: a tiny store of our own
        runs = results_writer(tmp / "runs")
    port = free_port()
    def shown(path: Path) -> str:  # folders inside the checkout as the app shows them: relative
        path = Path(path).resolve()
        return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)

    server_tmp = tmp / "server-tmp"  # the server's temporary folder: where camera takes go
    server_tmp.mkdir()
    SERVED["tmp"] = server_tmp
    env = {**os.environ, "AVE_BUNDLE": shown(bundle), "AVE_RUNS": shown(runs),
           "AVE_DATA": shown(REPO / paths.data_dir()), "TF_CPP_MIN_LOG_LEVEL": "2", "TMPDIR": str(server_tmp)}
    with streamlit_app([str(REPO / "dashboard" / "app.py"), "--server.headless", "true",
                        "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
                       port=port, env=env, log_path=tmp / "streamlit.log") as url:
        yield url


def _write_fake_devices(frames: list, samples, folder: Path) -> tuple[Path, Path]:
    """RGB frames as a .y4m video and 48 kHz mono samples as a .wav, which Chromium plays
    (looped) as its camera and microphone (``--use-file-for-fake-video-capture`` /
    ``-audio-capture``)."""
    import wave

    import av
    import numpy as np

    y4m, wav = folder / "camera.y4m", folder / "microphone.wav"
    height, width = frames[0].shape[:2]
    with open(y4m, "wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F30:1 Ip A1:1 C420jpeg\n".encode())
        for rgb in frames:
            yuv = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
            out.write(b"FRAME\n" + yuv.to_ndarray().tobytes())
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2")
    with wave.open(str(wav), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(48000)
        out.writeframes(pcm.tobytes())
    return y4m, wav


def fake_camera_files(clip: Path, folder: Path) -> tuple[Path, Path]:
    """The clip's frames and sound as the fake camera and microphone."""
    from pipeline.core.media import iter_frames, load_audio

    return _write_fake_devices([rgb for _, rgb in iter_frames(clip)], load_audio(clip, 48000), folder)


def real_person_files(shared: Path, folder: Path) -> tuple[Path, Path] | None:
    """A real person in front of the fake camera: RAVDESS actor 1's still (two seconds
    at 30 fps, even-sized for YUV 4:2:0) and the same actor's eight happy takes
    (``03-01-03-*``), each trimmed of its leading and trailing quiet (30 dB below its
    peak) and joined, so every 3 s analysis window of a recording holds well over the
    1 s of speech a window needs, wherever the window falls. None where the shared data
    lacks them."""
    import cv2
    import librosa
    import numpy as np

    from pipeline.core.media import load_audio

    still = shared / "ravdess-faces" / "Actor_01.png"
    takes = sorted((shared / "ravdess-speech" / "Actor_01").glob("03-01-03-*.wav"))
    if not (still.is_file() and takes):
        return None
    speech = np.concatenate([librosa.effects.trim(load_audio(t, 48000), top_db=30)[0] for t in takes])
    bgr = cv2.imread(str(still))
    rgb = cv2.cvtColor(bgr[: bgr.shape[0] // 2 * 2, : bgr.shape[1] // 2 * 2], cv2.COLOR_BGR2RGB)
    return _write_fake_devices([rgb] * 60, speech, folder)


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return _synthetic_clip(tmp_path_factory.mktemp("clip"))


#: What the fake camera plays (set by the ``page`` fixture): {"real": bool}.
CAMERA: dict[str, bool] = {}


@pytest.fixture(scope="module")
def page(server: str, clip: Path, tmp_path_factory) -> Iterator[object]:
    """Chromium whose fake camera and microphone play a real person when
    ``AVE_SHARED_DATA`` holds the RAVDESS samples, else the synthetic clip."""
    from playwright.sync_api import sync_playwright

    folder = tmp_path_factory.mktemp("camera")
    shared = os.environ.get("AVE_SHARED_DATA")
    real = real_person_files(Path(shared), folder) if shared else None
    CAMERA["real"] = real is not None
    y4m, wav = real or fake_camera_files(clip, folder)
    args = CHROMIUM_ARGS + ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                            f"--use-file-for-fake-video-capture={y4m}",
                            f"--use-file-for-fake-audio-capture={wav}"]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=args)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        tab = context.new_page()
        tab.set_default_timeout(60_000)
        yield tab
        browser.close()


def _chart(page, title: str):
    """The Plotly chart whose title starts with ``title`` (case-sensitive: Playwright's
    plain-text ``has_text`` matches any substring, any case, and "The fused answer,
    window by window" would count as a "Fused answer" panel)."""
    return page.locator(".js-plotly-plot .gtitle", has_text=re.compile("^" + re.escape(title)))


def _shot(page, name: str) -> None:
    """Screenshot of the whole page: Streamlit scrolls inside its main container, so the
    viewport is stretched to that container's height for the picture."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.wait_for_timeout(800)  # let Plotly finish drawing
    size = page.viewport_size
    height = page.evaluate("Math.max(...[...document.querySelectorAll("
                           "'[data-testid=stMain], [data-testid=stMainBlockContainer]')]"
                           ".map(e => e.scrollHeight), 0)")
    page.set_viewport_size({"width": size["width"], "height": int(min(max(height + 80, size["height"]), 8000))})
    page.wait_for_timeout(800)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))
    page.set_viewport_size(size)


def test_analyze_upload_shows_every_step(server: str, page, clip: Path) -> None:
    page.goto(server)  # Analyze is the default page
    page.get_by_text("Where does the clip come from?").wait_for()
    page.locator("input[type=file]").set_input_files(str(clip))
    from playwright.sync_api import expect

    _chart(page, "Fused answer").first.wait_for(timeout=180_000)
    # each chart once; Plotly draws them one by one, not in page order, on a busy machine
    for title in ("MFCC heatmap", "Waveform", "Audio model", "Video model", "Fused answer"):
        expect(_chart(page, title), title).to_have_count(1, timeout=30_000)
    video = json.loads((SERVED["bundle"] / "bundle.json").read_text())["models"]["video"]["preprocessing"]
    size, n_frames = video["crop_size"], video["n_frames"]
    expect(page.get_by_text(f"Face crops ({size} x {size})")).to_have_count(1)
    images = page.locator("[data-testid=stImage] img")
    images.nth(2 * n_frames - 1).wait_for(timeout=30_000)  # images arrive after the charts
    assert images.count() >= 2 * n_frames  # the sampled frames and their crops
    # a plain answer, or "Not sure" when its held-out calibration does not support it
    overall = page.get_by_text("Overall, this clip comes across as").count()
    assert overall == 1 or page.get_by_text("This clip leans towards").count() == 1
    _shot(page, "analyze")


#: A file name that is Markdown: a live link and a remote picture, were it rendered.
MARKDOWN_NAME = "[click here](https://example.com) ![t](https://example.com/t.png).wav"


def test_a_markdown_file_name_is_shown_as_text(server: str, page, clip: Path) -> None:
    """Issue 19: the name a visitor gives a file is text on every viewer's page: no
    link, no remote picture (the status label and the messages render Markdown)."""
    page.goto(server)
    page.get_by_text("Where does the clip come from?").wait_for()
    page.locator("input[type=file]").set_input_files(
        {"name": MARKDOWN_NAME, "mimeType": "audio/wav", "buffer": clip.read_bytes()})
    from dashboard.text import JOINER

    label = page.get_by_text("Analysed [click here](https").first
    label.wait_for(timeout=180_000)
    assert MARKDOWN_NAME in label.inner_text().replace(JOINER, "")  # the name, as text
    assert page.locator("a[href*='example.com']").count() == 0  # no link (nor autolink)
    assert page.locator("img[src*='example.com']").count() == 0  # no remote picture


def test_camera_recording_is_analysed(server: str, page) -> None:
    """Record camera + microphone over WebRTC to the server's temporary file, stop, and
    get the analysis of the recording. With a real person in front of the fake camera
    (``AVE_SHARED_DATA``) and a bundle trained on real people, both branches and the
    fusion must answer; with the synthetic clip each branch answers or says plainly why
    not (a voice model may hear no voice in the synthetic buzz, and a re-encoded drawn
    face may be missed)."""
    page.goto(server)
    page.get_by_text("Record camera + microphone").click()
    frame = page.frame_locator("iframe[title*='streamlit_webrtc']").first
    start, stop = frame.get_by_role("button", name="START"), frame.get_by_role("button", name="STOP")
    start.wait_for(timeout=120_000)
    page.wait_for_timeout(3000)  # a click while the component is still mounting is lost
    start.click()
    stop.wait_for(timeout=60_000)
    # STOP shows at once; the page says "Recording..." once the peer connection is up
    # (a few seconds on a busy machine), and the recording counts from there.
    page.get_by_text("Recording... press STOP when done.").wait_for(timeout=60_000)
    page.wait_for_timeout(6000)
    stop.click()
    done = page.get_by_text("Analysed camera recording.mp4")
    try:
        done.first.wait_for(timeout=180_000)
        page.get_by_text("3. What the models answer").wait_for(timeout=30_000)
        page.wait_for_timeout(1500)  # the three panels are drawn together
    except Exception:
        page.screenshot(path=str(SCREENSHOTS.parent / "camera-failure.png"))
        raise
    said = page.locator("[data-testid=stMain]").inner_text()
    print(said)  # shown by pytest when an assertion below fails
    assert list(SERVED["tmp"].glob("ave-recording-*")) == []  # the take was read and removed
    real_people = json.loads((SERVED["bundle"] / "bundle.json").read_text()).get("name") == "real"
    if CAMERA.get("real") and real_people:
        for title in ("Audio model", "Video model", "Fused answer"):
            try:  # Plotly draws after the text on a busy machine
                _chart(page, title).first.wait_for(timeout=60_000)
            except Exception:
                pass
            assert _chart(page, title).count() == 1, (title, said[:3000])
        return
    # each panel either answers (its words, then its chart: Plotly draws after the text
    # on a busy machine) or says why it did not
    for title, answered, abstained in (
            ("Audio model", "The voice sounds", ("No voice was heard", "too short")),
            ("Video model", "The face looks", ("No face was found in the sampled frames",)),
            ("Fused answer", "The fused answer comes across", ("Neither the voice nor the face could be used",))):
        if answered in said:
            _chart(page, title).first.wait_for(timeout=60_000)
            assert _chart(page, title).count() == 1, (title, said[:3000])
        else:
            assert any(words in said for words in abstained), (title, said[:3000])


def test_results_shows_a_confusion_matrix(server: str, page) -> None:
    page.goto(f"{server}/results")
    page.get_by_text("Download the table as CSV").wait_for()
    _shot(page, "results")
    page.get_by_role("tab", name="One variant").click()
    _chart(page, "Confusion matrix (counts)").first.wait_for()
    assert _chart(page, "Confusion matrix (row-normalised)").count() >= 1
    _shot(page, "results-variant")
    page.get_by_role("tab", name="Random vs speaker split").click()
    _shot(page, "results-protocols")


def test_live_streams_the_fake_camera_without_ice_servers(server: str, page) -> None:
    """Chromium's fake camera plays the synthetic clip: START connects over WebRTC on
    localhost with no STUN/TURN server, frames come back and the panels refresh."""
    page.goto(f"{server}/live")
    frame = page.frame_locator("iframe[title*='streamlit_webrtc']").first
    start, stop = frame.get_by_role("button", name="START"), frame.get_by_role("button", name="STOP")
    start.wait_for(timeout=120_000)
    page.wait_for_timeout(3000)  # a click while the component is still mounting is lost
    start.click()
    stop.wait_for(timeout=60_000)
    try:
        page.get_by_text("Frames per second").wait_for(timeout=90_000)
        page.wait_for_function(
            "() => [...document.querySelectorAll('[data-testid=stMetricValue]')]"
            ".some(e => parseFloat(e.innerText) > 0)", timeout=60_000)
    except Exception:
        page.screenshot(path=str(SCREENSHOTS.parent / "live-failure.png"))
        raise
    page.wait_for_timeout(8000)  # a few refreshes: 30 crops and 3 s of sound accumulate
    _shot(page, "live")
    # frames came back, which is what this test is for; on a saturated machine aiortc's
    # connection has been seen to end by itself by now (START shows again), so STOP is
    # pressed only while the stream is still up
    if stop.is_visible():
        stop.click()


@pytest.mark.parametrize("name, marker", [("data", "Data"), ("about", "About the models")])
def test_other_pages_render(server: str, page, name: str, marker: str) -> None:
    page.goto(f"{server}/{name}")
    page.get_by_role("heading", name=marker).first.wait_for()
    assert page.locator("[data-testid=stException]").count() == 0
    _shot(page, name)
