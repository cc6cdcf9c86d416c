"""Model cards: a bundle's ``MODEL_CARD.md``, written at export from what was measured.

The facts a person needs before trusting an answer (Mitchell et al. 2019, "Model Cards
for Model Reporting"): what each model is, what data it learned from and under which
licence, how it was tested and what it scored (mean ± std, confusion matrix, recall per
emotion), and what it must not be used for. The measured parts come from the bundle's
own metrics (the runs it was exported from), never typed by hand; the prose parts
(data, licence, intended use, limits) come from a small YAML file per bundle
(``configs/cards/<bundle>.yaml``) with keys ``title``, ``summary``, ``audio`` / ``video`` /
``fusion`` (each ``data``, ``licence``, ``notes``), ``intended_use``, ``not_for``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

CARD_FILE = "MODEL_CARD.md"


def load_card_info(path: str | Path) -> dict[str, Any]:
    """The prose of a card from its YAML file; raises ValueError when it is not a mapping."""
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is not a readable YAML file: {str(err).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a model card file must hold a mapping (title, summary, audio, video, ...)")
    return data


def _pct(value: Any) -> str:
    return "n/a" if value is None else f"{100 * float(value):.1f}%"


def _confusion_table(classes: list[str], matrix: list[list[int]]) -> list[str]:
    lines = ["| true \\ predicted | " + " | ".join(classes) + " | recall |",
             "|---|" + "---|" * (len(classes) + 1)]
    for name, row in zip(classes, matrix):
        total = sum(row)
        recall = f"{100 * row[classes.index(name)] / total:.0f}%" if total else "n/a"
        lines.append(f"| **{name}** | " + " | ".join(str(v) for v in row) + f" | {recall} |")
    return lines


def _branch_section(title: str, meta: dict[str, Any], prose: dict[str, Any]) -> list[str]:
    metrics = meta.get("metrics") or {}
    lines = [f"## {title}", ""]
    lines.append(f"- **Model**: `{meta.get('model', '?')}` ({meta.get('framework', '?')}), input: "
                 f"`{meta.get('input_kind', '?')}`; serving: {meta.get('serving', 'n/a')}.")
    for key, label in (("data", "Training data"), ("licence", "Licence of the weights")):
        if prose.get(key):
            lines.append(f"- **{label}**: {str(prose[key]).strip()}")
    if metrics:
        protocol, n_folds = metrics.get("protocol", "?"), metrics.get("n_folds", "?")
        one = n_folds == 1  # one split: no spread to report

        def spread(key: str) -> str:
            return "" if one else f" ± {_pct(metrics.get(key))}"

        lines.append(f"- **Measured** ({protocol} protocol, {'one split' if one else f'{n_folds} folds'}, "
                     f"{metrics.get('n_test', '?')} test items): accuracy {_pct(metrics.get('accuracy_mean'))}"
                     f"{spread('accuracy_std')}, UAR {_pct(metrics.get('uar_mean'))}{spread('uar_std')}, "
                     f"macro-F1 {_pct(metrics.get('macro_f1_mean'))}, ECE {_pct(metrics.get('ece_mean'))}"
                     + (f" (ECE of the {metrics['ece_basis']}; on these folds before scaling "
                        f"{_pct(metrics.get('ece_uncalibrated_mean'))})" if metrics.get("ece_basis") else "") + ".")
    lines += _travel_lines(meta)
    lines += _face_lines(meta)
    if prose.get("notes"):
        lines.append(f"- {str(prose['notes']).strip()}")
    if metrics.get("per_class_recall"):
        lines.append(f"- **Recall per emotion** ({metrics.get('protocol', '?')} protocol): " + ", ".join(
            f"{c} {_pct(r)}" for c, r in metrics["per_class_recall"].items()) + ".")
    if metrics.get("confusion") and metrics.get("classes"):
        lines += ["", "Confusion matrix (test sides of all folds summed; rows: true emotion):", ""]
        lines += _confusion_table(list(metrics["classes"]), metrics["confusion"])
    lines.append("")
    return lines


def _travel_lines(meta: dict[str, Any]) -> list[str]:
    """Leave-one-corpus-out figures of each normalisation a voice bundle answers with,
    its held-out temperature and its encoder's provenance (empty for other branches)."""
    rows = {"none": meta.get("metrics") or {}, **(meta.get("calibrated_metrics") or {})}
    names = {"none": "one clip at a time (no calibration)", "session": "normalised across a recording session",
             "neutral": "calibrated to two calm takes of the speaker"}
    lines = []
    for mode, metrics in rows.items():
        corpora = metrics.get("corpus") or {}
        if not corpora:
            continue
        held = "; ".join(f"tested on {name} (trained on the others): UAR {_pct(m.get('uar_mean'))}, "
                         f"accuracy {_pct(m.get('accuracy_mean'))}, ECE {_pct(m.get('ece_mean'))}"
                         for name, m in corpora.items())
        lines.append(f"- **Leave-one-corpus-out, {names.get(mode, mode)}**: speaker folds accuracy "
                     f"{_pct(metrics.get('accuracy_mean'))}, UAR {_pct(metrics.get('uar_mean'))}; {held}.")
    fit = (meta.get("temperature_fit") or {}).get("none") or {}
    if fit.get("n"):
        lines.append(f"- **Confidence** calibrated on the held-out corpora ({fit['n']} predictions of models that "
                     f"never heard them): temperature {fit['temperature']:.2f}, ECE {_pct(fit.get('ece_before'))} "
                     f"before, {_pct(fit.get('ece_after'))} after.")
    if meta.get("reference_fit"):
        ref = meta["reference_fit"]
        lines.append(f"- **Unusual voices**: a clip farther from the {ref.get('n', '?')} training clips than "
                     f"{ref.get('quantile', 'most of them')} (distance {ref.get('limit', '?')}) is answered "
                     "\"not sure: unusual voice\"; so is noise under 15 dB SNR or speech whose pauses are filled by other voices or noise.")
    return lines


def _face_lines(meta: dict[str, Any]) -> list[str]:
    """A face branch's test-time views and per-class recalibration, with the ECE before
    and after (empty when it serves neither)."""
    from pipeline.core.face_views import view_names

    lines = []
    metrics = meta.get("metrics") or {}
    views = str(meta.get("views") or "none")
    if views != "none":
        lines.append(f"- **Test-time views**: `{views}` ({', '.join(view_names(views))}): each face crop is "
                     "answered in every view and the probabilities are averaged.")
    scaling = meta.get("scaling") or {}
    if scaling:
        before = metrics.get("before_recalibration") or {}
        how = "one temperature" if scaling.get("method") == "temperature" else "a scale and a bias per emotion"
        lines.append(f"- **Confidence** recalibrated ({scaling.get('method', '?')} scaling: {how}, fitted on the "
                     f"validation split; figures {metrics.get('recalibration_protocol') or 'as measured'}): "
                     f"ECE {_pct(before.get('ece'))} before, {_pct(metrics.get('ece_mean'))} after.")
    if metrics.get("per_class_ece"):
        lines.append("- **ECE per predicted emotion** (whether \"80% sure\" means the same for each): " + ", ".join(
            f"{c} {_pct(v)}" for c, v in metrics["per_class_ece"].items()) + ".")
    return lines


def render_card(meta: dict[str, Any], info: dict[str, Any]) -> str:
    """The markdown card of a bundle from its ``bundle.json`` dict and the card prose."""
    models = meta.get("models") or {}
    lines = [f"# {info.get('title', 'Model card: ' + str(meta.get('name', 'bundle')))}", ""]
    if info.get("summary"):
        lines += [str(info["summary"]).strip(), ""]
    lines += [f"Bundle `{meta.get('id', '?')}`, created {meta.get('created', '?')}; emotions it names: "
              f"{', '.join(meta.get('classes', []))}.", ""]
    for branch, title in (("audio", "Voice model (audio branch)"), ("video", "Face model (video branch)")):
        if branch in models:
            lines += _branch_section(title, models[branch], info.get(branch) or {})
    if "fusion" in models:
        fusion = models["fusion"]
        lines += ["## Fused answer", "", f"- {fusion.get('serving', fusion.get('name', ''))}"]
        if (info.get("fusion") or {}).get("notes"):
            lines.append(f"- {str(info['fusion']['notes']).strip()}")
        lines.append("")
    for key, title in (("intended_use", "Intended use"), ("not_for", "Do not use it for")):
        items = info.get(key) or []
        if items:
            lines += [f"## {title}", ""] + [f"- {str(item).strip()}" for item in items] + [""]
    return "\n".join(lines).rstrip() + "\n"
