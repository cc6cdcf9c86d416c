"""Keras models of the audio branch (report ch. 3), registered by name.

Each builder is ``build(input_shape, n_classes, **hp) -> compiled keras.Model`` with
the report's optimizer and learning rate, sparse categorical cross-entropy and an
accuracy metric; outputs are softmax probabilities. Only built-in Keras layers are
used, so a saved ``.keras`` file reloads without custom objects.

Input conventions (shapes exclude the batch axis):

- ``audio_cnn`` / ``audio_cnn_ref``: the time-averaged MFCC vector, ``(n_mfcc,)`` (or
  ``(n_mfcc, 1)``), treated as a 1-channel sequence of coefficients. Convolutions
  are ``same``-padded: with unpadded kernels of 8 or 12 the second convolution would
  have no valid position after a pool of 5 on 40 coefficients, so the report's
  description only works padded (40 -> pool 5 -> 8 -> pool 5 -> 1); pools are unpadded.
- ``parallel_cnn_transformer``: same-padded 3x3 convolutions and unpadded pools, so a
  40 x 282 input gives the report's 64 x 1 x 8 block output (ours: 40 x 130 -> 1 x 4).

TensorFlow is imported inside the builders (``import models`` stays light).
"""
from __future__ import annotations

from typing import Any

from models import register


def _vector_input(keras: Any, input_shape: tuple[int, ...]):
    """Input of a coefficient vector, reshaped to ``(n, 1)`` for Conv1D."""
    if len(input_shape) == 1:
        inputs = keras.Input(shape=input_shape, name="features")
        return inputs, keras.layers.Reshape((input_shape[0], 1), name="as_sequence")(inputs)
    if len(input_shape) == 2 and input_shape[1] == 1:
        inputs = keras.Input(shape=input_shape, name="features")
        return inputs, inputs
    raise ValueError(f"expected a coefficient vector (n,) or (n, 1), got input_shape {input_shape}")


def _compile(model: Any, optimizer: Any) -> Any:
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


@register("audio_cnn", framework="keras", input_kind="mfcc_mean",
          description="the report's final 1-D CNN on the MFCC mean (BatchNorm, kernel 12)")
def build_audio_cnn(input_shape: tuple[int, ...], n_classes: int, *, filters: tuple[int, int] = (128, 256),
                    kernel_size: int = 12, dropout: tuple[float, float] = (0.1, 0.3), pool_size: int = 5,
                    input_batchnorm: bool = True, batchnorm: bool = True,
                    learning_rate: float = 2e-4) -> Any:
    """BN(input) -> [Conv1D 128/k12, ReLU, BN, Dropout 0.1, MaxPool 5] -> [Conv1D
    256/k12, ReLU, BN, Dropout 0.3, MaxPool 5] -> Flatten -> Dense softmax; Adam 2e-4.
    Input ``(n_mfcc,)``; output ``(n_classes,)`` probabilities."""
    import keras

    inputs, x = _vector_input(keras, input_shape)
    if input_batchnorm:
        x = keras.layers.BatchNormalization(name="input_bn")(x)
    for i, (f, rate) in enumerate(zip(filters, dropout), start=1):
        x = keras.layers.Conv1D(f, kernel_size, padding="same", activation="relu", name=f"conv{i}")(x)
        if batchnorm:
            x = keras.layers.BatchNormalization(name=f"bn{i}")(x)
        x = keras.layers.Dropout(rate, name=f"drop{i}")(x)
        x = keras.layers.MaxPooling1D(pool_size, name=f"pool{i}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    outputs = keras.layers.Dense(n_classes, activation="softmax", name="probabilities")(x)
    model = keras.Model(inputs, outputs, name="audio_cnn")
    return _compile(model, keras.optimizers.Adam(learning_rate=learning_rate))


@register("audio_cnn_ref", framework="keras", input_kind="mfcc_mean",
          description="the reference 1-D CNN the report started from (kernel 8, three Dense)")
def build_audio_cnn_ref(input_shape: tuple[int, ...], n_classes: int, *, filters: tuple[int, int] = (128, 256),
                        kernel_size: int = 8, dropout: float = 0.3, pool_size: int = 5,
                        dense_units: tuple[int, ...] = (256, 256), learning_rate: float = 2e-5,
                        rho: float = 0.9) -> Any:
    """[Conv1D 128/k8, ReLU, Dropout 0.3, MaxPool 5] -> [Conv1D 256/k8, ReLU, Dropout
    0.3, MaxPool 5] -> Flatten -> Dense 256 -> Dense 256 -> Dense softmax; RMSprop
    lr 2e-5 (the report's "decay 0.9" read as RMSprop's rho). For 40 coefficients and
    8 classes: 397,192 parameters."""
    import keras

    inputs, x = _vector_input(keras, input_shape)
    for i, f in enumerate(filters, start=1):
        x = keras.layers.Conv1D(f, kernel_size, padding="same", activation="relu", name=f"conv{i}")(x)
        x = keras.layers.Dropout(dropout, name=f"drop{i}")(x)
        x = keras.layers.MaxPooling1D(pool_size, name=f"pool{i}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    for i, units in enumerate(dense_units, start=1):
        x = keras.layers.Dense(units, activation="relu", name=f"dense{i}")(x)
    outputs = keras.layers.Dense(n_classes, activation="softmax", name="probabilities")(x)
    model = keras.Model(inputs, outputs, name="audio_cnn_ref")
    return _compile(model, keras.optimizers.RMSprop(learning_rate=learning_rate, rho=rho))


def _conv_block(keras: Any, x: Any, prefix: str, channels: tuple[int, ...], pools: tuple[int, ...],
                dropout: float) -> Any:
    """Conv2D 3x3 (same) -> BN -> ReLU -> MaxPool -> Dropout, per channel count."""
    for i, (c, p) in enumerate(zip(channels, pools), start=1):
        x = keras.layers.Conv2D(c, 3, padding="same", name=f"{prefix}_conv{i}")(x)
        x = keras.layers.BatchNormalization(name=f"{prefix}_bn{i}")(x)
        x = keras.layers.ReLU(name=f"{prefix}_relu{i}")(x)
        x = keras.layers.MaxPooling2D(p, name=f"{prefix}_pool{i}")(x)
        x = keras.layers.Dropout(dropout, name=f"{prefix}_drop{i}")(x)
    return keras.layers.Flatten(name=f"{prefix}_flatten")(x)


def _encoder_layer(keras: Any, x: Any, i: int, heads: int, ff_units: int, dropout: float) -> Any:
    """One post-norm transformer encoder layer (as PyTorch's default), built-in layers only."""
    d_model = x.shape[-1]
    attn = keras.layers.MultiHeadAttention(heads, max(1, d_model // heads), dropout=dropout, name=f"enc{i}_mha")(x, x)
    attn = keras.layers.Dropout(dropout, name=f"enc{i}_drop_a")(attn)
    x = keras.layers.LayerNormalization(epsilon=1e-5, name=f"enc{i}_ln_a")(keras.layers.Add(name=f"enc{i}_add_a")([x, attn]))
    ff = keras.layers.Dense(ff_units, activation="relu", name=f"enc{i}_ff1")(x)
    ff = keras.layers.Dropout(dropout, name=f"enc{i}_drop_f1")(ff)
    ff = keras.layers.Dense(d_model, name=f"enc{i}_ff2")(ff)
    ff = keras.layers.Dropout(dropout, name=f"enc{i}_drop_f2")(ff)
    return keras.layers.LayerNormalization(epsilon=1e-5, name=f"enc{i}_ln_f")(keras.layers.Add(name=f"enc{i}_add_f")([x, ff]))


@register("parallel_cnn_transformer", framework="keras", input_kind="mfcc_matrix",
          description="two parallel 2-D CNN blocks beside a transformer encoder over time")
def build_parallel_cnn_transformer(input_shape: tuple[int, ...], n_classes: int, *,
                                   channels: tuple[int, ...] = (16, 32, 64), pools: tuple[int, ...] = (2, 4, 4),
                                   conv_dropout: float = 0.3, n_blocks: int = 2, transformer_layers: int = 4,
                                   heads: int = 4, ff_units: int = 512, transformer_dropout: float = 0.4,
                                   time_pool: int = 4, learning_rate: float = 0.01, momentum: float = 0.8,
                                   decay_steps: int | None = None, decay_factor: float = 0.1) -> Any:
    """Input ``(n_coeffs, T)`` (MFCC or log-mel), first standardised per coefficient
    by a BatchNorm. ``n_blocks`` parallel conv blocks (1 -> 16 -> 32 -> 64 channels,
    3x3, BN, ReLU, max pools 2/4/4, dropout 0.3) see it as a 1-channel image; a
    transformer encoder (4 layers, 4 heads, feed-forward 512, dropout 0.4) reads the
    time axis (max-pooled by ``time_pool``) with the coefficients as the model
    dimension and is averaged over time. The flattened blocks and the encoder output
    are concatenated into a softmax. SGD lr 0.01 (momentum 0.8); with ``decay_steps``
    the rate drops by ``decay_factor`` after that many optimizer steps (the report's
    mid-training decay; pass about half of epochs x steps per epoch)."""
    import keras

    if len(input_shape) != 2 or min(input_shape) < 1:
        raise ValueError(f"parallel_cnn_transformer expects (n_coeffs, T), got input_shape {input_shape}")
    n_coeffs, n_times = input_shape
    shrink = 1
    for p in pools:
        shrink *= p
    if n_coeffs < shrink or n_times < max(shrink, time_pool):
        raise ValueError(f"input {input_shape} is too small for pools {tuple(pools)}: need at least "
                         f"({shrink}, {max(shrink, time_pool)})")
    if n_coeffs % heads:
        raise ValueError(f"n_coeffs={n_coeffs} must be divisible by heads={heads}")
    inputs = keras.Input(shape=input_shape, name="features")
    x = keras.layers.BatchNormalization(axis=1, name="input_bn")(inputs)
    image = keras.layers.Reshape((n_coeffs, n_times, 1), name="as_image")(x)
    branches = [_conv_block(keras, image, f"cnn{b}", tuple(channels), tuple(pools), conv_dropout)
                for b in range(1, n_blocks + 1)]
    seq = keras.layers.MaxPooling2D((1, time_pool), name="time_pool")(image)
    seq = keras.layers.Reshape((n_coeffs, n_times // time_pool), name="pooled")(seq)
    seq = keras.layers.Permute((2, 1), name="time_major")(seq)
    for i in range(1, transformer_layers + 1):
        seq = _encoder_layer(keras, seq, i, heads, ff_units, transformer_dropout)
    seq = keras.layers.GlobalAveragePooling1D(name="time_mean")(seq)
    x = keras.layers.Concatenate(name="concat")([*branches, seq])
    outputs = keras.layers.Dense(n_classes, activation="softmax", name="probabilities")(x)
    model = keras.Model(inputs, outputs, name="parallel_cnn_transformer")
    lr: Any = learning_rate
    if decay_steps:
        lr = keras.optimizers.schedules.PiecewiseConstantDecay(
            [int(decay_steps)], [learning_rate, learning_rate * decay_factor])
    return _compile(model, keras.optimizers.SGD(learning_rate=lr, momentum=momentum))
