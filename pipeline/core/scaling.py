"""Per-class recalibration of a classifier's probabilities, as served.

``vector scaling`` on log-probabilities: ``q = softmax(a * log p + b)`` with one scale
``a_c`` and one bias ``b_c`` per class (Guo et al. 2017, "On calibration of modern neural
networks", section 4.2, applied to log-probabilities as in the diagonal case of Kull et
al. 2019, "Beyond temperature scaling: obtaining well-calibrated multiclass probabilities
with Dirichlet calibration"). Temperature scaling is the special case ``a = 1/T``,
``b = 0``. A model that outputs probabilities (softmax) is recalibrated without its
logits: the map is defined on ``log p`` (which differs from the logits by a constant per
row) and fitted on ``log p``, so the served map is exactly the fitted one. Fitting is the research side's job (:mod:`pipeline.research.recalibration`); this
module only applies a fitted map.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Probabilities are clipped here before the logarithm.
EPS: float = 1e-7


@dataclass(frozen=True)
class Scaling:
    """A fitted recalibration map: ``scale`` and ``bias`` per class, and how it was fitted."""

    scale: tuple[float, ...]
    bias: tuple[float, ...]
    method: str = "vector"  # "temperature" or "vector"
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.scale) != len(self.bias) or len(self.scale) < 2:
            raise ValueError(f"scale and bias need one value per class (at least 2), got {len(self.scale)} "
                             f"and {len(self.bias)}")

    def apply(self, proba: np.ndarray) -> np.ndarray:
        """(n, C) probabilities -> (n, C) recalibrated probabilities, rows summing to 1.
        Raises ValueError when C differs from the map's classes."""
        proba = np.asarray(proba, dtype=np.float64)
        if proba.ndim != 2 or proba.shape[1] != len(self.scale):
            raise ValueError(f"the scaling has {len(self.scale)} classes, the probabilities have shape {proba.shape}")
        z = np.log(np.clip(proba, EPS, 1.0)) * np.asarray(self.scale) + np.asarray(self.bias)
        z -= z.max(axis=1, keepdims=True)
        q = np.exp(z)
        return q / q.sum(axis=1, keepdims=True)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (what a bundle stores)."""
        return {"method": self.method, "scale": [float(v) for v in self.scale],
                "bias": [float(v) for v in self.bias], **({"info": self.info} if self.info else {})}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Scaling":
        """Inverse of :meth:`to_dict`; raises ValueError for a malformed record."""
        try:
            return cls(scale=tuple(float(v) for v in data["scale"]), bias=tuple(float(v) for v in data["bias"]),
                       method=str(data.get("method", "vector")), info=dict(data.get("info") or {}))
        except (KeyError, TypeError) as err:
            raise ValueError(f"a scaling record needs 'scale' and 'bias' lists ({err})") from None
