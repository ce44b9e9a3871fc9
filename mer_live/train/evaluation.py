"""k-fold cross-validation on the same footing as the paper, and its summary.

Per fold: train on the other folds (early stopping on a validation split drawn from them), predict the
held-out fold. A clip's prediction is the mean over its sliding 10 s windows (hop 1 s). Reported:

* clip-level Pearson r per emotion, mean and std over folds;
* window-level r (each window's prediction against its clip's rating), mean and std over folds;
* mid-level consistency (Joint models): the correlation between predicted mid-level features and annotated
  emotions on the held-out clips (all folds pooled), against the poster's table of human mid-level ratings
  vs emotions, as the mean absolute difference and the sign agreement over cells with ``|r| >= 0.3``.

Each fold's result is written as JSON as soon as it is done, so an interrupted run resumes, and several
``mer-live-train cv`` processes can share one run (each fold is claimed with a lock file).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from mer_live.features import spectrogram
from mer_live.core import labels
from mer_live.train import soundtracks
from . import data
from . import folds as folds_module
from .training import TrainConfig, predict_clips, split_validation, train

CONSISTENCY_THRESHOLD = 0.3
FOLD_FILE = "fold{index}.json"
SUMMARY_FILE = "summary.json"
CONFIG_FILE = "config.json"
LOCK_SUFFIX = ".lock"  # fold<k>.lock: a worker is running fold k (several workers may share one CV run)


def run_name(*, config: TrainConfig) -> str:
    """``<variant>_w<width>`` plus ``_<tag>`` when the config has a tag."""
    name = f"{config.variant}_w{config.width:g}"
    return f"{name}_{config.tag}" if config.tag else name


def per_emotion_r(*, predicted: np.ndarray, actual: np.ndarray) -> list[float]:
    return [soundtracks.pearson(x=predicted[:, e], y=actual[:, e]) for e in range(labels.NUM_EMOTIONS)]


def run_fold(
    *, config: TrainConfig, dataset: soundtracks.Soundtracks, blocks: list[spectrogram.FrameBlock],
    folds: list[np.ndarray], index: int,
) -> dict:
    """Train on all folds but ``index`` and evaluate on fold ``index``; returns a JSON-able record."""
    ratings = dataset.ratings
    test = folds[index]
    rest = np.sort(np.concatenate([f for k, f in enumerate(folds) if k != index]))
    train_indices, val_indices = split_validation(
        indices=rest, fraction=config.validation_fraction, seed=config.seed + index
    )
    result = train(
        config=config, blocks=blocks, ratings=ratings, train_indices=train_indices, val_indices=val_indices,
        poster_weight=soundtracks.poster_weights(root=dataset.root),
        mid_correlation=soundtracks.mid_emotion_correlation(root=dataset.root),
        description=f"{run_name(config=config)} fold {index + 1}/{len(folds)}",
    )
    windows = [data.clip_windows(block=blocks[i])[0] for i in test]
    clip_mid, clip_emotion, window_mid, window_emotion = predict_clips(
        net=result.net, windows=windows, device=result.net.backbone.band_mean.device
    )
    window_truth = np.concatenate([np.repeat(ratings[i][None], len(w), axis=0) for i, w in zip(test, windows)])
    window_pred = np.concatenate(window_emotion)
    return {
        "fold": index,
        "test_ids": [dataset.clips[i].clip_id for i in test],
        "num_train": int(len(train_indices)),
        "num_val": int(len(val_indices)),
        "best_epoch": result.best_epoch,
        "epochs_run": result.epochs_run,
        "seconds": result.seconds,
        "history": result.history,
        "pseudo_info": result.pseudo_info,
        "clip_emotion": clip_emotion.tolist(),
        "clip_mid": clip_mid.tolist(),
        "ratings": ratings[test].tolist(),
        "clip_r": per_emotion_r(predicted=clip_emotion, actual=ratings[test]),
        "window_r": per_emotion_r(predicted=window_pred, actual=window_truth),
        "num_windows": int(len(window_pred)),
    }


def mid_consistency(*, predicted_mid: np.ndarray, ratings: np.ndarray, reference: np.ndarray) -> dict:
    """Correlation of predicted mid-levels ``(n, 7)`` with annotated emotions ``(n, 8)`` vs ``reference`` (7, 8)."""
    matrix = np.array(
        [[soundtracks.pearson(x=predicted_mid[:, m], y=ratings[:, e]) for e in range(labels.NUM_EMOTIONS)]
         for m in range(labels.NUM_MID_LEVELS)]
    )
    strong = np.abs(reference) >= CONSISTENCY_THRESHOLD
    valid = strong & np.isfinite(matrix)
    return {
        "matrix": matrix.tolist(),
        "threshold": CONSISTENCY_THRESHOLD,
        "num_cells": int(strong.sum()),
        "mean_abs_diff": float(np.mean(np.abs(matrix[valid] - reference[valid]))) if valid.any() else float("nan"),
        "sign_agreement": float(np.mean(np.sign(matrix[valid]) == np.sign(reference[valid]))) if valid.any() else float("nan"),
        "mean_abs_diff_all_cells": float(np.nanmean(np.abs(matrix - reference))),
    }


def summarise(*, records: list[dict], config: TrainConfig, reference: np.ndarray, num_folds: int) -> dict:
    """Mean and std over folds of clip- and window-level r, plus mid-level consistency (Joint)."""
    clip_r = np.array([r["clip_r"] for r in records])  # (folds, 8)
    window_r = np.array([r["window_r"] for r in records])
    summary = {
        "name": run_name(config=config),
        "config": config.to_dict(),
        "num_folds": num_folds,
        "folds_done": sorted(r["fold"] for r in records),
        "clip_r_mean": dict(zip(labels.EMOTIONS, clip_r.mean(axis=0).tolist())),
        "clip_r_std": dict(zip(labels.EMOTIONS, clip_r.std(axis=0).tolist())),
        "clip_r_avg": float(clip_r.mean()),
        "clip_r_avg_fold_std": float(clip_r.mean(axis=1).std()),
        "clip_r_avg_per_fold": dict(zip((str(r["fold"]) for r in records), clip_r.mean(axis=1).tolist())),
        "window_r_mean": dict(zip(labels.EMOTIONS, window_r.mean(axis=0).tolist())),
        "window_r_avg": float(window_r.mean()),
        "window_r_avg_fold_std": float(window_r.mean(axis=1).std()),
        "best_epochs": [r["best_epoch"] for r in records],
        "epochs_run": [r["epochs_run"] for r in records],
        "train_seconds": [r["seconds"] for r in records],
    }
    if config.variant != "a2e":
        mids = np.concatenate([np.array(r["clip_mid"]) for r in records])
        truth = np.concatenate([np.array(r["ratings"]) for r in records])
        summary["mid_consistency"] = mid_consistency(predicted_mid=mids, ratings=truth, reference=reference)
    return summary


def _claim(*, lock: Path) -> bool:
    """Atomically claim a fold for this process; a lock left by a dead process is taken over."""
    for _ in range(2):
        try:
            handle = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                owner = int(lock.read_text().strip() or 0)
                os.kill(owner, 0)
                return False  # its owner is alive
            except (ProcessLookupError, ValueError):
                lock.unlink(missing_ok=True)
                continue
            except PermissionError:
                return False
        with os.fdopen(handle, "w") as stream:
            stream.write(str(os.getpid()))
        return True
    return False


def cross_validate(
    *, config: TrainConfig, dataset: soundtracks.Soundtracks, blocks: list[spectrogram.FrameBlock],
    num_folds: int, fold_seed: int, out_dir: Path, only_folds: list[int] | None = None, command: str = "",
    protocol: str = folds_module.PAPER,
) -> dict:
    """Run (or resume) the folds of one configuration; write per-fold JSON and ``summary.json``.
    ``protocol``: the folds (:func:`.folds.protocol_folds`: ``paper``, stratified by target, or ``album``)."""
    folder = Path(out_dir) / run_name(config=config)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / CONFIG_FILE).write_text(json.dumps(
        {**config.to_dict(), "num_folds": num_folds, "fold_seed": fold_seed, "protocol": protocol}, indent=1))
    folds = folds_module.protocol_folds(dataset=dataset, protocol=protocol, num_folds=num_folds, seed=fold_seed)
    wanted = range(num_folds) if only_folds is None else only_folds
    for index in wanted:
        path = folder / FOLD_FILE.format(index=index)
        if path.is_file() or not _claim(lock=path.with_suffix(LOCK_SUFFIX)):
            continue  # done, or being run by another worker
        try:
            record = run_fold(config=config, dataset=dataset, blocks=blocks, folds=folds, index=index)
            temporary = path.with_suffix(".tmp")
            temporary.write_text(json.dumps(record))
            temporary.replace(path)
        finally:
            path.with_suffix(LOCK_SUFFIX).unlink(missing_ok=True)
    records = [json.loads(p.read_text()) for p in sorted(folder.glob("fold*.json"))]
    summary = summarise(
        records=records, config=config,
        reference=soundtracks.mid_emotion_correlation(root=dataset.root), num_folds=num_folds,
    )
    summary["command"] = command  # the command line that produced (or last re-summarised) this run
    summary["protocol"] = protocol
    (folder / SUMMARY_FILE).write_text(json.dumps(summary, indent=1))
    return summary
