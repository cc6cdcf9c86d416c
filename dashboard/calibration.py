"""'Calibrate to my voice' on Analyze and Live: a few calm seconds, kept in this session only.

The recording (from the microphone or a file) is turned into the speaker's feature
statistics by :func:`pipeline.serve.speaker.voice_stats`; only those numbers are kept,
in ``st.session_state`` (never on disk), and every voice answer of this session is then
normalised to them and says so. "Forget my voice" drops them.
"""
from __future__ import annotations

import hashlib
from typing import Any

import streamlit as st

KEY = "voice_calibration"


def current() -> Any:
    """The session's :class:`pipeline.core.calibration.SpeakerStats`, or None."""
    return st.session_state.get(KEY)


def kwargs() -> dict[str, Any]:
    """``calibration`` and ``voice`` (its cache key) for :func:`dashboard.state.analyze`,
    empty when the person has not calibrated."""
    stats = current()
    return {} if stats is None else {"calibration": stats, "voice": digest()}


def digest() -> str:
    """A short key of the current calibration (for caches); empty without one."""
    stats = current()
    return "" if stats is None else hashlib.sha1(stats.mean.tobytes()).hexdigest()[:12]


def can_calibrate(meta: dict[str, Any]) -> bool:
    """Whether a bundle (its ``bundle.json`` dict) has a voice model for calibrated input."""
    return "neutral" in (((meta.get("models") or {}).get("audio") or {}).get("calibrated") or {})


def panel(bundle_dir: str, where: str) -> None:
    """The calibration expander: record or upload calm speech, use it, or forget it.
    Shown only for a bundle that can use it; the bundle is loaded only on "use"."""
    from dashboard import failures, state
    from pipeline.core.media import accepted_types
    from pipeline.serve.speaker import MIN_CALIBRATION_SECONDS

    try:
        meta = state.bundle_meta(bundle_dir)
    except (OSError, ValueError):
        return
    if not can_calibrate(meta):
        return
    stats = current()
    label = ("Calibrated to your voice" if stats is not None else "Calibrate to my voice (optional)")
    with st.expander(label, expanded=False, icon=":material/tune:"):
        st.caption("Emotion is a change from a person's usual voice. Say a few calm sentences "
                   f"(at least {MIN_CALIBRATION_SECONDS:.0f} s of speech, your everyday tone); the voice "
                   "answers of this session are then measured against your own calm voice. Only a "
                   "summary of numbers is kept, in this browser session; nothing is saved.")
        if stats is not None:
            st.success(f"Calibrated from {stats.seconds:.1f} s of your calm speech.")
            if st.button("Forget my voice", key=f"{where}_forget_voice"):
                del st.session_state[KEY]
                st.rerun()
        how = st.radio("How", ["Record", "Upload a recording"], horizontal=True, key=f"{where}_calm_how",
                       label_visibility="collapsed")
        if how == "Record":
            source = st.audio_input("Record calm speech", key=f"{where}_calm_mic")
        else:
            source = st.file_uploader("A recording of your calm speech", key=f"{where}_calm_file",
                                      type=accepted_types(images=False))
        if source is not None and st.button("Use this as my calm voice", key=f"{where}_use_voice"):
            try:
                # decoded in the worker process, like every file a visitor brings
                st.session_state[KEY] = state.voice_stats(source.getvalue(), bundle_dir)
            except failures.kinds() as err:  # worded as on Analyze
                said = failures.explain(err, getattr(source, "name", "") or "the recording")
                st.error(f"Could not calibrate. {said.message}")
            else:
                st.rerun()
