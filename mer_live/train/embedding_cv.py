"""One cross-validation run of the v2 candidates on cached musicnn embeddings, under both protocols.

For each protocol (``paper``: stratified by target, the v1 folds; ``album``: grouped by album) and each
fold, every candidate is trained on the other folds (early stopping on a validation split drawn from
them) and predicts the held-out fold. Reported per candidate and protocol:

* clip-level Pearson r per emotion (a clip's prediction is the uniform mean over all its patches), mean
  and std over folds: the figure comparable with the paper and with v1;
* live r for each pooling candidate (``pooling.POOLING_GRID``): the output after every patch, pooled over
  the last patches with recency weights, against the clip's rating, all positions of a fold pooled;
* a nested figure: in each outer fold, the head candidate with the best inner-validation r is picked and
  its outer-fold r reported, so that the choice among candidates is itself cross-validated.

Candidates: ``ridge`` (per-clip mean and std of the frozen penultimate layer, ridge regression with the
penalty chosen by inner CV: the baseline of the issue) and the heads of :mod:`.heads`.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from .. import labels, soundtracks
from . import folds as folds_module
from . import pooling
from .embeddings import PATCH_FRAMES, PATCH_HOP_SECONDS, FPS, ClipEmbeddings
from .heads import HeadConfig, clip_predictions, head_input, predict_patches, train_head
from .training import split_validation

RIDGE = "ridge"
RIDGE_ALPHAS = tuple(10.0 ** np.arange(-1, 5.5, 0.5))
RIDGE_INNER_FOLDS = 5
PATCH_SECONDS = PATCH_FRAMES / FPS
# (patches, halflife seconds): the pre-declared pooling candidates; 20 patches at hop 0.5 s span 12.4 s
POOLING_GRID = ((1, 0.0), (4, 0.5), (8, 0.5), (8, 1.0), (12, 1.0), (20, 2.0), (20, 0.0))
SUMMARY_FILE = "summary.json"
PREDICTIONS_FILE = "predictions.npz"


def _r(*, predicted: np.ndarray, actual: np.ndarray) -> list[float]:
    return [soundtracks.pearson(x=predicted[:, e], y=actual[:, e]) for e in range(actual.shape[1])]


def clip_features(*, clip: ClipEmbeddings) -> np.ndarray:
    """The ridge baseline's clip features ``(400,)``: mean and std over patches of the penultimate layer."""
    return np.concatenate([clip.penultimate.mean(axis=0), clip.penultimate.std(axis=0)])


def _ridge_fit(x: np.ndarray, y: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    mean_x, mean_y = x.mean(axis=0), y.mean(axis=0)
    xc = x - mean_x
    coef = np.linalg.solve(xc.T @ xc + alpha * np.eye(x.shape[1]), xc.T @ (y - mean_y))
    return coef, mean_y - mean_x @ coef


def ridge_predict(*, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, seed: int) -> tuple[np.ndarray, list[float]]:
    """Standardise on the training clips; per target, the penalty with the lowest inner-CV error."""
    mean, std = x_train.mean(axis=0), np.maximum(x_train.std(axis=0), 1e-6)
    xs, xt = (x_train - mean) / std, (x_test - mean) / std
    inner = np.random.default_rng(seed).permutation(len(xs)) % RIDGE_INNER_FOLDS
    errors = np.zeros((len(RIDGE_ALPHAS), y_train.shape[1]))
    for a, alpha in enumerate(RIDGE_ALPHAS):
        for k in range(RIDGE_INNER_FOLDS):
            coef, intercept = _ridge_fit(xs[inner != k], y_train[inner != k], alpha)
            errors[a] += ((xs[inner == k] @ coef + intercept - y_train[inner == k]) ** 2).sum(axis=0)
    chosen = [RIDGE_ALPHAS[i] for i in errors.argmin(axis=0)]
    prediction = np.zeros((len(xt), y_train.shape[1]))
    for e, alpha in enumerate(chosen):
        coef, intercept = _ridge_fit(xs, y_train[:, e : e + 1], alpha)
        prediction[:, e] = (xt @ coef + intercept)[:, 0]
    return prediction, chosen


def live_r(*, patch_emotion: list[np.ndarray], ratings: np.ndarray) -> dict[str, list[float]]:
    """Per pooling candidate: r per emotion of the live output after every patch against the clip rating."""
    results = {}
    for patches, halflife in POOLING_GRID:
        pooled = [pooling.pool_stream(rows=rows, patches=patches, hop_s=PATCH_HOP_SECONDS, halflife_s=halflife)
                  for rows in patch_emotion]
        truth = np.concatenate([np.repeat(ratings[i][None], len(p), axis=0) for i, p in enumerate(pooled)])
        results[pooling_name(patches=patches, halflife_s=halflife)] = _r(predicted=np.concatenate(pooled), actual=truth)
    return results


def pooling_name(*, patches: int, halflife_s: float) -> str:
    return f"k{patches}_h{halflife_s:g}"


def run(
    *, dataset: soundtracks.Soundtracks, sets: dict[str, list[ClipEmbeddings]], candidates: dict[str, HeadConfig],
    protocols: tuple[str, ...], num_folds: int, fold_seed: int, out_dir: Path, command: str = "",
    progress: bool = True,
) -> dict:
    """Cross-validate the ridge baseline and every head candidate under each protocol; write the summary."""
    ratings = dataset.ratings
    poster = soundtracks.poster_weights(root=dataset.root)
    correlation = soundtracks.mid_emotion_correlation(root=dataset.root)
    clean_features = np.stack([clip_features(clip=c) for c in sets["clean"]])
    summary: dict = {"command": command, "num_clips": len(ratings), "num_folds": num_folds, "fold_seed": fold_seed,
                     "pooling_grid": [pooling_name(patches=k, halflife_s=h) for k, h in POOLING_GRID],
                     "pooling_step_times": {
                         pooling_name(patches=k, halflife_s=h): pooling.step_times(
                             patches=k, hop_s=PATCH_HOP_SECONDS, halflife_s=h, patch_s=PATCH_SECONDS)
                         for k, h in POOLING_GRID},
                     "candidates": {name: config.to_dict() for name, config in candidates.items()},
                     "protocols": {}}
    predictions: dict[str, np.ndarray] = {}
    for protocol in protocols:
        test_folds = folds_module.protocol_folds(dataset=dataset, protocol=protocol, num_folds=num_folds, seed=fold_seed)
        result: dict = {"fold_sizes": [len(f) for f in test_folds], "candidates": {}}
        oof = {name: np.zeros((len(ratings), labels.NUM_EMOTIONS)) for name in [RIDGE, *candidates]}
        oof_mid = {name: np.zeros((len(ratings), labels.NUM_MID_LEVELS)) for name in candidates}
        per_fold = {name: [] for name in [RIDGE, *candidates]}
        live = {name: [] for name in candidates}
        inner_r = {name: [] for name in candidates}
        details = {name: [] for name in candidates}
        for index, test in enumerate(test_folds):
            rest = np.sort(np.concatenate([f for k, f in enumerate(test_folds) if k != index]))
            ridge_pred, alphas = ridge_predict(x_train=clean_features[rest], y_train=ratings[rest],
                                               x_test=clean_features[test], seed=fold_seed + index)
            oof[RIDGE][test] = ridge_pred
            per_fold[RIDGE].append(_r(predicted=ridge_pred, actual=ratings[test]))
            for name, config in candidates.items():
                train_indices, val_indices = split_validation(
                    indices=rest, fraction=config.validation_fraction, seed=config.seed + index)
                started = time.perf_counter()
                trained = train_head(config=replace(config), sets=sets, ratings=ratings, train_indices=train_indices,
                                     val_indices=val_indices, poster_weight=poster, mid_correlation=correlation)
                inputs = [head_input(clip=sets["clean"][i], kind=config.kind) for i in test]
                clip_mid, clip_emotion = clip_predictions(net=trained.net, inputs=inputs)
                _, patch_emotion = predict_patches(net=trained.net, inputs=inputs)
                oof[name][test] = clip_emotion
                oof_mid[name][test] = clip_mid
                per_fold[name].append(_r(predicted=clip_emotion, actual=ratings[test]))
                live[name].append(live_r(patch_emotion=patch_emotion, ratings=ratings[test]))
                inner_r[name].append(trained.best_val_r)
                details[name].append({"best_epoch": trained.best_epoch, "epochs_run": trained.epochs_run,
                                      "seconds": time.perf_counter() - started})
                if progress:
                    print(f"{protocol} fold {index + 1}/{num_folds} {name}: r {np.mean(per_fold[name][-1]):.3f} "
                          f"(inner {trained.best_val_r:.3f}, epoch {trained.best_epoch}/{trained.epochs_run}, "
                          f"{details[name][-1]['seconds']:.0f} s)", flush=True)
            if progress:
                print(f"{protocol} fold {index + 1}/{num_folds} ridge: r {np.mean(per_fold[RIDGE][-1]):.3f} "
                      f"(alphas {sorted(set(alphas))})", flush=True)
        for name in [RIDGE, *candidates]:
            fold_r = np.array(per_fold[name])
            entry = {
                "clip_r_mean": dict(zip(labels.EMOTIONS, fold_r.mean(axis=0).tolist())),
                "clip_r_std": dict(zip(labels.EMOTIONS, fold_r.std(axis=0).tolist())),
                "clip_r_avg": float(fold_r.mean()),
                "clip_r_avg_fold_std": float(fold_r.mean(axis=1).std()),
                "clip_r_avg_per_fold": fold_r.mean(axis=1).tolist(),
                "pooled_oof_r": dict(zip(labels.EMOTIONS, _r(predicted=oof[name], actual=ratings))),
            }
            if name in candidates:
                entry["live_r_avg"] = {
                    pool: float(np.mean([np.mean(fold[pool]) for fold in live[name]])) for pool in summary["pooling_grid"]}
                entry["live_r_mean"] = {
                    pool: dict(zip(labels.EMOTIONS, np.mean([fold[pool] for fold in live[name]], axis=0).tolist()))
                    for pool in summary["pooling_grid"]}
                entry["inner_val_r"] = inner_r[name]
                entry["folds"] = details[name]
                predictions[f"{protocol}/{name}/mid"] = oof_mid[name]
            predictions[f"{protocol}/{name}/emotion"] = oof[name]
            result["candidates"][name] = entry
        # nested: per outer fold, the head candidate with the best inner-validation r
        picks = [max(candidates, key=lambda n: inner_r[n][k]) for k in range(num_folds)]
        nested = np.array([per_fold[name][k] for k, name in enumerate(picks)])
        result["nested"] = {"picks": picks, "clip_r_avg": float(nested.mean()),
                            "clip_r_mean": dict(zip(labels.EMOTIONS, nested.mean(axis=0).tolist())),
                            "clip_r_avg_fold_std": float(nested.mean(axis=1).std())}
        summary["protocols"][protocol] = result
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=1))
    np.savez(out_dir / PREDICTIONS_FILE, ids=np.array(dataset.ids), ratings=ratings, **predictions)
    return summary
