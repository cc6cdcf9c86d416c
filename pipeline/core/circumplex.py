"""Valence and arousal of an answer, derived from its category probabilities.

Every emotion the workbench names gets a fixed place on the valence x arousal plane
(Russell 1980's circumplex), taken from a published word-rating study, not chosen by us:

    Warriner, A. B., Kuperman, V., & Brysbaert, M. (2013). Norms of valence, arousal,
    and dominance for 13,915 English lemmas. Behavior Research Methods, 45(4),
    1191-1207. https://doi.org/10.3758/s13428-012-0314-x

Values are the study's all-rater means (columns ``V.Mean.Sum`` and ``A.Mean.Sum``, a
1-9 scale: 1 = unhappy / calm, 9 = happy / excited) for the emotion's word: ``neutral``,
``calm``, ``happy``, ``sad``, ``angry``, ``fearful``, ``disgusted`` (for the class
``disgust``: the adjective, like the other class names) and ``surprised``; read from the
study's supplementary table as redistributed in JULIELab/XANEW
(``Ratings_Warriner_et_al.csv``). They are rescaled to [-1, 1] by ``(x - 5) / 4``.

An answer's place is the probability-weighted mean of its classes' places; its spread
is the probability-weighted standard deviation around that mean (per axis): a sure
answer sits on one word with no spread, a torn one sits between words with a wide
spread. This is derived from the category probabilities only: the models were never
trained on valence or arousal ratings, and the page and JSON say so.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

#: Where the coordinates come from (shown on the page and in ``--json``).
SOURCE: str = ("Warriner, Kuperman & Brysbaert (2013), Norms of valence, arousal, and dominance for "
               "13,915 English lemmas, Behavior Research Methods 45(4), 1191-1207")
#: How an answer's place is obtained (shown beside every plane).
DERIVATION: str = "derived from the category probabilities (probability-weighted mean of each emotion word's rated place)"

#: (valence, arousal) on the study's 1-9 scale, all raters' means, per class name; the
#: word rated is the class name itself except ``disgust`` -> "disgusted".
RATINGS_1_9: dict[str, tuple[float, float]] = {
    "neutral": (5.50, 3.45),
    "calm": (6.89, 1.67),
    "happy": (8.47, 6.05),
    "sad": (2.10, 3.49),
    "angry": (2.53, 6.20),
    "fearful": (2.66, 5.45),
    "disgust": (2.68, 4.89),
    "surprised": (6.57, 5.95),
}
#: The word each class was looked up as in the study.
RATED_WORD: dict[str, str] = {c: ("disgusted" if c == "disgust" else c) for c in RATINGS_1_9}


def coordinates(emotion: str) -> tuple[float, float]:
    """(valence, arousal) of one class in [-1, 1] (``(x - 5) / 4`` of the 1-9 rating).
    Raises KeyError for a class the study table here does not cover."""
    try:
        v, a = RATINGS_1_9[emotion]
    except KeyError:
        raise KeyError(f"no valence/arousal rating for {emotion!r}; rated: {', '.join(RATINGS_1_9)}") from None
    return (v - 5.0) / 4.0, (a - 5.0) / 4.0


@dataclass(frozen=True)
class Place:
    """An answer on the plane: ``valence``, ``arousal`` in [-1, 1]; ``valence_sd``,
    ``arousal_sd`` the probability-weighted spread (same units); ``mass``: the share of
    the probability that fell on rated classes (1.0 for the shipped label sets)."""

    valence: float
    arousal: float
    valence_sd: float
    arousal_sd: float
    mass: float = 1.0

    def to_json(self) -> dict[str, float]:
        return {"valence": round(self.valence, 4), "arousal": round(self.arousal, 4),
                "valence_sd": round(self.valence_sd, 4), "arousal_sd": round(self.arousal_sd, 4),
                "mass": round(self.mass, 4)}


def place(probabilities: Mapping[str, float]) -> Place | None:
    """The valence/arousal :class:`Place` of one answer (emotion -> probability).

    Classes without a rating are left out and the rest renormalised (``mass`` says how
    much was kept). None when nothing rated has probability (an abstention). Pure."""
    rated = [(c, float(p)) for c, p in probabilities.items() if c in RATINGS_1_9 and np.isfinite(p) and p > 0]
    total = sum(p for _, p in rated)
    if total <= 0:
        return None
    w = np.array([p for _, p in rated]) / total
    xy = np.array([coordinates(c) for c, _ in rated])
    mean = w @ xy
    sd = np.sqrt(np.maximum(w @ (xy - mean) ** 2, 0.0))
    all_mass = sum(float(p) for p in probabilities.values() if np.isfinite(p) and p > 0)
    return Place(float(mean[0]), float(mean[1]), float(sd[0]), float(sd[1]),
                 mass=float(total / all_mass) if all_mass > 0 else 0.0)


def path(answers: Sequence[Mapping[str, float] | None]) -> list[Place | None]:
    """Places of a sequence of answers (a long clip's windows, in time order); None where
    a window abstained (empty or None probabilities)."""
    return [place(a) if a else None for a in answers]
