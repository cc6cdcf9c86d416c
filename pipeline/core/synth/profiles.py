"""Emotion profiles of the synthetic corpus, written as data.

Two tables, one row per RAVDESS emotion, give how a *normal*-intensity expression
departs from the same actor's neutral delivery; *strong* intensity multiplies every
departure by :data:`STRONG_SCALE`. The generator (``voice.py``, ``face.py``) reads
only these tables, so the whole emotional content of the corpus is visible here.

Directions come from the literature cited in :data:`SOURCES` (the key in each row's
``source`` field); magnitudes are our own choice, set so that emotions are separable
but confusable (calm sits next to neutral, angry next to happy, fearful next to
surprised) once per-actor and per-take variation is added (see ``corpus.py``).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

#: Multiplier of every departure from neutral for RAVDESS intensity "02" (strong).
STRONG_SCALE: float = 1.6


@dataclass(frozen=True)
class VoiceProfile:
    """Vocal cues relative to the actor's neutral voice.

    f0_st: mean pitch shift in semitones. f0_range: multiplier of the pitch excursions
    (declination, accents). rate: multiplier of the speaking rate (syllables/s).
    loudness_db: level change in dB. tilt_db: spectral-tilt change in dB per octave
    above 500 Hz (positive = flatter = more high-frequency energy, "tense" voice).
    jitter, shimmer: multipliers of the actor's cycle-to-cycle F0 and amplitude
    perturbation. breath: added aspiration-noise ratio (0 = none, 0.1 = clearly breathy).
    """

    emotion: str
    f0_st: float
    f0_range: float
    rate: float
    loudness_db: float
    tilt_db: float
    jitter: float
    shimmer: float
    breath: float
    source: str


@dataclass(frozen=True)
class FaceProfile:
    """Facial action at the apex, in units of each action's full extent (0..1, signed).

    brow_raise: AU1+2 (whole brow up). inner_brow: AU1 alone (oblique "sad" brows).
    brow_lower: AU4 (brows down and together). eye_open: AU5 upper-lid raiser (+) vs
    AU6/AU7 cheek raise and lid tightening (-). lip_corner: AU12 corner puller (+) vs
    AU15 corner depressor (-). lip_stretch: AU20 horizontal stretch. jaw_open: AU25/26
    lips part / jaw drop (added to the speech-driven opening). lip_press: AU23/24 lip
    tightening (thinner lips). nose_wrinkle: AU9/10 (nose shortened, upper lip raised).
    """

    emotion: str
    brow_raise: float
    inner_brow: float
    brow_lower: float
    eye_open: float
    lip_corner: float
    lip_stretch: float
    jaw_open: float
    lip_press: float
    nose_wrinkle: float
    source: str


SOURCES: dict[str, str] = {
    "JL03": "Juslin, P. N. & Laukka, P. (2003). Communication of emotions in vocal "
            "expression and music performance: Different channels, same code? "
            "Psychological Bulletin 129(5), 770-814 (summary of cue directions per "
            "emotion: rate, intensity, F0 level and variability, high-frequency energy, "
            "microstructural irregularity).",
    "S03": "Scherer, K. R. (2003). Vocal communication of emotion: A review of research "
           "paradigms. Speech Communication 40, 227-256 (compiled direction of acoustic "
           "changes per emotion).",
    "BS96": "Banse, R. & Scherer, K. R. (1996). Acoustic profiles in vocal emotion "
            "expression. J. Personality and Social Psychology 70(3), 614-636 "
            "(disgust, contempt and the hot/cold anger and fear variants).",
    "GN03": "Gobl, C. & Ni Chasaide, A. (2003). The role of voice quality in "
            "communicating emotion, mood and attitude. Speech Communication 40, "
            "189-212 (breathy/lax voice for sad and relaxed states, tense voice for anger).",
    "EF78": "Ekman, P. & Friesen, W. V. (1978); Ekman, Friesen & Hager (2002). Facial "
            "Action Coding System. Action units AU1, 2, 4, 5, 6, 7, 9, 10, 12, 15, 20, "
            "23, 24, 25, 26.",
    "EMFACS": "Friesen, W. V. & Ekman, P. (1983). EMFACS-7: Emotional Facial Action "
              "Coding System (prototypes: happiness 6+12; sadness 1+4+15; anger "
              "4+5+7+23; fear 1+2+4+5+7+20+26; surprise 1+2+5B+26; disgust 9+15+16).",
    "OURS": "No published prototype: our assumption (RAVDESS 'calm' is a relaxed, "
            "low-arousal, mildly positive delivery, close to neutral).",
}
"""Full references for the ``source`` keys of the profile rows."""

# Emotion order = RAVDESS codes 01..08 (pipeline.core.labels.EMOTIONS).
VOICE_TABLE: tuple[VoiceProfile, ...] = (
    #            emotion     f0_st  range  rate  loud  tilt  jitter shimmer breath source
    VoiceProfile("neutral",    0.0, 1.00, 1.00,  0.0,  0.0, 1.00, 1.00, 0.00, "S03"),
    VoiceProfile("calm",      -0.8, 0.85, 0.93, -1.5, -0.8, 0.95, 0.95, 0.04, "JL03,GN03"),
    VoiceProfile("happy",      3.5, 1.55, 1.08,  3.5,  1.2, 0.95, 1.00, 0.00, "JL03,S03"),
    VoiceProfile("sad",       -1.8, 0.60, 0.78, -5.0, -2.2, 1.50, 1.40, 0.10, "JL03,S03,GN03"),
    VoiceProfile("angry",      2.5, 1.35, 1.12,  7.0,  3.5, 1.30, 1.30, 0.00, "JL03,S03,GN03"),
    VoiceProfile("fearful",    5.0, 0.85, 1.18,  1.5,  0.5, 1.80, 1.50, 0.06, "JL03,S03"),
    VoiceProfile("disgust",   -1.0, 1.10, 0.85,  0.5, -0.4, 1.20, 1.20, 0.04, "BS96,S03"),
    VoiceProfile("surprised",  4.0, 1.70, 1.00,  2.5,  0.8, 1.00, 1.00, 0.02, "S03"),
)

FACE_TABLE: tuple[FaceProfile, ...] = (
    #           emotion    brow_up inner brow_dn eye   corner stretch jaw  press nose  source
    FaceProfile("neutral",   0.0,  0.0,  0.0,   0.0,  0.0,   0.0,   0.0,  0.0,  0.0, "EF78"),
    FaceProfile("calm",      0.0,  0.0,  0.0,  -0.2,  0.2,   0.0,   0.0,  0.1,  0.0, "OURS"),
    FaceProfile("happy",     0.1,  0.0,  0.0,  -0.35, 0.8,   0.1,   0.15, 0.0,  0.0, "EMFACS,EF78"),
    FaceProfile("sad",       0.0,  0.7,  0.35, -0.3, -0.6,   0.0,   0.0,  0.1,  0.0, "EMFACS,EF78"),
    FaceProfile("angry",     0.0,  0.0,  0.9,   0.25,-0.2,   0.0,   0.0,  0.7,  0.1, "EMFACS,EF78"),
    FaceProfile("fearful",   0.8,  0.3,  0.4,   0.7, -0.1,   0.7,   0.3,  0.0,  0.0, "EMFACS,EF78"),
    FaceProfile("disgust",   0.0,  0.0,  0.5,  -0.35,-0.4,   0.0,   0.05, 0.0,  0.9, "EMFACS,EF78"),
    FaceProfile("surprised", 1.0,  0.0,  0.0,   0.8,  0.0,   0.0,   0.6,  0.0,  0.0, "EMFACS,EF78"),
)

VOICE_CUES: tuple[str, ...] = tuple(f.name for f in fields(VoiceProfile) if f.name not in ("emotion", "source"))
FACE_CUES: tuple[str, ...] = tuple(f.name for f in fields(FaceProfile) if f.name not in ("emotion", "source"))
#: Cues that are multipliers (neutral = 1); the rest are additive (neutral = 0).
MULTIPLICATIVE: frozenset[str] = frozenset({"f0_range", "rate", "jitter", "shimmer"})


def _row(table: tuple, emotion: str):
    for row in table:
        if row.emotion == emotion:
            return row
    known = ", ".join(r.emotion for r in table)
    raise ValueError(f"no profile for emotion {emotion!r}; known: {known}")


def intensity_scale(intensity: str) -> float:
    """How far an expression departs from neutral: 1 for "normal", STRONG_SCALE for "strong"."""
    if intensity == "normal":
        return 1.0
    if intensity == "strong":
        return STRONG_SCALE
    raise ValueError(f"intensity must be 'normal' or 'strong', not {intensity!r}")


def scaled(cue: str, value: float, scale: float) -> float:
    """Scale a cue's departure from neutral (multipliers in the log domain)."""
    if cue in MULTIPLICATIVE:
        return float(value ** scale)
    return float(value * scale)


def voice_profile(emotion: str, intensity: str = "normal") -> dict[str, float]:
    """Vocal cues of an emotion at an intensity, as ``{cue: value}``."""
    scale = intensity_scale(intensity)
    row = asdict(_row(VOICE_TABLE, emotion))
    return {cue: scaled(cue, row[cue], scale) for cue in VOICE_CUES}


def face_profile(emotion: str, intensity: str = "normal") -> dict[str, float]:
    """Facial actions of an emotion at an intensity, as ``{cue: value}`` (apex)."""
    scale = intensity_scale(intensity)
    row = asdict(_row(FACE_TABLE, emotion))
    return {cue: scaled(cue, row[cue], scale) for cue in FACE_CUES}


def markdown_tables() -> str:
    """Both tables as Markdown (for docs/synthetic.md and the dashboard's About page)."""
    lines = ["| emotion | " + " | ".join(VOICE_CUES) + " | source |",
             "|---" * (len(VOICE_CUES) + 2) + "|"]
    for row in VOICE_TABLE:
        d = asdict(row)
        lines.append(f"| {row.emotion} | " + " | ".join(f"{d[c]:g}" for c in VOICE_CUES)
                     + f" | {row.source.replace(',', ', ')} |")
    lines += ["", "| emotion | " + " | ".join(FACE_CUES) + " | source |",
              "|---" * (len(FACE_CUES) + 2) + "|"]
    for row in FACE_TABLE:
        d = asdict(row)
        lines.append(f"| {row.emotion} | " + " | ".join(f"{d[c]:g}" for c in FACE_CUES)
                     + f" | {row.source.replace(',', ', ')} |")
    return "\n".join(lines)


# Variation around the table. An actor renders each emotion in their own way: every
# departure from neutral is multiplied by the actor's expressiveness and by a
# log-normal factor (sd RENDITION_LOG_SD), then shifted by the actor's own offset
# (sd in ACTOR_SPREAD, drawn once per actor and emotion); every take adds a fresh
# offset (sd in TAKE_SPREAD). Multiplicative cues vary in the log domain.
# Without this the task would be trivially separable; with it a speaker-independent
# MFCC baseline lands well below 100% (docs/synthetic.md has the figures).
RENDITION_LOG_SD: float = 0.2

ACTOR_SPREAD: dict[str, float] = {
    "f0_st": 0.48, "f0_range": 0.072, "rate": 0.03, "loudness_db": 0.72, "tilt_db": 0.48,
    "jitter": 0.072, "shimmer": 0.072, "breath": 0.012,
    "brow_raise": 0.12, "inner_brow": 0.12, "brow_lower": 0.12, "eye_open": 0.12,
    "lip_corner": 0.12, "lip_stretch": 0.1, "jaw_open": 0.08, "lip_press": 0.1,
    "nose_wrinkle": 0.1,
}
TAKE_SPREAD: dict[str, float] = {
    "f0_st": 0.6, "f0_range": 0.1, "rate": 0.05, "loudness_db": 1.0, "tilt_db": 0.6,
    "jitter": 0.1, "shimmer": 0.1, "breath": 0.015,
    "brow_raise": 0.1, "inner_brow": 0.1, "brow_lower": 0.1, "eye_open": 0.1,
    "lip_corner": 0.1, "lip_stretch": 0.08, "jaw_open": 0.06, "lip_press": 0.08,
    "nose_wrinkle": 0.08,
}


def render(profile: dict[str, float], expressiveness: float, actor_offsets: dict[str, float],
           take_offsets: dict[str, float], gain: float) -> dict[str, float]:
    """One actor's take of a profile: departures scaled, then offsets added.

    ``gain`` is the per-(actor, emotion) log-normal factor; offsets are standard-normal
    draws that this function multiplies by ACTOR_SPREAD / TAKE_SPREAD.
    """
    out: dict[str, float] = {}
    for cue, value in profile.items():
        shift = actor_offsets.get(cue, 0.0) * ACTOR_SPREAD.get(cue, 0.0) \
            + take_offsets.get(cue, 0.0) * TAKE_SPREAD.get(cue, 0.0)
        if cue in MULTIPLICATIVE:
            out[cue] = math.exp(math.log(value) * expressiveness * gain + shift)
        else:
            out[cue] = value * expressiveness * gain + shift
    if "breath" in out:
        out["breath"] = max(0.0, out["breath"])
    return out
