"""Every registered model: builds, trains a step, outputs probabilities, round-trips
through save/load with identical predictions. Plus parameter counts from the spec."""
from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import models  # noqa: E402

N_CLASSES = 3
PER_CLASS = 4  # >= the SVMs' 3 calibration folds

#: A small but valid input shape per feature kind a model may consume.
SHAPES: dict[str, tuple[int, ...]] = {
    "mfcc_mean": (40,),
    "mfcc_stats": (160,),
    "egemaps": (88,),
    "compare": (6373,),
    "faces": (48, 48, 1),
    "mfcc_matrix": (40, 64),
    "logmel": (128, 64),
    "frames": (3, 64, 64, 3),
}


def _data(shape: tuple[int, ...], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Class-dependent inputs (mean shifted by class) and integer labels."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(N_CLASSES), PER_CLASS)
    x = rng.normal(size=(y.size, *shape)).astype(np.float32)
    x += y.reshape(-1, *([1] * len(shape))).astype(np.float32)
    if len(shape) == 4:  # frames are images in [0, 1]
        x = (x - x.min()) / (x.max() - x.min())
    return x, y


@pytest.mark.parametrize("name", models.available())
def test_model_contract(name: str, tmp_path) -> None:
    spec = models.spec(name)
    assert spec.input_kind in SHAPES, f"{name}: no test input for kind {spec.input_kind!r}"
    x, y = _data(SHAPES[spec.input_kind])
    model = models.build(name, SHAPES[spec.input_kind], N_CLASSES)
    if spec.framework == "keras":
        import keras

        keras.utils.set_random_seed(0)
        before = [w.copy() for w in model.get_weights()]
        history = model.fit(x, y, epochs=1, batch_size=len(y), verbose=0)
        assert np.isfinite(history.history["loss"][0])
        assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights())), "no weight moved"
        probs = np.asarray(model(x, training=False))
        path = tmp_path / "model.keras"
        model.save(path)
        again = np.asarray(keras.saving.load_model(path)(x, training=False))
    else:
        import joblib

        model.fit(x, y)
        probs = model.predict_proba(x)
        assert np.array_equal(model.predict(x), model.classes_[probs.argmax(axis=1)])
        path = tmp_path / "model.joblib"
        joblib.dump(model, path)
        again = joblib.load(path).predict_proba(x)
    assert probs.shape == (len(y), N_CLASSES)
    assert np.all(probs >= 0)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(again, probs, rtol=0, atol=1e-6)


def test_audio_cnn_ref_parameter_count() -> None:
    # 40 MFCC as (40, 1), same-padded convolutions, pools of 5: 40 -> 8 -> 1, so
    # conv1 8*1*128+128 = 1,152; conv2 8*128*256+256 = 262,400; flatten 256;
    # dense 256*256+256 = 65,792 (twice); softmax 256*8+8 = 2,056.
    expected = 1_152 + 262_400 + 65_792 + 65_792 + 2_056
    assert expected == 397_192
    assert models.build("audio_cnn_ref", (40,), 8).count_params() == expected


def test_audio_cnn_parameter_count() -> None:
    # input BN 4; conv1 12*128+128 = 1,664, BN 512; conv2 12*128*256+256 = 393,472,
    # BN 1,024; flatten 256 -> softmax 256*6+6 = 1,542.
    expected = 4 + 1_664 + 512 + 393_472 + 1_024 + 1_542
    assert models.build("audio_cnn", (40,), 6).count_params() == expected


def test_parallel_cnn_transformer_matches_report_geometry() -> None:
    # The report: a 40 x 282 MFCC gives a 64 x 1 x 8 map per conv block.
    model = models.build("parallel_cnn_transformer", (40, 282), 8)
    assert tuple(model.get_layer("cnn1_flatten").output.shape[1:]) == (64 * 1 * 8,)
    assert tuple(model.get_layer("time_mean").output.shape[1:]) == (40,)


@pytest.mark.parametrize("name,shape", [("audio_cnn", (40, 2)), ("parallel_cnn_transformer", (40,)),
                                        ("parallel_cnn_transformer", (40, 8)), ("svm_rbf", (40, 3))])
def test_bad_input_shape_is_a_clear_error(name: str, shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError):
        models.build(name, shape, 6)


def test_classical_scaler_is_fitted_in_fit() -> None:
    x, y = _data((10,))
    model = models.build("svm_linear", (10,), N_CLASSES).fit(x * 100 + 5, y)
    scaler = model.named_steps["scale"]
    np.testing.assert_allclose(scaler.mean_, (x * 100 + 5).mean(axis=0), rtol=1e-5)
