"""Why an answer: explanations computed from the models that answered.

- :func:`voice_contributions`: for a linear voice model (a scikit-learn ``Pipeline`` of a
  ``StandardScaler``, optionally linear steps such as the real bundle's projection of the
  training speakers' subspace and a second standardiser, and a ``LogisticRegression``),
  each feature's contribution to the winning class's logit against the runner-up's is
  ``(w_winner - w_runner_up) * z`` (``z``: the feature standardised by the model's first
  scaler; ``w``: the weights on ``z`` with the later linear steps folded in); summed per cue group (:mod:`pipeline.core.cues`) and with the intercept
  difference they add up exactly to the logit difference. The shown probabilities are
  ``softmax(logits / T)`` (the mode's held-out temperature), so the difference in
  log-probability is this sum divided by ``T``.
- :func:`grad_cam`: Grad-CAM (Selvaraju et al. 2017, "Grad-CAM: Visual explanations from
  deep networks via gradient-based localization", ICCV) on a Keras face CNN: the last
  4-D activation before global pooling, weighted by the spatially averaged gradient of
  the class's pre-softmax score, ReLU, upsampled to the crop.
- :func:`frame_answers`: the face model's answer on every shown frame (the strip under
  the frames), which the clip's pooled answer comes from.
- :func:`explain`: all of the above plus valence/arousal (:mod:`pipeline.core.circumplex`)
  for one :class:`~pipeline.serve.analysis.Analysis`, as an :class:`Explanation`.

Nothing here changes an answer; everything is read from the models and the inputs the
analysis kept (``BranchResult.model_input``).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from pipeline.core import circumplex, cues


# --------------------------------------------------------------------------- voice
@dataclass
class CueContribution:
    """One cue group's share of the winner-vs-runner-up logit difference (``value``, in
    logit units; > 0 toward the winner), its mean standardised ``level`` / ``spread``
    (None when its named functionals are missing) and a plain ``sentence``."""

    group: str
    name: str
    value: float
    n_features: int
    level: float | None = None
    spread: float | None = None
    sentence: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"group": self.group, "name": self.name, "contribution": round(self.value, 5),
                "n_features": self.n_features, "level": None if self.level is None else round(self.level, 3),
                "spread": None if self.spread is None else round(self.spread, 3), "sentence": self.sentence}


@dataclass
class VoiceExplanation:
    """Cue-group contributions of one voice answer (or the mean over a clip's windows).

    ``winner``/``runner_up``: the classes compared; ``logit_difference`` = sum of the
    groups' values + ``intercept``; ``temperature``: the mode's; ``mode``: the
    normalisation; ``windows``: how many windows were averaged."""

    winner: str
    runner_up: str
    groups: list[CueContribution]
    intercept: float
    logit_difference: float
    temperature: float
    mode: str
    reference: str
    windows: int = 1

    def to_json(self) -> dict[str, Any]:
        return {"winner": self.winner, "runner_up": self.runner_up, "mode": self.mode,
                "logit_difference": round(self.logit_difference, 5), "intercept": round(self.intercept, 5),
                "temperature": round(self.temperature, 4), "windows": self.windows, "reference": self.reference,
                "groups": [g.to_json() for g in self.groups],
                "method": "linear: (w_winner - w_runner_up) x standardised feature, summed per cue group"}


#: What the standardised values are measured against, per normalisation mode.
REFERENCES: dict[str, str] = {
    "none": "the training voices' average",
    "session": "this speaker's own average over the recording",
    "neutral": "this speaker's calm voice",
}


def linear_parts(model: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray] | None:
    """(scaler or None, coef (K, d), intercept (K,), classes_) of a linear classifier or a
    ``Pipeline`` ending in one whose other steps are a standardiser first, then any
    standardisers (``mean_``, ``scale_``) and projections of the training speakers'
    subspace (:class:`models.nuisance.SpeakerSubspaceRemoval`: ``x - x V^T V``). The steps after the
    first standardiser are folded into ``coef`` and ``intercept``, so that ``coef @ z +
    intercept`` (``z``: the input standardised by the first step) are the model's logits
    exactly. None for any other model (no exact linear explanation then)."""
    from models.nuisance import SpeakerSubspaceRemoval

    steps = [step for _, step in getattr(model, "steps", [])] or [model]
    clf = steps[-1]
    coef, intercept = getattr(clf, "coef_", None), getattr(clf, "intercept_", None)
    if coef is None or intercept is None:
        return None
    coef = np.atleast_2d(np.asarray(coef, np.float64))
    intercept = np.atleast_1d(np.asarray(intercept, np.float64))
    if coef.shape[0] == 1:  # binary: class 1's logit against a zero for class 0
        coef, intercept = np.vstack([np.zeros_like(coef), coef]), np.array([0.0, intercept[0]])
    classes = np.asarray(getattr(clf, "classes_", np.arange(coef.shape[0])))
    scaler = steps[0] if len(steps) > 1 else None
    if scaler is not None and not _is_standardiser(scaler):
        return None
    for step in reversed(steps[1:-1]):  # logits = coef @ step(u) + intercept, rewritten on u
        if _is_standardiser(step):
            mean, scale = _mean_scale(step)
            coef = coef / scale
            intercept = intercept - (coef * mean).sum(axis=1)
        elif isinstance(step, SpeakerSubspaceRemoval):
            V = np.asarray(step.components_, np.float64)
            coef = coef - (coef @ V.T) @ V
        else:
            return None
    return scaler, coef, intercept, classes


def _is_standardiser(step: Any) -> bool:
    return hasattr(step, "mean_") and hasattr(step, "scale_")


def _mean_scale(scaler: Any) -> tuple[np.ndarray | float, np.ndarray | float]:
    """A fitted standardiser's mean and scale as it applies them: 0 and 1 where it
    keeps them (``with_mean`` / ``with_std`` false: scikit-learn still stores the mean
    then, unused), and a zero scale read as 1, as StandardScaler does."""
    use_mean = getattr(scaler, "with_mean", True) and scaler.mean_ is not None
    use_scale = getattr(scaler, "with_std", True) and scaler.scale_ is not None
    mean = np.asarray(scaler.mean_, np.float64) if use_mean else 0.0
    scale = np.asarray(scaler.scale_, np.float64) if use_scale else 1.0
    return mean, np.where(np.asarray(scale) == 0, 1.0, scale)


def _standardise(scaler: Any, x: np.ndarray) -> np.ndarray:
    if scaler is None:
        return x
    mean, scale = _mean_scale(scaler)
    return (x - mean) / scale


def window_contributions(branch: Any, x: np.ndarray, mode: str, winner: str, runner_up: str
                         ) -> tuple[np.ndarray, float, np.ndarray] | None:
    """Per-feature contributions ``(d,)``, the intercept difference and the standardised
    features ``z`` ``(d,)`` of one window's model input ``x`` (already normalised for
    ``mode``) to ``logit[winner] - logit[runner_up]``; None for a non-linear model."""
    model = branch.loaded() if mode == "none" else branch.calibrated.get(mode)
    parts = linear_parts(model)
    if parts is None:
        return None
    scaler, coef, intercept, seen = parts
    classes = list(branch.params.classes)
    row = {int(c): k for k, c in enumerate(seen)}
    iw, ir = row.get(classes.index(winner)), row.get(classes.index(runner_up))
    if iw is None or ir is None:
        return None
    z = _standardise(scaler, np.asarray(x, np.float64).reshape(-1))
    diff = coef[iw] - coef[ir]
    return diff * z, float(intercept[iw] - intercept[ir]), z


def voice_contributions(branch: Any, results: Sequence[Any], winner: str, runner_up: str,
                        names: Sequence[str]) -> VoiceExplanation | None:
    """Cue-group contributions toward ``winner`` against ``runner_up``, averaged over the
    answering ``results`` (:class:`~pipeline.serve.analysis.BranchResult` that kept their
    ``model_input``); None when none did or the model is not linear."""
    cmap = cues.CueMap.from_names(names)
    rows, z_rows, intercepts, modes = [], [], [], []
    for r in results:
        if not getattr(r, "ok", False) or getattr(r, "model_input", None) is None:
            continue
        out = window_contributions(branch, r.model_input, r.model_mode or "none", winner, runner_up)
        if out is None:
            return None
        rows.append(out[0]), intercepts.append(out[1]), z_rows.append(out[2]), modes.append(r.model_mode or "none")
    if not rows:
        return None
    contrib, z = np.mean(rows, axis=0), np.mean(z_rows, axis=0)
    if len(contrib) != len(cmap.names):
        return None
    mode = modes[0]
    reference = REFERENCES.get(mode, "the model's reference")
    position = {n.split(".", 1)[1] if n.startswith("egemaps.") else n: i for i, n in enumerate(cmap.names)}
    groups = []
    for g in cmap.groups():
        value = float(contrib[list(cmap.index[g])].sum())
        level = spread = None
        if g in cues.LEVEL_RANGE:
            lv = [z[position[n]] for n in cues.LEVEL_RANGE[g][0] if n in position]
            sp = [z[position[n]] for n in cues.LEVEL_RANGE[g][1] if n in position]
            level = float(np.mean(lv)) if lv else None
            spread = float(np.mean(sp)) if sp else None
        groups.append(CueContribution(g, cues.GROUPS[g], value, len(cmap.index[g]), level, spread,
                                      cues.describe(g, level, spread, winner, runner_up, value, reference)))
    intercept = float(np.mean(intercepts))
    return VoiceExplanation(winner, runner_up, groups, intercept, float(contrib.sum() + intercept),
                            float(branch.temperature.get(mode, 1.0)), mode, reference, windows=len(rows))


# --------------------------------------------------------------------------- face
def last_conv_layer(model: Any) -> str:
    """Name of the last layer with a 4-D (n, h, w, channels) output: the feature maps
    Grad-CAM weights. Raises ValueError for a model without one."""
    for layer in reversed(model.layers):
        shape = getattr(layer, "output", None)
        shape = getattr(shape, "shape", None)
        kind = type(layer).__name__
        if shape is not None and len(shape) == 4 and kind not in ("MaxPooling2D", "AveragePooling2D", "Dropout"):
            return layer.name
    raise ValueError(f"{getattr(model, 'name', 'the model')} has no convolutional feature maps for Grad-CAM")


def grad_cam(model: Any, x: np.ndarray, class_index: int, layer: str | None = None) -> np.ndarray:
    """Grad-CAM heatmaps ``(n, H, W)`` in [0, 1] for inputs ``x`` ``(n, H, W, C)`` (the
    model's own input, as :meth:`BranchModel.prepare` makes it) and one class.

    The class score is its pre-softmax logit when the model ends in a softmax Dense
    layer (its input times the kernel), else the output. Maps with no positive evidence
    are all zeros. Raises ValueError when the model has no 4-D feature maps."""
    import keras
    import tensorflow as tf

    layer = layer or last_conv_layer(model)
    head = model.layers[-1]
    use_logit = type(head).__name__ == "Dense" and getattr(head.activation, "__name__", "") == "softmax"
    outputs = [model.get_layer(layer).output, head.input if use_logit else model.output]
    probe = keras.Model(model.inputs, outputs)
    xt = tf.convert_to_tensor(np.asarray(x, np.float32))
    with tf.GradientTape() as tape:
        maps, top = probe(xt, training=False)
        tape.watch(maps)
        score = (tf.matmul(top, head.kernel) + head.bias)[:, class_index] if use_logit else top[:, class_index]
    grads = tape.gradient(score, maps)
    weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
    cam = tf.nn.relu(tf.reduce_sum(weights * maps, axis=-1)).numpy()
    h, w = int(xt.shape[1]), int(xt.shape[2])
    import cv2

    out = np.zeros((len(cam), h, w), np.float32)
    for i, c in enumerate(cam):
        top_value = float(c.max())
        if top_value > 0:
            out[i] = cv2.resize((c / top_value).astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    return np.clip(out, 0.0, 1.0)


def overlay(crop: np.ndarray, heat: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """A crop ``(H, W[, C])`` uint8 with a heatmap ``(H, W)`` in [0, 1] laid over it (JET
    colours), ``(H, W, 3)`` uint8 RGB."""
    import cv2

    img = np.asarray(crop, np.uint8)
    if img.ndim == 2 or img.shape[-1] == 1:
        img = np.repeat(img.reshape(img.shape[0], img.shape[1], 1), 3, axis=-1)
    colour = cv2.applyColorMap((np.clip(heat, 0, 1) * 255).astype(np.uint8), cv2.COLORMAP_JET)[..., ::-1]
    return (img.astype(np.float32) * (1 - alpha) + colour.astype(np.float32) * alpha).clip(0, 255).astype(np.uint8)


def frame_answers(branch: Any, crops: np.ndarray) -> np.ndarray:
    """The per-frame face model's probabilities on each crop ``(n, C)`` (the strip under
    the frames): exactly what the clip's answer pooled
    (:func:`pipeline.serve.inference.predict_crops`). ``crops``: (n, h, w, 3) uint8 RGB."""
    from pipeline.core.video import face_input

    return np.asarray(branch.predict_proba(face_input(np.asarray(crops, np.uint8), branch.params)), np.float64)


@dataclass
class FaceExplanation:
    """Per shown crop: Grad-CAM ``heatmaps`` (n, H, W) for ``target`` (the video answer's
    winner), ``per_frame`` probabilities (n, C), ``times`` (n,) seconds; ``method``."""

    target: str
    classes: tuple[str, ...]
    per_frame: np.ndarray
    times: np.ndarray
    heatmaps: np.ndarray | None = None
    method: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"target": self.target, "method": self.method,
                "per_frame": [{"time": round(float(t), 3),
                               "winner": self.classes[int(np.argmax(p))],
                               "probabilities": {c: round(float(v), 4) for c, v in zip(self.classes, p)}}
                              for t, p in zip(self.times, self.per_frame)]}


def face_explanation(branch: Any, crops: np.ndarray, times: np.ndarray, target: str,
                     heatmaps: bool = True) -> FaceExplanation | None:
    """Per-frame answers and (for a Keras CNN) Grad-CAM heatmaps on the shown crops."""
    from pipeline.core.video import face_input

    crops = np.asarray(crops)
    if (branch is None or branch.input_kind != "faces" or crops.ndim != 4 or len(crops) == 0
            or target not in branch.params.classes):
        return None
    per_frame = frame_answers(branch, crops)
    out = FaceExplanation(target, tuple(branch.params.classes), per_frame, np.asarray(times, np.float64)[:len(crops)])
    if heatmaps and branch.framework == "keras":
        try:
            out.heatmaps = grad_cam(branch.loaded(), branch.prepare(face_input(crops.astype(np.uint8), branch.params)),
                                   branch.params.classes.index(target))
            out.method = "Grad-CAM (Selvaraju et al. 2017) on the face CNN's last convolutional block"
        except ValueError:
            out.method = "no convolutional feature maps: heatmaps not available for this model"
    elif heatmaps:
        out.method = "not a convolutional network: heatmaps not available for this model"
    return out


# --------------------------------------------------------------------------- all
@dataclass
class Explanation:
    """Everything shown under "why this answer" for one analysis."""

    places: dict[str, circumplex.Place | None]
    path: list[circumplex.Place | None] = field(default_factory=list)
    voice: VoiceExplanation | None = None
    voice_note: str = ""
    face: FaceExplanation | None = None
    face_note: str = ""
    seconds: float = 0.0
    #: A long clip's windows, in timeline order: each window's own voice explanation
    #: (its winner against its runner-up), None where the voice abstained there.
    voice_windows: list[VoiceExplanation | None] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "valence_arousal": {
                "source": circumplex.SOURCE, "derivation": circumplex.DERIVATION,
                "answers": {k: (None if p is None else p.to_json()) for k, p in self.places.items()},
                "path": [None if p is None else p.to_json() for p in self.path]},
            "voice": self.voice.to_json() if self.voice else {"note": self.voice_note},
            "voice_windows": [None if v is None else v.to_json() for v in self.voice_windows],
            "face": self.face.to_json() if self.face else {"note": self.face_note},
            "seconds": round(self.seconds, 4)}


def _top_two(probabilities: dict[str, float]) -> tuple[str, str] | None:
    ranked = sorted(probabilities, key=lambda c: -probabilities[c])
    return (ranked[0], ranked[1]) if len(ranked) >= 2 else None


def explain(analysis: Any, bundle: Any, heatmaps: bool = True) -> Explanation:
    """Explain one :class:`~pipeline.serve.analysis.Analysis` answered by ``bundle``."""
    start = time.perf_counter()
    places = {k: circumplex.place(r.probabilities) if r.ok else None
              for k, r in (("audio", analysis.audio), ("video", analysis.video), ("fused", analysis.fused))}
    path = circumplex.path([w.fused.probabilities if w.fused.ok else None for w in analysis.timeline])
    out = Explanation(places, path)
    branch = getattr(bundle, "audio", None)
    top = _top_two(analysis.audio.probabilities) if analysis.audio.ok else None
    if branch is None or top is None:
        out.voice_note = f"the voice did not answer ({analysis.audio.status})" if branch is not None else "no voice model"
    else:
        names = (branch.info or {}).get("feature_names") or []
        windows = [w.audio for w in analysis.timeline] or [analysis.audio]
        out.voice = voice_contributions(branch, windows, top[0], top[1], names) if names else None
        for w in analysis.timeline:
            pair = _top_two(w.audio.probabilities) if w.audio.ok and names else None
            out.voice_windows.append(voice_contributions(branch, [w.audio], pair[0], pair[1], names) if pair else None)
        if out.voice is None:
            out.voice_note = ("this voice model is not linear over named features: no exact cue-group contributions"
                              if names else "the bundle does not record its voice features' names")
    vbranch = getattr(bundle, "video", None)
    crops = getattr(analysis, "crops", None)
    if vbranch is None or not analysis.video.ok or crops is None or len(crops) == 0:
        out.face_note = (f"the face did not answer ({analysis.video.status})" if vbranch is not None
                         else "no face model")
    else:
        times = analysis.frame_times if analysis.frame_times is not None else np.arange(len(crops), dtype=float)
        out.face = face_explanation(vbranch, np.asarray(crops), np.asarray(times), analysis.video.winner[0],
                                    heatmaps=heatmaps)
    out.seconds = time.perf_counter() - start
    return out


def describe_explanation(ex: Explanation) -> str:
    """A few plain lines of an explanation for the terminal (``predict --explain``)."""
    lines = [f"valence/arousal ({circumplex.DERIVATION}; ratings: {circumplex.SOURCE}):"]
    for key, p in ex.places.items():
        lines.append(f"  {key:<6} " + ("abstains" if p is None else
                     f"valence {p.valence:+.2f} +- {p.valence_sd:.2f}, arousal {p.arousal:+.2f} +- {p.arousal_sd:.2f}"))
    if ex.voice is not None:
        v = ex.voice
        lines.append(f"voice: {v.winner} rather than {v.runner_up} (logit difference {v.logit_difference:+.2f} "
                     f"= the cue groups' sum {v.logit_difference - v.intercept:+.2f} and the bias {v.intercept:+.2f}; "
                     f"temperature {v.temperature:.2f}"
                     + (f"; mean of {v.windows} windows" if v.windows > 1 else "") + ")")
        lines += [f"  {g.value:+6.2f}  {g.sentence}" for g in sorted(v.groups, key=lambda g: -abs(g.value))]
    else:
        lines.append(f"voice: {ex.voice_note}")
    if ex.face is not None:
        winners = [ex.face.classes[int(np.argmax(p))] for p in ex.face.per_frame]
        lines.append(f"face, per frame: " + ", ".join(f"{t:.1f}s {w}" for t, w in zip(ex.face.times, winners)))
    else:
        lines.append(f"face: {ex.face_note}")
    return "\n".join(lines)


@dataclass
class Contours:
    """Pitch and loudness over time from openSMILE's eGeMAPSv02 low-level descriptors
    (the frames the voice model's functionals summarise): ``times`` (T,) seconds,
    ``pitch`` (T,) semitones above 27.5 Hz (NaN where unvoiced), ``loudness`` (T,)
    (openSMILE's perceptual loudness, sone-like units)."""

    times: np.ndarray
    pitch: np.ndarray
    loudness: np.ndarray


def contours(y: np.ndarray, sample_rate: int, max_seconds: float = 60.0) -> Contours | None:
    """:class:`Contours` of mono ``y`` at ``sample_rate`` Hz (the first ``max_seconds``);
    None for an empty or silent signal."""
    import opensmile

    y = np.asarray(y, np.float32).reshape(-1)[: int(max_seconds * sample_rate)]
    if y.size < sample_rate // 10 or not np.any(y):
        return None
    smile = opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02,
                            feature_level=opensmile.FeatureLevel.LowLevelDescriptors)
    frame = smile.process_signal(y, sample_rate)
    starts = frame.index.get_level_values("start").total_seconds().to_numpy()
    pitch = frame["F0semitoneFrom27.5Hz_sma3nz"].to_numpy(np.float64)
    return Contours(starts, np.where(pitch > 0, pitch, np.nan), frame["Loudness_sma3"].to_numpy(np.float64))
