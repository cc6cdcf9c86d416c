"""Corpus adapters: RAVDESS name parsing (property-based), take grouping, junk skipping,
synthetic marker, SAVEE names and layouts, and the text report."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.core.corpora import images, manifest, ravdess, savee, scan, tess
from pipeline.core.corpora.manifest import InvalidName
from pipeline.core.corpora.ravdess import parse_name
from pipeline.core.corpora.report import describe
from pipeline.core.labels import RAVDESS_EMOTION_CODES, SAVEE_EMOTION_CODES, label_set, map_emotion

# any two-digit field, biased towards the real codes so both branches get exercised
two = st.one_of(st.sampled_from(["01", "02", "03", "08", "24"]),
                st.integers(0, 99).map(lambda n: f"{n:02d}"))


def _valid_codes():
    """Strategy: the seven codes of a valid (real-corpus) RAVDESS name."""
    return st.tuples(
        st.sampled_from(["01", "02", "03"]), st.sampled_from(["01", "02"]),
        st.sampled_from(sorted(RAVDESS_EMOTION_CODES)), st.sampled_from(["01", "02"]),
        st.sampled_from(["01", "02"]), st.sampled_from(["01", "02"]),
        st.integers(1, 24).map(lambda n: f"{n:02d}"),
    ).filter(lambda c: not (c[2] == "01" and c[3] == "02"))


@given(_valid_codes(), st.sampled_from(["", ".wav", ".mp4", ".csv"]))
def test_valid_names_round_trip(codes, ext):
    parsed = parse_name("-".join(codes) + ext)
    assert (parsed.modality, parsed.take) == (codes[0], "-".join(codes[1:]))
    labels = parsed.labels()
    assert labels["actor"] == codes[6]
    assert labels["gender"] == ("male" if int(codes[6]) % 2 else "female")
    assert labels["emotion"] == RAVDESS_EMOTION_CODES[codes[2]]
    assert labels["intensity"] == {"01": "normal", "02": "strong"}[codes[3]]
    assert labels["channel"] == {"01": "speech", "02": "song"}[codes[1]]
    assert (labels["statement"], labels["repetition"]) == (codes[4], codes[5])


@given(st.tuples(two, two, two, two, two, two, two))
def test_any_two_digit_code_is_parsed_or_rejected_with_a_reason(codes):
    name = "-".join(codes)
    valid = (codes[0] in ("01", "02", "03") and codes[1] in ("01", "02")
             and codes[2] in RAVDESS_EMOTION_CODES and all(c in ("01", "02") for c in codes[3:6])
             and 1 <= int(codes[6]) <= 24)
    if valid and codes[2] == "01" and codes[3] == "02":
        with pytest.raises(InvalidName) as err:
            parse_name(name)
        assert err.value.reason == ravdess.NEUTRAL_STRONG
    elif valid:
        assert parse_name(name).take == "-".join(codes[1:])
    else:
        with pytest.raises(InvalidName) as err:
            parse_name(name)
        assert err.value.reason == ravdess.UNKNOWN_CODE


@settings(max_examples=200)
@given(st.text(max_size=30))
def test_arbitrary_text_never_crashes(text):
    try:
        parse_name(text)
    except InvalidName as err:
        assert err.reason in (ravdess.BAD_NAME, ravdess.UNKNOWN_CODE, ravdess.NEUTRAL_STRONG)


def test_actor_range_and_synthetic_actors():
    with pytest.raises(InvalidName):
        parse_name("03-01-03-01-01-01-25")
    with pytest.raises(InvalidName):
        parse_name("03-01-03-01-01-01-00", any_actor=True)
    assert parse_name("03-01-03-01-01-01-31", any_actor=True).labels()["gender"] == "male"
    for bad in ("3-1-3-1-1-1-1", "03-01-03-01-01-01", "03_01_03_01_01_01_01", "x3-01-03-01-01-01-01"):
        with pytest.raises(InvalidName) as err:
            parse_name(bad)
        assert err.value.reason == ravdess.BAD_NAME


def _touch(path: Path, data: bytes = b"RIFF....WAVEdata") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_scan_groups_takes_across_modalities_and_folders(tmp_path):
    a1 = tmp_path / "Actor_01"
    wav = _touch(a1 / "03-01-05-02-01-01-01.wav")
    av = _touch(a1 / "01-01-05-02-01-01-01.mp4")
    _touch(a1 / "02-01-05-02-01-01-01.mp4")
    # landmark archive unpacked into its own folder, named after the AV file
    lm = _touch(tmp_path / "FacialTracking_Actors_01-24" / "01-01-05-02-01-01-01.csv", b"frame,x_0\n")
    vo_only = _touch(tmp_path / "Actor_02" / "02-02-03-01-02-02-02.mp4")
    lm2 = _touch(tmp_path / "landmarks" / "02-02-03-01-02-02-02.csv", b"frame\n")
    av_only = _touch(tmp_path / "Actor_02" / "01-01-08-01-01-02-02.mp4")
    frame, summary = ravdess.scan(tmp_path)
    assert summary.n_skipped == 0 and summary.n_files_seen == 7
    rows = frame.set_index("clip_id")
    assert list(rows.index) == ["ravdess:01-05-02-01-01-01", "ravdess:01-08-01-01-02-02",
                                "ravdess:02-03-01-02-02-02"]
    r = rows.loc["ravdess:01-05-02-01-01-01"]
    assert (r.audio_path, r.video_path, r.landmarks_path) == (str(wav), str(av), str(lm))
    assert (r.actor, r.gender, r.emotion, r.intensity, r.channel) == ("01", "male", "angry", "strong", "speech")
    r = rows.loc["ravdess:02-03-01-02-02-02"]
    assert (r.audio_path, r.video_path, r.landmarks_path) == ("", str(vo_only), str(lm2))
    assert (r.channel, r.statement, r.repetition, r.gender) == ("song", "02", "02", "female")
    r = rows.loc["ravdess:01-08-01-01-02-02"]
    assert r.audio_path == r.video_path == str(av_only)
    assert summary.modalities == {"audio": 2, "video": 3, "landmarks": 2}
    out = manifest.save(frame, tmp_path / "m.csv")
    assert manifest.load(out).equals(frame)


def test_scan_skips_and_counts_junk(tmp_path):
    good = [_touch(tmp_path / "Actor_01" / f"03-01-0{e}-01-01-01-01.wav") for e in range(1, 9)]
    junk = {
        "unexpected extension": [tmp_path / "README.txt", tmp_path / "Actor_01" / "03-01-01-01-01-02-01.mp3"],
        "bad name": [tmp_path / "Actor_01" / "noise.wav", tmp_path / "Actor_01" / "._03-01-01-01-01-01-01.wav"],
        "unknown code": [tmp_path / "Actor_01" / "03-01-09-01-01-01-01.wav",
                         tmp_path / "Actor_01" / "03-01-02-01-01-03-01.wav"],
        "neutral with strong intensity": [tmp_path / "Actor_01" / "03-01-01-02-01-01-01.wav"],
        "modality does not match extension": [tmp_path / "Actor_01" / "01-01-02-01-01-01-01.wav"],
        "actor differs from Actor_NN folder": [tmp_path / "Actor_02" / "03-01-02-01-02-01-01.wav"],
        "duplicate file": [tmp_path / "copy" / "03-01-02-01-01-01-01.wav"],
        "landmarks without audio or video": [tmp_path / "lm" / "01-01-06-01-02-02-01.csv"],
    }
    for paths in junk.values():
        for path in paths:
            _touch(path)
    _touch(tmp_path / "Actor_01" / "03-01-03-02-02-02-01.wav", b"")  # empty
    _touch(tmp_path / ".fetch" / "03-01-04-02-02-02-01.wav")  # hidden state folder: not seen
    frame, summary = ravdess.scan(tmp_path)
    assert sorted(frame["audio_path"]) == sorted(str(p) for p in good)
    expected = {reason: len(paths) for reason, paths in junk.items()}
    expected["empty file"] = 1
    assert summary.skipped == expected
    assert summary.n_files_seen == len(good) + sum(expected.values())
    assert set(summary.examples["bad name"]) == {str(p) for p in junk["bad name"]}
    text = describe(frame, summary, corpus="ravdess", root=tmp_path)
    assert "8 clips over 1 actors and 8 emotions" in text
    assert "actor differs from Actor_NN folder: 1 (e.g. 03-01-02-01-02-01-01.wav)" in text
    assert "unknown code: 2" in text and "modalities: audio 8/8, video 0/8, landmarks 0/8" in text


def test_symlink_cycle_does_not_loop(tmp_path):
    _touch(tmp_path / "Actor_03" / "03-01-02-01-01-01-03.wav")
    (tmp_path / "Actor_03" / "again").symlink_to(tmp_path, target_is_directory=True)
    frame, summary = ravdess.scan(tmp_path)
    assert len(frame) == 1 and summary.n_files_seen == 1


def test_synthetic_marker_names_the_corpus(tmp_path):
    (tmp_path / "SYNTHETIC.json").write_text(json.dumps({"seed": 7}))
    _touch(tmp_path / "Actor_30" / "03-01-04-01-01-01-30.wav")
    _touch(tmp_path / "Actor_30" / "01-01-04-01-01-01-30.mp4")
    _touch(tmp_path / "Actor_30" / "01-01-04-01-01-01-30.csv", b"frame\n")
    frame, summary = scan("synthetic", tmp_path)
    assert summary.n_files_seen == 3 and summary.n_skipped == 0  # the marker is not a clip
    assert frame["clip_id"].tolist() == ["synthetic:01-04-01-01-01-30"]
    assert frame.loc[0, "corpus"] == "synthetic" and frame.loc[0, "gender"] == "female"
    assert summary.modalities == {"audio": 1, "video": 1, "landmarks": 1}
    (tmp_path / "SYNTHETIC.json").unlink()
    frame, summary = ravdess.scan(tmp_path)  # a real RAVDESS folder has no actor 30
    assert frame.empty and summary.skipped == {"unknown code": 3}


def test_scan_of_missing_or_empty_folder(tmp_path):
    with pytest.raises(FileNotFoundError):
        scan("ravdess", tmp_path / "missing")
    frame, summary = ravdess.scan(tmp_path)
    assert frame.empty and list(frame.columns)[:12] == list(manifest.COLUMNS)
    assert "no clips found" in describe(frame, summary, "ravdess", tmp_path)


# ------------------------------------------------------------------------------ SAVEE
@pytest.mark.parametrize("path, expected", [
    ("DC/sa03.wav", ("DC", "sa", "03")),
    ("DC_sa03.wav", ("DC", "sa", "03")),
    ("AudioData/KL/n30.wav", ("KL", "n", "30")),
    ("AudioVisualClip/je/SU15.avi", ("JE", "su", "15")),
    ("ALL/JK_a01.wav", ("JK", "a", "01")),
    ("JK/JK_d07.mp4", ("JK", "d", "07")),
])
def test_savee_names(path, expected):
    assert savee.parse_name(path) == expected


@pytest.mark.parametrize("path, reason", [
    ("XX_a01.wav", savee.UNKNOWN_SPEAKER),
    ("AudioData/a01.wav", savee.UNKNOWN_SPEAKER),
    ("DC/z01.wav", savee.UNKNOWN_CODE),
    ("DC/a16.wav", savee.INDEX_RANGE),
    ("DC/n00.wav", savee.INDEX_RANGE),
    ("DC/JK_a01.wav", savee.SPEAKER_FOLDER),
    ("DC/anger.wav", savee.BAD_NAME),
    ("DC/a1.wav", savee.BAD_NAME),
])
def test_savee_bad_names(path, reason):
    with pytest.raises(manifest.InvalidName) as err:
        savee.parse_name(path)
    assert err.value.reason == reason


def test_savee_scan_merges_audio_and_video(tmp_path):
    wav = _touch(tmp_path / "AudioData" / "DC" / "sa03.wav")
    avi = _touch(tmp_path / "AudioVisualClip" / "DC" / "sa03.avi")
    flat = _touch(tmp_path / "ALL" / "KL_h11.wav")
    vid_only = _touch(tmp_path / "AudioVisualClip" / "JE" / "n27.avi")
    _touch(tmp_path / "AudioData" / "DC" / "info.txt")
    _touch(tmp_path / "AudioData" / "DC" / "x01.wav")
    _touch(tmp_path / "AudioData" / "DC" / "a02.wav", b"")
    _touch(tmp_path / "flat_copy" / "DC_sa03.wav")  # the same clip again (walked later)
    frame, summary = scan("savee", tmp_path)
    assert summary.skipped == {"unexpected extension": 1, "unknown code": 1, "empty file": 1,
                               "duplicate file": 1}
    rows = frame.set_index("clip_id")
    assert list(rows.index) == ["savee:DC:sa03", "savee:JE:n27", "savee:KL:h11"]
    assert (rows.loc["savee:DC:sa03", "audio_path"], rows.loc["savee:DC:sa03", "video_path"]) == (str(wav), str(avi))
    assert rows.loc["savee:JE:n27", "audio_path"] == rows.loc["savee:JE:n27", "video_path"] == str(vid_only)
    assert rows.loc["savee:KL:h11", "audio_path"] == str(flat)
    assert set(frame["gender"]) == {"male"}
    assert rows.loc["savee:DC:sa03", "emotion"] == "sad" and rows.loc["savee:KL:h11", "emotion"] == "happy"
    assert summary.modalities == {"audio": 3, "video": 2, "landmarks": 0}


def test_savee_root_can_be_a_speaker_folder(tmp_path):
    _touch(tmp_path / "DC" / "f05.wav")
    frame, _ = savee.scan(tmp_path / "DC")
    assert frame["clip_id"].tolist() == ["savee:DC:f05"]


# ------------------------------------------------------------------------------ RAVDESS flac
def _write_flac(path: Path, seconds: float = 0.05, sr: int = 16_000) -> Path:
    """A tiny real FLAC file (a quiet tone) written with soundfile."""
    import numpy as np
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * sr)) / sr
    sf.write(path, (0.1 * np.sin(2 * np.pi * 220 * t)).astype("float32"), sr, format="FLAC")
    return path


def test_ravdess_indexes_flac_beside_wav_and_mp4(tmp_path):
    import soundfile as sf

    wav = _touch(tmp_path / "Actor_01" / "03-01-05-02-01-01-01.wav")
    flac = _write_flac(tmp_path / "Actor_07" / "03-01-04-01-02-02-07.flac")
    upper = _write_flac(tmp_path / "Actor_08" / "03-01-02-01-01-01-08.FLAC")
    av = _touch(tmp_path / "Actor_07" / "01-01-04-01-02-02-07.mp4")
    dup = _write_flac(tmp_path / "Actor_01" / "03-01-05-02-01-01-01.flac")  # wav and flac of one take
    wrong = _write_flac(tmp_path / "Actor_07" / "01-01-03-01-02-02-07.flac")  # flac is audio-only (03)
    frame, summary = ravdess.scan(tmp_path)
    rows = frame.set_index("clip_id")
    assert rows.loc["ravdess:01-04-01-02-02-07", "audio_path"] == str(flac)
    assert rows.loc["ravdess:01-04-01-02-02-07", "video_path"] == str(av)
    assert rows.loc["ravdess:01-02-01-01-01-08", "emotion"] == "calm"
    assert rows.loc["ravdess:01-02-01-01-01-08", "audio_path"] == str(upper)
    assert rows.loc["ravdess:01-05-02-01-01-01", "audio_path"] in (str(wav), str(dup))
    assert summary.skipped == {ravdess.DUPLICATE: 1, ravdess.MODALITY_MISMATCH: 1}
    assert str(wrong) in summary.examples[ravdess.MODALITY_MISMATCH]
    assert sf.info(str(flac)).format == "FLAC"


def test_shared_ravdess_speech_has_960_clips_over_16_actors(shared_data):
    frame, summary = scan("ravdess", shared_data / "ravdess-speech")
    assert len(frame) == 960 and frame["actor"].nunique() == 16 and summary.n_skipped == 0
    assert frame["audio_path"].str.endswith(".flac").sum() == 600  # actors 07-16
    assert frame.groupby("actor").size().eq(60).all()


# ------------------------------------------------------------------------------ TESS
@pytest.mark.parametrize("name, expected", [
    ("OAF_back_angry.wav", ("OAF", "back", "angry")),
    ("YAF_youth_ps.wav", ("YAF", "youth", "surprised")),
    ("OAF_bath_pleasant_surprise.wav", ("OAF", "bath", "surprised")),
    ("YAF_bar_pleasant_surprised.wav", ("YAF", "bar", "surprised")),
    ("oaf_Fall_FEAR.WAV", ("OAF", "fall", "fearful")),
    ("YAF__date_disgust.wav", ("YAF", "date", "disgust")),
    ("YAF_dog_neutral", ("YAF", "dog", "neutral")),
    ("OAF_chain_happy.flac", ("OAF", "chain", "happy")),
    ("OAF_  chair_sad.wav", ("OAF", "chair", "sad")),
])
def test_tess_names(name, expected):
    assert tess.parse_name(name) == expected


@pytest.mark.parametrize("name, reason", [
    ("OAF_back.wav", tess.BAD_NAME),
    ("angry.wav", tess.BAD_NAME),
    ("OAF_b4ck_angry.wav", tess.BAD_NAME),
    ("MAF_back_angry.wav", tess.UNKNOWN_SPEAKER),
    ("OAF_back_calm.wav", tess.UNKNOWN_EMOTION),
    ("OAF_back_surprise_angry.wav", tess.UNKNOWN_EMOTION),
])
def test_tess_bad_names(name, reason):
    with pytest.raises(InvalidName) as err:
        tess.parse_name(name)
    assert err.value.reason == reason


@settings(max_examples=200)
@given(st.text(max_size=40))
def test_tess_arbitrary_text_never_crashes(text):
    try:
        speaker, word, emotion = tess.parse_name(text)
    except InvalidName as err:
        assert err.reason in (tess.BAD_NAME, tess.UNKNOWN_SPEAKER, tess.UNKNOWN_EMOTION)
    else:
        assert speaker in tess.SPEAKERS and emotion in set(tess.EMOTION_TOKENS.values())


def test_tess_scan_identifies_clips_by_file_name_in_any_layout(tmp_path):
    root = tmp_path / "TESS Toronto emotional speech set data"
    good = {
        "tess:OAF:back:angry": _touch(root / "OAF_angry" / "OAF_back_angry.wav"),
        "tess:OAF:bath:surprised": _touch(root / "OAF_Pleasant_surprise" / "OAF_bath_pleasant_surprise.wav"),
        "tess:YAF:youth:surprised": _touch(root / "YAF_pleasant_surprised" / "YAF_youth_ps.wav"),
        "tess:YAF:date:fearful": _touch(root / "yaf_FEAR" / "YAF__date_fear.WAV"),
        "tess:YAF:dog:neutral": _touch(root / "YAF_neutral" / "YAF_dog_neutral.wav"),
        "tess:OAF:fall:sad": _touch(tmp_path / "flat" / "oaf_fall_Sad.wav"),
        "tess:OAF:chain:disgust": _touch(root / "OAF_disgust" / "OAF_chain_disgust.flac", b"fLaC...."),
        "tess:YAF:bar:happy": _touch(root / "YAF_happy" / "YAF_bar_happy.wav"),
    }
    junk = {
        tess.EXTENSION: [root / "README.txt", root / "OAF_angry" / "OAF_back_angry.mp3",
                         root / "OAF_angry" / "Thumbs.db"],
        tess.HIDDEN: [root / "OAF_angry" / "._OAF_back_angry.wav", root / ".DS_Store"],
        tess.BAD_NAME: [root / "OAF_angry" / "OAF_angry.wav", root / "misc" / "noise.wav"],
        tess.UNKNOWN_SPEAKER: [root / "MAF_back_angry.wav"],
        tess.UNKNOWN_EMOTION: [root / "OAF_calm" / "OAF_back_calm.wav",
                               root / "YAF_boredom" / "YAF_bar_bored.wav"],
        # the same clip spelt pleasant_surprise / ps (first in path order wins), and a
        # second unpacked copy
        tess.DUPLICATE: [root / "OAF_Pleasant_surprise" / "OAF_bath_ps.wav",
                         tmp_path / "zz_copy" / "OAF_back_angry.wav"],
    }
    for paths in junk.values():
        for path in paths:
            _touch(path)
    _touch(root / "YAF_sad" / "YAF_bean_sad.wav", b"")  # empty
    _touch(tmp_path / ".cache" / "OAF_hole_sad.wav")  # hidden folder: not walked
    frame, summary = scan("tess", tmp_path)
    expected = {reason: len(paths) for reason, paths in junk.items()}
    expected[manifest.EMPTY] = 1
    assert summary.skipped == expected
    assert summary.n_files_seen == len(good) + sum(expected.values())
    rows = frame.set_index("clip_id")
    assert set(rows.index) == set(good)
    for cid, path in good.items():
        assert rows.loc[cid, "audio_path"] == str(path)
    assert set(frame["corpus"]) == {"tess"} and set(frame["gender"]) == {"female"}
    assert set(frame["actor"]) == {"OAF", "YAF"} and set(frame["video_path"]) == {""}
    assert rows.loc["tess:YAF:date:fearful", "statement"] == "date"
    assert rows.loc["tess:YAF:date:fearful", "emotion"] == "fearful"
    assert summary.modalities == {"audio": 8, "video": 0, "landmarks": 0}
    assert "8 clips over 2 actors and 7 emotions" in describe(frame, summary, "tess", tmp_path)
    again, _ = tess.scan(tmp_path)
    assert again.equals(frame)  # deterministic


def test_tess_full_layout_gives_2800_clips(tmp_path):
    words = [f"w{chr(97 + i // 26)}{chr(97 + i % 26)}" for i in range(200)]
    folders = {"angry": "angry", "disgust": "Disgust", "fear": "Fear", "happy": "happy",
               "neutral": "Neutral", "ps": "Pleasant_surprise", "sad": "Sad"}
    for speaker in ("OAF", "YAF"):
        for token, folder in folders.items():
            for word in words:
                _touch(tmp_path / f"{speaker}_{folder}" / f"{speaker}_{word}_{token}.wav", b"x")
    frame, summary = tess.scan(tmp_path)
    assert len(frame) == 2800 and summary.n_skipped == 0
    assert frame.groupby(["actor", "emotion"]).size().eq(200).all()


# ------------------------------------------------------------------------------ label set seven
SEVEN = ("neutral", "happy", "sad", "angry", "fearful", "disgust", "surprised")


def test_seven_is_the_shared_basic_emotions():
    assert label_set("seven") == SEVEN


def test_seven_mapping_of_ravdess_codes_including_calm():
    drop = {code: map_emotion(RAVDESS_EMOTION_CODES[code], "seven") for code in RAVDESS_EMOTION_CODES}
    assert drop == {"01": "neutral", "02": None, "03": "happy", "04": "sad", "05": "angry",
                    "06": "fearful", "07": "disgust", "08": "surprised"}
    fold = {code: map_emotion(RAVDESS_EMOTION_CODES[code], "seven", calm="neutral")
            for code in RAVDESS_EMOTION_CODES}
    assert fold == {**drop, "02": "neutral"}
    # a set that names calm keeps it whatever the policy
    assert map_emotion("calm", "eight", calm="neutral") == "calm"
    assert map_emotion("calm", "six") == "calm"
    # folding needs a neutral class to fold into
    assert map_emotion("calm", "five_no_neutral") == "calm"
    assert map_emotion("calm", "savee5", calm="neutral") == "neutral"


def test_seven_mapping_of_savee_codes():
    mapped = {code: map_emotion(SAVEE_EMOTION_CODES[code], "seven") for code in SAVEE_EMOTION_CODES}
    assert mapped == {"a": "angry", "d": "disgust", "f": "fearful", "h": "happy",
                      "n": "neutral", "sa": "sad", "su": "surprised"}


def test_seven_mapping_of_tess_tokens():
    mapped = {token: map_emotion(emotion, "seven") for token, emotion in tess.EMOTION_TOKENS.items()}
    assert mapped == {"angry": "angry", "disgust": "disgust", "fear": "fearful", "happy": "happy",
                      "neutral": "neutral", "sad": "sad", "ps": "surprised",
                      "pleasant_surprise": "surprised", "pleasant_surprised": "surprised"}


def test_seven_mapping_of_image_folders():
    mapped = {folder: map_emotion(emotion, "seven") for folder, emotion in images.FOLDER_EMOTIONS.items()}
    assert mapped == {
        "angry": "angry", "anger": "angry", "disgust": "disgust", "disgusted": "disgust",
        "fear": "fearful", "fearful": "fearful", "happy": "happy", "happiness": "happy",
        "neutral": "neutral", "sad": "sad", "sadness": "sad", "surprise": "surprised",
        "surprised": "surprised", "calm": None, "contempt": None,
    }


def test_every_corpus_covers_all_seven_classes():
    for emotions in (RAVDESS_EMOTION_CODES.values(), SAVEE_EMOTION_CODES.values(),
                     tess.EMOTION_TOKENS.values(), images.FOLDER_EMOTIONS.values()):
        assert {map_emotion(e, "seven") for e in emotions} - {None} == set(SEVEN)


def test_map_emotion_edges():
    assert map_emotion(" Happy ", "seven") == "happy"
    assert map_emotion("disgust", "six") is None and map_emotion("surprised", "four") is None
    assert map_emotion("boredom", "seven") is None
    with pytest.raises(ValueError, match="label set"):
        map_emotion("happy", "nine")
    with pytest.raises(ValueError, match="calm"):
        map_emotion("calm", "seven", calm="keep")


def test_image_sets_skip_empty_files(tmp_path):
    (tmp_path / "happy").mkdir()
    (tmp_path / "happy" / "ok.png").write_bytes(b"\x89PNG not checked here, only indexed")
    (tmp_path / "happy" / "empty.png").write_bytes(b"")
    frame, summary = scan("images", tmp_path)
    assert len(frame) == 1 and summary.skipped == {manifest.EMPTY: 1}
