"""Start fast (issue 20): ``predict`` refuses bad files before loading any model, and a
bundle loads each branch's model on its first use (an audio-only clip loads no face
model and no TensorFlow)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from pipeline.entry import cli
from pipeline.core.preprocessing import Preprocessing

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}


def _tone(path: Path, seconds: float = 2.0, sr: int = 16000) -> Path:
    t = np.arange(int(seconds * sr)) / sr
    sf.write(path, (0.3 * np.sin(2 * np.pi * 180 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))).astype(np.float32), sr)
    return path


def test_refusals_come_before_the_bundle_is_read(tmp_path, capsys):
    """With no bundle at all, a bad file is still refused for what it is: the file is
    checked first, so a refusal never waits for models."""
    missing = tmp_path / "no-bundle"
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n" * 50)
    assert cli.main(["predict", "--bundle", str(missing), str(empty)]) == 2
    assert "empty (0 bytes)" in capsys.readouterr().err
    assert cli.main(["predict", "--bundle", str(missing), str(text)]) == 2
    err = capsys.readouterr().err
    assert "not a readable audio or video file" in err and "bundle" not in err
    # a readable file passes the check and only then meets the missing bundle
    assert cli.main(["predict", "--bundle", str(missing), str(_tone(tmp_path / "ok.wav"))]) == 2
    assert "no bundle" in capsys.readouterr().err


def test_a_refusal_imports_no_heavy_library(tmp_path):
    """Refusing a bad file from a cold command line imports none of the libraries that
    take seconds to load (pandas, scikit-learn, TensorFlow, librosa): only the CLI, numpy
    and the decoder's probe."""
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n" * 50)
    code = (
        "import json, sys\n"
        "from pipeline.entry import cli\n"
        f"code = cli.main(['predict', '--bundle', {str(tmp_path / 'none')!r}, {str(text)!r}])\n"
        "print(json.dumps({'code': code, 'heavy': sorted(m for m in ('pandas', 'sklearn', 'tensorflow', 'librosa')\n"
        "                                                  if m in sys.modules)}))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=ENV)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"code": 2, "heavy": []}


def test_branch_models_load_on_first_use(tmp_path):
    """An audio-only clip answered by a bundle with a Keras face model: the voice model is
    loaded when the clip needs it, the face model never, TensorFlow is never imported."""
    from sklearn.linear_model import LogisticRegression

    import models
    from pipeline.research.export import write_bundle
    from pipeline.serve.bundle import BranchModel
    from pipeline.serve.fusion import LateFusion

    a_params = Preprocessing()
    v_params = Preprocessing(crop_size=48, color="gray", n_frames=4)
    rng = np.random.default_rng(0)
    n = len(a_params.classes)
    x = rng.normal(size=(12 * n, a_params.n_mfcc)) + np.repeat(np.arange(n), 12)[:, None]
    voice = LogisticRegression(max_iter=2000).fit(x, np.repeat(np.arange(n), 12))
    face = models.build("face_cnn", (48, 48, 1), n)
    out = write_bundle(tmp_path / "b", name="lazy",
                       audio=BranchModel("audio", "logreg", "sklearn", "mfcc_mean", a_params, voice),
                       video=BranchModel("video", "face_cnn", "keras", "faces", v_params, face),
                       fusion=LateFusion("rule_mean", classes=a_params.classes).fit(np.eye(n), np.eye(n), np.arange(n)))
    clip = _tone(tmp_path / "voice.wav")
    code = (
        "import json, sys\n"
        "from pipeline.serve.bundle import load_bundle\n"
        "from pipeline.serve.inference import analyze\n"
        f"b = load_bundle({str(out)!r})\n"
        "before = [b.audio.model is None, b.video.model is None]\n"
        f"r = analyze({str(clip)!r}, b)\n"
        "print(json.dumps({'before': before, 'audio_loaded': b.audio.model is not None,\n"
        "  'video_loaded': b.video.model is not None, 'tensorflow': 'tensorflow' in sys.modules,\n"
        "  'audio': r.audio.status, 'video': r.video.status}))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=ENV)
    assert proc.returncode == 0, proc.stderr[-2000:]
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert seen["before"] == [True, True]
    assert seen["audio"] == "ok" and seen["audio_loaded"]
    assert not seen["video_loaded"] and not seen["tensorflow"]


def test_predict_keeps_tensorflow_start_up_notices_off_stderr(tmp_path):
    """A video makes predict import TensorFlow (MTCNN, the face model); its C++
    start-up notices (oneDNN, absl) must not bury the CLI's own lines on stderr."""
    import av

    clip = tmp_path / "grey.mp4"
    with av.open(str(clip), "w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        for _ in range(10):
            frame = av.VideoFrame.from_ndarray(np.full((64, 64, 3), 128, np.uint8), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}  # as a user runs it
    result = subprocess.run([sys.executable, "-m", "pipeline", "predict", str(clip), "--json"],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode in (0, 2), result.stderr
    assert "oneDNN" not in result.stderr and "absl" not in result.stderr, result.stderr
    assert json.loads(result.stdout)["video"]["status"]  # answered (or abstained) through the face branch
