"""What a voice bundle carries beyond one model: its speaker-normalised variants, the
confidence calibrated on held-out corpora, and where its training voices lie.

:func:`voice_extras` completes the audio :class:`~pipeline.serve.bundle.BranchModel` of
``export`` (a run variant with an ``all-0`` fold: the model trained on every clip):

- ``calibrated``: for each calibration mode (``neutral``, ``session``), the ``all-0``
  model of the run variant trained on features normalised that way;
- ``temperature``: per mode, the softmax temperature that minimises the negative
  log-likelihood of the leave-one-corpus-out test predictions (``corpus-*`` folds: each
  corpus scored by a model that never heard it; Guo et al. 2017, "On calibration of
  modern neural networks"), with the expected calibration error before and after;
- ``reference``: :class:`pipeline.serve.conditions.FeatureReference` fitted on the
  training features of the ``none`` run (read from the feature cache);
- ``feature_names``: one name per model input column (for explanations).
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

#: Temperatures tried (log-spaced, 0.25-4).
TEMPERATURES: np.ndarray = np.exp(np.linspace(np.log(0.25), np.log(4.0), 97))


def held_out_predictions(variant_dir: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(probabilities (n, C), true class indices (n,), classes) of every ``corpus-*``
    fold's test clips; empty arrays when the run has none."""
    frames = [pd.read_csv(p) for p in sorted(variant_dir.glob("corpus-*/predictions.csv"))]
    if not frames:
        return np.zeros((0, 0)), np.zeros(0, dtype=int), []
    table = pd.concat(frames, ignore_index=True)
    classes = [c[2:] for c in table.columns if c.startswith("p_")]
    proba = table[[f"p_{c}" for c in classes]].to_numpy(dtype=np.float64)
    y = table["true"].map({c: i for i, c in enumerate(classes)}).to_numpy()
    return proba, y, classes


def scaled(proba: np.ndarray, temperature: float) -> np.ndarray:
    """Probabilities re-tempered: softmax(log p / T), as serving applies it."""
    logits = np.log(np.maximum(proba, 1e-300)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    out = np.exp(logits)
    return out / out.sum(axis=1, keepdims=True)


def fit_temperature(proba: np.ndarray, y: np.ndarray) -> float:
    """The temperature of :data:`TEMPERATURES` with the lowest mean negative log-likelihood."""
    nll = [-np.mean(np.log(np.maximum(scaled(proba, t)[np.arange(len(y)), y], 1e-12))) for t in TEMPERATURES]
    return float(TEMPERATURES[int(np.argmin(nll))])


def temperature_of(variant_dir: Path) -> dict[str, Any]:
    """``{"temperature", "ece_before", "ece_after", "n"}`` from a run's held-out corpora."""
    from pipeline.research.evaluation import expected_calibration_error

    proba, y, _ = held_out_predictions(variant_dir)
    if not len(y):
        return {"temperature": 1.0, "n": 0}
    t = fit_temperature(proba, y)
    return {"temperature": t, "n": int(len(y)),
            "ece_before": float(expected_calibration_error(y, proba)),
            "ece_after": float(expected_calibration_error(y, scaled(proba, t))),
            "basis": "leave-one-corpus-out test predictions (each corpus scored by a model that never heard it)"}


def training_features(variant_dir: Path) -> np.ndarray:
    """The ``all-0`` model's training features ``(n, d)`` as the run computed them
    (the experiment's ``spec.yaml``, this variant: same corpora, kind, preprocessing;
    from the feature cache), normalised as its ``features.calibration`` says."""
    from pipeline.research import experiments

    base = experiments.resolve(experiments.load_spec(variant_dir.parent / "spec.yaml"))
    spec = experiments.variant_specs(base, [variant_dir.name])[0]
    manifest = experiments.load_manifest_for(spec)
    X, kept, _ = experiments.features_for(spec, manifest, progress=False)
    fold = experiments.make_folds({**spec, "protocol": {**spec["protocol"], "kind": "all"}}, kept)[0]
    X, _, _ = experiments.calibrated(spec, np.asarray(X), kept, fold, None)
    return np.asarray(X, dtype=np.float64).reshape(len(X), -1)


def feature_names(kind: str, params: Any) -> list[str]:
    """One name per input column of feature ``kind`` (a '+' combination concatenates)."""
    from pipeline.core import audio, speech_encoder

    names: list[str] = []
    for part in audio.split_kind(kind):
        if part in ("whisper_base", "whisper_tiny"):
            names += speech_encoder.embedding_names(params.encoder_layers, part)
        elif part in ("egemaps", "compare"):
            smile, _ = audio._smile(part)
            names += [f"{part}.{n}" for n in smile.feature_names]
        else:
            names += [f"{part}[{i}]" for i in range(int(np.prod(audio.feature_shape(params, part))))]
    return names


def voice_extras(branch: Any, run: Path, calibrated: dict[str, Path],
                 calibrated_metrics: dict[str, dict[str, Any]]) -> Any:
    """Fill ``branch`` (the audio BranchModel of run variant ``run``) with its calibrated
    models (and ``calibrated_metrics``, mode -> their runs' figures), held-out
    temperatures, feature reference and names; returns it."""
    from pipeline.serve.bundle import BundleError
    from pipeline.serve.conditions import FeatureReference

    temperatures = {"none": temperature_of(run)}
    for mode, folder in calibrated.items():
        model = folder / "all-0" / "model.joblib"
        if not model.is_file():
            raise BundleError(f"{folder} has no all-0 model.joblib (run it with protocol.kind including all)")
        branch.calibrated[mode] = model
        temperatures[mode] = temperature_of(folder)
        branch.info.setdefault("calibrated_metrics", {})[mode] = calibrated_metrics[mode]
    branch.temperature = {m: float(t["temperature"]) for m, t in temperatures.items()}
    branch.info["temperature_fit"] = temperatures
    if temperatures["none"].get("n"):
        branch.metrics["ece_uncalibrated_mean"] = branch.metrics.get("ece_mean")
        branch.metrics["ece_mean"] = temperatures["none"]["ece_after"]
        branch.metrics["ece_basis"] = ("leave-one-corpus-out predictions after temperature scaling "
                                       f"(T = {temperatures['none']['temperature']:.2f})")
    X = training_features(run)
    branch.reference = FeatureReference.fit(X)
    branch.info["reference_fit"] = {"n": int(len(X)), "limit": round(branch.reference.limit, 3),
                                "quantile": "0.99 of the training clips' own distances"}
    branch.info["feature_names"] = feature_names(branch.input_kind, branch.params)
    log.info("voice extras: modes %s, temperatures %s, reference of %d clips", ["none", *calibrated],
             json.dumps(branch.temperature), len(X))
    return branch
