"""The video models: the report's parameter counts, structure, and uint8 input scaled
inside the model (training and save/reload: tests/test_models.py, for every model)."""
from __future__ import annotations

import numpy as np
import pytest

import models

SHAPE = (30, 64, 64, 3)


@pytest.mark.parametrize("name,count", [("lrcn_ref", 73_126), ("convlstm_ref", 58_926)])
def test_reference_parameter_counts(name: str, count: int) -> None:
    assert models.build(name, SHAPE, 6).count_params() == count


def test_final_models_add_batchnorm_and_registry_metadata() -> None:
    for name in ("lrcn", "lrcn_ref", "convlstm", "convlstm_ref"):
        spec = models.spec(name)
        assert spec.framework == "keras" and spec.input_kind == "frames"
    lrcn = models.build("lrcn", SHAPE, 6)
    kinds = [type(getattr(layer, "layer", layer)).__name__ for layer in lrcn.layers]
    assert kinds.count("BatchNormalization") == 4 and kinds.count("Dropout") == 3
    assert lrcn.get_layer("lstm").units == 64 and lrcn.get_layer("conv1").layer.kernel_size == (5, 5)
    # the final ConvLSTM is the reference plus 4 BatchNorms (4 x 4 x filters parameters)
    assert models.build("convlstm", SHAPE, 6).count_params() == 58_926 + 4 * (4 + 8 + 14 + 16)
    with pytest.raises(ValueError, match="frames, height, width, 3"):
        models.build("lrcn", (64, 64, 3), 6)
    with pytest.raises(ValueError, match="dropout needs 3 values"):
        models.build("lrcn", SHAPE, 6, dropout=(0.1, 0.2))


@pytest.mark.parametrize("name", ["lrcn", "convlstm"])
def test_uint8_clips_in_probabilities_out(name: str) -> None:
    # training a step and save/reload are covered for every registered model in test_models.py
    shape = (4, 64, 64, 3)  # a short clip keeps the test fast; the weights do not depend on it
    model = models.build(name, shape, 3)
    x = np.random.default_rng(0).integers(0, 256, (4, *shape)).astype(np.uint8)
    probs = np.asarray(model(x, training=False))  # eager call: no tracing, fast
    assert probs.shape == (4, 3) and np.allclose(probs.sum(axis=1), 1, atol=1e-5)
    # 0..255 is scaled inside: the first layer maps white to exactly 1.0
    scaled = model.get_layer("to_unit_range")(np.full((1, *shape), 255, np.uint8))
    assert np.allclose(np.asarray(scaled), 1.0)
