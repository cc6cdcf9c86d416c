"""Live: camera and microphone in real time.

Press START: every camera frame gets the face box and the video model's current emotion
drawn on it, the audio model listens to the last three seconds, and the fused answer
and the frames per second refresh once a second. Runs on this computer through WebRTC
with no STUN/TURN server; the Analyze page's upload and recorder never need WebRTC.
"""
from __future__ import annotations

from typing import Any, Callable

import streamlit as st
from streamlit_webrtc import WebRtcMode, webrtc_streamer

from dashboard import calibration, charts, folders, live_engine, state, text

REFRESH_SECONDS = 1.0


def holder_for(bundle: Any) -> live_engine.LiveHolder:
    """This session's buffers, sized for the bundle's models (created once)."""
    params = (bundle.video or bundle.audio).params
    rate = bundle.audio.params.sample_rate if bundle.audio is not None else params.sample_rate
    key = f"live_holder_{bundle.id}"
    if key not in st.session_state:
        st.session_state[key] = live_engine.LiveHolder(n_crops=params.n_frames, sample_rate=rate)
    return st.session_state[key]


def detector_for_session() -> Any:
    """This session's Haar face detector (~10 ms a frame). One per session, because an
    OpenCV cascade must not be shared by the callback threads of several sessions."""
    from pipeline.core.faces import HaarDetector

    if "live_detector" not in st.session_state:
        st.session_state["live_detector"] = HaarDetector()
    return st.session_state["live_detector"]


def callbacks(holder: live_engine.LiveHolder, detector: Any, crop_size: int,
              margin: float) -> tuple[Callable, Callable]:
    """The two WebRTC callbacks: find the face, buffer, draw; buffer resampled sound."""
    import av

    resampler = av.AudioResampler(format="flt", layout="mono", rate=holder.sample_rate)

    def on_video(frame: "av.VideoFrame") -> "av.VideoFrame":
        rgb = frame.to_ndarray(format="rgb24")
        box, crop = live_engine.face_crop(rgb, detector, crop_size, margin)
        holder.push_frame(box, crop)
        _, answer = holder.overlay()
        drawn = live_engine.annotate(rgb, box, live_engine.label_of(answer.video), holder.fps())
        return av.VideoFrame.from_ndarray(drawn, format="rgb24")

    def on_audio(frame: "av.AudioFrame") -> "av.AudioFrame":
        for out in resampler.resample(frame):
            holder.push_audio(out.to_ndarray().reshape(-1))
        return live_engine.silent_like(frame)  # sent back silent: no echo in the room

    return on_video, on_audio


def panel(title: str, result: Any, classes: list[str], key: str) -> None:
    if result.ok:
        st.plotly_chart(charts.probability_bars(result.probabilities, title, classes=classes),
                        width="stretch", key=key)
        for note in result.notes:
            st.caption(f"Not sure: {note}.")
    else:
        st.markdown(f"**{title}**")
        st.caption(f"{result.status}" + (f" ({result.detail})" if result.detail else ""))


@st.fragment(run_every=REFRESH_SECONDS)
def answers(bundle: Any, holder: live_engine.LiveHolder, ctx: Any) -> None:
    """Refreshed once a second while the page is open: predict from the buffers with the
    same serving objects as the Analyze page (``live_engine.predict``)."""
    playing = bool(getattr(getattr(ctx, "state", None), "playing", False))
    if not playing:
        st.caption("Press START and allow the camera and microphone. Nothing is recorded.")
        return
    answer = live_engine.predict(bundle, holder, calibration.current())
    classes = list(bundle.classes)
    st.metric("Frames per second", f"{holder.fps():.1f}")
    if answer.fused.ok and answer.fused.winner:
        emotion, p = answer.fused.winner
        st.success(f"Right now: **{emotion}** ({100 * p:.0f}%).")
    a, v = st.columns(2)
    with a:
        panel("Audio (last 3 s)", answer.audio, classes, "live_audio")
    with v:
        n = bundle.video.params.n_frames if bundle.video is not None else 0
        panel(f"Video (last {n} faces)", answer.video, classes, "live_video")
    panel("Fused", answer.fused, classes, "live_fused")


def live_caveat(name: str) -> str:
    """What the models answering here learned from, said truthfully for the bundle in use
    (``name``: the bundle's recorded name)."""
    if name == "demo":
        return "The demo models are trained on **synthetic** faces and voices: expect them to be wrong about real people."
    if name == "real":
        return ("The real models learned from actors (RAVDESS, TESS voices) and posed photos (FER2013 faces): "
                "expect everyday, subtle emotions to be read less reliably.")
    return "See *About the models* for what these models learned from and how well they did on held-out data."


def main() -> None:
    st.title("Live")
    settings = state.settings()
    from pipeline.core.paths import bundle_label

    st.caption("Real-time camera and microphone. The face is found with a fast detector (Haar "
               "cascade), so keep your face front-on and well lit. Answering: "
               f"**{bundle_label(settings.bundle)}**. "
               + live_caveat(state.bundle_meta(str(settings.bundle)).get("name", "")
                             if state.bundle_exists(settings.bundle) else ""))
    if not state.bundle_exists(settings.bundle):
        st.info(f"No trained models in {text.plain(folders.bundle_name(settings.bundle))} yet. Run `make demo`, then come back.",
                icon=":material/model_training:")
        return
    from pipeline.serve.bundle import BundleError

    try:
        bundle = state.bundle(settings.bundle)
        detector = detector_for_session()
    except (BundleError, RuntimeError) as err:
        st.error(text.plain(folders.scrub(err)))
        return
    calibration.panel(str(settings.bundle), "live")
    holder = holder_for(bundle)
    params = (bundle.video or bundle.audio).params
    on_video, on_audio = callbacks(holder, detector, params.crop_size, params.crop_margin)
    camera, panels = st.columns([2, 3])
    with camera:
        ctx = webrtc_streamer(
            key="live", mode=WebRtcMode.SENDRECV, rtc_configuration={"iceServers": []},
            media_stream_constraints={"video": True, "audio": True},
            video_frame_callback=on_video, audio_frame_callback=on_audio)
        st.caption("This works on the computer that runs the app (localhost). Over a network the "
                   "browser needs a TURN server: see docs/dashboard.md, or use Analyze instead.")
    with panels:
        answers(bundle, holder, ctx)


main()
