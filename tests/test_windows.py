"""Windows that follow the speech (issue 19): every spoken sentence of a long recording
gets an answer, and a multi-window answer says in one plain sentence how it was reached.

The recordings are written by the test: sentences of the synthetic corpus's
source-filter voice (:mod:`pipeline.core.synth.voice`) at odd offsets in silence; the
bundle is the tiny scikit-learn one of ``tests/test_inference.py``.
"""
from __future__ import annotations

import numpy as np
import pytest

from pipeline.serve import inference, windows
from pipeline.serve.analysis import OK, BranchResult
from pipeline.core import audio
from test_inference import COLOURS, SR, frames_for, tiny_bundle, write_media  # noqa: F401 (fixture)
from test_inputs import predict_json, speech, write_wav


# --------------------------------------------------------------------------- the windows themselves
def test_sentences_are_never_cut():
    """Utterances of 1.6 s at odd offsets: each lies whole inside one 2 s window."""
    said = [(1.37, 2.97), (5.2, 6.8), (9.71, 11.31), (13.2, 14.8)]
    spans = windows.speech_windows(said, 20.0, 2.0)
    assert len(spans) == 4
    for (s, e), (a, b) in zip(said, spans):
        assert a <= s and e <= b and b - a == pytest.approx(2.0)
    assert all(spans[i][1] <= spans[i + 1][0] for i in range(len(spans) - 1))


def test_long_utterances_split_evenly_and_pauses_do_not_cut():
    # 7 s of talk with 0.2 s breaths: one utterance, four equal pieces of 1.75 s
    talk = [(0.0, 2.0), (2.2, 4.4), (4.6, 7.0)]
    spans = windows.speech_windows(talk, 7.0, 2.0)
    assert len(spans) == 4 and all(b - a == pytest.approx(1.75) for a, b in spans)
    assert windows.utterances(talk, 7.0) == [(0.0, 7.0)]


def test_short_utterances_share_a_window_and_widening_stops_at_neighbours():
    spans = windows.speech_windows([(1.0, 1.5), (2.0, 2.6), (3.2, 4.8)], 6.0, 2.0)
    assert len(spans) == 2 and spans[0][0] <= 1.0 and spans[0][1] >= 2.6  # the two short ones together
    assert spans[0][1] <= spans[1][0] <= 3.2 and 4.8 <= spans[1][1]
    assert all(b - a == pytest.approx(2.0) for a, b in spans)
    assert windows.speech_windows([], 10.0, 2.0) == []
    with pytest.raises(ValueError):
        windows.speech_windows([(0.0, 1.0)], 5.0, 0.0)


def test_a_trailing_word_is_read_with_its_sentence():
    """3 s of sentence, a 0.36 s pause, a 0.5 s word: alone the word would be "too
    short"; with its sentence, cut evenly, each window holds over 1 s of voice."""
    said = [(4.0, 7.0), (7.36, 7.86)]
    alone = windows.speech_windows(said, 12.0, 3.0)
    assert len(alone) == 2 and windows._voice(said, *alone[1]) == pytest.approx(0.5)
    spans = windows.speech_windows(said, 12.0, 3.0, min_voice_s=1.0)
    assert len(spans) == 2 and all(windows._voice(said, a, b) >= 1.0 for a, b in spans), spans
    far = windows.speech_windows([(4.0, 7.0), (9.0, 9.5)], 12.0, 3.0, min_voice_s=1.0)  # 2 s away: alone
    assert len(far) == 2 and windows._voice([(9.0, 9.5)], *far[1]) == pytest.approx(0.5)


def test_gaps_get_windows_when_there_are_pictures():
    spans = windows.speech_windows([(8.0, 9.5)], 14.0, 2.0, cover_gaps=True)
    assert spans[0][0] == 0.0 and spans[-1][1] == 14.0
    covered = sum(b - a for a, b in spans)
    assert covered == pytest.approx(14.0) and all(b - a <= 2.0 * (1 + windows.SLACK) for a, b in spans)


# --------------------------------------------------------------------------- a long recording
def sentences_recording(starts: list[float], seconds: float) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """``seconds`` of silence with one synthetic sentence whose voice starts at each of
    ``starts``; returns the sound and each sentence's voice (start, end) in seconds."""
    y = np.zeros(int(seconds * SR), np.float32)
    where = []
    for k, start in enumerate(starts):
        sentence = speech(seed=2 + k)
        voice = audio.energy_segments(sentence, SR)
        on, off = voice[0][0], voice[-1][1]
        at = int(round((start - on) * SR))
        y[at:at + sentence.size] += sentence
        where.append((start, start + off - on))
    return y, where


def test_every_sentence_of_a_long_recording_is_answered(tiny_bundle, tmp_path, capsys):
    """Six sentences at odd offsets in 32 s, two centred on the fixed grid's 2 s
    boundaries (where the old windows cut them into halves too short to read)."""
    y, said = sentences_recording([1.37, 5.2, 9.71, 13.2, 18.9, 25.3], 32.0)
    clip = write_wav(tmp_path / "talk.wav", y)
    grid = inference.windows(32.0, tiny_bundle.audio.params)
    cut = [s for s in said if max(min(e, b) - max(s[0], a) for a, b in grid for e in [s[1]]) < 1.0]
    assert cut, "the recording should defeat the fixed grid, or the test proves nothing"
    result = inference.analyze(clip, tiny_bundle)
    for start, end in said:
        holding = [w for w in result.timeline if w.start <= start + 0.05 and w.end >= end - 0.05]
        assert len(holding) == 1 and holding[0].audio.ok, (start, end, [(w.start, w.end, w.audio.status)
                                                                        for w in result.timeline])
    assert result.audio.ok and result.audio.detail == f"mean of 6 of {len(result.timeline)} windows"
    rc, payload, _ = predict_json(clip, tiny_bundle.path, capsys=capsys)
    assert rc == 0 and sum(w["audio"]["status"] == "ok" for w in payload["timeline"]) == 6


def test_windows_without_a_voice_are_not_featurized(tiny_bundle, tmp_path, monkeypatch):
    """A video with a long pause in its speech: the pause gets windows for the face, and
    only the windows that answer pay for the voice's features (a lesson's silences cost
    nothing); the answers stay the same."""
    from test_inference import landmarks_csv

    y, _ = sentences_recording([1.37, 20.2], 30.0)
    clip = write_media(tmp_path / "pause.mp4", y, frames_for(lambda t: COLOURS[1], 30.0))
    csv = str(landmarks_csv(tmp_path / "pause.csv", 30.0))
    before = inference.analyze(clip, tiny_bundle, landmarks_path=csv)
    kind, calls, real = tiny_bundle.audio.input_kind, [], audio.featurize

    def counting(y, params, k):
        calls.append(k)
        return real(y, params, k)

    monkeypatch.setattr(audio, "featurize", counting)
    result = inference.analyze(clip, tiny_bundle, landmarks_path=csv)
    answered = [w for w in result.timeline if w.audio.ok]
    assert len(answered) == 2 and len(result.timeline) > 2, [(w.start, w.end, w.audio.status) for w in result.timeline]
    assert calls.count(kind) == 2
    assert [w.audio.probabilities for w in result.timeline] == [w.audio.probabilities for w in before.timeline]


# --------------------------------------------------------------------------- the fused detail
def test_fused_detail_is_one_plain_sentence():
    both = BranchResult(OK, {"happy": 1.0}, "fusion")
    face = BranchResult(OK, {"happy": 1.0}, "video only: audio abstained (too short: 0.0 s of speech, ...)")
    voice = BranchResult(OK, {"happy": 1.0}, "audio alone: fusion did not help on held-out clips")
    none = BranchResult("no usable modality", {}, "")
    assert windows.fused_detail([face, face]) == "the average of all 2 windows, each read from the face alone"
    assert windows.fused_detail([both, face, none]) == ("the average of the 2 windows of 3 that could be read: "
                                                        "1 from voice and face together and 1 from the face alone")
    assert windows.fused_detail([none, voice]) == "from the one window of 2 that could be read, read from the voice alone"
    assert windows.fused_detail([none]) == ""


def test_fused_detail_of_a_silent_video(tiny_bundle, tmp_path, capsys):
    """A 4 s clip with a face and no sound: two windows, the answer from the face."""
    from test_inference import landmarks_csv

    clip = write_media(tmp_path / "mute.mp4", np.zeros(4 * SR, np.float32), frames_for(lambda t: COLOURS[1], 4.0))
    csv = landmarks_csv(tmp_path / "mute.csv", 4.0)
    result = inference.analyze(clip, tiny_bundle, landmarks_path=str(csv))
    assert len(result.timeline) == 2 and result.fused.ok
    detail = result.fused.detail
    assert detail == "the average of all 2 windows, each read from the face alone", detail
    rc, payload, _ = predict_json(clip, tiny_bundle.path, "--landmarks", str(csv), capsys=capsys)
    assert payload["fused"]["detail"] == detail and ";" not in detail


def test_the_frame_sampler_follows_windows_with_gaps():
    """Speech windows leave gaps: each window still gets its n frames from inside it."""
    from pipeline.core.video import WindowSampler

    spans = [(0.5, 2.5), (4.0, 6.0), (9.1, 11.1)]
    got: dict[int, np.ndarray] = {}
    sampler = WindowSampler(6, spans, span=2.0, step=1 / 30, on_window=lambda k, t, f: got.setdefault(k, t))
    frame = np.zeros((4, 4, 3), np.uint8)
    for i in range(12 * 30):
        t = i / 30
        if sampler.wants(t):
            sampler.add(t, frame)
    sampler.finish()
    assert sorted(got) == [0, 1, 2]
    for k, (a, b) in enumerate(spans):
        assert len(got[k]) == 6 and got[k].min() >= a - 1 / 30 and got[k].max() <= b, (k, got[k])
