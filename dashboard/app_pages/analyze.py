"""Analyze a clip: bring a clip in, then follow the system step by step.

Four ways in (upload a file, record audio in the browser, record camera + microphone,
or pick a sample of the corpus); one call, ``pipeline.serve.inference.analyze``; then, in
order: the waveform, the MFCC heatmap, the sampled frames with face boxes and the
64 x 64 crops, the audio, video and fused probabilities, a timeline for long clips,
and which bundle answered, with every abstention explained in plain words.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st
from streamlit_webrtc import WebRtcMode, webrtc_streamer

from dashboard import calibration, charts, explain_charts, explain_view, failures, folders, state, text
from pipeline.core import media as media_types

UPLOAD_TYPES = media_types.accepted_types()  # the one list: pipeline.core.media.ACCEPTED_EXTENSIONS
VIDEO_TYPES = media_types.VIDEO_EXTENSIONS
SOURCES = ("Upload a file", "Record audio", "Record camera + microphone", "Corpus sample")

STATUS_WORDS = {
    "no face": "No face was found in the sampled frames, so the video model stayed silent.",
    "a face was found in too few frames": "A face showed up in too few of the sampled frames to "
                                          "judge its expression, so the video model stayed silent.",
    "the video stream": "The pictures in this file cannot be decoded, so the video model stayed silent.",
    "not a readable video file": "The pictures in this file cannot be read, so the video model stayed silent.",
    "silent audio": "The sound is (almost) silent, so the audio model stayed silent.",
    "no speech": "No voice was heard (music, a tone, noise or silence), so the audio model stayed silent.",
    "no audio track": "This file has no sound, so the audio model stayed silent.",
    "no video track": "This is a sound-only file, so there is nothing for the video model to watch.",
    "no model in the bundle": "The model bundle has no model for this part.",
    "no usable modality": "Neither the voice nor the face could be used, so there is nothing to combine.",
}


@dataclass(frozen=True)
class Clip:
    """A clip to analyse: a display name, its bytes or path, an optional landmark CSV."""

    name: str
    media: bytes | str
    landmarks: str = ""


def plain_status(branch: str, status: str, detail: str = "") -> str:
    """One plain sentence for why a branch did not answer."""
    if status.startswith("too short"):  # "too short: 0.3 s of speech, at least 1.0 s needed"
        return (f"Too short to judge: {status.partition(': ')[2]}, so the {branch} model stayed "
                "silent rather than guess. Record a whole sentence.")
    for key, words in STATUS_WORDS.items():
        if status.startswith(key):
            return words
    extra = f" ({detail})" if detail else ""
    return f"The {branch} model did not answer: {status}{extra}."


# --------------------------------------------------------------------------- ways in
def upload_source() -> Clip | None:
    limit = st.get_option("server.maxUploadSize")
    file = st.file_uploader(
        f"An audio or video file (up to {limit} MB)", type=UPLOAD_TYPES, key="upload",
        help=f"Larger files are refused by the browser: trim the clip, or export only its "
             f"sound, to get under {limit} MB (the limit is `maxUploadSize` in .streamlit/config.toml). "
             f"Accepted: {media_types.accepted_text()}.")
    if file is None:
        return None
    data = file.getvalue()
    if len(data) > limit * 2**20:
        st.error(f"{text.plain(file.name)} is {len(data) / 2**20:.0f} MB, over the {limit} MB limit: trim it first.")
        return None
    return Clip(file.name, data)


def audio_input_source() -> Clip | None:
    st.caption("Press the microphone, say a sentence with feeling (three seconds or more), press stop.")
    clip = st.audio_input("Record a sentence", key="mic")
    return Clip("recording.wav", clip.getvalue()) if clip is not None else None


#: Where the last camera take is kept, in memory, for this session's reruns.
RECORDED = "camera_take"


def webrtc_source() -> Clip | None:
    """Camera + microphone through WebRTC, recorded to a temporary mp4 on the server that
    is read into this session's memory and removed as soon as the take ends."""
    from dashboard.recorder import PictureFirstRecorder

    recording = state.recording()
    path = recording.path
    st.caption("Press START, wait for \"Recording...\", act an emotion for a few seconds, press STOP; "
               "the recording is then analysed. Works on this computer without any internet server; "
               "a deployed app needs a TURN server (see docs/dashboard.md), so use upload or audio instead.")
    ctx = webrtc_streamer(
        key="record-av", mode=WebRtcMode.SENDONLY, rtc_configuration={"iceServers": []},
        media_stream_constraints={"video": True, "audio": True},
        in_recorder_factory=lambda: PictureFirstRecorder(str(path)))
    playing = bool(getattr(getattr(ctx, "state", None), "playing", False))
    if playing:
        st.session_state.pop(RECORDED, None)  # a new take replaces the last one
        st.info("Recording... press STOP when done.")
        return None
    if path.is_file() and path.stat().st_size > 0:  # (an empty one: the recorder is starting)
        finished = recording.take()  # the file is removed here, readable or not
        if finished is None:
            st.warning("The recording could not be read (it may be empty): press START and try again.")
            return None
        data, info = finished
        st.session_state[RECORDED] = (data, bool(info.has_video))
    if RECORDED not in st.session_state:
        return None
    data, has_video = st.session_state[RECORDED]
    if not has_video:
        st.warning("The camera sent no pictures before STOP (the connection takes a few seconds "
                   "to start), so only the sound was recorded. Press START, wait for "
                   "\"Recording...\", then act and press STOP.")
    return Clip("camera recording.mp4", data)


def corpus_source() -> Clip | None:
    settings = state.settings()
    if not settings.corpus_root.is_dir():
        st.info(f"No corpus in {text.plain(folders.corpus_name(settings.corpus_root))} yet: run `make demo` "
                "to generate the synthetic one, or choose another corpus in the sidebar.")
        return None
    try:
        manifest = state.manifest(settings.corpus_kind, str(settings.corpus_root))
    except (ValueError, OSError) as err:
        st.error(f"The corpus cannot be read: {text.plain(folders.scrub(err))}")
        return None
    if manifest.empty:
        st.warning("The corpus folder holds no recognisable clips.")
        return None
    left, right = st.columns(2)
    emotion = left.selectbox("Emotion", sorted(manifest["emotion"].unique()), key="sample_emotion")
    rows = manifest[manifest["emotion"] == emotion]
    clip_id = right.selectbox("Clip", rows["clip_id"].tolist(), key="sample_clip")
    row = rows[rows["clip_id"] == clip_id].iloc[0]
    st.caption(f"Actor {text.plain(row['actor'])} ({text.plain(row['gender'])}), labelled "
               f"**{text.plain(row['emotion'])}** ({text.plain(row['intensity'])} intensity).")
    path = row["video_path"] or row["audio_path"]
    return Clip(Path(path).name, path, row["landmarks_path"]) if path else None


# --------------------------------------------------------------------------- rendering
def player(clip: Clip, analysis: Any, start: int = 0) -> None:
    """The clip itself, playable (video in a narrow column so it stays small). A still
    image is shown as the analysis decoded it (its frame, in the worker process): the
    server never decodes an uploaded picture itself. A file whose only picture is a still
    (cover art, one frame) plays as sound only."""
    if isinstance(clip.media, str) and not Path(clip.media).is_file():
        return
    if analysis.still_image:
        if analysis.frames is not None and len(analysis.frames):
            column, _ = st.columns([1, 2])
            column.image(analysis.frames[0], caption="a still image: one frame, no sound")
    elif Path(clip.name).suffix.lower() in VIDEO_TYPES and has_moving_video(analysis):
        column, _ = st.columns([1, 2])
        column.video(clip.media, start_time=start)
    else:
        st.audio(clip.media, start_time=start)


def render_audio(analysis: Any) -> None:
    st.subheader("1. What the system hears")
    if analysis.waveform is None or len(analysis.waveform) == 0:
        st.info(plain_status("audio", analysis.audio.status, analysis.audio.detail))
        return
    window = None
    if analysis.mfcc_times is not None and len(analysis.mfcc_times):
        window = (float(analysis.mfcc_times[0]), float(analysis.mfcc_times[-1]))
    st.caption("The waveform is the sound pressure over time; the shaded part is the window "
               "the audio model listens to.")
    st.plotly_chart(charts.waveform(analysis.waveform, analysis.sample_rate, window=window),
                    width="stretch", key="waveform")
    if analysis.mfcc is not None:
        st.caption("The MFCC heatmap is the sound's timbre over time, as the ear hears it: each "
                   "row is one coefficient (row 0 is loudness, higher rows finer detail of the "
                   "voice's colour); this matrix is what the audio model reads.")
        st.plotly_chart(charts.mfcc_heatmap(analysis.mfcc, analysis.mfcc_times),
                        width="stretch", key="mfcc")


def render_video(analysis: Any) -> None:
    st.subheader("2. What the system sees")
    if analysis.frames is None or len(analysis.frames) == 0:
        st.info(plain_status("video", analysis.video.status, analysis.video.detail))
        return
    n = len(analysis.frames)
    st.caption(f"{n} frames sampled evenly over the clip; the green box is where a face was "
               f"found ({analysis.frames_with_face} of {n} frames).")
    faces_seen = int(getattr(analysis, "faces_seen", 0) or 0)
    if faces_seen > 1:
        said = next((note for note in analysis.notes if "faces seen" in note),
                    f"{faces_seen} faces seen; following the larger one")
        st.warning(f"{said[0].upper()}{said[1:]}: the answer is about that person only (the largest "
                   "face, or the most central of faces about the same size).", icon=":material/groups:")
    framed = charts.draw_boxes(analysis.frames, analysis.boxes)
    times = analysis.frame_times if analysis.frame_times is not None else np.zeros(n)
    st.image(list(framed), width=110, caption=[f"{t:.1f} s" for t in times])
    if analysis.crops is not None and len(analysis.crops) and analysis.frames_with_face:
        size = analysis.crops.shape[1]
        st.markdown(f"**Face crops ({size} x {size})**")
        st.caption(f"Each face is cut out and shrunk to {size} x {size} pixels: this sequence is "
                   "what the video model watches.")
        st.image(list(analysis.crops), width=64)
    else:
        st.info(plain_status("video", analysis.video.status, analysis.video.detail))


def prediction_panel(title: str, result: Any, classes: list[str], key: str, explain: str) -> None:
    if not (result.ok and result.probabilities):
        st.markdown(f"**{title}**")
    st.caption(explain)
    if result.ok and result.probabilities:
        emotion, p = result.winner
        st.markdown(explain_charts.answer_sentence(key.removeprefix("p_"), emotion, p)
                    + (" **Not sure.**" if getattr(result, "confidence", None) == "not sure" else ""))
        for note in getattr(result, "notes", []) or []:
            st.warning(f"{note[0].upper()}{note[1:]}: no sure answer for this input.", icon=":material/hearing:")
        if getattr(result, "normalisation", ""):
            st.caption(f"Voice features: {result.normalisation}.")
        st.caption(calibration_words(result))
        st.plotly_chart(charts.probability_bars(result.probabilities, title, classes=classes),
                        width="stretch", key=key)
    else:
        st.info(plain_status(title.split()[0].lower(), result.status, result.detail))
    if result.detail and result.ok:
        st.caption(result.detail)


def calibration_words(result: Any) -> str:
    """How far this model's stated confidence can be trusted, from its held-out folds."""
    cal = getattr(result, "calibration", None) or {}
    if "ece" not in cal:
        return "Calibration not measured for this model: read the percentage with care."
    acc = f", accuracy {100 * cal['accuracy']:.0f}%" if "accuracy" in cal else ""
    return (f"On held-out clips its confidence was off by {100 * cal['ece']:.0f} points on average "
            f"(calibration error{acc}).")


def bundle_name(info: dict[str, Any]) -> str:
    """The bundle's name as people read it (``real (...)`` / ``demo (synthetic: ...)``)."""
    from pipeline.core.paths import bundle_label

    return bundle_label(info.get("name", "?"))


def caveat(info: dict[str, Any]) -> str:
    """The one-line limit that goes with every answer of this bundle."""
    if info.get("name") == "real":
        return ("They learned from actors (RAVDESS, TESS) and posed web photos (FER2013): expect "
                "everyday, subtle emotions to be read less reliably.")
    return "Remember: the demo models learned from synthetic, acted data, not real people."


def fusion_words(info: dict[str, Any]) -> str:
    """How this bundle combines the two answers, in one sentence."""
    fusion = info.get("fusion") or {}
    serving = str(fusion.get("serving", ""))
    if "alone" in serving:
        return serving.split(" (")[0].capitalize() + "."
    if fusion.get("model") == "rule_reliability" or "weighted mean" in serving:
        return "Both answers averaged, each weighted by how reliable it proved on held-out clips."
    if fusion:
        return "Both answers combined by a small model trained on held-out predictions."
    return "The mean of both answers (the bundle has no fusion model)."


def render_predictions(analysis: Any) -> None:
    st.subheader("3. What the models answer")
    classes = list(analysis.bundle.get("classes") or analysis.fused.probabilities
                   or analysis.audio.probabilities or analysis.video.probabilities)
    a, v, f = st.columns(3)
    with a:
        prediction_panel("Audio model", analysis.audio, classes, "p_audio",
                         "From the voice alone.")
    with v:
        prediction_panel("Video model", analysis.video, classes, "p_video",
                         "From the face alone.")
    with f:
        prediction_panel("Fused answer", analysis.fused, classes, "p_fused", fusion_words(analysis.bundle))
    if analysis.fused.ok and analysis.fused.winner and getattr(analysis.fused, "confidence", None) == "not sure":
        emotion, p = analysis.fused.winner
        st.warning(f"**Not sure.** This clip leans towards **{emotion}** ({100 * p:.0f}%) according to the "
                   f"**{bundle_name(analysis.bundle)}** models, but after allowing for how far their "
                   "confidence strayed on held-out clips, that answer is not more likely right than wrong. "
                   + caveat(analysis.bundle))
    elif analysis.fused.ok and analysis.fused.winner:
        emotion, p = analysis.fused.winner
        st.success(f"Overall, this clip comes across as **{emotion}** with {100 * p:.0f}% "
                   f"confidence, according to the **{bundle_name(analysis.bundle)}** models. "
                   + caveat(analysis.bundle))
    elif not (analysis.audio.ok or analysis.video.ok):
        st.error("Neither the voice nor the face could be used, so there is no answer: each "
                 "part above says why.")


def render_timeline(analysis: Any, clip: Clip) -> None:
    if len(analysis.timeline) < 2:
        return
    st.subheader("4. Over time")
    st.caption("Long clips are cut into overlapping windows; each colour band is how likely "
               "one emotion is in that window. Pick a moment to play the clip from there.")
    analysed, duration = float(getattr(analysis, "analysed", analysis.duration)), float(analysis.duration)
    if analysed < duration - 1e-6:
        st.warning(f"The timeline stops at {analysed:.0f} s: only the first {analysed:.0f} s of this "
                   f"{duration:.0f} s file were analysed (the length limit).", icon=":material/content_cut:")
    end = float(analysis.timeline[-1].end)
    moment = st.slider("Moment (s)", 0.0, end, 0.0, step=0.5, key="timeline_moment")
    if any(w.fused.ok for w in analysis.timeline):
        st.plotly_chart(charts.timeline(analysis.timeline, cursor=moment), width="stretch",
                        key="timeline")
    else:  # an empty chart would only look broken
        st.info("No window of this clip was answered, so there is nothing to draw over time.")
    inside = [w for w in analysis.timeline if w.start <= moment < w.end]
    window = inside[-1] if inside else analysis.timeline[-1]
    if window.fused.winner:
        emotion, p = window.fused.winner
        st.markdown(f"At {window.start:.1f}-{window.end:.1f} s: **{emotion}** ({100 * p:.0f}%).")
    else:
        st.markdown(f"At {window.start:.1f}-{window.end:.1f} s: no answer. "
                    + plain_status("audio", window.audio.status) + " "
                    + plain_status("video", window.video.status))
    player(clip, analysis, start=int(moment))


def render_provenance(analysis: Any) -> None:
    st.subheader("Which models answered")
    info = analysis.bundle or {}
    st.markdown(f"Bundle **{info.get('name', '?')}** (`{info.get('id', '?')}`).")
    rows = []
    for branch in ("audio", "video", "fusion"):
        meta = info.get(branch)
        if isinstance(meta, dict):
            rows.append({"branch": branch, **{k: str(v) for k, v in meta.items()}})
    if rows:
        st.dataframe(rows, hide_index=True)
    st.caption("Measured accuracy and test protocol of each model: see *About the models*. "
               "Time per step (s): " + ", ".join(f"{k} {v:.2f}" for k, v in analysis.timings.items()))


def has_moving_video(analysis: Any) -> bool:
    """False when the video branch found no footage (a sound file, or one whose only
    picture is cover art or a single still frame): the page then plays sound only."""
    return analysis.video.status != "no video track"


def render_notes(analysis: Any) -> None:
    """What the system decided on the user's behalf (a cut, a cover picture ignored, a
    channel chosen, several faces), one plain sentence each."""
    for note in getattr(analysis, "notes", None) or []:
        if "faces seen" in note:
            continue  # said beside the frames, where the faces are
        st.info(f"{note[0].upper()}{note[1:]}.", icon=":material/info:")


def render(analysis: Any, clip: Clip) -> None:
    """Every step of one analysis, top to bottom."""
    render_notes(analysis)
    if not analysis.timeline:
        player(clip, analysis)
    render_audio(analysis)
    render_video(analysis)
    render_predictions(analysis)
    render_timeline(analysis, clip)
    render_provenance(analysis)


def run_analysis(clip: Clip, bundle_dir: str, detector: str) -> Any | None:
    """The one call into the pipeline, with a progress indicator and plain errors."""
    name = text.plain(clip.name)  # a file name is the visitor's text, never Markdown
    label = f"Analysing {name}: decoding, listening, finding the face, predicting..."
    if state.worker_busy():  # one file at a time, for every visitor of this server
        label = (f"Waiting for the file before this one to finish (one file at a time), then analysing "
                 f"{name}...")
    with st.status(label, expanded=False) as status:
        try:
            if isinstance(clip.media, bytes):
                analysis = state.analyze(clip.media, bundle_dir, detector, **calibration.kwargs())
            else:
                analysis = state.analyze_path(clip.media, bundle_dir, clip.landmarks, detector,
                                              **calibration.kwargs())
        except failures.kinds() as err:
            said = failures.explain(err, clip.name)
            status.update(label=said.title, state="error", expanded=True)
            st.error(said.message)
            return None
        total = analysis.timings.get("total", sum(analysis.timings.values()))
        analysed = float(getattr(analysis, "analysed", analysis.duration))
        cut = f", the first {analysed:.1f} s analysed" if analysed < analysis.duration - 1e-6 else ""
        status.update(label=f"Analysed {name} ({analysis.duration:.1f} s of media{cut}"
                            + (f", {total:.1f} s of work)" if total else ")"), state="complete")
    return analysis


def main() -> None:
    st.title("Analyze a clip")
    settings = state.settings()
    from pipeline.core.paths import bundle_label

    st.caption("Bring a clip or a photo in and follow, step by step, how the system hears the voice, "
               f"sees the face and decides. Answering: **{bundle_label(settings.bundle)}** "
               "(change it in the sidebar).")
    if not state.bundle_exists(settings.bundle):
        st.info(f"No trained models in {text.plain(folders.bundle_name(settings.bundle))} yet. Run `make demo` (trains the demo "
                "models on the synthetic corpus in a few minutes), then reload this page.",
                icon=":material/model_training:")
        return
    left, right = st.columns([3, 1])
    way = left.radio("Where does the clip come from?", SOURCES, horizontal=True, key="way")
    detector = right.selectbox(
        "Face finder", list(state.DETECTORS), format_func=state.DETECTORS.get, key="detector",
        help="The accurate finder (MTCNN) misses fewer faces but needs about a second per clip; "
             "the fast one (Haar cascade) is about ten times quicker and wants a front-on face. "
             "Corpus samples with landmark files use those instead.")
    calibration.panel(str(settings.bundle), "analyze")
    clip = {SOURCES[0]: upload_source, SOURCES[1]: audio_input_source,
              SOURCES[2]: webrtc_source, SOURCES[3]: corpus_source}[way]()
    if clip is None:
        return
    analysis = run_analysis(clip, str(settings.bundle), detector)
    if analysis is not None:
        render(analysis, clip)
        # section 4, "Over time", is shown for a clip read in several windows only
        explain_view.render(analysis, str(settings.bundle), number=5 if len(analysis.timeline) >= 2 else 4)


main()
