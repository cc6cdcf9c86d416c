"""`train-faces` on a tiny generated image set: a run is written and a rerun skips it;
a warm start begins from a finished run's weights; a model of another shape is refused."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from pipeline.core.corpora import scan
from pipeline.research.face_training import FER_PARAMS, FaceTrainingConfig, train_faces


def _image_set(root: Path) -> Path:
    """12 drawn 48 x 48 faces per emotion: happy mouths curve up, sad ones down."""
    rng = np.random.default_rng(0)
    for emotion, start, end in (("happy", 0, 180), ("sad", 180, 360)):
        (root / emotion).mkdir(parents=True)
        for i in range(12):
            face = np.full((48, 48), 110 + int(rng.integers(-20, 20)), np.uint8)
            cv2.ellipse(face, (24, 25), (16, 20), 0, 0, 360, 190, -1)
            for x in (18, 30):
                cv2.circle(face, (x, 20), 2, 40, -1)
            cv2.ellipse(face, (24, 34), (7, 4), 0, start, end, 50, 2)
            cv2.imwrite(str(root / emotion / f"{i}.png"), face)
    return root


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> object:
    frame, _ = scan("images", _image_set(tmp_path_factory.mktemp("faces") / "train"))
    return frame


def _config(**kw) -> FaceTrainingConfig:
    return FaceTrainingConfig(**{"model": "face_cnn_small", "epochs": 2, "batch_size": 8, "val_fraction": 0.25,
                                 "hparams": {"augment": 0.0}, **kw})


def test_a_run_is_written_and_a_rerun_skips_it(images, tmp_path: Path) -> None:
    fold = train_faces(images, tmp_path / "runs", params=FER_PARAMS, config=_config(),
                       cache_dir=tmp_path / "cache", n_jobs=1, progress=False)
    metrics = json.loads((fold / "metrics.json").read_text())
    assert metrics["n_train"] + metrics["n_val"] == 24 and metrics["skipped_emotions"] == {}
    assert (fold / "model.keras").is_file() and (tmp_path / "runs" / "summary.csv").is_file()
    stamp = (fold / "metrics.json").stat().st_mtime_ns
    assert train_faces(images, tmp_path / "runs", params=FER_PARAMS, config=_config(),
                       cache_dir=tmp_path / "cache", n_jobs=1, progress=False) == fold
    assert (fold / "metrics.json").stat().st_mtime_ns == stamp  # finished: not retrained


def test_warm_start_begins_from_the_given_weights(images, tmp_path: Path) -> None:
    import keras

    first = train_faces(images, tmp_path / "runs", params=FER_PARAMS, config=_config(),
                        cache_dir=tmp_path / "cache", n_jobs=1, progress=False)
    # learning rate 0 (the schedule's floor is 1e-6): the warm-started model comes out with the
    # weights it started from, to within a few Adam steps of 1e-6
    again = train_faces(images, tmp_path / "runs", params=FER_PARAMS,
                        config=_config(variant="warm", learning_rate=0.0, epochs=1,
                                       init_from=str(first / "model.keras")),
                        cache_dir=tmp_path / "cache", n_jobs=1, progress=False)
    before = keras.models.load_model(first / "model.keras", compile=False).get_weights()
    after = keras.models.load_model(again / "model.keras", compile=False).get_weights()
    trainable = [w for w in after if w.ndim > 1]  # kernels (BatchNorm statistics move with any data)
    assert trainable and all(np.allclose(a, b, atol=1e-4) for a, b in zip(
        [w for w in before if w.ndim > 1], trainable))
    with pytest.raises(ValueError, match="is not a face_cnn of this shape"):
        train_faces(images, tmp_path / "runs", params=FER_PARAMS,
                    config=_config(model="face_cnn", variant="other", init_from=str(first / "model.keras")),
                    cache_dir=tmp_path / "cache", n_jobs=1, progress=False)


class _Interrupted(Exception):
    """Stands for a killed process in the middle of a run."""


def _stop_after(last_epoch: int):
    """A Keras callback that 'kills' training at the end of epoch ``last_epoch``."""
    import keras

    class Stop(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == last_epoch:
                raise _Interrupted

    return Stop()


def _epochs_seen():
    """A Keras callback recording the epochs it saw begin (``.seen``)."""
    import keras

    class Epochs(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.seen: list[int] = []

        def on_epoch_begin(self, epoch, logs=None):
            self.seen.append(epoch)

    return Epochs()


def test_an_interrupted_run_resumes_at_the_epoch_it_reached(images, tmp_path: Path) -> None:
    import pandas as pd

    config = _config(epochs=3, seed=5, variant="resumed")
    with pytest.raises(_Interrupted):
        train_faces(images, tmp_path / "runs", params=FER_PARAMS, config=config, cache_dir=tmp_path / "cache",
                    n_jobs=1, progress=False, callbacks=(_stop_after(0),))
    assert not (tmp_path / "runs" / "resumed" / "holdout-seed5").exists()
    epochs = _epochs_seen()
    fold = train_faces(images, tmp_path / "runs", params=FER_PARAMS, config=config, cache_dir=tmp_path / "cache",
                       n_jobs=1, progress=False, callbacks=(epochs,))
    assert epochs.seen == [1, 2]  # epoch 0 was not trained again
    assert fold.name == "holdout-seed5"  # a training seed other than the split's: its own fold
    assert pd.read_csv(fold / "history.csv")["epoch"].tolist() == [0, 1, 2]
    metrics = json.loads((fold / "metrics.json").read_text())
    assert metrics["n_train"] + metrics["n_val"] == 24


def test_a_checkpoint_torn_mid_write_resumes_from_the_epoch_before(images, tmp_path: Path) -> None:
    """An interruption while Keras writes the epoch checkpoint leaves a torn file; the
    run resumes from the previous epoch's copy instead of failing on every rerun."""
    config = _config(epochs=3, seed=6, variant="torn")
    with pytest.raises(_Interrupted):
        train_faces(images, tmp_path / "runs", params=FER_PARAMS, config=config, cache_dir=tmp_path / "cache",
                    n_jobs=1, progress=False, callbacks=(_stop_after(1),))
    backup = tmp_path / "runs" / "torn" / ".work" / "holdout-seed6" / "backup"
    latest = backup / "latest.weights.h5"
    assert (backup / "latest.weights.h5.bkp").is_file()
    latest.write_bytes(latest.read_bytes()[: latest.stat().st_size // 2])  # cut mid-write
    epochs = _epochs_seen()
    fold = train_faces(images, tmp_path / "runs", params=FER_PARAMS, config=config, cache_dir=tmp_path / "cache",
                       n_jobs=1, progress=False, callbacks=(epochs,))
    assert epochs.seen == [1, 2]  # from the copy of epoch 0's end: epoch 1 again, then 2
    assert (fold / "model.keras").is_file()


def test_other_settings_never_pass_for_an_earlier_run(images, tmp_path: Path) -> None:
    """Resuming a checkpoint, or rerunning a finished fold, with other settings is
    refused with what changed, instead of mixing them or returning the old run."""
    config = _config(epochs=2, seed=8, variant="settings")
    with pytest.raises(_Interrupted):
        train_faces(images, tmp_path / "runs", params=FER_PARAMS, config=config, cache_dir=tmp_path / "cache",
                    n_jobs=1, progress=False, callbacks=(_stop_after(0),))
    changed = _config(epochs=2, seed=8, variant="settings", learning_rate=0.5)
    with pytest.raises(ValueError, match=r"interrupted run .* other settings \(learning_rate\)"):
        train_faces(images, tmp_path / "runs", params=FER_PARAMS, config=changed, cache_dir=tmp_path / "cache",
                    n_jobs=1, progress=False)
    fold = train_faces(images, tmp_path / "runs", params=FER_PARAMS, config=config, cache_dir=tmp_path / "cache",
                       n_jobs=1, progress=False)
    with pytest.raises(ValueError, match=r"trained with other settings \(epochs\)"):
        train_faces(images, tmp_path / "runs", params=FER_PARAMS, config=_config(epochs=5, seed=8, variant="settings"),
                    cache_dir=tmp_path / "cache", n_jobs=1, progress=False)
    assert train_faces(images, tmp_path / "runs", params=FER_PARAMS, config=config, cache_dir=tmp_path / "cache",
                       n_jobs=1, progress=False) == fold
    with pytest.raises(ValueError, match="cannot be a folder name"):
        train_faces(images, tmp_path / "runs", params=FER_PARAMS, config=_config(variant="../out"),
                    cache_dir=tmp_path / "cache", n_jobs=1, progress=False)


def test_label_smoothing_blur_and_occlusion_train_and_reload(images, tmp_path: Path) -> None:
    import keras

    fold = train_faces(images, tmp_path / "runs", params=FER_PARAMS,
                       config=_config(epochs=1, variant="smooth",
                                      hparams={"augment": 1.0, "blur": 0.5, "erase": 0.5, "label_smoothing": 0.1}),
                       cache_dir=tmp_path / "cache", n_jobs=1, progress=False)
    model = keras.models.load_model(fold / "model.keras", compile=False)
    names = {layer.name for layer in model.layers}
    assert {"aug_blur", "aug_erase"} <= names
    crops = np.full((2, 48, 48, 1), 128, np.float32)
    proba = model.predict_on_batch(crops)
    assert proba.shape == (2, len(FER_PARAMS.classes)) and np.allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    assert np.allclose(model(crops, training=False), proba, atol=1e-6)  # augmentation is off when serving
