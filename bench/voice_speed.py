"""How fast the voice answers (issue 18: a 4 s clip under 0.5 s on 2 cores after load).

Loads a bundle once, then answers the same 4 s clip (a RAVDESS take from
``--shared``, else a synthetic voice) ``--repeats`` times through the one prediction
path (:func:`pipeline.serve.inference.analyze`, sound only), and reports the median and
the stage timings; plus the cost of the encoder alone per second of speech. The load
average is recorded: on a machine shared with other jobs the figures are upper bounds.

    python -m bench.voice_speed --bundle bundles/real --shared ../shared/data

Writes ``bench/results/voice_speed.json``.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import time
from pathlib import Path

import numpy as np


def clip_4s(shared: Path | None) -> bytes:
    """A 4 s WAV: RAVDESS actor 01's first angry take (when present) or a synthetic voice."""
    import soundfile as sf

    from pipeline.core.media import load_audio

    source = shared / "ravdess-speech" / "Actor_01" / "03-01-05-02-01-01-01.wav" if shared else None
    if source is not None and source.is_file():
        y = load_audio(source, 16000)
    else:
        import librosa

        from pipeline.core.synth import profiles, voice

        actor = voice.random_actor(np.random.default_rng(0), female=True)
        utt = voice.synthesize("01", profiles.voice_profile("angry", "strong"), actor, np.random.default_rng(0))
        y = librosa.resample(utt.samples, orig_sr=utt.sample_rate, target_sr=16000)
    y = np.resize(y, 4 * 16000).astype(np.float32)
    buffer = io.BytesIO()
    sf.write(buffer, y, 16000, format="WAV")
    return buffer.getvalue()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, default=Path("bundles/real"))
    parser.add_argument("--shared", type=Path, default=None)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args(argv)
    from pipeline.core import speech_encoder
    from pipeline.serve.bundle import load_bundle
    from pipeline.serve.inference import analyze

    started = time.perf_counter()
    bundle = load_bundle(args.bundle)
    data = clip_4s(args.shared)
    analyze(data, bundle)  # first call: encoder weights, numba kernels, Silero
    load_s = time.perf_counter() - started
    totals, stages = [], {}
    for _ in range(args.repeats):
        a = analyze(data, bundle)
        totals.append(a.timings["total"])
        for k, v in a.timings.items():
            stages.setdefault(k, []).append(v)
    enc = speech_encoder.encoder("whisper_base")
    mel = speech_encoder.log_mel(np.random.default_rng(0).standard_normal(16000 * 4).astype(np.float32) * 0.05)
    t = time.perf_counter()
    for _ in range(3):
        enc.hidden_states(mel, upto=3)
    encoder_s = (time.perf_counter() - t) / 3
    report = {"bundle": bundle.id, "clip_seconds": 4.0, "repeats": args.repeats,
              "load_and_first_answer_s": round(load_s, 2),
              "answer_median_s": round(float(np.median(totals)), 3), "answer_min_s": round(float(np.min(totals)), 3),
              "stages_median_s": {k: round(float(np.median(v)), 3) for k, v in stages.items()},
              "encoder_4s_blocks_0_3_s": round(encoder_s, 3),
              "answer": a.audio.to_json(), "load_average": list(os.getloadavg()),
              "blas_threads": "1 (analyze limits numpy's BLAS to one thread itself)"}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "voice_speed.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
