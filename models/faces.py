"""Per-frame facial-expression models: one face crop in, emotion probabilities out.

The field's standard task (FER2013: 48 x 48 greyscale faces, 7 basic emotions,
Goodfellow et al. 2013). The video branch runs the model on every sampled frame of a
clip and pools the per-frame probabilities (:func:`pipeline.core.video.pool_frames`).

Input: ``(size, size, channels)`` uint8 values (as float32); the first layer rescales to
[0, 1] inside the model, as the LRCN does, so nobody divides by 255 elsewhere.
Augmentation (flip, small rotation, zoom, shift, contrast/brightness; optionally blur
and occlusion patches) is part of the model and active only in training (Keras
preprocessing layers are identities at inference), so the saved model serves the same
crops it was trained on.
"""
from __future__ import annotations

from typing import Any, Sequence

from models import register


def _augment(x: Any, strength: float, blur: float = 0.0, erase: float = 0.0) -> Any:
    """Training-only augmentation on [0, 1] images. ``strength`` scales the geometric and
    photometric jitter (flip; rotation up to 0.04 x 2 pi x strength, about 14 degrees at
    1; zoom and shift of 10 % / 8 % of the side, which is the scale and position jitter
    of a detector's box around a face; contrast 30 %, brightness 15 %). ``blur``: the
    largest Gaussian-blur factor (Keras ``RandomGaussianBlur``, 5 px kernel, sigma up to
    1.5 px: out-of-focus webcams); ``erase``: the largest probability of one random
    occlusion patch (Keras ``RandomErasing``, Zhong et al. 2017, "Random Erasing Data
    Augmentation": hands, glasses, hair over the face). Neither adds weights, so a
    model built with them takes another one's weights (warm start)."""
    from keras import layers

    if strength > 0:
        x = layers.RandomFlip("horizontal", name="aug_flip")(x)
        x = layers.RandomRotation(0.04 * strength, fill_mode="nearest", name="aug_rotate")(x)
        x = layers.RandomZoom(0.1 * strength, fill_mode="nearest", name="aug_zoom")(x)
        x = layers.RandomTranslation(0.08 * strength, 0.08 * strength, fill_mode="nearest", name="aug_shift")(x)
        x = layers.RandomContrast(0.3 * strength, name="aug_contrast")(x)
        x = layers.RandomBrightness(0.15 * strength, value_range=(0.0, 1.0), name="aug_brightness")(x)
    if blur > 0:
        x = layers.RandomGaussianBlur(float(blur), kernel_size=5, sigma=(0.1, 1.5), value_range=(0.0, 1.0),
                                      name="aug_blur")(x)
    if erase > 0:
        x = layers.RandomErasing(float(erase), scale=(0.02, 0.15), value_range=(0.0, 1.0), name="aug_erase")(x)
    return x


def _loss_and_metric(label_smoothing: float, n_classes: int) -> tuple[Any, Any]:
    """Sparse cross-entropy, or with ``label_smoothing`` > 0 the smoothed one (targets
    ``(1 - e) * onehot + e / C``; Szegedy et al. 2016, "Rethinking the Inception
    architecture"), both on integer labels; accuracy as ``accuracy``."""
    import keras

    metric = keras.metrics.SparseCategoricalAccuracy(name="accuracy")
    if label_smoothing <= 0:
        return "sparse_categorical_crossentropy", metric
    from models.losses import SmoothedSparseCrossentropy

    return SmoothedSparseCrossentropy(n_classes, float(label_smoothing)), metric


def build_face_cnn(input_shape: tuple[int, ...], n_classes: int, *,
                   filters: Sequence[int] = (32, 64, 128, 256), convs_per_block: int | Sequence[int] = (1, 1, 2, 2),
                   dropout: float = 0.25, head_dropout: float = 0.4, augment: float = 1.0,
                   learning_rate: float = 1e-3, bn_momentum: float = 0.99,
                   blur: float = 0.0, erase: float = 0.0, label_smoothing: float = 0.0,
                   name: str = "face_cnn") -> Any:
    """VGG-style CNN: per block ``convs_per_block`` x [Conv2D 3x3 (same) -> BatchNorm ->
    ReLU], MaxPool 2, Dropout; then global average pooling, Dropout, Dense softmax.
    The default (1, 1, 2, 2) puts the second convolutions where maps are small: 75 M
    multiply-adds per 48 x 48 face instead of 118 M for two everywhere (CPU budget).

    With 48 x 48 input and four blocks the maps go 48 -> 24 -> 12 -> 6 -> 3. Adam at
    ``learning_rate``; sparse labels. ``bn_momentum``: BatchNorm's moving-average
    momentum; Keras' 0.99 needs several hundred steps to settle, so small runs (the
    synthetic demo) use 0.9. ``blur``, ``erase``: extra training augmentation
    (:func:`_augment`); ``label_smoothing``: see :func:`_loss_and_metric`.
    """
    import keras
    from keras import layers

    if len(input_shape) != 3 or input_shape[-1] not in (1, 3):
        raise ValueError(f"face models take (height, width, 1|3) input, got {input_shape}")
    if n_classes < 2:
        raise ValueError(f"need at least 2 classes, got {n_classes}")
    convs = [int(convs_per_block)] * len(filters) if isinstance(convs_per_block, int) else list(convs_per_block)
    if len(convs) != len(filters):
        raise ValueError(f"convs_per_block needs {len(filters)} values, got {len(convs)}")
    x = inputs = keras.Input(shape=input_shape, name="face")
    x = layers.Rescaling(1.0 / 255.0, name="to_unit_range")(x)
    x = _augment(x, augment, blur, erase)
    for i, (n_filters, n_convs) in enumerate(zip(filters, convs)):
        for j in range(n_convs):
            x = layers.Conv2D(int(n_filters), 3, padding="same", use_bias=False, name=f"conv{i + 1}_{j + 1}")(x)
            x = layers.BatchNormalization(momentum=bn_momentum, name=f"bn{i + 1}_{j + 1}")(x)
            x = layers.Activation("relu", name=f"relu{i + 1}_{j + 1}")(x)
        x = layers.MaxPooling2D(2, name=f"pool{i + 1}")(x)
        if dropout > 0:
            x = layers.Dropout(dropout, name=f"drop{i + 1}")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    if head_dropout > 0:
        x = layers.Dropout(head_dropout, name="head_drop")(x)
    outputs = layers.Dense(n_classes, activation="softmax", name="emotion")(x)
    model = keras.Model(inputs, outputs, name=name)
    loss, metric = _loss_and_metric(label_smoothing, n_classes)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate), loss=loss, metrics=[metric])
    return model


@register("face_cnn", framework="keras", input_kind="faces",
          description="Per-frame facial-expression CNN (VGG-style, 4 blocks, augmentation), pooled over a clip")
def face_cnn(input_shape: tuple[int, ...], n_classes: int, **hp: Any) -> Any:
    """The real face model of ``bundles/real`` (trained on FER2013 faces)."""
    return build_face_cnn(input_shape, n_classes, **{"name": "face_cnn", **hp})


@register("face_cnn_small", framework="keras", input_kind="faces",
          description="Per-frame face CNN with half the filters (16-32-64-128): the synthetic demo's video model")
def face_cnn_small(input_shape: tuple[int, ...], n_classes: int, **hp: Any) -> Any:
    """A lighter variant for small corpora and quick runs."""
    defaults = {"filters": (16, 32, 64, 128), "convs_per_block": 1, "name": "face_cnn_small"}
    return build_face_cnn(input_shape, n_classes, **{**defaults, **hp})


class HogFeatures:
    """scikit-learn transformer: face crops -> histograms of oriented gradients.

    Input: (n, size * size * channels) or (n, size, size[, channels]) pixel values
    (0-255; colour is averaged to grey). Output: (n, n_hog) float32, OpenCV's
    ``HOGDescriptor`` with ``cell`` px cells, 2 x 2-cell blocks moved one cell at a time,
    9 orientation bins (Dalal & Triggs 2005, "Histograms of oriented gradients for human
    detection"; the classic hand-made feature of facial-expression recognition).
    """

    def __init__(self, size: int = 48, cell: int = 6) -> None:
        self.size = size
        self.cell = cell

    def fit(self, X: Any, y: Any = None) -> "HogFeatures":
        return self

    def transform(self, X: Any) -> Any:
        import cv2
        import numpy as np

        X = np.asarray(X)
        n, side = len(X), int(self.size)
        images = X.reshape(n, side, side, -1).mean(axis=-1)
        images = np.clip(images, 0, 255).astype(np.uint8)
        hog = cv2.HOGDescriptor((side, side), (2 * self.cell, 2 * self.cell), (self.cell, self.cell),
                                (self.cell, self.cell), 9)
        return np.stack([hog.compute(np.ascontiguousarray(im)).ravel() for im in images]).astype(np.float32)

    def fit_transform(self, X: Any, y: Any = None) -> Any:
        return self.transform(X)

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {"size": self.size, "cell": self.cell}

    def set_params(self, **params: Any) -> "HogFeatures":
        for key, value in params.items():
            setattr(self, key, value)
        return self


@register("face_hog_logreg", framework="sklearn", input_kind="faces",
          description="Per-frame HOG (6 px cells) -> standardised -> logistic regression: the synthetic demo's video model")
def face_hog_logreg(input_shape: tuple[int, ...], n_classes: int, *, cell: int = 6, C: float = 0.01,
                    max_iter: int = 3000, random_state: int = 0) -> Any:
    """A per-frame face model that learns in seconds from few identities: on the synthetic
    corpus's drawn faces it generalises to unseen actors better than a CNN trained from
    scratch on the same few hundred clips (docs/video.md)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    if len(input_shape) != 3 or input_shape[0] != input_shape[1]:
        raise ValueError(f"face models take (size, size, channels) input, got {input_shape}")
    if n_classes < 2:
        raise ValueError(f"need at least 2 classes, got {n_classes}")
    return Pipeline([("hog", HogFeatures(int(input_shape[0]), int(cell))), ("scale", StandardScaler()),
                     ("clf", LogisticRegression(C=C, max_iter=max_iter, random_state=random_state))])
