"""Voice features grouped by what they mean: the named cue groups of an explanation.

The groups follow the parameter families of the Geneva Minimalistic Acoustic Parameter
Set: Eyben, F., Scherer, K. R., Schuller, B. W., et al. (2016). The Geneva Minimalistic
Acoustic Parameter Set (GeMAPS) for voice research and affective computing. IEEE
Transactions on Affective Computing, 7(2), 190-202 (section 3: frequency, energy /
amplitude, spectral balance and temporal parameters; the extended set adds MFCC 1-4,
spectral flux and formant 2-3 bandwidths). openSMILE names them ``F0semitoneFrom27.5Hz``,
``loudness``, ``jitterLocal``, ``shimmerLocaldB``, ``HNRdBACF``, ``alphaRatio``,
``hammarbergIndex``, ``slope``, ``logRelF0-H1-H2``, ``F1frequency`` ...,
``loudnessPeaksPerSec``, ``VoicedSegmentsPerSec`` (openSMILE's eGeMAPSv02 config).

Our grouping, one meaning each:

- ``pitch``: F0 level, range and slopes (``F0semitoneFrom27.5Hz_*``);
- ``loudness``: loudness level, range and slopes, equivalent sound level;
- ``tempo``: tempo and pauses: loudness peaks per second (a syllable-rate proxy),
  voiced segments per second, voiced and unvoiced segment lengths;
- ``voice_quality``: jitter, shimmer, harmonics-to-noise ratio, H1-H2 and H1-A3
  (GeMAPS lists H1-H2/H1-A3 with spectral balance; they are also the standard
  phonation-type / breathiness measures, which is how we group them);
- ``spectral``: spectral shape: alpha ratio, Hammarberg index, spectral slopes,
  spectral flux, MFCC 1-4, formant frequencies, bandwidths and amplitudes;
- ``encoder``: features learned by a speech model (the Whisper encoder's
  block statistics): they have no documented meaning and form their own group, named
  honestly as "learned encoder features".

Pure functions over feature names (the ``feature_names`` a bundle records).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

#: Group key -> display name.
GROUPS: dict[str, str] = {
    "pitch": "pitch level and range",
    "loudness": "loudness",
    "tempo": "tempo and pauses",
    "voice_quality": "voice quality (jitter, shimmer, HNR)",
    "spectral": "spectral shape",
    "encoder": "learned encoder features (Whisper)",
    "other": "other features",
}

#: Regular expressions over an eGeMAPS functional's name (without the ``egemaps.``
#: prefix), tried in order; the first that matches gives the group.
_EGEMAPS_RULES: tuple[tuple[str, str], ...] = (
    ("pitch", r"^F0semitone"),
    ("tempo", r"^(loudnessPeaksPerSec|VoicedSegmentsPerSec|MeanVoicedSegmentLength|StddevVoicedSegmentLength|"
              r"MeanUnvoicedSegmentLength|StddevUnvoicedSegmentLength)"),
    ("loudness", r"^(loudness_sma3|equivalentSoundLevel)"),
    ("voice_quality", r"^(jitterLocal|shimmerLocaldB|HNRdBACF|logRelF0-H1-H2|logRelF0-H1-A3)"),
    ("spectral", r"^(alphaRatio|hammarbergIndex|slope|spectralFlux|mfcc\d|F\dfrequency|F\dbandwidth|F\damplitude)"),
)


def group_of(name: str) -> str:
    """The cue group of one feature name (``egemaps.X``, ``whisper_base.blockN...``, or a
    bare eGeMAPS functional name); ``other`` for anything unknown."""
    if name.startswith(("whisper", "encoder")):
        return "encoder"
    base = name.split(".", 1)[1] if name.startswith("egemaps.") else name
    for group, pattern in _EGEMAPS_RULES:
        if re.match(pattern, base):
            return group
    return "other"


@dataclass(frozen=True)
class CueMap:
    """Which columns of a feature vector belong to which group (``index[group]``: column
    numbers in order), from the bundle's ``feature_names``."""

    names: tuple[str, ...]
    index: dict[str, tuple[int, ...]]

    @classmethod
    def from_names(cls, names: Sequence[str]) -> "CueMap":
        index: dict[str, list[int]] = {}
        for i, name in enumerate(names):
            index.setdefault(group_of(str(name)), []).append(i)
        return cls(tuple(str(n) for n in names), {g: tuple(v) for g, v in index.items()})

    def groups(self) -> list[str]:
        """Groups present, in :data:`GROUPS` order."""
        return [g for g in GROUPS if g in self.index]


#: Functionals that say where a group lies ("level") and how much it moves ("range"),
#: used for the plain sentence of each group (means of the standardised values).
LEVEL_RANGE: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "pitch": (("F0semitoneFrom27.5Hz_sma3nz_amean", "F0semitoneFrom27.5Hz_sma3nz_percentile50.0"),
              ("F0semitoneFrom27.5Hz_sma3nz_stddevNorm", "F0semitoneFrom27.5Hz_sma3nz_pctlrange0-2")),
    "loudness": (("loudness_sma3_amean", "equivalentSoundLevel_dBp"),
                 ("loudness_sma3_stddevNorm", "loudness_sma3_pctlrange0-2")),
    "tempo": (("loudnessPeaksPerSec", "VoicedSegmentsPerSec"),
              ("MeanUnvoicedSegmentLength",)),
    "voice_quality": (("jitterLocal_sma3nz_amean", "shimmerLocaldB_sma3nz_amean"),
                      ("HNRdBACF_sma3nz_amean",)),
    "spectral": (("alphaRatioV_sma3nz_amean", "slopeV0-500_sma3nz_amean"),
                 ("hammarbergIndexV_sma3nz_amean",)),
}

#: Words for "above/below" per group and measure: (level high, level low, range high, range low).
_WORDS: dict[str, tuple[str, str, str, str]] = {
    "pitch": ("higher", "lower", "more varied", "flatter"),
    "loudness": ("louder", "quieter", "more varied in loudness", "more even in loudness"),
    "tempo": ("faster (more syllables and voiced stretches a second)", "slower",
              "with longer pauses", "with shorter pauses"),
    "voice_quality": ("rougher (more jitter and shimmer)", "steadier (less jitter and shimmer)",
                      "clearer (more harmonic, less noise)", "breathier or noisier (less harmonic)"),
    "spectral": ("brighter (more energy in the higher frequencies)", "darker (energy kept low)",
                 "with a flatter spectrum", "with a steeper spectrum"),
}


def describe(group: str, level: float | None, spread: float | None, toward: str, against: str,
             contribution: float, reference: str) -> str:
    """One plain sentence for a group: how the voice's values compare with ``reference``
    (``level``/``spread``: mean standardised values, in standard deviations; None when
    the group's named functionals are missing) and which answer it pushes toward.

    ``contribution`` > 0 pushes toward ``toward`` (the winner), < 0 toward ``against``."""
    name = GROUPS.get(group, group)
    side = toward if contribution >= 0 else against
    push = f"pushes toward {side} ({contribution:+.2f})"
    if group == "encoder":
        push = push.replace("pushes", "push", 1)
        return (f"The learned encoder features (no named acoustic meaning) together {push}; "
                "this model cannot say in words what they heard.")
    words = _WORDS.get(group)
    parts: list[str] = []
    if words is not None:
        if level is not None and abs(level) >= 0.3:
            parts.append(words[0] if level > 0 else words[1])
        if spread is not None and abs(spread) >= 0.3:
            parts.append(words[2] if spread > 0 else words[3])
    title = name[:1].upper() + name[1:]
    if parts:
        return f"{title}: {' and '.join(parts)} than {reference}; {push}."
    return f"{title}: close to {reference}; {push}."
