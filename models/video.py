"""Video models: LRCN (per-frame CNN + LSTM) and ConvLSTM, after the report's chapter 4.

Every builder takes ``input_shape = (frames, height, width, 3)`` and ``n_classes`` and
returns a compiled Keras model fed with the *uint8* face crops of
:func:`pipeline.core.video.featurize` as they are: the first layer, ``Rescaling(1/255)``,
maps pixels to [0, 1] inside the model (no parameters, so the reference parameter
counts hold), which keeps a full RAVDESS tensor at 0.9 GB of uint8 instead of 3.6 GB
of float32 and leaves no division to forget at serving time. Labels are class indices
(sparse categorical cross-entropy). The report trains with Adam at 1e-3 and, for the
final LRCN, batch size 5 for up to 100 epochs; batch size and epochs belong to the
training configuration, not to these builders.

Keras is imported inside the builders so ``import models`` stays light.
"""
from __future__ import annotations

from typing import Any, Sequence

from models import register

def _check(input_shape: tuple[int, ...], n_classes: int) -> None:
    if len(input_shape) != 4 or input_shape[-1] != 3:
        raise ValueError(f"video models take (frames, height, width, 3) input, got {input_shape}")
    if n_classes < 2:
        raise ValueError(f"need at least 2 classes, got {n_classes}")


def _compile(model: Any, learning_rate: float) -> Any:
    import keras

    model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _per_value(value: float | Sequence[float], n: int, what: str) -> list[float]:
    values = [value] * n if isinstance(value, (int, float)) else list(value)
    if len(values) != n:
        raise ValueError(f"{what} needs {n} values, got {len(values)}")
    return [float(v) for v in values]


def build_lrcn(input_shape: tuple[int, ...], n_classes: int, *, filters: Sequence[int] = (16, 32, 64, 64),
               kernel_size: int = 5, pools: Sequence[int] = (4, 4, 2, 2),
               dropout: float | Sequence[float] = (0.1, 0.2, 0.3), batchnorm: bool = True,
               lstm_units: int = 64, learning_rate: float = 1e-3, bn_momentum: float = 0.99,
               name: str = "lrcn") -> Any:
    """LRCN: TimeDistributed [Conv2D (same padding, ReLU) -> BatchNorm? -> MaxPool ->
    Dropout (all blocks but the last)] -> Flatten -> LSTM -> Dense softmax.

    With 64 x 64 input and pools (4, 4, 2, 2) the maps go 64 -> 16 -> 4 -> 2 -> 1.
    ``dropout`` is one rate or one per block except the last (len(filters) - 1).
    ``bn_momentum``: BatchNorm's moving-average momentum; Keras' 0.99 needs several
    hundred steps to settle, so small quick runs use 0.9 (parameter count unchanged).
    """
    import keras
    from keras import layers

    _check(input_shape, n_classes)
    if len(pools) != len(filters):
        raise ValueError("filters and pools must have the same length")
    rates = _per_value(dropout, len(filters) - 1, "dropout")
    td = layers.TimeDistributed
    x = inputs = keras.Input(shape=input_shape, name="frames")
    x = layers.Rescaling(1.0 / 255.0, name="to_unit_range")(x)
    for i, (n_filters, pool) in enumerate(zip(filters, pools)):
        x = td(layers.Conv2D(int(n_filters), int(kernel_size), padding="same", activation="relu"), name=f"conv{i + 1}")(x)
        if batchnorm:
            x = td(layers.BatchNormalization(momentum=bn_momentum), name=f"bn{i + 1}")(x)
        x = td(layers.MaxPooling2D(int(pool)), name=f"pool{i + 1}")(x)
        if i < len(rates) and rates[i] > 0:
            x = td(layers.Dropout(rates[i]), name=f"drop{i + 1}")(x)
    x = td(layers.Flatten(), name="flatten")(x)
    x = layers.LSTM(int(lstm_units), name="lstm")(x)
    outputs = layers.Dense(n_classes, activation="softmax", name="emotion")(x)
    return _compile(keras.Model(inputs, outputs, name=name), learning_rate)


def build_convlstm(input_shape: tuple[int, ...], n_classes: int, *, filters: Sequence[int] = (4, 8, 14, 16),
                   kernel_size: int = 3, dropout: float | Sequence[float] = 0.2, batchnorm: bool = True,
                   recurrent_dropout: float = 0.0, learning_rate: float = 1e-3, bn_momentum: float = 0.99,
                   name: str = "convlstm") -> Any:
    """ConvLSTM: [ConvLSTM2D (valid padding, tanh, sequences) -> BatchNorm? ->
    MaxPool3D (1, 2, 2, same) -> TimeDistributed Dropout (all blocks but the last)]
    -> Flatten -> Dense softmax. 64 x 64 maps go 62 -> 31 -> 29 -> 15 -> 13 -> 7 -> 5 -> 3.
    """
    import keras
    from keras import layers

    _check(input_shape, n_classes)
    rates = _per_value(dropout, len(filters) - 1, "dropout")
    x = inputs = keras.Input(shape=input_shape, name="frames")
    x = layers.Rescaling(1.0 / 255.0, name="to_unit_range")(x)
    for i, n_filters in enumerate(filters):
        x = layers.ConvLSTM2D(int(n_filters), int(kernel_size), activation="tanh", return_sequences=True,
                              recurrent_dropout=recurrent_dropout, name=f"convlstm{i + 1}")(x)
        if batchnorm:
            x = layers.BatchNormalization(momentum=bn_momentum, name=f"bn{i + 1}")(x)
        x = layers.MaxPooling3D(pool_size=(1, 2, 2), padding="same", name=f"pool{i + 1}")(x)
        if i < len(rates) and rates[i] > 0:
            x = layers.TimeDistributed(layers.Dropout(rates[i]), name=f"drop{i + 1}")(x)
    x = layers.Flatten(name="flatten")(x)
    outputs = layers.Dense(n_classes, activation="softmax", name="emotion")(x)
    return _compile(keras.Model(inputs, outputs, name=name), learning_rate)


@register("lrcn", framework="keras", input_kind="frames",
          description="Final LRCN: kernel 5, BatchNorm, dropout 0.1/0.2/0.3, LSTM 64, Adam 1e-3, batch 5")
def lrcn(input_shape: tuple[int, ...], n_classes: int, **hp: Any) -> Any:
    """The report's final video model (its best: 93.27% +- 2.66 on leaky random splits)."""
    return build_lrcn(input_shape, n_classes, **{"name": "lrcn", **hp})


@register("lrcn_ref", framework="keras", input_kind="frames",
          description="Reference LRCN: kernel 3, no BatchNorm, dropout 0.25, LSTM 32 (73,126 parameters for 6 classes)")
def lrcn_ref(input_shape: tuple[int, ...], n_classes: int, **hp: Any) -> Any:
    """The LRCN the report started from."""
    defaults = {"kernel_size": 3, "batchnorm": False, "dropout": 0.25, "lstm_units": 32, "name": "lrcn_ref"}
    return build_lrcn(input_shape, n_classes, **{**defaults, **hp})


@register("convlstm_ref", framework="keras", input_kind="frames",
          description="Reference ConvLSTM: 4-8-14-16 filters, kernel 3, dropout 0.2 (58,926 parameters for 6 classes)")
def convlstm_ref(input_shape: tuple[int, ...], n_classes: int, **hp: Any) -> Any:
    """The ConvLSTM the report started from, without BatchNorm."""
    return build_convlstm(input_shape, n_classes, **{"batchnorm": False, "name": "convlstm_ref", **hp})


@register("convlstm", framework="keras", input_kind="frames",
          description="Final ConvLSTM: the reference with BatchNorm after each ConvLSTM layer")
def convlstm(input_shape: tuple[int, ...], n_classes: int, **hp: Any) -> Any:
    """The report's best ConvLSTM (84.54% on leaky random splits)."""
    return build_convlstm(input_shape, n_classes, **{"batchnorm": True, "name": "convlstm", **hp})
