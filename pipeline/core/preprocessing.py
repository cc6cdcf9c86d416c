"""The one set of preprocessing parameters shared by training and serving.

Saved with every run and bundle and read back by inference, so features can never
drift between the research path and the prediction path.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline.core.labels import label_set


@dataclass(frozen=True)
class Preprocessing:
    """Parameters of every feature the pipeline computes.

    Audio: waveforms are resampled to ``sample_rate`` Hz and the analysis window starts
    ``offset`` s into the clip and lasts ``duration`` s (shorter clips are zero-padded).
    MFCC/log-mel use ``n_fft``/``hop_length`` samples. Video: ``n_frames`` frames are
    sampled evenly and the face crop is resized to ``crop_size`` square pixels, with
    ``crop_margin`` (fraction of the landmark box) added on each side; ``color`` is
    ``rgb`` (3 channels) or ``gray`` (1 channel, ITU-R BT.601 luma as OpenCV computes
    it: the per-frame face model, like FER2013, sees greyscale). ``speech_span``: what
    openSMILE functionals summarise: ``trim`` (leading/trailing quiet cut) or ``vad``
    (only what Silero VAD marks as speech). ``voice_activity``: how serving decides
    whether, and how much, a person speaks: ``energy`` (loud stretches; a level check
    for silence) or ``vad`` (Silero VAD: no speech -> the audio branch abstains).
    ``level_db``: when set, the span a speech encoder hears is scaled so that its active
    speech level (:func:`pipeline.core.audio.speech_level_db`) is this many dBFS (ITU-T
    P.56's nominal -26), so the answer does not depend on how loud someone recorded;
    None leaves the level as recorded. ``encoder_layers``: which blocks of the speech
    encoder (:mod:`pipeline.core.speech_encoder`) the ``whisper_*`` features pool
    (0 = the convolution stem); several are averaged with equal weights, block by block
    after pooling (a layer average, as in SUPERB's probes of frozen speech encoders:
    Yang et al. 2021, Interspeech), a list in YAML and JSON.
    """

    sample_rate: int = 22050
    offset: float = 0.5
    duration: float = 3.0
    n_mfcc: int = 40
    n_mels: int = 128
    n_fft: int = 2048
    hop_length: int = 512
    n_frames: int = 30
    crop_size: int = 64
    crop_margin: float = 0.15
    color: str = "rgb"
    speech_span: str = "trim"
    voice_activity: str = "energy"
    level_db: float | None = None
    encoder_layers: tuple[int, ...] = (3,)
    labels: str = "six"

    def __post_init__(self) -> None:
        label_set(self.labels)  # fail at construction on an unknown label set
        if self.sample_rate <= 0 or self.duration <= 0 or self.offset < 0:
            raise ValueError("sample_rate and duration must be positive, offset >= 0")
        if self.n_frames < 1 or self.crop_size < 8:
            raise ValueError("n_frames must be >= 1 and crop_size >= 8")
        if self.voice_activity not in ("energy", "vad"):
            raise ValueError(f"voice_activity must be 'energy' or 'vad', not {self.voice_activity!r}")
        if self.speech_span not in ("trim", "vad"):
            raise ValueError(f"speech_span must be 'trim' or 'vad', not {self.speech_span!r}")
        if self.level_db is not None and not -60.0 <= float(self.level_db) <= 0.0:
            raise ValueError(f"level_db must be None or in -60..0 dBFS, not {self.level_db!r}")
        layers = self.encoder_layers
        if (not isinstance(layers, (list, tuple)) or not layers
                or not all(isinstance(k, int) and not isinstance(k, bool) and k >= 0 for k in layers)
                or len(set(layers)) != len(layers)):
            raise ValueError(f"encoder_layers must be a non-empty list of distinct non-negative integers, "
                             f"not {layers!r}")
        object.__setattr__(self, "encoder_layers", tuple(sorted(layers)))
        if self.color not in ("rgb", "gray"):
            raise ValueError(f"color must be 'rgb' or 'gray', not {self.color!r}")

    @property
    def classes(self) -> tuple[str, ...]:
        """Emotion names in class-index order."""
        return label_set(self.labels)

    @property
    def channels(self) -> int:
        """Colour channels of a face crop as the video model sees it (1 or 3)."""
        return 1 if self.color == "gray" else 3

    @property
    def window_samples(self) -> int:
        """Number of samples in the analysis window."""
        return int(round(self.duration * self.sample_rate))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Preprocessing":
        """Build from a dict, ignoring unknown keys (forward compatible bundles)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def digest(self, *fields: str) -> str:
        """Short hash of the named fields (all when none): a feature-cache key part."""
        data = self.to_dict()
        chosen = {k: data[k] for k in (fields or sorted(data))}
        return hashlib.sha1(json.dumps(chosen, sort_keys=True).encode()).hexdigest()[:12]


def model_input(x: np.ndarray) -> np.ndarray:
    """What a model is fed, in training and in serving alike: float32, values unchanged
    (uint8 frames stay 0..255; the video models' first layer is ``Rescaling(1/255)``)."""
    return np.asarray(x).astype(np.float32, copy=False)
