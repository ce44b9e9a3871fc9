"""Collect every evaluation number into one JSON file and render the model card from it.

``mer-live-train card`` reads the CV summaries (``runs/cv/<run>/summary.json``), the shipped ONNX model's
metadata and training record, the inference benchmark (``benchmarks/inference.py --out``), the paper's
table and the two panels' ratings (human ceiling), writes ``models/metrics.json`` and renders
``models/MODEL_CARD_v1.md`` (v1) from that JSON alone; the v2 card is :mod:`.report_v2`.
"""

from __future__ import annotations

import json
import math
import string
from importlib import resources
from pathlib import Path

import numpy as np

from mer_live import __version__
from mer_live.core import labels
from mer_live.train import soundtracks
from mer_live.model.emotion_model import META_CV_METRICS, META_DATA_HASH, META_VARIANT, META_VERSION, EmotionModel
from .evaluation import SUMMARY_FILE

PAPER_JOINT = "A2Mid2E-Joint"
CV_COMMAND = "mer-live-train cv --config configs/train.toml"
FIT_COMMAND = "mer-live-train fit --config configs/train.toml"
EXPORT_COMMAND = "mer-live-train export --config configs/train.toml"
BENCH_COMMAND = "python benchmarks/inference.py --out models/benchmark.json"
CARD_COMMAND = "mer-live-train card --config configs/train.toml"
CARD_TEMPLATE = "model_card.md"  # beside this module: the card's text, with ${fields} filled by render_card
RECORDS_DIR = Path("models")  # card, metrics, benchmark and the training record (the .onnx is package data)
SUMMARY_KEYS = (
    "name", "config", "num_folds", "folds_done", "clip_r_mean", "clip_r_std", "clip_r_avg",
    "clip_r_avg_fold_std", "clip_r_avg_per_fold", "window_r_mean", "window_r_avg", "window_r_avg_fold_std", "best_epochs",
    "epochs_run", "train_seconds", "mid_consistency", "command",
)
VARIANT_DESCRIPTIONS = {
    "a2e": "A2E: audio -> 8 emotions directly (reference, no mid-level layer)",
    "joint_ab": "Joint (a)+(b): 7->8 layer initialised from the poster's weights and trained; "
                "mid-level outputs supervised with pseudo mid-level targets",
    "joint_frozen": "Joint (a) frozen: the poster's 7->8 weights fixed, no mid-level loss",
    "joint_frozen_b": "Joint (a) frozen + (b): the poster's 7->8 weights fixed, pseudo mid-level loss",
}


def build_metrics(
    *, cv_dir: Path, model_path: Path, benchmark_path: Path | None, shipped_run: str | None
) -> dict:
    """Everything the card shows, as a JSON-able dict."""
    dataset = soundtracks.load()
    cv = {}
    for path in sorted(Path(cv_dir).glob(f"*/{SUMMARY_FILE}")):
        summary = json.loads(path.read_text())
        cv[summary["name"]] = {key: summary[key] for key in SUMMARY_KEYS if key in summary}
    model = EmotionModel(path=model_path)
    shipped = {
        "path": str(model_path),
        "variant": model.metadata.get(META_VARIANT),
        "version": model.metadata.get(META_VERSION),
        "data_hash": model.metadata.get(META_DATA_HASH),
        "cv_metrics": json.loads(model.metadata.get(META_CV_METRICS, "{}")),
        "joint_weight": model.weight.tolist(),
        "joint_bias": model.bias.tolist(),
        "size_bytes": Path(model_path).stat().st_size,
        "cv_run": shipped_run,
    }
    model.close()
    training_name = Path(model_path).with_suffix(".training.json").name
    # beside the model (a run folder), or in models/ beside the card when the model is the packaged one
    training_path = next((p for p in (Path(model_path).with_name(training_name), RECORDS_DIR / training_name) if p.is_file()), None)
    if training_path is not None:
        record = json.loads(training_path.read_text())
        record.pop("history", None)
        shipped["training"] = record
    benchmark = json.loads(Path(benchmark_path).read_text()) if benchmark_path and Path(benchmark_path).is_file() else None
    return {
        "generated_by": CARD_COMMAND,
        "mer_live_version": __version__,
        "commands": {"cv": CV_COMMAND, "fit": FIT_COMMAND, "export": EXPORT_COMMAND, "benchmark": BENCH_COMMAND,
                     "card": CARD_COMMAND},
        "data": {
            "num_clips": len(dataset.clips),
            "data_hash": soundtracks.data_hash(data=dataset),
            "human_ceiling": soundtracks.human_ceiling(data=dataset, set2=soundtracks.load_set2(root=dataset.root)),
        },
        "paper": soundtracks.paper_results(root=dataset.root),
        "poster_weight": soundtracks.poster_weights(root=dataset.root).tolist(),
        "poster_mid_emotion_correlation": soundtracks.mid_emotion_correlation(root=dataset.root).tolist(),
        "cv": cv,
        "shipped": shipped,
        "benchmark": benchmark,
    }


def format_value(value: float | None, digits: int = 2) -> str:
    """``value`` with ``digits`` decimals for the cards; ``n/a`` for None or NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.{digits}f}"


def _cv_rows(*, metrics: dict) -> list[str]:
    header = "| model | " + " | ".join(labels.EMOTIONS) + " | mean |"
    rows = [header, "|" + "---|" * (len(labels.EMOTIONS) + 2)]
    for name, summary in metrics["cv"].items():
        cells = [f"{format_value(summary['clip_r_mean'][e])} ± {format_value(summary['clip_r_std'][e])}" for e in labels.EMOTIONS]
        folds = f"{len(summary['folds_done'])}/{summary['num_folds']} folds"
        recipe = f"≤ {summary['config']['max_epochs']} epochs, patience {summary['config']['patience']}"
        protocol = ", grouped by album" if summary.get("protocol") == "album" else ""
        rows.append(f"| **{name}** (ours, CV{protocol}, {folds}, {recipe}) | " + " | ".join(cells)
                    + f" | **{format_value(summary['clip_r_avg'], 3)} ± {format_value(summary['clip_r_avg_fold_std'], 3)}** |")
    return rows + reference_rows(metrics=metrics, paper_label="paper")


def reference_rows(*, metrics: dict, paper_label: str) -> list[str]:
    """Table rows for the paper's results (``<name> (<paper_label>)``) and the human ceiling, per emotion."""
    rows = []
    for name, values in metrics.get("paper", {}).items():
        rows.append(f"| {name} ({paper_label}) | " + " | ".join(format_value(values[e]) for e in labels.EMOTIONS)
                    + f" | {format_value(values['avg'])} |")
    ceiling = metrics["data"]["human_ceiling"]
    rows.append(f"| human ceiling (set 1 vs set 2, {int(ceiling['num_clips'])} clips) | "
                + " | ".join(format_value(ceiling[e]) for e in labels.EMOTIONS) + f" | {format_value(ceiling['mean'])} |")
    return rows


def _window_rows(*, metrics: dict) -> list[str]:
    rows = ["| run | clip-level r | window-level r | best epochs per fold | train s per fold |", "|---|---|---|---|---|"]
    for name, s in metrics["cv"].items():
        rows.append(
            f"| {name} | {format_value(s['clip_r_avg'], 3)} ± {format_value(s['clip_r_avg_fold_std'], 3)} | "
            f"{format_value(s['window_r_avg'], 3)} ± {format_value(s['window_r_avg_fold_std'], 3)} | "
            f"{', '.join(str(e) for e in s['best_epochs'])} | {', '.join(f'{t:.0f}' for t in s['train_seconds'])} |"
        )
    return rows


def _consistency_rows(*, metrics: dict) -> list[str]:
    rows = ["| run | mean abs diff (cells with poster abs r >= 0.3) | sign agreement | cells | mean abs diff (all 56 cells) |",
            "|---|---|---|---|---|"]
    for name, s in metrics["cv"].items():
        c = s.get("mid_consistency")
        if c:
            rows.append(f"| {name} | {format_value(c['mean_abs_diff'])} | {format_value(100 * c['sign_agreement'], 0)} % | "
                        f"{c['num_cells']} | {format_value(c['mean_abs_diff_all_cells'])} |")
    return rows


def _matrix_rows(*, matrix: list[list[float]], reference: list[list[float]] | None = None) -> list[str]:
    rows = ["| mid-level | " + " | ".join(labels.EMOTIONS) + " |", "|" + "---|" * (len(labels.EMOTIONS) + 1)]
    for m, name in enumerate(labels.MID_LEVELS):
        if reference is None:
            cells = [format_value(matrix[m][e]) for e in range(labels.NUM_EMOTIONS)]
        else:
            cells = [f"{format_value(matrix[m][e])} ({format_value(reference[m][e])})" for e in range(labels.NUM_EMOTIONS)]
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    return rows


def _run_for(*, metrics: dict, variant: str, width: float, tag: str) -> dict | None:
    for summary in metrics["cv"].values():
        config = summary["config"]
        if config["variant"] == variant and config["width"] == width and config.get("tag", "") == tag:
            return summary
    return None


def _size_rows(*, metrics: dict, shipped_config: dict) -> list[str]:
    bench = metrics.get("benchmark")
    rows = ["| width | parameters | ms per window (1 thread, median) | x full width | CV mean r of the shipped recipe at this width |",
            "|---|---|---|---|---|"]
    if not bench:
        return rows + ["| (benchmark not run) | | | | |"]
    for key, entry in bench["results"].items():
        if "width" not in entry:
            continue
        summary = _run_for(metrics=metrics, variant=shipped_config["variant"], width=entry["width"],
                           tag=shipped_config.get("tag", ""))
        accuracy = (f"{format_value(summary['clip_r_avg'], 3)} ({len(summary['folds_done'])}/{summary['num_folds']} folds)"
                    if summary else "not cross-validated")
        if summary and len(summary["folds_done"]) < summary["num_folds"] and shipped_config.get("width"):
            shipped_run = _run_for(metrics=metrics, variant=shipped_config["variant"], width=shipped_config["width"],
                                   tag=shipped_config.get("tag", ""))
            same = ([shipped_run.get("clip_r_avg_per_fold", {}).get(str(k)) for k in summary["folds_done"]]
                    if shipped_run else [None])
            if all(v is not None for v in same):
                accuracy += (f"; width {shipped_config['width']:g} on the same fold(s): "
                             f"{format_value(float(np.mean(same)), 3)}")
        rows.append(f"| {entry['width']:g} | {entry['parameters']:,} | {format_value(entry['median_ms'])} | "
                    f"{format_value(entry['ratio_vs_full_width'], 3)} | {accuracy} |")
    return rows


def _recipe_note(*, metrics: dict) -> list[str]:
    """Say plainly when the rows of the table were trained with different recipes."""
    recipes: dict[tuple[int, int], list[str]] = {}
    for name, summary in metrics["cv"].items():
        key = (summary["config"]["max_epochs"], summary["config"]["patience"])
        recipes.setdefault(key, []).append(f"`{name}`")
    if len(recipes) < 2:
        return []
    parts = [f"{', '.join(names)} at ≤ {epochs} epochs with patience {patience}"
             for (epochs, patience), names in sorted(recipes.items())]
    return [
        "Not every row had the same recipe: " + "; ".join(parts) + ". Early stopping at patience 15 often "
        "stopped well before the epoch cap on the noisy validation split (best epochs below). Where a variant was "
        "run under both recipes (same folds, same seed), compare its two rows to see what that cost. Variants run "
        "only at patience 15 are not on the same footing as the patience-60 rows, so part of their gap may be the "
        "recipe rather than the architecture.",
        "",
    ]


def _size_note(*, metrics: dict, shipped_config: dict) -> list[str]:
    bench = metrics.get("benchmark")
    if not bench:
        return []
    missing, partial = [], []
    for entry in bench["results"].values():
        if "width" not in entry:
            continue
        run = _run_for(metrics=metrics, variant=shipped_config["variant"], width=entry["width"],
                       tag=shipped_config.get("tag", ""))
        if run is None:
            missing.append(f"{entry['width']:g}")
        elif len(run["folds_done"]) < run["num_folds"]:
            partial.append(f"{entry['width']:g} ({len(run['folds_done'])} of {run['num_folds']} folds)")
    if not missing and not partial:
        return []
    lines = []
    if partial:
        lines.append(f"Width {', '.join(partial)} was cross-validated on only part of the folds, so its number is "
                     "a rough indication; the table compares it with the shipped width on the same folds.")
    if missing:
        lines.append(f"Width {', '.join(missing)} was not cross-validated: on this 2-core CPU a wider network trains "
                     "several times slower than width 0.25 (compare the parameter counts), which did not fit the "
                     "time available.")
    lines.append("The size choice therefore rests mainly on the measured speed above and on the CV accuracy of "
                 "the shipped width; whether a wider network would score higher here is not established.")
    return [" ".join(lines), ""]


def _fill(*, template: str, values: dict) -> str:
    """``template`` (a Markdown file) with its ``${name}`` fields filled from ``values``. A line that is only
    ``${name}`` takes a list of lines (none, one or many); other fields take strings."""
    lines = []
    for line in template.split("\n")[:-1]:  # the file ends with a newline
        name = line[2:-1] if line.startswith("${") and line.endswith("}") and line.count("$") == 1 else None
        if name is not None and isinstance(values.get(name), list):
            lines.extend(values[name])
        else:
            lines.append(string.Template(line).substitute(values))
    return "\n".join(lines)


def _training_lines(*, training: dict, summary: dict | None, variant_run: str) -> list[str]:
    """How the shipped model was trained, and whether early stopping ever triggered."""
    if not training:
        return []
    config = training["config"]
    lines = [
        f"Trained on {training['num_train']} clips with {training['num_val']} held out for early stopping "
        f"(best validation epoch {training['best_epoch']} of {training['epochs_run']}, at most "
        f"{config['max_epochs']}, patience {config['patience']}; {training['seconds']:.0f} s on this CPU); "
        f"Adam lr {config['learning_rate']:g}, batch {config['batch_size']}, "
        f"width {training['width']:g}, dropout {config['dropout']:g}, seed {config['seed']}.",
        "",
    ]
    cv_config = summary["config"] if summary else {}
    same_model = (cv_config.get("variant") == config["variant"] and cv_config.get("width") == config["width"]
                  and cv_config.get("max_epochs") == config["max_epochs"])
    never_stopped = training["epochs_run"] >= config["max_epochs"]
    if same_model and never_stopped and cv_config.get("patience", 0) >= config["max_epochs"] > config["patience"]:
        lines += [
            f"Early stopping never triggered, so this training is the same as under the recipe of "
            f"`{variant_run}` (all {config['max_epochs']} epochs, the best validation epoch kept), whose CV "
            "estimate is quoted below.",
            "",
        ]
    return lines


def _estimate_lines(*, summary: dict | None, variant_run: str, paper_joint: float | None) -> list[str]:
    """The shipped recipe's CV estimate against the paper, with its caveat."""
    if not summary:
        return []
    verdict = ""
    if paper_joint is not None:
        relation = "at or above" if summary["clip_r_avg"] >= paper_joint else "below"
        verdict = f" This is {relation} the paper's A2Mid2E-Joint ({format_value(paper_joint)}), the target of this work."
    return [
        f"Its CV estimate (from `{variant_run}`): mean r {format_value(summary['clip_r_avg'], 3)} ± "
        f"{format_value(summary['clip_r_avg_fold_std'], 3)} over {len(summary['folds_done'])} of "
        f"{summary['num_folds']} folds.{verdict}",
        "",
        "Caveat: the recipe (all epochs instead of early stopping) and the variant were chosen after "
        "seeing CV scores on the same folds, so this estimate is somewhat optimistic; a nested CV "
        "(choosing the recipe on inner splits only) would remove that bias.",
        "",
    ]


def render_card(*, metrics: dict) -> str:
    """The model card (Markdown): the template ``model_card.md`` filled from ``metrics`` only."""
    shipped = metrics["shipped"]
    variant_run = shipped.get("cv_run") or shipped["variant"]
    summary = metrics["cv"].get(variant_run)
    shipped_config = summary["config"] if summary else {"variant": "", "width": 0.0, "tag": ""}
    bench = metrics.get("benchmark")
    shipped_ms = bench["results"].get("shipped", {}).get("median_ms") if bench else None
    commands = metrics["commands"]
    matrix = []
    if summary and summary.get("mid_consistency"):
        matrix = ["", f"Matrix of `{variant_run}`, predicted (poster in brackets):", "",
                  *_matrix_rows(matrix=summary["mid_consistency"]["matrix"], reference=metrics["poster_mid_emotion_correlation"])]
    values = {
        "path": shipped["path"], "size_bytes": f"{shipped['size_bytes']:,}", "variant": shipped["variant"],
        "version": shipped["version"], "data_hash": shipped["data_hash"], "generated_by": metrics["generated_by"],
        "cv_commands": sorted({s["command"] for s in metrics["cv"].values() if s.get("command")}),
        "fit_command": commands["fit"], "export_command": commands["export"], "benchmark_command": commands["benchmark"],
        "card_command": commands["card"], "emotions": ", ".join(labels.EMOTIONS), "mid_levels": ", ".join(labels.MID_LEVELS),
        "variants_compared": "; ".join(f"`{k}` = {v}" for k, v in VARIANT_DESCRIPTIONS.items()
                                       if any(name.startswith(k + "_w") for name in metrics["cv"])),
        "variant_run": variant_run, "num_clips": metrics["data"]["num_clips"], "dataset_hash": metrics["data"]["data_hash"],
        "cv_rows": _cv_rows(metrics=metrics), "recipe_note": _recipe_note(metrics=metrics),
        "window_rows": _window_rows(metrics=metrics), "consistency_rows": _consistency_rows(metrics=metrics),
        "matrix_block": matrix,
        "size_rows": _size_rows(metrics=metrics, shipped_config=shipped_config),
        "size_note": _size_note(metrics=metrics, shipped_config=shipped_config),
        "shipped_speed": f"Shipped model: {format_value(shipped_ms)} ms per window (median, one thread)." if shipped_ms is not None else "",
        "training_block": _training_lines(training=shipped.get("training", {}), summary=summary, variant_run=variant_run),
        "estimate_block": _estimate_lines(summary=summary, variant_run=variant_run,
                                          paper_joint=metrics["paper"].get(PAPER_JOINT, {}).get("avg")),
        "weight_rows": _matrix_rows(matrix=np.asarray(shipped["joint_weight"]).T.tolist(),
                                    reference=np.asarray(metrics["poster_weight"]).T.tolist()),
        "bias": " | ".join(format_value(b) for b in shipped["joint_bias"]),
    }
    return _fill(template=resources.files(__package__).joinpath(CARD_TEMPLATE).read_text(encoding="utf-8"), values=values)
