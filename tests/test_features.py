"""Feature cache: training/inference parity, cache hits, keys, failures, augmentation."""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.core import audio, media
from pipeline.research import features
from pipeline.core.corpora import scan
from pipeline.core.preprocessing import Preprocessing

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_experiments import write_tone_corpus  # noqa: E402

PARAMS = Preprocessing(sample_rate=16000, offset=0.1, duration=1.0)


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    root = write_tone_corpus(tmp_path_factory.mktemp("tones") / "c", n_actors=2,
                             emotions=("neutral", "happy", "sad"))
    frame, _ = scan("ravdess", root)
    return frame


def test_parity_with_the_inference_path_and_cache_hit(manifest: pd.DataFrame, tmp_path: Path) -> None:
    rows = manifest.iloc[:10]
    first = features.extract(rows, "mfcc_stats", PARAMS, tmp_path, n_jobs=1, progress=False)
    assert first.shape == (10, 4 * PARAMS.n_mfcc) and first.dtype == np.float32
    for i in (0, 7):  # exactly what inference computes for the same file
        direct = audio.featurize(media.load_audio(rows.iloc[i]["audio_path"], PARAMS.sample_rate), PARAMS,
                                 "mfcc_stats")
        # worker processes may differ from this one in the last float32 bit (FFT threading)
        np.testing.assert_allclose(first[i], direct, rtol=1e-5, atol=1e-4)
    files = sorted((tmp_path / "mfcc_stats").rglob("*.npy"))
    assert len(files) == 10
    stamps = [f.stat().st_mtime_ns for f in files]
    second = features.extract(rows, "mfcc_stats", PARAMS, tmp_path, n_jobs=2, progress=False)
    assert np.array_equal(first, second)
    assert [f.stat().st_mtime_ns for f in files] == stamps  # read from cache, not recomputed


def test_cache_key_is_content_and_parameters(manifest: pd.DataFrame, tmp_path: Path) -> None:
    rows = manifest.iloc[:2].copy()
    features.extract(rows, "mfcc_mean", PARAMS, tmp_path, n_jobs=1, progress=False)
    # same bytes under another name: the same cache entry
    copy = tmp_path / "renamed.wav"
    shutil.copy(rows.iloc[0]["audio_path"], copy)
    renamed = rows.iloc[:1].assign(audio_path=str(copy))
    features.extract(renamed, "mfcc_mean", PARAMS, tmp_path, n_jobs=1, progress=False)
    assert len(list((tmp_path / "mfcc_mean").rglob("*.npy"))) == 2
    # other parameters: a separate folder; irrelevant ones (video crop size) do not matter
    assert features.params_digest("mfcc_mean", PARAMS) != features.params_digest(
        "mfcc_mean", Preprocessing(sample_rate=16000, offset=0.1, duration=1.0, n_mfcc=20))
    assert features.params_digest("mfcc_mean", PARAMS) == features.params_digest(
        "mfcc_mean", Preprocessing(sample_rate=16000, offset=0.1, duration=1.0, crop_size=32))
    # the content hash index remembers files by (path, size, mtime)
    index = features.HashIndex(tmp_path / features.HASH_INDEX)
    assert os.path.abspath(copy) in index.entries
    assert index.sha1(copy) == features.file_sha1(rows.iloc[0]["audio_path"])


def test_failures_are_reported_not_fatal(manifest: pd.DataFrame, tmp_path: Path) -> None:
    bad = tmp_path / "corrupt.wav"
    bad.write_bytes(b"RIFF not really a wav file")
    rows = pd.concat([manifest.iloc[:2], manifest.iloc[2:3].assign(audio_path=str(bad), clip_id="x:bad"),
                      manifest.iloc[3:4].assign(audio_path="", video_path="", clip_id="x:none")],
                     ignore_index=True)
    failed: list[tuple[str, str]] = []
    X = features.extract(rows, "mfcc_mean", PARAMS, tmp_path, n_jobs=1, progress=False, failed=failed)
    assert [c for c, _ in failed] == ["x:bad", "x:none"]
    assert X.shape[0] == 2
    assert features.drop_failed(rows, failed)["clip_id"].tolist() == rows["clip_id"].iloc[:2].tolist()
    with pytest.raises(features.FeatureExtractionError, match="x:bad"):
        features.extract(rows, "mfcc_mean", PARAMS, tmp_path, n_jobs=1, progress=False)


def test_augmentation_is_deterministic_and_cached_separately(manifest: pd.DataFrame, tmp_path: Path) -> None:
    rows = manifest.iloc[:3]
    plain = features.extract(rows, "mfcc_mean", PARAMS, tmp_path, n_jobs=1, progress=False)
    noisy = features.extract(rows, "mfcc_mean", PARAMS, tmp_path, augment="noise", n_jobs=1, progress=False)
    assert not np.allclose(plain, noisy)
    shutil.rmtree(tmp_path / "mfcc_mean")
    again = features.extract(rows, "mfcc_mean", PARAMS, tmp_path, augment="noise", n_jobs=1, progress=False)
    assert np.array_equal(noisy, again)  # same clip + augmentation -> same rng draw
    assert len(list((tmp_path / "mfcc_mean").rglob("*-noise.npy"))) == 3


def test_large_stacks_are_memory_mapped(manifest: pd.DataFrame, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    rows = manifest.iloc[:4]
    small = features.extract(rows, "mfcc_mean", PARAMS, tmp_path, n_jobs=1, progress=False)
    monkeypatch.setattr(features, "MEMMAP_BYTES", 16)
    big = features.extract(rows, "mfcc_mean", PARAMS, tmp_path, n_jobs=1, progress=False)
    assert isinstance(big, np.memmap) and np.array_equal(np.asarray(big), small)


def test_unknown_kind_is_a_clear_error(manifest: pd.DataFrame, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown feature kind 'mfcc'"):
        features.extract(manifest.iloc[:1], "mfcc", PARAMS, tmp_path, progress=False)


def test_real_clip_parity(shared_data: Path, tmp_path: Path) -> None:
    """On a real RAVDESS wav when AVE_SHARED_DATA is set (skipped otherwise)."""
    frame, _ = scan("ravdess", shared_data / "ravdess-speech")
    rows = frame.iloc[:2]
    params = Preprocessing()
    X = features.extract(rows, "mfcc_mean", params, tmp_path, n_jobs=1, progress=False)
    direct = audio.featurize(media.load_audio(rows.iloc[1]["audio_path"], params.sample_rate), params, "mfcc_mean")
    np.testing.assert_allclose(X[1], direct, rtol=1e-5, atol=1e-4)
