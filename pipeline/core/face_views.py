"""Test-time augmentation of face crops: the views a per-frame face model answers, averaged.

A view is a deterministic transform of a model input (n, size, size, channels) uint8:

- ``identity``: the crop as it is;
- ``flip``: mirrored left-right (faces are roughly symmetric; FER models train with flips);
- ``zoom``: the central ``1 - 2 * CROP_SHIFT`` of the side, enlarged back to ``size``
  (the face a little closer);
- ``crop_tl``, ``crop_tr``, ``crop_bl``, ``crop_br``: the same-sized window at each
  corner, enlarged back (the face shifted by ``CROP_SHIFT`` of the side: the jitter of a
  detector's box).

The answer is the mean of the views' probabilities (the "ten-crop" test-time averaging
of Krizhevsky et al. 2012, "ImageNet classification with deep convolutional neural
networks", section 4.1, with fewer views). Named sets (:data:`VIEW_SETS`) are what
experiments and bundles refer to. Used by the research path (measuring a set on the
validation split) and the serving path (:meth:`pipeline.serve.bundle.BranchModel.predict_proba`),
so both average the same views.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

#: Fraction of the side a corner or zoom view moves the window by (2 px of 48).
CROP_SHIFT: float = 0.05

#: Named view sets; "none" is the plain model.
VIEW_SETS: dict[str, tuple[str, ...]] = {
    "none": ("identity",),
    "flip": ("identity", "flip"),
    "crops": ("identity", "zoom", "crop_tl", "crop_tr", "crop_bl", "crop_br"),
    "flip_crops": ("identity", "flip", "zoom", "crop_tl", "crop_tr", "crop_bl", "crop_br"),
}

_CORNERS: dict[str, tuple[int, int]] = {"crop_tl": (0, 0), "crop_tr": (0, 2), "crop_bl": (2, 0), "crop_br": (2, 2)}
VIEWS: tuple[str, ...] = ("identity", "flip", "zoom", *_CORNERS)


def view_names(views: str | Sequence[str]) -> tuple[str, ...]:
    """The views of a named set (:data:`VIEW_SETS`) or a sequence of view names; raises
    ValueError for an unknown name."""
    names = VIEW_SETS.get(views) if isinstance(views, str) else tuple(views)
    if names is None:
        raise ValueError(f"unknown view set {views!r}; choose one of: {', '.join(VIEW_SETS)}")
    unknown = [v for v in names if v not in VIEWS]
    if unknown or not names:
        raise ValueError(f"unknown views {unknown or names!r}; views are: {', '.join(VIEWS)}")
    return tuple(names)


def _window(x: np.ndarray, name: str) -> np.ndarray:
    import cv2

    size = x.shape[1]
    inner = max(1, int(round(size * (1.0 - 2 * CROP_SHIFT))))
    step = (size - inner) // 2
    if name == "zoom":
        top = left = step
    else:
        row, col = _CORNERS[name]
        top, left = row * step, col * step
    out = np.empty_like(x)
    for i, crop in enumerate(x):
        part = np.ascontiguousarray(crop[top:top + inner, left:left + inner])
        big = cv2.resize(part, (size, size), interpolation=cv2.INTER_LINEAR)
        out[i] = big.reshape(out[i].shape)
    return out


def view(x: np.ndarray, name: str) -> np.ndarray:
    """One view of a batch of model inputs ``x`` (n, size, size, channels), same shape
    and dtype. Raises ValueError for an unknown view or a batch of another rank."""
    x = np.asarray(x)
    if x.ndim != 4 or x.shape[1] != x.shape[2]:
        raise ValueError(f"views take (n, size, size, channels) inputs, got shape {x.shape}")
    if name == "identity":
        return x
    if name == "flip":
        return np.ascontiguousarray(x[:, :, ::-1])
    if name == "zoom" or name in _CORNERS:
        return _window(x, name)
    raise ValueError(f"unknown view {name!r}; views are: {', '.join(VIEWS)}")


def predict_views(predict: Callable[[np.ndarray], np.ndarray], x: np.ndarray,
                  views: str | Sequence[str]) -> np.ndarray:
    """(n, C) mean probabilities of ``predict`` over the views of ``x``.

    ``predict`` maps (m, size, size, channels) to (m, C) probabilities; it is called once
    on every view stacked (m = n x number of views), so a batched model runs once.
    """
    names = view_names(views)
    x = np.asarray(x)
    if len(names) == 1 and names[0] == "identity":
        return np.asarray(predict(x), dtype=np.float64)
    stacked = np.concatenate([view(x, v) for v in names])
    proba = np.asarray(predict(stacked), dtype=np.float64).reshape(len(names), len(x), -1)
    return proba.mean(axis=0)
