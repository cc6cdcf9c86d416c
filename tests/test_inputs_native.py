"""Inputs people bring, round 2 (issue 19), the decoder's side: no channel count, rate
or sample format crashes the process, and the downmix follows the voice.

The walks run in a subprocess (``python tests/test_inputs_native.py KIND FOLDER``) and
the test checks its exit code: a segmentation fault inside native code is exit -11
(139 from a shell), which no in-process assertion could report. Every input is written
by the test itself (PyAV's encoders and muxers, numpy).
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline.serve import inference
from pipeline.core import media
from test_inference import PITCHES, SR, tiny_bundle, tone  # noqa: F401 (fixture)
from test_inputs import predict_json

REPO = Path(__file__).resolve().parents[1]

#: Channel counts and rates the walks cover (the issue asks 1 to 16 channels, 8 to 192 kHz).
CHANNELS = tuple(range(1, 17))
RATES = (8_000, 11_025, 16_000, 22_050, 44_100, 48_000, 96_000, 192_000)
#: Every sample format FFmpeg has (packed and planar): frames of each reach the converter.
SAMPLE_FORMATS = ("u8", "s16", "s32", "s64", "flt", "dbl", "u8p", "s16p", "s32p", "s64p", "fltp", "dblp")
#: (codec, muxer, suffix, decoded sample format, rates, channel counts) of the files the
#: file walk writes: each packed and planar format a decoder really produces.
FILE_KINDS = (
    ("pcm_u8", "wav", ".wav", "u8", RATES, CHANNELS),
    ("pcm_s16le", "wav", ".wav", "s16", RATES, CHANNELS),
    ("pcm_s24le", "wav", ".wav", "s32", RATES, CHANNELS),
    ("pcm_f32le", "wav", ".wav", "flt", RATES, CHANNELS),
    ("pcm_f64le", "wav", ".wav", "dbl", RATES, CHANNELS),
    ("pcm_s64le", "nut", ".nut", "s64", (8_000, 48_000, 192_000), CHANNELS),
    ("pcm_s16le_planar", "nut", ".nut", "s16p", RATES, CHANNELS),
    ("pcm_s32le_planar", "nut", ".nut", "s32p", RATES, CHANNELS),
    ("flac", "flac", ".flac", "s16", (8_000, 48_000, 96_000), tuple(range(1, 9))),
    ("aac", "mp4", ".m4a", "fltp", (8_000, 48_000, 96_000), tuple(range(1, 9))),
    ("libopus", "ogg", ".opus", "fltp", (48_000,), CHANNELS),
)
LEVEL = 0.3  # peak of the test sine; its RMS is LEVEL / sqrt(2) in every channel


def layout_name(channels: int, named: bool) -> str:
    """An FFmpeg channel layout of ``channels``: the standard one (``"7.1"`` for 8) when
    ``named`` (AAC wants it), else ``"N channels"`` (unspecified order, as WAV without a
    channel mask)."""
    from av.audio.layout import AudioLayout

    return AudioLayout(f"{channels}c").name if named else f"{channels} channels"


def write_audio(path: Path, x: np.ndarray, rate: int, codec: str, muxer: str) -> Path:
    """Encode ``x`` (channels, n) float in [-1, 1] with PyAV: packed float frames are
    given to the encoder, which converts them to its own sample format."""
    import av

    options = {"mapping_family": "255"} if codec == "libopus" and x.shape[0] > 2 else {}
    with av.open(str(path), "w", format=muxer) as out:
        stream = out.add_stream(codec, rate=rate, options=options)
        stream.layout = layout_name(x.shape[0], named=codec == "aac")
        step = stream.codec_context.frame_size or 1024
        for i in range(0, x.shape[1], step):
            chunk = np.ascontiguousarray(x[:, i:i + step].T, dtype=np.float32).reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(chunk, format="flt", layout=stream.layout)
            frame.sample_rate = rate
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def sine(channels: int, rate: int, seconds: float = 0.25) -> np.ndarray:
    """(channels, n) of the same 440 Hz sine at :data:`LEVEL` (a voice-band tone)."""
    t = np.arange(int(seconds * rate)) / rate
    return np.tile(LEVEL * np.sin(2 * np.pi * 440.0 * t), (channels, 1)).astype(np.float32)


# --------------------------------------------------------------------------- the walks (subprocess bodies)
def _walk_files(folder: Path) -> int:
    """Write and decode every :data:`FILE_KINDS` x rate x channel count; a wrong level
    or format is an AssertionError (exit 1), a native crash a signal."""
    import av

    done = 0
    for codec, muxer, suffix, fmt, rates, counts in FILE_KINDS:
        for rate in rates:
            for channels in counts:
                path = write_audio(folder / f"{codec}-{rate}-{channels}{suffix}", sine(channels, rate), rate,
                                   codec, muxer)
                with av.open(str(path)) as container:
                    stream = container.streams.audio[0]
                    assert stream.format.name == fmt and stream.channels == channels, (codec, rate, channels)
                print(codec, rate, channels, flush=True)  # the last line names a crash's input
                y = media.load_audio(path, SR)
                assert np.all(np.isfinite(y)) and y.size > 0.15 * SR, (codec, rate, channels, y.size)
                rms = float(np.sqrt(np.mean(np.square(y[y.size // 4: -y.size // 4]))))
                assert abs(rms - LEVEL / np.sqrt(2)) < 0.05, (codec, rate, channels, rms)
                path.unlink()
                done += 1
    print(f"done {done}", flush=True)
    return 0


def _walk_frames() -> int:
    """Frames of every :data:`SAMPLE_FORMATS` x :data:`RATES` x :data:`CHANNELS`, made by
    FFmpeg's resampler from one packed float frame, through :class:`media.PackedFloat`
    (the decoder's converter): each must come out as (channels, n) float at the level
    it went in."""
    import av

    done = 0
    for fmt in SAMPLE_FORMATS:
        for rate in RATES:
            for channels in CHANNELS:
                layout = layout_name(channels, named=False)
                source = av.AudioFrame.from_ndarray(
                    np.ascontiguousarray(sine(channels, rate).T).reshape(1, -1), format="flt", layout=layout)
                source.sample_rate = rate
                maker = av.AudioResampler(format=fmt, layout=layout, rate=rate)
                frames = list(maker.resample(source)) + list(maker.resample(None))
                print(fmt, rate, channels, flush=True)
                packer = media.PackedFloat(SR, "walk")
                chunks = [c for f in frames for c in packer.convert(f)] + packer.flush()
                x = np.concatenate(chunks, axis=1)
                assert x.shape[0] == channels and x.dtype == np.float32, (fmt, rate, channels, x.shape)
                core = x[:, x.shape[1] // 4: -x.shape[1] // 4]
                rms = np.sqrt(np.mean(np.square(core), axis=1))
                assert np.all(np.abs(rms - LEVEL / np.sqrt(2)) < 0.05), (fmt, rate, channels, rms)
                done += 1
    print(f"done {done}", flush=True)
    return 0


def _run_walk(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests"),
                                                         os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, str(Path(__file__).resolve()), *args], capture_output=True,
                          text=True, cwd=REPO, env=env, timeout=600)


def _said(done: subprocess.CompletedProcess) -> str:
    last = done.stdout.strip().splitlines()[-1:] or ["(nothing)"]
    return f"exit {done.returncode} after {last[0]!r}: {done.stderr[-2000:]}"


def test_no_file_layout_crashes_the_decoder(tmp_path):
    """1-16 channels, 8-192 kHz, every sample format a file here decodes to (u8, s16,
    s32, s64, flt, dbl, s16p, s32p, fltp): every file decodes, at its level."""
    done = _run_walk("files", str(tmp_path))
    assert done.returncode == 0, _said(done)
    assert done.stdout.strip().splitlines()[-1].startswith("done ")


def test_no_sample_format_crashes_the_converter():
    """Every FFmpeg sample format, packed and planar (dblp, u8p and s64p included, which
    no common decoder writes), at every channel count and rate."""
    done = _run_walk("frames")
    assert done.returncode == 0, _said(done)
    n = len(SAMPLE_FORMATS) * len(RATES) * len(CHANNELS)
    assert done.stdout.strip().splitlines()[-1] == f"done {n}"


def test_layouts_beyond_reach_are_refused_in_words():
    with pytest.raises(media.MediaError, match="65 channels; 1 to 64"):
        media.check_audio_layout(65, 48_000, "s16", "x.wav")
    with pytest.raises(media.MediaError, match="sample rate"):
        media.check_audio_layout(2, 10_000_000, "s16", "x.wav")
    with pytest.raises(media.MediaError, match="sample format is unknown"):
        media.check_audio_layout(2, 48_000, "", "x.wav")
    media.check_audio_layout(16, 192_000, "dblp", "x.wav")


# --------------------------------------------------------------------------- 8 channels, end to end
@pytest.mark.parametrize("codec,muxer,suffix,rate", [("pcm_s16le", "wav", ".wav", 48_000),
                                                     ("pcm_f32le", "wav", ".wav", 96_000),
                                                     ("aac", "mp4", ".m4a", 48_000)])
def test_eight_channels_answer_as_the_mono_file(tiny_bundle, tmp_path, codec, muxer, suffix, rate):
    """7.1 AAC and 8-channel WAV at 48 and 96 kHz (the files that crashed): ``predict
    --json`` in a subprocess exits 0 with the mono file's answer."""
    import librosa

    y = tone(PITCHES[4], 3.0)
    y_rate = librosa.resample(y, orig_sr=SR, target_sr=rate)
    eight = write_audio(tmp_path / f"eight{suffix}", np.tile(y_rate, (8, 1)), rate, codec, muxer)
    mono = write_audio(tmp_path / f"mono{suffix}", y_rate[None, :], rate, codec, muxer)
    rc, payload, err = predict_json(eight, tiny_bundle.path, env={})
    assert rc == 0, (rc, err[-2000:])
    alone = inference.analyze(mono, tiny_bundle)
    assert payload["audio"]["status"] == "ok"
    got = max(payload["audio"]["probabilities"], key=payload["audio"]["probabilities"].get)
    assert got == alone.audio.winner[0] == "angry"


# --------------------------------------------------------------------------- the downmix follows the voice
def test_voice_in_two_of_six_channels_keeps_its_level(tiny_bundle, tmp_path, capsys):
    """A voice on channels 2 and 5 of six (the rest near silent: room noise 50 dB down)
    gives the mono file's answer and level; the note names the channels used."""
    rng = np.random.default_rng(3)
    y = tone(PITCHES[4], 3.0)
    six = np.tile(0.001 * rng.standard_normal(y.size).astype(np.float32), (6, 1))
    six[1] = six[4] = y
    clip = write_audio(tmp_path / "six.wav", six, SR, "pcm_s16le", "wav")
    mono = write_audio(tmp_path / "mono.wav", y[None, :], SR, "pcm_s16le", "wav")
    heard, alone = media.load_audio(clip, SR), media.load_audio(mono, SR)
    level = 20 * np.log10(np.sqrt(np.mean(heard ** 2)) / np.sqrt(np.mean(alone ** 2)))
    assert abs(level) < 0.5, level  # the plain mean was -9.5 dB
    result, single = inference.analyze(clip, tiny_bundle), inference.analyze(mono, tiny_bundle)
    assert result.audio.winner[0] == single.audio.winner[0] == "angry"
    for c, p in single.audio.probabilities.items():
        assert result.audio.probabilities[c] == pytest.approx(p, abs=0.02)
    assert any("channels 2 and 5 of the 6" in n for n in result.notes), result.notes
    rc, payload, _ = predict_json(clip, tiny_bundle.path, capsys=capsys)
    assert rc == 0 and payload["audio"]["status"] == "ok"
    assert any("channels 2 and 5" in n for n in payload["notes"])


def test_downmix_weighs_the_speech_band():
    """Mains hum on a channel is not a voice: the speech-band energy leaves it out."""
    t = np.arange(SR) / SR
    voice = 0.3 * np.sin(2 * np.pi * 440 * t)
    hum = 0.3 * np.sin(2 * np.pi * 50 * t)
    mono, note = media.downmix(np.stack([voice, hum, voice]), SR)
    assert np.allclose(mono, voice) and "channels 1 and 3 of the 3" in note
    mono, note = media.downmix(np.stack([voice, 0.9 * voice]), SR)  # both carry it: the plain mean
    assert np.allclose(mono, 0.95 * voice) and note == ""


# --------------------------------------------------------------------------- clear refusals first
def write_recording(path: Path, seconds: float = 3.0, faststart: bool = False) -> Path:
    """An MP4 of a changing picture and a tone as a camera writes it: the index (moov)
    last, unless ``faststart``."""
    import av

    from test_inputs import _encode_audio

    options = {"movflags": "faststart"} if faststart else {}
    rng = np.random.default_rng(1)
    with av.open(str(path), "w", format="mp4", options=options) as out:
        video = out.add_stream("h264", rate=10)
        video.width, video.height, video.pix_fmt = 64, 64, "yuv420p"
        sound = out.add_stream("aac", rate=SR)
        sound.layout = "mono"
        for i in range(int(seconds * 10)):
            picture = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
            for packet in video.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")):
                out.mux(packet)
        for packet in video.encode():
            out.mux(packet)
        _encode_audio(out, sound, tone(PITCHES[4], seconds), SR)
    return path


def refused_inputs(folder: Path) -> dict[str, tuple[Path, str]]:
    """Inputs ``check_input`` refuses, with the words each refusal must hold."""
    whole = write_recording(folder / "whole.mp4").read_bytes()
    (folder / "cut.mp4").write_bytes(whole[: len(whole) // 2])
    (folder / "empty.wav").write_bytes(b"")
    (folder / "notes.mp3").write_text("shopping list: eggs, milk\n" * 50)
    (folder / "random.mov").write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    return {"cut": (folder / "cut.mp4", "the file is incomplete (cut short)"),
            "empty": (folder / "empty.wav", "empty (0 bytes)"),
            "text": (folder / "notes.mp3", "not a readable audio or video file"),
            "noise": (folder / "random.mov", "not a readable audio or video file")}


def test_check_input_refuses_at_once_in_words(tmp_path):
    for kind, (path, said) in refused_inputs(tmp_path).items():
        with pytest.raises(media.MediaError, match=r"\S") as err:
            media.check_input(path)
        assert said in str(err.value), (kind, str(err.value))
        with pytest.raises(media.MediaError):
            media.check_input(path.read_bytes(), name=path.name)
    info = media.check_input(tmp_path / "whole.mp4")
    assert info is not None and info.has_video
    fast = write_recording(tmp_path / "fast.mp4", faststart=True).read_bytes()
    (tmp_path / "fast-half.mp4").write_bytes(fast[: len(fast) // 2])  # index first: opens, decodes what is there
    assert media.check_input(tmp_path / "fast-half.mp4") is not None


def test_analyze_refuses_them_in_the_same_words(tiny_bundle, tmp_path):
    for kind, (path, said) in refused_inputs(tmp_path).items():
        with pytest.raises(media.MediaError) as err:
            inference.analyze(path, tiny_bundle)
        assert said in str(err.value), (kind, str(err.value))


def test_predict_refuses_before_the_bundle_loads(tiny_bundle, tmp_path, monkeypatch, capsys):
    from pipeline.entry.cli import main
    from pipeline.serve import bundle as bundle_mod

    def no_loading(*args, **kwargs):
        raise AssertionError("the bundle was loaded for a file that cannot be analysed")

    monkeypatch.setattr(bundle_mod, "load_bundle", no_loading)
    for kind, (path, said) in refused_inputs(tmp_path).items():
        assert main(["predict", str(path), "--bundle", str(tiny_bundle.path), "--json"]) == 2, kind
        err = capsys.readouterr().err
        assert err.startswith("error: ") and said in err and err.count("\n") == 1, (kind, err)


def test_a_leading_dash_name_gets_the_double_dash_hint(tiny_bundle, tmp_path, monkeypatch, capsys):
    from pipeline.entry.cli import build_parser, main

    monkeypatch.chdir(tmp_path)
    write_audio(tmp_path / "-rf.wav", tone(PITCHES[4], 3.0)[None, :], SR, "pcm_s16le", "wav")
    with pytest.raises(SystemExit) as stop:
        main(["predict", "--bundle", str(tiny_bundle.path), "-rf.wav"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "required: clip" in err and "put -- before it" in err
    assert main(["predict", "--bundle", str(tiny_bundle.path), "--json", "--", "-rf.wav"]) == 0
    assert '"status": "ok"' in capsys.readouterr().out
    assert "-- before it" in build_parser()._subparsers._group_actions[0].choices["predict"].format_help()


if __name__ == "__main__":  # the subprocess bodies of the walks
    kind = sys.argv[1]
    sys.exit(_walk_files(Path(sys.argv[2])) if kind == "files" else _walk_frames())


def test_sound_files_without_samples_are_refused_not_crashed(tmp_path):
    """A WAV, Ogg or FLAC file whose audio track holds no samples at all: a one-line
    refusal and exit code 2 from a fresh command line, never a segmentation fault (the
    check once read the closed file's stream for its message: exit 139)."""
    import soundfile as sf

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    for name, shape, rate in (("zero.wav", (0,), 16000), ("zero8.wav", (0, 8), 96000),
                              ("zero.ogg", (0,), 16000), ("zero.flac", (0,), 16000)):
        path = tmp_path / name
        sf.write(path, np.zeros(shape, np.float32), rate)
        done = subprocess.run([sys.executable, "-m", "pipeline", "predict", "--bundle", str(tmp_path / "none"),
                               str(path)], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 2, (name, done.returncode, done.stderr[-1500:])
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and name in lines[0], (name, done.stderr)
