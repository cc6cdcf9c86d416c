"""Recording conditions (issue 18): where the limits of :mod:`pipeline.serve.conditions`
come from, and how a voice bundle behaves under them.

``--part measure``: :func:`pipeline.serve.conditions.measure` on development clips
(every 8th clip of RAVDESS 01-16 and of TESS) as recorded, under babble of other
speakers and under white/pink noise at 0-20 dB SNR, at -20 dB and peak-normalised:
the distributions of SNR, speech share and level dips behind the constants.

``--part bundle --bundle bundles/real``: the served answer on held-out takes (the
actors of RAVDESS 01-16 that the bundle's speaker folds held out are not usable here:
the shipped model trained on all; so TESS and RAVDESS takes are used with that caveat,
and the in-sample flag is reported) at the original level, -20 dB and peak-normalised
(a plain gain, no clipping): how often the winner stays the same; and how often an
answer is "sure" under babble at 0-20 dB and for synthetic voices (espeak-ng in
German, Spanish, Japanese and English, when Debian's ``espeak-ng`` is installed).

``--part detector``: a learned babble detector (logistic regression on the voice model's
input, clean clips against their babble copies) trained on one corpus and tried on the
other: whether a threshold travels (``docs/real_models.md``; not in the product).

Writes ``bench/results/voice_conditions_<part>.json``.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

SENTENCES = {
    "de": ["Die Kinder reden an der Tür.", "Ich habe heute keine Zeit für so etwas.",
           "Das ist wirklich eine wunderbare Nachricht!", "Warum hast du mir das nicht früher gesagt?"],
    "es": ["Los niños están hablando junto a la puerta.", "No tengo tiempo para esto hoy.",
           "¡Es una noticia maravillosa!", "¿Por qué no me lo dijiste antes?"],
    "ja": ["子供たちがドアのそばで話しています。", "今日はそんな時間がありません。",
           "本当に素晴らしい知らせです。", "どうしてもっと早く言わなかったのですか。"],
    "en-us": ["Kids are talking by the door.", "I have no time for this today.",
              "That is truly wonderful news!", "Why did you not tell me sooner?"],
}


def sample(shared: Path, every: int = 8, offset: int = 0) -> list[tuple[str, str, str]]:
    """(corpus, actor, path) of every ``every``-th development clip (seven emotions),
    starting at the ``offset``-th."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from bench.voice_study import development_manifest

    frame = development_manifest(shared)
    picked = frame.iloc[offset::every]
    return list(zip(picked["corpus"], picked["actor"].astype(str), picked["audio_path"]))


def variants(y: np.ndarray, others: list[np.ndarray], rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The conditions a clip is heard in: as recorded, -20 dB, peak-normalised, babble, noise."""
    from pipeline.core import degrade

    return {"original": y, "minus20db": y * np.float32(0.1),
            "peak_normalised": y / np.float32(max(float(np.abs(y).max()), 1e-9)),
            "babble": degrade.babble(y, others, rng), "noise": degrade.noise(y, rng)}


def synthetic_voices(folder: Path) -> list[Path]:
    """WAV files of espeak-ng speaking :data:`SENTENCES` (empty without espeak-ng)."""
    if shutil.which("espeak-ng") is None:
        return []
    out = []
    for lang, sentences in SENTENCES.items():
        for i, text in enumerate(sentences):
            target = folder / f"espeak-{lang}-{i}.wav"
            subprocess.run(["espeak-ng", "-v", lang, "-w", str(target), text], check=True, capture_output=True)
            out.append(target)
    return out


#: Limits tried by ``--part measure`` (each with the others at their values in
#: :mod:`pipeline.serve.conditions`): how often each flags the clean conditions
#: (original, -20 dB, peak-normalised) against babble and noise.
SWEEP: dict[str, tuple[float, ...]] = {"MIN_SNR_DB": (15.0, 18.0, 20.0, 22.0, 25.0, 28.0),
                                       "MIN_DIP_DB": (14.0, 16.0, 18.0, 20.0, 22.0),
                                       "BABBLE_SPEECH_SHARE": (0.4, 0.5, 0.6, 0.7)}


def flags(snr: np.ndarray, share: np.ndarray, dip: np.ndarray, limits: dict[str, float]) -> np.ndarray:
    """Which rows :func:`pipeline.serve.conditions.assess` would note as noisy or as
    several voices under ``limits`` (the names of its constants)."""
    from pipeline.serve.conditions import pauses_filled

    filled = pauses_filled(dip, share, min_dip_db=limits["MIN_DIP_DB"], share_at=limits["BABBLE_SPEECH_SHARE"])
    with np.errstate(invalid="ignore"):
        return filled | (snr < limits["MIN_SNR_DB"])


def sweep(table: dict[str, dict[str, list[float]]], limits: dict[str, float]) -> dict[str, Any]:
    """Flag rates per condition for each limit of :data:`SWEEP` moved alone."""
    out: dict[str, Any] = {}
    for name, values in SWEEP.items():
        for value in values:
            tried = {**limits, name: value}
            out[f"{name}={value:g}"] = {
                cond: round(float(np.mean(flags(*(np.asarray(row[k]) for k in ("snr_db", "speech_share", "dip_db")),
                                                tried))), 3)
                for cond, row in table.items()}
    return out


def part_measure(shared: Path, every: int = 8, offset: int = 0) -> dict[str, Any]:
    from pipeline.core.media import load_audio
    from pipeline.serve import conditions

    rng = np.random.default_rng(0)
    clips = sample(shared, every, offset)
    sounds = [(c, a, load_audio(p, 16000)) for c, a, p in clips]
    table: dict[str, dict[str, list[float]]] = {}
    for i, (corpus, actor, y) in enumerate(sounds):
        others = [s for c, a, s in sounds if c == corpus and a != actor][:40]
        others = [others[j] for j in rng.choice(len(others), size=min(6, len(others)), replace=False)]
        for name, z in variants(y, others, rng).items():
            c = conditions.measure(z, 16000)
            row = table.setdefault(name, {"snr_db": [], "speech_share": [], "dip_db": [], "level_db": []})
            for key, value in (("snr_db", c.snr_db), ("speech_share", c.speech_share), ("dip_db", c.dip_db),
                               ("level_db", c.speech_level_db)):
                row[key].append(float(value))
    summary = {}
    for name, row in table.items():
        summary[name] = {key: {q: round(float(np.nanpercentile(v, q)), 2) for q in (1, 5, 50, 95, 99)}
                         for key, v in row.items()}
    limits = {"MIN_SNR_DB": conditions.MIN_SNR_DB, "MIN_DIP_DB": conditions.MIN_DIP_DB,
              "BABBLE_SPEECH_SHARE": conditions.BABBLE_SPEECH_SHARE}
    rates = {}
    for name, row in table.items():
        snr, share, dip = (np.asarray(row[k]) for k in ("snr_db", "speech_share", "dip_db"))
        rates[name] = {"several_voices": round(float(np.mean(conditions.pauses_filled(dip, share))), 3),
                       "noisy_or_voices": round(float(np.mean(flags(snr, share, dip, limits))), 3)}
    return {"clips": len(sounds), "offset": offset, "percentiles": summary, "flag_rates": rates,
            "limits": limits, "sweep": sweep(table, limits), "values": table}


def part_bundle(shared: Path, bundle_path: Path, every: int = 16, offset: int = 0) -> dict[str, Any]:
    from pipeline.core.media import load_audio
    from pipeline.serve.bundle import load_bundle
    from pipeline.serve.inference import answer_sound

    bundle = load_bundle(bundle_path)
    sr = bundle.audio.params.sample_rate
    rng = np.random.default_rng(1)
    clips = sample(shared, every, offset)
    sounds = [(c, a, load_audio(p, sr)) for c, a, p in clips]
    same, sure_babble, n_babble, per_condition = 0, 0, 0, {}
    sure_cases: list[dict[str, Any]] = []
    for corpus, actor, y in sounds:
        others = [s for c, a, s in sounds if c == corpus and a != actor]
        others = [others[j] for j in rng.choice(len(others), size=min(6, len(others)), replace=False)]
        heard = {name: answer_sound(z, bundle) for name, z in variants(y, others, rng).items()}
        winners = {k: (r.winner or ("abstains",))[0] for k, r in heard.items()}
        same += len({winners["original"], winners["minus20db"], winners["peak_normalised"]}) == 1
        for name, r in heard.items():
            row = per_condition.setdefault(name, {"answered": 0, "sure": 0})
            row["answered"] += r.ok
            row["sure"] += r.confidence == "sure"
        n_babble += 1
        sure_babble += heard["babble"].confidence == "sure"
        if heard["babble"].confidence == "sure":  # what let it through: its conditions and answer
            r = heard["babble"]
            sure_cases.append({"corpus": corpus, "actor": actor, "winner": list(r.winner),
                               "original_winner": winners["original"],
                               "conditions": (r.conditions or {})})
    synthetic = {"voices": 0, "sure": 0, "answers": []}
    with tempfile.TemporaryDirectory() as tmp:
        for path in synthetic_voices(Path(tmp)):
            r = answer_sound(load_audio(path, sr), bundle, offset=0.0)
            synthetic["voices"] += 1
            synthetic["sure"] += r.confidence == "sure"
            synthetic["answers"].append({"voice": path.stem, "status": r.status,
                                         "winner": list(r.winner) if r.winner else None,
                                         "confidence": r.confidence, "notes": list(getattr(r, "notes", []))})
    return {"bundle": bundle.name, "bundle_id": bundle.id, "takes": len(sounds),
            "same_winner_original_minus20db_peak": round(same / max(len(sounds), 1), 3),
            "sure_under_babble": f"{sure_babble} of {n_babble}", "sure_under_babble_cases": sure_cases,
            "per_condition": per_condition,
            "synthetic": synthetic,
            "caveat": "the shipped voice model trained on every development clip: these takes are in-sample "
                      "for the model (the winner's stability and the 'sure' rate under conditions are what is "
                      "measured, not accuracy)"}


def part_detector(spec_path: Path, C: float = 0.01) -> dict[str, Any]:
    """A learned babble detector, tried across corpora: standardise + logistic
    regression on the voice model's own input (the features of ``spec_path``'s recipe,
    from the feature cache) of clean clips against their ``babble`` copies, trained on
    one corpus and applied to the other (clean clips and their babble copies)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from pipeline.research import experiments

    base = experiments.resolve(experiments.load_spec(spec_path))
    spec = {**base, "features": {**base["features"], "augment": ["babble"]}}
    X, kept, _ = experiments.features_for(spec, experiments.load_manifest_for(spec), progress=False)
    Xb, ok = experiments.augmented_for(spec, kept, progress=False)["babble"]
    X = np.asarray(X, np.float64).reshape(len(X), -1)
    Xb = np.asarray(Xb, np.float64).reshape(len(Xb), -1)
    corpus = kept["corpus"].astype(str).to_numpy()
    out: dict[str, Any] = {"spec": str(spec_path), "kind": spec["features"]["kind"], "C": C}
    for held in sorted(set(corpus)):
        train, test = (corpus != held) & ok, (corpus == held) & ok
        model = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=3000))
        model.fit(np.vstack([X[train], Xb[train]]), np.r_[np.zeros(train.sum()), np.ones(train.sum())])
        clean, babble = model.predict_proba(X[test])[:, 1], model.predict_proba(Xb[test])[:, 1]
        out[f"held_out_{held}"] = {
            "clips": int(test.sum()),
            "roc_auc": round(float(roc_auc_score(np.r_[np.zeros(len(clean)), np.ones(len(babble))],
                                                 np.r_[clean, babble])), 3),
            "at_0.5": {"clean_flagged": round(float(np.mean(clean >= 0.5)), 3),
                       "babble_flagged": round(float(np.mean(babble >= 0.5)), 3)}}
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=Path("../shared/data"))
    parser.add_argument("--part", choices=("measure", "bundle", "detector"), default="measure")
    parser.add_argument("--spec", type=Path, default=Path("record/real_voice_conditions/spec.yaml"),
                        help="--part detector: the run whose recipe and feature cache to use")
    parser.add_argument("--bundle", type=Path, default=Path("bundles/real"))
    parser.add_argument("--every", type=int, default=16, help="use every N-th development clip")
    parser.add_argument("--offset", type=int, default=0,
                        help="start at this clip (measure the limits on clips the bundle part does not use)")
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args(argv)
    started = time.perf_counter()
    if args.part == "measure":
        result = part_measure(args.shared, args.every, args.offset)
    elif args.part == "bundle":
        result = part_bundle(args.shared, args.bundle, args.every, args.offset)
    else:
        result = part_detector(args.spec)
    result["every"], result["offset"] = args.every, args.offset
    result["seconds"] = round(time.perf_counter() - started, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    target = args.out / f"voice_conditions_{args.part}.json"
    target.write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1)[:4000])


if __name__ == "__main__":
    main()
