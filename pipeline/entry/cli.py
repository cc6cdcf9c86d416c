"""``python -m pipeline <command>``: argument parsing and printing only.

Every command calls one library function; failures a user can fix end with a
one-line reason on stderr and a non-zero exit code, never a traceback.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

from pipeline.core import media, paths  # media: numpy only, no decoder loaded at import
from pipeline.core.corpora import CORPORA

EXIT_BAD_INPUT = 2


class UserError(Exception):
    """An error whose message is the whole story for the user."""


# --------------------------------------------------------------------------- synth
def _cmd_synth(args: argparse.Namespace) -> int:
    from pipeline.core.synth.corpus import generate

    summary = generate(args.out, n_actors=args.actors, seed=args.seed,
                       audio_only=args.audio_only, progress=not args.quiet)
    print(summary.describe())
    return 0


# --------------------------------------------------------------------------- index
def _cmd_index(args: argparse.Namespace) -> int:
    from pipeline.core.corpora import manifest as manifest_io, scan
    from pipeline.core.corpora.report import describe

    if args.out and Path(args.out).is_dir():
        raise UserError(f"--out {args.out} is a folder; give the manifest's file name, e.g. {Path(args.out) / 'manifest.csv'}")
    frame, summary = scan(args.corpus, args.root)
    report = describe(frame, summary, corpus=args.corpus, root=args.root)
    if not len(frame):  # what was seen and skipped, then the reason; no empty manifest
        *seen, reason = report.splitlines()
        print("\n".join(seen), file=sys.stderr)
        print(f"error: {reason}", file=sys.stderr)
        return EXIT_BAD_INPUT
    out = Path(args.out) if args.out else paths.runs_dir() / "manifests" / f"{args.corpus}-{Path(args.root).resolve().name}.csv"
    manifest_io.save(frame, out)
    print(report)
    print(f"manifest written to {out}")
    return 0


# --------------------------------------------------------------------------- fetch
def _cmd_fetch(args: argparse.Namespace) -> int:
    from pipeline.core.corpora.fetch import fetch

    done = fetch(args.corpus, args.dest, parts=args.part or None,
                 base_url=args.base_url, progress=not args.quiet)
    for path in done:
        print(path)
    return 0


# --------------------------------------------------------------------------- run
def _cmd_run(args: argparse.Namespace) -> int:
    from pipeline.research.experiments import RunFailures, run_spec
    from pipeline.research.store import format_summary

    ray_flags = {"address": args.address, "cpus_per_task": args.cpus_per_task,
                 "gpus_per_task": args.gpus_per_task}
    options = {k: v for k, v in ray_flags.items() if v is not None}
    if args.executor != "ray" and options:
        raise UserError("--address, --cpus-per-task and --gpus-per-task need --executor ray")
    try:
        summary = run_spec(args.spec, overrides=args.set or [], only=args.only or None,
                           out=args.out, progress=not args.quiet, executor=args.executor,
                           executor_options=options)
    except RunFailures as err:  # the others finished and are kept; the summary is theirs
        print(format_summary(err.summary))
        for failure in err.failures:
            print(f"failed: {failure}", file=sys.stderr)
        print(f"error: {len(err.failures)} task(s) failed; finished folds are kept, "
              f"rerun the same command to retry the rest", file=sys.stderr)
        return 1
    print(format_summary(summary))
    return 0


# --------------------------------------------------------------------------- report
def _cmd_report(args: argparse.Namespace) -> int:
    from pipeline.research.store import format_summary, summarise

    print(format_summary(summarise(args.experiment)))
    return 0


# --------------------------------------------------------------------------- export
def _cmd_export(args: argparse.Namespace) -> int:
    from pipeline.research.export import export_bundle

    calibrated = {}
    for text in args.audio_calibrated or []:
        mode, sep, folder = text.partition("=")
        if not sep or mode not in ("neutral", "session"):
            raise UserError(f"--audio-calibrated expects MODE=RUN with MODE neutral or session, got {text!r}")
        calibrated[mode] = folder
    bundle = export_bundle(args.audio, args.video, args.fusion, out=args.out, name=args.name,
                           fusion_rule=args.fusion_rule, card=args.card, video_bundle=args.video_from_bundle,
                           audio_bundle=args.audio_from_bundle,
                           audio_calibrated=calibrated if args.audio_calibrated is not None else None)
    print(f"bundle written to {bundle}")
    return 0


# --------------------------------------------------------------------------- predict
def _natural(name: str) -> list[Any]:
    """Sort key: ``take2`` before ``take10``, case ignored."""
    import re

    return [int(part) if part.isdigit() else part.casefold() for part in re.split(r"(\d+)", name)]


def _clips_named(names: Sequence[str]) -> tuple[list[str], list[str]]:
    """The files ``predict`` analyses, and one line for each name that gives none: each
    name as given, a folder replaced by the files directly inside it (not its subfolders
    nor hidden files) whose extension the decoder accepts (:data:`media.ACCEPTED_EXTENSIONS`),
    in natural order (``take2`` before ``take10``); a file named twice is answered once."""
    clips: list[str] = []
    refused: list[str] = []
    for name in names:
        if not name.strip():
            refused.append("an empty name was given (an unset variable?): name a clip, a photo or a folder")
            continue
        try:
            if not _is_folder(name):
                clips.append(name)
                continue
            inside = sorted((f for f in Path(name).iterdir()
                             if f.suffix.lower() in media.ACCEPTED_EXTENSIONS and not f.name.startswith(".")
                             and not f.is_dir()), key=lambda f: _natural(f.name))
        except OSError as err:  # a folder that may not be listed, a name too long
            refused.append(f"{media.printable(name)} cannot be read ({err.strerror or type(err).__name__})")
            continue
        if not inside:
            refused.append(f"{media.printable(name)} holds no clip or photo ({media.accepted_text()})")
        clips += [str(f) for f in inside]
    return list(dict.fromkeys(os.path.normpath(c) for c in clips)), refused


def _is_folder(name: str) -> bool:
    """Whether ``name`` names a folder (False for an empty name or one that cannot be
    looked at: the checks then say why)."""
    try:
        return bool(name.strip()) and Path(name).is_dir()
    except OSError:
        return False


def _refused(err: Exception, clip: str) -> str:
    """The one line a refused ``clip`` gets on stderr, naming it as the user gave it
    (two files of one name in two folders stay apart)."""
    said = str(err).strip()
    said = said.splitlines()[0] if said else type(err).__name__
    base, given = media.printable(Path(clip).name), media.printable(clip)
    if said.startswith(base) and not said.startswith(given):
        said = given + said[len(base):]
    return f"error: {said}"


def _cmd_predict(args: argparse.Namespace) -> int:
    clips, refused = _clips_named(args.clip)
    # one JSON object for one file named as such; JSON Lines whenever several names or a
    # folder were given, however many files that makes
    several = len(args.clip) > 1 or any(_is_folder(name) for name in args.clip)
    if args.landmarks:  # a file the user named must be usable, not silently replaced by a detector
        if several:
            raise UserError("--landmarks belongs to one clip: name that one clip with it")
        from pipeline.core.faces import read_landmarks

        read_landmarks(args.landmarks)  # ValueError with a one-line reason
    for line in refused:
        print(f"error: {line}", file=sys.stderr)
    usable, failed = [], len(refused)
    for clip in clips:  # missing, a folder, a pipe or device, empty, cut short, not media:
        try:            # refused before any model loads
            media.check_input(media.check_path(clip))
        except (media.MediaError, OSError) as err:
            if not several:
                raise
            print(_refused(err, clip), file=sys.stderr)
            failed += 1
        else:
            usable.append(clip)
    if not usable:
        if len(clips) + len(refused) > 1:
            print(f"error: nothing to analyse: all {len(clips) + len(refused)} refused", file=sys.stderr)
        return EXIT_BAD_INPUT

    from pipeline.serve.bundle import load_bundle
    from pipeline.serve.inference import analyze

    bundle = load_bundle(args.bundle or paths.default_bundle())  # once for every clip
    detector = None
    if args.detector:
        from pipeline.core.faces import make_detector

        detector = make_detector(args.detector)
    for k, clip in enumerate(usable):
        try:
            result = analyze(clip, bundle, detector, landmarks_path=args.landmarks)
        except (media.MediaError, OSError) as err:  # what only decoding finds (a damaged stream)
            if not several:
                raise
            print(_refused(err, clip), file=sys.stderr)
            failed += 1
            continue
        _print_answer(result, bundle, args, several, first=k == 0)
        if not (result.audio.ok or result.video.ok):
            print(f"error: nothing usable in {media.printable(clip)}: audio: {result.audio.status}; "
                  f"video: {result.video.status}", file=sys.stderr)
            failed += 1
    return EXIT_BAD_INPUT if failed else 0


def _print_answer(result: Any, bundle: Any, args: argparse.Namespace, several: bool, first: bool = True) -> None:
    """One clip's answer on stdout: text, or JSON (indented for one clip; one line per
    clip, JSON Lines, for several). Several text answers are each headed by the clip's
    path as given, a blank line between them."""
    explained = None
    if args.explain:
        from pipeline.serve.explain import explain

        explained = explain(result, bundle, heatmaps=False)  # heatmaps are pictures: the dashboard's
    if args.json:
        out = result.to_json()
        if explained is not None:
            out["explanation"] = explained.to_json()
        print(json.dumps(out) if several else json.dumps(out, indent=2), flush=True)
        return
    from pipeline.serve.inference import describe

    if several:
        print(("" if first else "\n") + f"== {media.printable(result.source)} ==")
    print(describe(result))
    if explained is not None:
        from pipeline.serve.explain import describe_explanation

        print(describe_explanation(explained))
    sys.stdout.flush()


# --------------------------------------------------------------------------- evaluate
def _cmd_evaluate(args: argparse.Namespace) -> int:
    from pipeline.research.crosscorpus import evaluate_bundle

    result = evaluate_bundle(args.bundle, args.corpus, args.root, branch=args.branch, actors=args.actors,
                             out=args.out, progress=not (args.quiet or args.json), n_jobs=args.jobs,
                             calibration=args.calibration)
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
        return 0
    m = result.metrics
    print(f"bundle {result.bundle} on {result.corpus} ({result.root}), branch {result.branch}, "
          f"calibration {result.calibration}: {result.n} clips scored, {sum(result.skipped.values())} skipped")
    for reason, count in result.skipped.items():
        print(f"  skipped {count:5d}  {reason}")
    print(f"accuracy {m['accuracy']:.1%}  UAR {m['uar']:.1%}  macro-F1 {m['macro_f1']:.1%}  ECE {m['ece']:.1%}")
    if result.in_sample:
        print(f"IN-SAMPLE, not a held-out figure: {result.in_sample}")
    print("recall per class: " + ", ".join(f"{c} {r:.0%}" for c, r in m["per_class_recall"].items()))
    print(f"{result.n / max(result.seconds, 1e-9):.1f} clips/s; run written to {result.run_dir}")
    return 0


# --------------------------------------------------------------------------- train-faces
def _cmd_train_faces(args: argparse.Namespace) -> int:
    import dataclasses

    import yaml

    from pipeline.core.corpora import scan
    from pipeline.research.face_training import FER_PARAMS, FaceTrainingConfig, train_faces

    frame, summary = scan("images", args.root)
    if not len(frame):
        raise UserError(f"no labelled face images under {args.root} (one folder per emotion expected)")
    if args.init_from and not Path(args.init_from).is_file():
        raise UserError(f"--init-from {args.init_from}: no such model file")
    hparams = {}
    for item in args.hparam or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"--hparam {item!r}: expected KEY=VALUE (e.g. label_smoothing=0.1)")
        hparams[key] = yaml.safe_load(value)
    config = FaceTrainingConfig(model=args.model, epochs=args.epochs, batch_size=args.batch_size,
                                learning_rate=args.learning_rate, variant=args.variant or args.model,
                                init_from=str(args.init_from or ""), hparams=hparams, seed=args.seed,
                                class_weight_power=args.class_weight_power)
    params = dataclasses.replace(FER_PARAMS, crop_size=args.size)
    fold = train_faces(frame, args.out, params=params, config=config, progress=not args.quiet,
                       root=str(args.root))
    metrics = json.loads((fold / "metrics.json").read_text())
    print(f"{fold}: validation accuracy {metrics['accuracy']:.1%}, UAR {metrics['uar']:.1%} "
          f"on {metrics['n_test']} held-out images")
    return 0


def _cmd_tune_faces(args: argparse.Namespace) -> int:
    from pipeline.core.corpora import scan
    from pipeline.research.face_posthoc import PosthocConfig, tune_faces
    from pipeline.research.face_training import FER_PARAMS

    for model in args.model:
        if not Path(model).is_file():
            raise UserError(f"--model {model}: no such model file")
    frame, _ = scan("images", args.root)
    if not len(frame):
        raise UserError(f"no labelled face images under {args.root} (one folder per emotion expected)")
    config = PosthocConfig(base=args.base, view_sets=tuple(args.views.split(",")),
                           calibrations=tuple(args.calibration.split(",")))
    try:
        folds = tune_faces(args.model, frame, args.out, params=FER_PARAMS, config=config, progress=not args.quiet,
                           root=str(args.root))
    except ValueError as err:
        raise UserError(str(err)) from None
    for fold in folds:
        m = json.loads((fold / "metrics.json").read_text())
        print(f"{fold.parent.name}: accuracy {m['accuracy']:.1%}  UAR {m['uar']:.1%}  ECE {m['ece']:.1%}")
    return 0


# --------------------------------------------------------------------------- demo
def _cmd_demo(args: argparse.Namespace) -> int:
    from pipeline.entry.demo import run_demo

    where = run_demo(data=args.data, runs=args.runs, n_actors=args.actors, seed=args.seed)
    print(where)
    return 0


#: What to do about a file name that starts with a dash (argparse reads it as an option).
DASH_HINT = ("hint: a file name that starts with '-' reads as an option; put -- before it, "
             "e.g. python -m pipeline predict --bundle B -- -name.wav")


class _Parser(argparse.ArgumentParser):
    """argparse with the ``--`` hint when a missing or unrecognised argument may be a
    file name starting with a dash (``-rf.wav``); sub-parsers are of this class too."""

    def error(self, message: str) -> None:  # type: ignore[override]
        if "required: clip" in message or "unrecognized arguments: -" in message \
                or "expected one argument" in message:
            message = f"{message}\n{DASH_HINT}"
        super().error(message)


def build_parser() -> argparse.ArgumentParser:
    """The whole command line, one sub-parser per command."""
    parser = _Parser(
        prog="python -m pipeline",
        description="Audio-visual emotion recognition workbench: corpora, training, "
                    "evaluation and prediction.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name: str, func: Callable[[argparse.Namespace], int], help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(func=func)
        return p

    p = add("synth", _cmd_synth, "Generate the synthetic RAVDESS-layout corpus (audio, video, landmarks).")
    p.add_argument("--out", required=True, help="folder to write Actor_NN/ into")
    p.add_argument("--actors", type=int, default=8, help="number of actors (default 8; odd = male)")
    p.add_argument("--seed", type=int, default=7, help="random seed: same seed, same corpus")
    p.add_argument("--audio-only", action="store_true", help="write only the audio-only wav files")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    p = add("index", _cmd_index, "Index a corpus folder into a manifest and print its counts.")
    p.add_argument("--corpus", required=True, choices=list(CORPORA))
    p.add_argument("--root", required=True, help="the corpus folder")
    p.add_argument("--out", help="manifest CSV to write (default runs/manifests/CORPUS-FOLDER.csv)")

    p = add("fetch", _cmd_fetch, "Download and unpack a real corpus (the only command that uses the network).")
    p.add_argument("corpus", choices=["ravdess"])
    p.add_argument("--dest", required=True, help="folder to download into and unpack under")
    p.add_argument("--part", action="append", help="only these archives (repeatable; default all)")
    p.add_argument("--base-url", help="mirror to download from (default: the official Zenodo record)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    p = add("run", _cmd_run, "Run every variant x fold of an experiment spec into the results store.")
    p.add_argument("spec", help="experiment spec (YAML), e.g. configs/audio.yaml")
    p.add_argument("--only", action="append", metavar="VARIANT", help="run only this variant (repeatable)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a spec key, e.g. corpus.root=data/x or protocol.kind=random (repeatable)")
    p.add_argument("--out", default=None, help="results store root (default runs/)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.add_argument("--executor", choices=["local", "ray"], default="local",
                   help="local: fold after fold in this process (default); ray: every (variant, fold) "
                        "is a Ray task (docs/experiments.md)")
    p.add_argument("--address", default=None, metavar="auto|HOST:PORT",
                   help="with --executor ray: join this running Ray cluster (default: start a local "
                        "Ray instance for this command)")
    p.add_argument("--cpus-per-task", type=float, default=None, metavar="N",
                   help="with --executor ray: CPUs each task reserves (default 1)")
    p.add_argument("--gpus-per-task", type=float, default=None, metavar="N",
                   help="with --executor ray: GPUs each task reserves, e.g. 1 for Keras models (default 0)")

    p = add("report", _cmd_report, "Print the summary table of a finished experiment.")
    p.add_argument("experiment", help="runs/<experiment> folder")

    p = add("export", _cmd_export, "Export trained models as a bundle for predict and the dashboard.")
    p.add_argument("--audio", help="runs/<experiment>/<variant> whose model serves audio")
    p.add_argument("--video", help="runs/<experiment>/<variant> whose model serves video")
    p.add_argument("--fusion", help="runs/<experiment>/<variant> whose model fuses the two")
    p.add_argument("--out", default=None, help="bundle folder (default bundles/NAME)")
    p.add_argument("--name", default="demo", help="bundle name (default demo)")
    p.add_argument("--fusion-rule", choices=["reliability"],
                   help="fuse with a rule instead of a fusion run: 'reliability' weights each branch by its "
                        "held-out UAR (branches trained on different corpora, no paired clips)")
    p.add_argument("--card", help="model card YAML (configs/cards/NAME.yaml) rendered into MODEL_CARD.md")
    p.add_argument("--video-from-bundle", metavar="BUNDLE",
                   help="carry the video branch of an existing bundle over unchanged (instead of --video)")
    p.add_argument("--audio-from-bundle", metavar="BUNDLE",
                   help="carry the audio branch of an existing bundle over unchanged, with its speaker-normalised "
                        "models, temperatures and reference (instead of --audio)")
    p.add_argument("--audio-calibrated", action="append", metavar="MODE=RUN",
                   help="a speaker-normalised voice model: neutral=RUN or session=RUN (a run variant with an "
                        "all-0 fold); also fits the held-out temperatures and the training features' reference")

    p = add("predict", _cmd_predict, "Predict the emotion of audio or video clips, or of a face in a photo.")
    p.epilog = ("An empty, cut-short or non-media file is refused before the bundle loads. Several clips "
                "(or folders of them) are answered with the models loaded once: --json then prints one "
                "object per line (JSON Lines); a file that cannot be analysed is reported on stderr, the "
                "others are answered, and the exit code is 2. A file name that starts with '-' needs -- "
                "before it: python -m pipeline predict -- -name.wav")
    p.add_argument("clip", nargs="+",
                   help=f"the files to analyse, or folders of them (the files directly inside, by name; "
                        f"subfolders, hidden files and other extensions are left out): {media.accepted_text()}")
    p.add_argument("--bundle", help="bundle folder (default $AVE_BUNDLE, else bundles/real, else bundles/demo)")
    p.add_argument("--json", action="store_true",
                   help="print JSON: one indented object for one clip; one object per line (JSON Lines) when "
                        "several names or a folder are given")
    p.add_argument("--explain", action="store_true",
                   help="add why: valence/arousal of each answer, the voice's cue-group contributions, the face "
                        "model's per-frame answers (docs/explain.md)")
    p.add_argument("--landmarks", help="OpenFace landmark CSV of the clip (corpus samples): crops from it, no detector")
    p.add_argument("--detector", choices=["mtcnn", "haar"],
                   help="face detector for clips without landmarks (default: the bundle's, usually mtcnn)")

    p = add("evaluate", _cmd_evaluate,
            "Score a bundle on an indexed corpus (cross-corpus when it never saw it; runs on its own "
            "training data are flagged in-sample): accuracy, UAR, macro-F1.")
    p.add_argument("--bundle", required=True, help="bundle folder, e.g. bundles/real")
    p.add_argument("--corpus", required=True, choices=list(CORPORA))
    p.add_argument("--root", required=True, help="the corpus folder")
    p.add_argument("--branch", default=None, choices=["audio", "video", "fused"],
                   help="which answer to score (default: fused for audio-visual clips, else the branch "
                        "the corpus has: audio for speech, video for images)")
    p.add_argument("--actors", help="only these actors, e.g. 17-24 or 1,3,5 (default all)")
    p.add_argument("--calibration", default="none", choices=["none", "neutral", "session"],
                   help="the voice's per-speaker normalisation (speakers as the corpus names them): none "
                        "(default; one clip at a time), neutral (two calm takes per speaker, then not "
                        "scored), session (each clip by the speaker's other clips)")
    p.add_argument("--out", default=None, help="results store root (default runs/); the run goes to OUT/evaluate/")
    p.add_argument("--jobs", type=int, default=2, help="feature worker processes (default 2)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    p = add("train-faces", _cmd_train_faces,
            "Train the per-frame facial-expression model on a face image set (e.g. FER2013 train).")
    p.add_argument("--root", required=True, help="image set root: one folder per emotion")
    p.add_argument("--out", default=str(paths.runs_dir() / "real_video"), help="experiment folder (default runs/real_video)")
    p.add_argument("--model", default="face_cnn", help="registered face model (default face_cnn)")
    p.add_argument("--variant", default=None, help="variant folder name (default: the model name)")
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--size", type=int, default=48, help="face crop side in pixels (default 48, as FER2013)")
    p.add_argument("--learning-rate", type=float, default=2e-3,
                   help="peak learning rate of the cosine schedule (default 2e-3)")
    p.add_argument("--init-from", help="model.keras of a finished run to start from (warm start, same model)")
    p.add_argument("--seed", type=int, default=13,
                   help="training seed (default 13); the validation split always uses seed 13")
    p.add_argument("--class-weight-power", type=float, default=0.5,
                   help="class weights (n / (k n_c)) ** POWER: 0 none, 0.5 square root (default), 1 balanced")
    p.add_argument("--hparam", action="append", metavar="KEY=VALUE",
                   help="model hyperparameter, repeatable (face_cnn: augment, blur, erase, label_smoothing, ...)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")

    p = add("tune-faces", _cmd_tune_faces,
            "Measure test-time views and per-class recalibration of a face model on its validation split.")
    p.add_argument("--model", required=True, action="append",
                   help="the face model (model.keras of a train-faces run or a bundle); repeat it to measure "
                        "an ensemble (mean probabilities; measured only, not exportable)")
    p.add_argument("--root", required=True, help="the image set it was trained on (its validation split is rebuilt)")
    p.add_argument("--out", default=str(paths.runs_dir() / "real_video"), help="experiment folder (default runs/real_video)")
    p.add_argument("--base", default="face_cnn", help="variant name prefix: <base>+<views>+<recalibration>")
    p.add_argument("--views", default="none,flip,crops,flip_crops",
                   help="comma-separated view sets (none, flip, crops, flip_crops)")
    p.add_argument("--calibration", default="none,vector",
                   help="comma-separated recalibrations (none, temperature, vector)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")

    p = add("demo", _cmd_demo, "Synthetic corpus -> quick audio, video and fusion runs -> demo bundle.")
    p.add_argument("--data", default=str(paths.data_dir() / "synthetic"))
    p.add_argument("--runs", default=str(paths.runs_dir()))
    p.add_argument("--actors", type=int, default=8)
    p.add_argument("--seed", type=int, default=7)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: parse, dispatch, turn user errors into one line and exit 2."""
    args = build_parser().parse_args(argv)
    # TensorFlow prints C++ start-up notices unless told not to; keep the CLI's output ours.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    from pipeline.core.media import MediaError

    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:  # output piped into `head` and the like: not an error
        sys.stdout = open(os.devnull, "w")
        return 0
    except (UserError, MediaError, OSError, ValueError, KeyError) as err:
        # OSError: paths the user named (a folder where a file goes, a file where a folder goes)
        message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        print(f"error: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        resumes = args.func in (_cmd_run, _cmd_train_faces, _cmd_fetch, _cmd_demo, _cmd_synth)
        print("interrupted" + (": finished work is kept; rerun the same command to resume" if resumes else ""),
              file=sys.stderr)
        return 130
