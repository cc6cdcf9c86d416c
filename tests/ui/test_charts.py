"""Unit tests of the dashboard's pure figure builders (no Streamlit involved)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dashboard import charts
from pipeline.serve.analysis import BranchResult, TimelineWindow

CLASSES = ["neutral", "calm", "happy", "sad", "angry", "fearful"]


def test_envelope_keeps_peaks_and_bounds_points() -> None:
    y = np.zeros(100_000, dtype=np.float32)
    y[12_345] = 0.9
    y[54_321] = -0.7
    start, lo, hi = charts.envelope(y, max_points=500)
    assert len(hi) <= 500 and len(lo) == len(hi) == len(start)
    assert hi.max() == pytest.approx(0.9) and lo.min() == pytest.approx(-0.7)


def test_waveform_time_axis_in_seconds() -> None:
    sr = 1000
    fig = charts.waveform(np.sin(np.linspace(0, 100, 4 * sr)), sr, window=(0.5, 3.5))
    assert fig.data[0].x[-1] < 4.0 and fig.data[0].x[-1] > 3.9
    assert fig.layout.xaxis.title.text == "time (s)"
    with pytest.raises(ValueError):
        charts.waveform(np.zeros(10), 0)


def test_mfcc_heatmap_axes_from_hop() -> None:
    m = np.random.default_rng(0).normal(size=(40, 130))
    fig = charts.mfcc_heatmap(m, sample_rate=22050, hop_length=512, offset=0.5)
    heat = fig.data[0]
    assert np.asarray(heat.z).shape == (40, 130)
    assert heat.x[0] == pytest.approx(0.5)
    assert heat.x[1] - heat.x[0] == pytest.approx(512 / 22050)
    assert list(heat.y) == list(range(40))
    assert "coefficient" in fig.layout.yaxis.title.text
    loud = np.vstack([np.full((1, 130), -400.0), m])  # coefficient 0 must not flatten the rest
    assert charts.mfcc_heatmap(loud, sample_rate=22050, hop_length=512).data[0].zmin > -10
    with pytest.raises(ValueError):
        charts.mfcc_heatmap(m, times=np.arange(3))
    with pytest.raises(ValueError):
        charts.mfcc_heatmap(np.zeros(5))


def test_probability_bars_order_and_winner() -> None:
    probs = {"angry": 0.7, "sad": 0.1, "happy": 0.2}
    fig = charts.probability_bars(probs, "Audio", classes=["happy", "sad", "angry"])
    bar = fig.data[0]
    assert list(bar.y) == ["happy", "sad", "angry"]
    assert list(bar.x) == pytest.approx([20.0, 10.0, 70.0])
    assert list(bar.marker.line.width) == [0, 0, 3]  # the winner is outlined
    empty = charts.probability_bars({}, "Video")
    assert len(empty.data) == 0 and empty.layout.annotations[0].text == "no answer"


def _window(start: float, probs: dict[str, float]) -> TimelineWindow:
    ok = BranchResult("ok", probs)
    return TimelineWindow(start, start + 3.0, ok, BranchResult("no face"), ok)


def test_timeline_stacks_each_class_and_marks_gaps() -> None:
    wins = [_window(0, {"happy": 0.8, "sad": 0.2}), _window(1.5, {"happy": 0.3, "sad": 0.7}),
            TimelineWindow(3.0, 6.0, BranchResult("silent audio"), BranchResult("no face"),
                           BranchResult("no answer"))]
    fig = charts.timeline(wins, cursor=2.0)
    assert [t.name for t in fig.data] == ["happy", "sad"]
    assert list(fig.data[0].x) == [1.5, 3.0, 4.5]
    assert list(fig.data[1].y)[:2] == pytest.approx([20.0, 70.0])
    assert fig.data[1].y[2] is None
    assert fig.layout.shapes  # the cursor line
    with pytest.raises(ValueError):
        charts.timeline([])


def test_draw_boxes_outlines_only_frames_with_a_face() -> None:
    frames = np.zeros((2, 20, 30, 3), dtype=np.uint8)
    out = charts.draw_boxes(frames, [(5, 4, 15, 12), None], thickness=1)
    assert frames.sum() == 0  # input untouched
    assert (out[0, 4, 5:16] == [0, 255, 0]).all() and (out[0, 4:13, 15] == [0, 255, 0]).all()
    assert out[0, 8, 10].sum() == 0  # inside the box is untouched
    assert out[1].sum() == 0


def test_confusion_matrix_counts_and_row_normalised() -> None:
    m = [[3, 1, 0], [0, 0, 0], [2, 2, 4]]
    counts = charts.confusion_matrix(m, ["a", "b", "c"])
    assert counts.data[0].text[2][2] == "4"
    norm = charts.confusion_matrix(m, ["a", "b", "c"], normalise=True)
    z = np.asarray(norm.data[0].z)
    assert z[0] == pytest.approx([0.75, 0.25, 0.0])
    assert z[1] == pytest.approx([0, 0, 0])  # an empty row stays zero, no NaN
    assert z[2].sum() == pytest.approx(1.0)
    with pytest.raises(ValueError):
        charts.confusion_matrix(m, ["a", "b"])


def test_learning_curves_one_pair_per_fold() -> None:
    hist = pd.DataFrame({"epoch": [0, 1, 0, 1], "accuracy": [.2, .5, .3, .6],
                         "val_accuracy": [.1, .4, .2, .5], "loss": [2, 1, 2, 1],
                         "fold": ["speaker-0", "speaker-0", "speaker-1", "speaker-1"]})
    fig = charts.learning_curves(hist)
    assert [t.name for t in fig.data] == ["speaker-0 train", "speaker-0 validation",
                                          "speaker-1 train", "speaker-1 validation"]
    assert len(charts.learning_curves(hist, metric="loss").data) == 2  # no val_loss column
    with pytest.raises(ValueError):
        charts.learning_curves(pd.DataFrame())


def test_reliability_bins_and_diagram() -> None:
    probs = np.array([[0.95, 0.05], [0.92, 0.08], [0.55, 0.45], [0.4, 0.6]])
    bins = charts.reliability_bins(["a", "b", "a", "a"], probs, ["a", "b"], n_bins=10)
    assert bins["count"].sum() == 4
    top = bins[bins["lo"] >= 0.9 - 1e-9].iloc[0]
    assert top["count"] == 2 and top["accuracy"] == pytest.approx(0.5)
    assert top["confidence"] == pytest.approx(0.935)
    fig = charts.reliability_diagram(bins)
    assert len(fig.data) == 2 and list(fig.data[0].x) == [0, 1]
    with pytest.raises(ValueError):
        charts.reliability_bins(["a"], probs, ["a", "b"])


def _summary() -> pd.DataFrame:
    return pd.DataFrame({
        "experiment": "audio", "group": ["features", "features", "features", "model"],
        "variant": ["mfcc", "mfcc", "logmel", "svm"],
        "branch": "audio", "model": "audio_cnn",
        "protocol": ["random", "speaker", "speaker", "random"], "n_folds": 3,
        "accuracy_mean": [0.9, 0.6, 0.5, 0.7], "accuracy_std": [0.02, 0.05, 0.04, 0.01],
        "uar_mean": 0.5, "uar_std": 0.1, "macro_f1_mean": 0.5, "macro_f1_std": 0.1,
        "ece_mean": 0.1, "ece_std": 0.01})


def test_gap_table_and_protocol_gap_figure() -> None:
    gaps = charts.gap_table(_summary())
    assert list(gaps.index) == ["mfcc", "logmel", "svm"]
    assert gaps.loc["mfcc", "gap"] == pytest.approx(0.3)
    assert np.isnan(gaps.loc["logmel", "gap"])
    fig = charts.protocol_gap(_summary())
    assert [t.name for t in fig.data] == ["random split", "speaker split"]
    assert [a.text for a in fig.layout.annotations] == ["+30.0 pts"]


def test_summary_table_sortable_percentages() -> None:
    table = charts.summary_table(_summary())
    assert table["Accuracy %"].dtype.kind == "f"
    first = table.iloc[0]
    assert (first["variant"], first["protocol"]) == ("logmel", "speaker")
    assert table.loc[table["variant"] == "mfcc", "Accuracy ±"].tolist() == ["± 2.00", "± 5.00"]
    assert charts.summary_table(pd.DataFrame()).empty


def test_fold_aggregation_helpers() -> None:
    folds = [{"classes": ["a", "b"], "confusion": [[2, 1], [0, 3]],
              "report": {"a": {"precision": 1.0, "recall": 0.5, "f1": 0.6, "support": 3}}},
             {"classes": ["a", "b"], "confusion": [[1, 0], [1, 1]],
              "report": {"a": {"precision": 0.5, "recall": 1.0, "f1": 0.8, "support": 1}}}]
    total, classes = charts.summed_confusion(folds)
    assert classes == ["a", "b"] and total.tolist() == [[3, 1], [1, 4]]
    rep = charts.mean_report(folds)
    assert rep.iloc[0]["precision"] == pytest.approx(0.75) and rep.iloc[0]["support"] == 4
    with pytest.raises(ValueError):
        charts.summed_confusion([{}])


def test_count_bars() -> None:
    manifest = pd.DataFrame({"emotion": ["sad", "sad", "happy"], "actor": ["01", "02", "02"]})
    fig = charts.count_bars(manifest, "emotion")
    assert list(fig.data[0].x) == ["happy", "sad"] and list(fig.data[0].y) == [1, 2]
    with pytest.raises(ValueError):
        charts.count_bars(manifest, "gender")
