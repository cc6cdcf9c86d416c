"""Keras losses the registered models use beyond Keras' own (imported only when a model
that needs one is built: importing this module imports Keras)."""
from __future__ import annotations

from typing import Any

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="ave")
class SmoothedSparseCrossentropy(keras.losses.Loss):
    """Cross-entropy of integer labels (n,) against label-smoothed one-hot targets
    ``(1 - e) * onehot + e / C`` (Szegedy et al. 2016, "Rethinking the Inception
    architecture for computer vision", section 7), for predicted probabilities (n, C).
    Keras' own ``SparseCategoricalCrossentropy`` has no smoothing."""

    def __init__(self, n_classes: int, label_smoothing: float, name: str = "smoothed_sparse_ce", **kw: Any) -> None:
        super().__init__(name=name, **kw)
        if n_classes < 2 or not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"need n_classes >= 2 and 0 <= label_smoothing < 1, got {n_classes}, {label_smoothing}")
        self.n_classes = int(n_classes)
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        onehot = ops.one_hot(ops.cast(ops.reshape(y_true, (-1,)), "int32"), self.n_classes)
        return keras.losses.categorical_crossentropy(onehot, y_pred, label_smoothing=self.label_smoothing)

    def get_config(self) -> dict[str, Any]:
        return {"n_classes": self.n_classes, "label_smoothing": self.label_smoothing, "name": self.name}
