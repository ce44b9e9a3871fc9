"""One cross-validation run of the v2 candidates on cached musicnn embeddings, under both protocols.

For each protocol (``paper``: stratified by target, the v1 folds; ``album``: grouped by album) and each
fold, every candidate is trained on the other folds (early stopping on a validation split drawn from
them) and predicts the held-out fold. Reported per candidate and protocol:

* clip-level Pearson r per emotion (a clip's prediction is the uniform mean over all its patches), mean
  and std over folds: the figure comparable with the paper and with v1;
* live r for each pooling candidate (``pooling.POOLING_GRID``): the output after every patch, pooled over
  the last patches with recency weights, against the clip's rating, all positions of a fold pooled;
* a nested figure: in each outer fold, the head candidate with the best inner-validation r is picked and
  its outer-fold r reported, so that the choice among candidates is itself cross-validated;
* mid-level validity (:mod:`.descriptors`): the out-of-fold clip-level mid-level outputs against the
  clips' signal descriptors, r per feature and how many of 7 pass (``sign * r >= 0.3``);
* the declared choice (:func:`declared_choice`) and its nested twin, which applies the same rule in each
  outer fold to the inner-validation clips (their r and their mid-level validity) only.

Candidates: ``ridge`` (per-clip mean and std of the frozen penultimate layer, ridge regression with the
penalty chosen by inner CV: the baseline of the issue) and the heads of :mod:`.heads`.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from mer_live.core import labels
from mer_live.train import soundtracks
from . import descriptors as descriptors_module
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
POOLING_GRID = ((1, 0.0), (4, 0.25), (4, 0.5), (8, 0.5), (8, 1.0), (12, 1.0), (20, 2.0), (20, 0.0))
SUMMARY_FILE = "summary.json"
PREDICTIONS_FILE = "predictions.npz"
CANDIDATE_DIR = "candidates"
# The declared rule for choosing the shipped head (fixed before the descriptor-target candidates were run):
# among the head candidates whose album-grouped clip-level mean r is within CHOICE_R_TOLERANCE of the best
# head's, the one whose held-out mid-level outputs pass the validity goal for the most features; ties by r.
CHOICE_R_TOLERANCE = 0.01
MIN_VALIDITY_CLIPS = 3


def declared_choice(*, r: dict[str, float], passing: dict[str, int]) -> str:
    """The rule above: ``r`` and ``passing`` (validity features passed, of 7) per head candidate."""
    score = {name: value if np.isfinite(value) else -np.inf for name, value in r.items()}  # nan: a constant output
    best = max(score.values())
    close = [name for name in score if score[name] >= best - CHOICE_R_TOLERANCE]
    return max(close, key=lambda name: (passing[name], score[name]))


def _validity_passing(*, mid: np.ndarray, descriptors: np.ndarray) -> int:
    if len(mid) < MIN_VALIDITY_CLIPS:
        return 0
    return descriptors_module.validity_table(mid, descriptors)["passing"]


def emotion_r(*, predicted: np.ndarray, actual: np.ndarray) -> list[float]:
    """Pearson r per emotion of clip predictions ``(num_clips, 8)`` against their ratings."""
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
        results[pooling_name(patches=patches, halflife_s=halflife)] = emotion_r(predicted=np.concatenate(pooled), actual=truth)
    return results


def pooling_name(*, patches: int, halflife_s: float) -> str:
    return f"k{patches}_h{halflife_s:g}"


def _cross_validate_candidate(
    *, config: HeadConfig, name: str, sets: dict[str, list[ClipEmbeddings]], ratings: np.ndarray,
    test_folds: list[np.ndarray], poster: np.ndarray, correlation: np.ndarray, protocol: str, progress: bool,
    descriptors: np.ndarray,
) -> dict:
    """One head candidate over every fold of one protocol: out-of-fold predictions and per-fold numbers.

    ``descriptors`` ``(num_clips, 7)``: auxiliary targets (training clips only) and the inner-validation
    clips' mid-level validity (for the nested declared choice); the test fold's are never read here."""
    oof = np.zeros((len(ratings), labels.NUM_EMOTIONS))
    oof_mid = np.zeros((len(ratings), labels.NUM_MID_LEVELS))
    per_fold, live, inner, inner_validity, details = [], [], [], [], []
    clean = sets[config.set_key("clean")]
    for index, test in enumerate(test_folds):
        rest = np.sort(np.concatenate([f for k, f in enumerate(test_folds) if k != index]))
        train_indices, val_indices = split_validation(indices=rest, fraction=config.validation_fraction,
                                                      seed=config.seed + index)
        started = time.perf_counter()
        trained = train_head(config=replace(config), sets=sets, ratings=ratings, train_indices=train_indices,
                             val_indices=val_indices, poster_weight=poster, mid_correlation=correlation,
                             descriptors=descriptors)
        val_mid, _ = clip_predictions(net=trained.net, inputs=[head_input(clip=clean[i], kind=config.kind)
                                                               for i in val_indices])
        inner_validity.append(_validity_passing(mid=val_mid, descriptors=descriptors[val_indices]))
        inputs = [head_input(clip=clean[i], kind=config.kind) for i in test]
        patch_mid, patch_emotion = predict_patches(net=trained.net, inputs=inputs)
        oof[test] = np.stack([e.mean(axis=0) for e in patch_emotion])
        oof_mid[test] = np.stack([m.mean(axis=0) for m in patch_mid])
        per_fold.append(emotion_r(predicted=oof[test], actual=ratings[test]))
        live.append(live_r(patch_emotion=patch_emotion, ratings=ratings[test]))
        inner.append(trained.best_val_r)
        details.append({"best_epoch": trained.best_epoch, "epochs_run": trained.epochs_run,
                        "seconds": time.perf_counter() - started})
        if progress:
            print(f"{protocol} fold {index + 1}/{len(test_folds)} {name}: r {np.mean(per_fold[-1]):.3f} "
                  f"(inner {trained.best_val_r:.3f}, epoch {trained.best_epoch}/{trained.epochs_run}, "
                  f"{details[-1]['seconds']:.0f} s)", flush=True)
    return {"config": config.to_dict(), "per_fold": per_fold, "live": live, "inner_val_r": inner,
            "inner_val_validity_passing": inner_validity, "folds": details,
            "oof_emotion": oof.tolist(), "oof_mid": oof_mid.tolist()}


def _ridge_candidate(*, features: np.ndarray, ratings: np.ndarray, test_folds: list[np.ndarray], seed: int) -> dict:
    oof = np.zeros_like(ratings)
    per_fold, alphas = [], []
    for index, test in enumerate(test_folds):
        rest = np.sort(np.concatenate([f for k, f in enumerate(test_folds) if k != index]))
        oof[test], chosen = ridge_predict(x_train=features[rest], y_train=ratings[rest], x_test=features[test],
                                          seed=seed + index)
        per_fold.append(emotion_r(predicted=oof[test], actual=ratings[test]))
        alphas.append([float(a) for a in chosen])
    return {"per_fold": per_fold, "alphas": alphas, "oof_emotion": oof.tolist()}


def fold_summary(fold_r: np.ndarray) -> dict:
    """Clip-level r ``(num_folds, 8)`` summarised: per emotion mean and std over folds, their mean, its fold std."""
    return {
        "clip_r_mean": dict(zip(labels.EMOTIONS, fold_r.mean(axis=0).tolist())),
        "clip_r_std": dict(zip(labels.EMOTIONS, fold_r.std(axis=0).tolist())),
        "clip_r_avg": float(fold_r.mean()),
        "clip_r_avg_fold_std": float(fold_r.mean(axis=1).std()),
        "clip_r_avg_per_fold": fold_r.mean(axis=1).tolist(),
    }


def _entry(*, record: dict, ratings: np.ndarray, pooling_grid: list[str], descriptors: np.ndarray) -> dict:
    entry = {
        **fold_summary(np.array(record["per_fold"])),
        "pooled_oof_r": dict(zip(labels.EMOTIONS, emotion_r(predicted=np.array(record["oof_emotion"]), actual=ratings))),
    }
    if "live" in record:
        pools = [pool for pool in pooling_grid if all(pool in fold for fold in record["live"])]  # older runs: fewer
        entry["live_r_avg"] = {pool: float(np.mean([np.mean(fold[pool]) for fold in record["live"]])) for pool in pools}
        entry["live_r_mean"] = {pool: dict(zip(labels.EMOTIONS, np.mean([fold[pool] for fold in record["live"]], axis=0).tolist()))
                                for pool in pools}
        entry["inner_val_r"] = record["inner_val_r"]
        entry["folds"] = record["folds"]
        entry["config"] = record["config"]
    if "alphas" in record:
        entry["alphas"] = record["alphas"]
    if "oof_mid" in record:
        entry["validity"] = descriptors_module.validity_table(np.array(record["oof_mid"]), descriptors)
    return entry


def _nested(*, records: dict, candidates: list[str], picks: list[str]) -> dict:
    """The outer-fold r of the candidate ``picks[k]`` in each fold ``k``, summarised like a candidate's."""
    nested = np.array([records[name]["per_fold"][k] for k, name in enumerate(picks)])
    return {"candidates": candidates, "picks": picks, **fold_summary(nested)}


def _write_fold_files(*, folder: Path, fold_ids: list[list[str]], dataset: soundtracks.Soundtracks, record: dict) -> None:
    """``fold<k>.json`` with ``test_ids``, ``clip_mid`` and ``clip_emotion`` (the out-of-fold predictions)."""
    folder.mkdir(parents=True, exist_ok=True)
    row = {clip_id: i for i, clip_id in enumerate(dataset.ids)}
    for index, ids in enumerate(fold_ids):
        rows = [row[i] for i in ids]
        (folder / f"fold{index}.json").write_text(json.dumps({
            "fold": index, "test_ids": ids, "clip_mid": [record["oof_mid"][r] for r in rows],
            "clip_emotion": [record["oof_emotion"][r] for r in rows]}))


def run(
    *, dataset: soundtracks.Soundtracks, sets: dict[str, list[ClipEmbeddings]], candidates: dict[str, HeadConfig],
    protocols: tuple[str, ...], num_folds: int, fold_seed: int, out_dir: Path, command: str = "",
    progress: bool = True, order: tuple[str, ...] = (),
) -> dict:
    """Cross-validate the ridge baseline and the head candidates under each protocol; write the summary.

    Each candidate's folds are stored in ``out_dir/candidates/<protocol>_<name>.json`` as soon as they are
    done (and its out-of-fold predictions as ``out_dir/<protocol>_<name>/fold<k>.json``, the layout of
    ``mer-live-train cv`` runs that ``python -m mer_live.train.descriptors --cv`` reads); a later call with other candidates (same folds) adds to the run, and the summary covers every
    candidate stored so far whose settings are unchanged, in the order of ``order`` (the declared candidates),
    then the others.
    """
    out_dir = Path(out_dir)
    store = out_dir / CANDIDATE_DIR
    store.mkdir(parents=True, exist_ok=True)
    ratings = dataset.ratings
    poster = soundtracks.poster_weights(root=dataset.root)
    correlation = soundtracks.mid_emotion_correlation(root=dataset.root)
    _, descriptors = descriptors_module.clip_descriptors(clip_ids=dataset.ids, root=dataset.root)
    clean_features = np.stack([clip_features(clip=c) for c in sets["clean"]])
    pooling_grid = [pooling_name(patches=k, halflife_s=h) for k, h in POOLING_GRID]
    previous = json.loads((out_dir / SUMMARY_FILE).read_text()) if (out_dir / SUMMARY_FILE).is_file() else {}
    commands = [c for c in previous.get("commands", []) if c != command] + ([command] if command else [])
    summary: dict = {"commands": commands, "num_clips": len(ratings), "num_folds": num_folds, "fold_seed": fold_seed,
                     "ids": dataset.ids, "pooling_grid": pooling_grid,
                     "pooling_step_times": {
                         pooling_name(patches=k, halflife_s=h): pooling.step_times(
                             patches=k, hop_s=PATCH_HOP_SECONDS, halflife_s=h, patch_s=PATCH_SECONDS)
                         for k, h in POOLING_GRID},
                     "protocols": {}}
    predictions: dict[str, np.ndarray] = {}
    for protocol in protocols:
        test_folds = folds_module.protocol_folds(dataset=dataset, protocol=protocol, num_folds=num_folds, seed=fold_seed)
        fold_ids = [[dataset.ids[i] for i in fold] for fold in test_folds]
        records = {RIDGE: _ridge_candidate(features=clean_features, ratings=ratings, test_folds=test_folds, seed=fold_seed)}
        for name, config in candidates.items():
            path = store / f"{protocol}_{name}.json"
            stored = json.loads(path.read_text()) if path.is_file() else None
            if stored and stored["config"] == config.to_dict() and stored.get("fold_ids") == fold_ids:
                records[name] = stored
                continue
            record = _cross_validate_candidate(config=config, name=name, sets=sets, ratings=ratings,
                                               test_folds=test_folds, poster=poster, correlation=correlation,
                                               protocol=protocol, progress=progress, descriptors=descriptors)
            record["fold_ids"] = fold_ids
            path.write_text(json.dumps(record))
            records[name] = record
        for path in sorted(store.glob(f"{protocol}_*.json")):  # candidates of earlier calls on the same folds
            name = path.stem[len(protocol) + 1 :]
            if name not in records:
                stored = json.loads(path.read_text())
                if stored.get("fold_ids") == fold_ids:
                    records[name] = stored
        rank = {name: k for k, name in enumerate((RIDGE, *order))}
        records = dict(sorted(records.items(), key=lambda item: rank.get(item[0], len(rank))))
        result: dict = {"fold_sizes": [len(f) for f in test_folds], "candidates": {}}
        for name, record in records.items():
            result["candidates"][name] = _entry(record=record, ratings=ratings, pooling_grid=pooling_grid,
                                                descriptors=descriptors)
            predictions[f"{protocol}/{name}/emotion"] = np.array(record["oof_emotion"])
            if "oof_mid" in record:
                predictions[f"{protocol}/{name}/mid"] = np.array(record["oof_mid"])
        for name, record in records.items():  # per-fold files as `mer-live-train cv` writes them (for descriptors --cv)
            if "oof_mid" in record:
                _write_fold_files(folder=out_dir / f"{protocol}_{name}", fold_ids=fold_ids, dataset=dataset,
                                  record=record)
        heads_run = [name for name in records if name != RIDGE]
        if heads_run:  # nested: per outer fold, the head candidate with the best inner-validation r
            picks = [max(heads_run, key=lambda n: records[n]["inner_val_r"][k]) for k in range(num_folds)]
            result["nested"] = _nested(records=records, candidates=heads_run, picks=picks)
            # nested declared choice: the rule applied per outer fold to the inner-validation clips only
            picks = [declared_choice(r={n: records[n]["inner_val_r"][k] for n in heads_run},
                                     passing={n: records[n]["inner_val_validity_passing"][k] for n in heads_run})
                     for k in range(num_folds)]
            result["nested_declared"] = _nested(records=records, candidates=heads_run, picks=picks)
            heads = {n: result["candidates"][n] for n in heads_run}
            result["declared_choice"] = declared_choice(r={n: e["clip_r_avg"] for n, e in heads.items()},
                                                        passing={n: e["validity"]["passing"] for n, e in heads.items()})
        summary["protocols"][protocol] = result
        if progress:
            for name, entry in result["candidates"].items():
                validity = f", validity {entry['validity']['passing']}/7" if "validity" in entry else ""
                print(f"{protocol} {name}: clip r {entry['clip_r_avg']:.3f} ± {entry['clip_r_avg_fold_std']:.3f}"
                      f"{validity}", flush=True)
    (out_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=1))
    np.savez(out_dir / PREDICTIONS_FILE, ids=np.array(dataset.ids), ratings=ratings, **predictions)
    return summary
