"""Analysis windows of a long recording that follow the speech, and the one plain
sentence that says how a multi-window answer was reached.

A fixed grid of model-length windows cuts sentences in two: each half may hold too
little voice to be answered. Here the voice activity segments (Silero VAD or the
level, :func:`pipeline.core.audio.voice_activity`) are joined into utterances across
short pauses, utterances longer than the model's window are split into equal pieces,
short ones are joined with a close neighbour, and each window is then widened to the
model's length with the sound around it (never into the next window). Long stretches
without speech get grid windows when the clip has pictures to answer about.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

#: A pause (s) inside an utterance: segments closer than this are one utterance, never
#: split apart. Pauses between words and phrases of read speech are mostly under 0.3 s,
#: between sentences longer (Goldman-Eisler, 1968; Campione & Veronis, 2002).
PAUSE_S: float = 0.35
#: Utterances closer than this (s) share a window while together they fit in one.
JOIN_GAP_S: float = 1.0

Span = tuple[float, float]


def utterances(segments: Sequence[Span], duration: float, pause_s: float = PAUSE_S) -> list[Span]:
    """Voice segments ``(start_s, end_s)`` clipped to ``[0, duration]``, sorted, and
    joined across pauses shorter than ``pause_s`` seconds."""
    out: list[list[float]] = []
    for start, end in sorted((max(0.0, float(s)), min(float(duration), float(e))) for s, e in segments):
        if end <= start:
            continue
        if out and start - out[-1][1] < pause_s:
            out[-1][1] = max(out[-1][1], end)
        else:
            out.append([start, end])
    return [(a, b) for a, b in out]


#: A piece may run this fraction longer than the model's window rather than leave a
#: sliver (a 20.06 s take is 10 windows of 2.006 s, not 11 of 1.82 s); a model that
#: reads a fixed length reads its first ``span`` seconds.
SLACK: float = 0.05


def _pieces(utterance: Span, span: float) -> list[Span]:
    """An utterance cut into the fewest equal pieces of at most ``span`` seconds (plus
    :data:`SLACK`)."""
    start, end = utterance
    n = max(1, math.ceil((end - start) / (span * (1 + SLACK)) - 1e-9))
    step = (end - start) / n
    return [(start + i * step, start + (i + 1) * step) for i in range(n)]


def _grid(start: float, end: float, span: float) -> list[Span]:
    """Equal windows of at most ``span`` covering ``[start, end]`` (a gap without
    speech), none when the gap is under half a window."""
    if end - start < 0.5 * span:
        return []
    return _pieces((start, end), span)


def _voice(utterances_: Sequence[Span], start: float, end: float) -> float:
    """Seconds of voice between ``start`` and ``end``."""
    return float(sum(max(0.0, min(b, end) - max(a, start)) for a, b in utterances_))


def _rescue(groups: list[Span], said: Sequence[Span], span: float, min_voice_s: float) -> list[Span]:
    """A group holding less than ``min_voice_s`` of voice (a trailing word after a pause)
    that a neighbour less than :data:`JOIN_GAP_S` away could not take whole: the two
    are joined and cut again into the fewest equal pieces, so the word is read with its
    sentence instead of abstaining alone."""
    out = list(groups)
    i = 0
    while i < len(out):
        start, end = out[i]
        if _voice(said, start, end) >= min_voice_s:
            i += 1
            continue
        left = start - out[i - 1][1] if i > 0 else float("inf")
        right = out[i + 1][0] - end if i + 1 < len(out) else float("inf")
        if min(left, right) >= JOIN_GAP_S:
            i += 1
            continue
        a = i - 1 if left <= right else i
        pieces = _pieces((out[a][0], out[a + 1][1]), span)
        out[a:a + 2] = pieces
        i = a + len(pieces)
    return out


def speech_windows(segments: Sequence[Span], duration: float, span: float, *,
                   cover_gaps: bool = False, min_voice_s: float = 0.0) -> list[Span]:
    """Analysis windows ``(start_s, end_s)`` of a clip of ``duration`` seconds whose voice
    is in ``segments``, for a model that reads ``span`` seconds.

    Utterances (:func:`utterances`) longer than ``span`` are split into equal pieces;
    shorter ones share a window with the next while the pause is under
    :data:`JOIN_GAP_S` and both fit in ``span``; one left with less than
    ``min_voice_s`` seconds of voice (the model's "too short") is joined with its close
    neighbour and the two cut again evenly (:func:`_rescue`). Each window shorter than ``span`` is
    then widened, evenly on both sides, towards ``span`` seconds, never past its
    neighbours or the clip's ends. With ``cover_gaps`` (a clip with pictures), stretches
    without speech of half a window or more get windows of at most ``span`` too. Sorted
    and disjoint; empty when there is no voice and no gap to cover. Raises
    :class:`ValueError` for a non-positive ``span``.
    """
    if span <= 0:
        raise ValueError(f"the window length must be positive, got {span}")
    said = utterances(segments, duration)
    joined: list[list[float]] = []
    for utterance in said:
        for start, end in _pieces(utterance, span):
            if joined and start - joined[-1][1] < JOIN_GAP_S and end - joined[-1][0] <= span:
                joined[-1][1] = end
            else:
                joined.append([start, end])
    groups = [(a, b) for a, b in joined]
    if min_voice_s > 0:
        groups = _rescue(groups, said, span, min_voice_s)
    # widen each towards span: the room is up to the neighbours (their own extent kept)
    windows: list[Span] = []
    for i, (start, end) in enumerate(groups):
        left = windows[-1][1] if windows else 0.0
        right = groups[i + 1][0] if i + 1 < len(groups) else float(duration)
        missing = max(0.0, span - (end - start))
        grow_left = min(missing / 2, start - left)
        grow_right = min(missing - grow_left, right - end)
        grow_left = min(missing - grow_right, start - left)  # what the right side could not take
        windows.append((start - grow_left, end + grow_right))
    if not cover_gaps:
        return windows
    out: list[Span] = []
    edge = 0.0
    for start, end in windows:
        out += _grid(edge, start, span)
        out.append((start, end))
        edge = end
    out += _grid(edge, float(duration), span)
    return out


def voice_kind(window_answer: Any) -> str:
    """What one window's fused answer was read from: ``"both"``, ``"voice"``, ``"face"``,
    from the fuser's ``detail`` (``"audio only: ..."``, ``"video alone: ..."``, ...)."""
    detail = str(getattr(window_answer, "detail", "") or "")
    if detail.startswith(("audio only", "audio alone")):
        return "voice"
    if detail.startswith(("video only", "video alone")):
        return "face"
    return "both"


_WORDS = {"both": "voice and face together", "voice": "the voice alone", "face": "the face alone"}


def fused_detail(per_window: Sequence[Any]) -> str:
    """One plain sentence for the fused answer of a clip read in several windows:
    how many windows answered and what they were read from, e.g. "the average of the 2
    windows that could be read, of 3: both from the face alone". ``per_window``: the
    windows' fused :class:`pipeline.serve.analysis.BranchResult`; "" when none answered."""
    ok = [w for w in per_window if w.ok]
    if not ok:
        return ""
    counts: dict[str, int] = {}
    for w in ok:
        kind = voice_kind(w)
        counts[kind] = counts.get(kind, 0) + 1
    total = len(per_window)
    which = (f"all {total} windows" if len(ok) == total else
             f"the {len(ok)} windows of {total} that could be read" if len(ok) > 1 else
             f"the one window of {total} that could be read")
    if len(ok) == 1:
        return f"from {which}, read from {_WORDS[next(iter(counts))]}"
    if len(counts) == 1:
        return f"the average of {which}, each read from {_WORDS[next(iter(counts))]}"
    parts = [f"{n} from {_WORDS[k]}" for k, n in sorted(counts.items(), key=lambda kv: -kv[1])]
    return f"the average of {which}: " + (", ".join(parts[:-1]) + " and " + parts[-1])
