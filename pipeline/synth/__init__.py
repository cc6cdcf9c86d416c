"""The synthetic corpus: a RAVDESS-layout, seeded, offline stand-in for real data.

``profiles`` holds the emotion profiles (data with citations), ``voice`` the
source-filter speech synthesizer, ``face`` the drawn face and its 68 landmarks,
``corpus`` the writer: ``generate(out, n_actors=8, seed=7)``. Honestly synthetic:
see docs/synthetic.md.
"""
from __future__ import annotations

from typing import Any

__all__ = ["generate", "SynthSummary"]


def __getattr__(name: str) -> Any:  # lazy: importing the package stays cheap
    if name in __all__:
        from pipeline.synth import corpus

        return getattr(corpus, name)
    raise AttributeError(name)
