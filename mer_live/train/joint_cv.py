"""The v3 cross-validation: every candidate, out of fold, on Soundtracks (album-grouped) and 4q-dev at once.

Outer fold ``k`` holds out Soundtracks album-grouped fold ``k`` (:mod:`.folds`, the v2 folds) AND 4q-dev
quadrant-stratified fold ``k`` (:func:`.crossgenre.stratified_folds`); a candidate is trained on the other
folds of both (its settings chosen by inner CV inside them, :func:`.multidomain.choose`) and predicts both
held-out folds. Reported per candidate, from the pooled out-of-fold predictions:

* Soundtracks: mean r per fold (and its mean, as v2's CV), pooled r per emotion, target classification,
  the mid-level<->emotion output table against the human one, mid-level validity against descriptors;
* 4q-dev: arousal AUC (energy), valence AUC (valence), quadrant accuracy and confusion, the output table
  against the human one;
* the declared score (:func:`.multidomain.score`) and the declared choice (:func:`declared_choice`).

Baselines in the same table: ``ridge`` (mean + std of the MTT penultimate layer, ridge by inner CV, Soundtracks
only: the issue's baseline), ``logistic_mtt`` / ``logistic_both`` (the issue's floor: one logistic regression
per sign on 4q-dev, L2 by inner CV; no Soundtracks outputs), and the shipped ``v1`` and ``v2`` models, which
never saw 4q-dev (their 4q-dev figures are held out by construction; their Soundtracks CV figures are those of
their own CV runs in ``models/metrics.json``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from mer_live.core import labels
from mer_live.train import soundtracks
from . import crossgenre
from . import folds as folds_module
from .multidomain import Domains, JointConfig, fit_chosen, mean_r, score

SUMMARY_FILE = "summary.json"
PREDICTIONS_FILE = "predictions.npz"
RIDGE = "ridge"
LOGISTIC = "logistic_"
LOGISTIC_DECAYS = tuple(10.0 ** np.arange(-4, 0.5, 0.5))
CHOICE_TOLERANCE = 0.002  # declared: scores this close are a tie, won by the candidate with fewer backbones
VALENCE = labels.EMOTIONS.index("valence")
ENERGY = labels.EMOTIONS.index("energy")


def clip_mean(clips) -> np.ndarray:
    """Per-clip mean of the penultimate layer over patches: ``(n, 200)``."""
    return np.stack([c.penultimate.mean(axis=0) for c in clips])


def clip_mean_std(clips) -> np.ndarray:
    """Per-clip mean and std of the penultimate layer over patches: ``(n, 400)``."""
    return np.stack([np.concatenate([c.penultimate.mean(axis=0), c.penultimate.std(axis=0)]) for c in clips])


def declared_choice(*, scores: dict[str, float], backbones: dict[str, int], eligible: dict[str, bool]) -> str:
    """The declared rule (configs/train_v3.toml): among the eligible candidates, the best score; scores within
    ``CHOICE_TOLERANCE`` of the best are a tie, won by the fewest backbones, then by the score."""
    pool = {name: value for name, value in scores.items() if eligible.get(name, False) and np.isfinite(value)}
    if not pool:
        raise ValueError("no eligible candidate")
    best = max(pool.values())
    close = [name for name, value in pool.items() if value >= best - CHOICE_TOLERANCE]
    return min(close, key=lambda name: (backbones[name], -pool[name]))


def _logistic(*, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, decay: float) -> np.ndarray:
    import torch

    torch.set_num_threads(1)
    x_train, x_test = np.asarray(x_train, dtype=np.float64), np.asarray(x_test, dtype=np.float64)
    mean, std = x_train.mean(axis=0), np.maximum(x_train.std(axis=0), 1e-6)
    xs = torch.tensor((x_train - mean) / std)
    xt = torch.tensor((x_test - mean) / std)
    y = torch.tensor(y_train.astype(np.float64))
    w = torch.zeros(xs.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimiser = torch.optim.LBFGS([w, b], max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        optimiser.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(xs @ w + b, y) + decay * (w ** 2).sum()
        loss.backward()
        return loss

    optimiser.step(closure)
    return (xt @ w + b).detach().numpy()


def logistic_predict(*, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, quadrants, seed: int,
                     inner: int = 3) -> tuple[np.ndarray, float]:
    """One logistic regression (boolean ``y_train``), its L2 weight by inner-CV AUC (stratified by quadrant)."""
    folds = crossgenre.stratified_folds(quadrants=quadrants, num_folds=inner, seed=seed)
    aucs = []
    for decay in LOGISTIC_DECAYS:
        values = []
        for test in folds:
            train = np.setdiff1d(np.arange(len(y_train)), test)
            values.append(crossgenre.auc(scores=_logistic(x_train=x_train[train], y_train=y_train[train],
                                                          x_test=x_train[test], decay=decay), positive=y_train[test]))
        aucs.append(np.nanmean(values) if np.isfinite(values).any() else -np.inf)  # a tiny fold may lack a class
    decay = float(LOGISTIC_DECAYS[int(np.argmax(aucs))])
    return _logistic(x_train=x_train, y_train=y_train, x_test=x_test, decay=decay), decay


def _paired_folds(*, dataset: soundtracks.Soundtracks, fourq: crossgenre.FourQ, num_folds: int, fold_seed: int,
                  fourq_seed: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    st = folds_module.protocol_folds(dataset=dataset, protocol=folds_module.ALBUM, num_folds=num_folds, seed=fold_seed)
    q = crossgenre.stratified_folds(quadrants=fourq.quadrants, num_folds=num_folds, seed=fourq_seed)
    return st, q


def _rest(folds: list[np.ndarray], k: int) -> np.ndarray:
    return np.sort(np.concatenate([f for j, f in enumerate(folds) if j != k]))


def summarise(*, st_emotion: np.ndarray | None, st_mid: np.ndarray | None, q_emotion: np.ndarray | None,
              q_mid: np.ndarray | None, dataset: soundtracks.Soundtracks, fourq: crossgenre.FourQ,
              st_folds: list[np.ndarray], human: np.ndarray, descriptors: np.ndarray | None) -> dict:
    """Every reported measure of one row's out-of-fold (or held-out) predictions; absent parts are skipped."""
    entry: dict = {}
    if st_emotion is not None:
        ratings = dataset.ratings
        per_fold = [mean_r(predicted=st_emotion[f], actual=ratings[f]) for f in st_folds]
        entry["soundtracks"] = {
            "album_r": float(np.mean(per_fold)), "album_r_per_fold": per_fold,
            "album_r_fold_std": float(np.std(per_fold)),
            "pooled_r": dict(zip(labels.EMOTIONS, [soundtracks.pearson(x=st_emotion[:, e], y=ratings[:, e])
                                                   for e in range(labels.NUM_EMOTIONS)])),
            "classification": crossgenre.target_classification(emotion=st_emotion,
                                                               targets=[c.target for c in dataset.clips]),
        }
        if st_mid is not None:
            entry["soundtracks"]["table_match"] = crossgenre.table_match(mid=st_mid, emotion=st_emotion, reference=human)
            if descriptors is not None:
                from .descriptors import validity_table

                entry["soundtracks"]["validity"] = validity_table(st_mid, descriptors)
    if q_emotion is not None:
        entry["fourq"] = crossgenre.sign_scores(valence=q_emotion[:, VALENCE], energy=q_emotion[:, ENERGY], data=fourq)
        if q_mid is not None:
            entry["fourq"]["table_match"] = crossgenre.table_match(mid=q_mid, emotion=q_emotion, reference=human)
    if "soundtracks" in entry and "fourq" in entry:
        entry["score"] = score(st_r=entry["soundtracks"]["album_r"], arousal_auc=entry["fourq"]["arousal_auc"],
                               valence_auc=entry["fourq"]["valence_auc"])
    return entry


def run(*, dataset: soundtracks.Soundtracks, fourq: crossgenre.FourQ, st_sets: dict, q_sets: dict,
        candidates: dict[str, JointConfig], num_folds: int, fold_seed: int, fourq_seed: int, out_dir: Path,
        command: str = "", references: dict | None = None, descriptors: np.ndarray | None = None,
        eligible: dict[str, bool] | None = None, progress: bool = True, jobs: int = 1, baselines: bool = True,
        earlier: dict | None = None) -> dict:
    """Cross-validate the candidates and the baselines; write ``summary.json`` and ``predictions.npz``.

    ``st_sets`` / ``q_sets``: per backbone (``mtt``, ``msd``), the clips' embeddings (``ClipEmbeddings``) of
    Soundtracks and 4q-dev, in ``dataset`` / ``fourq`` order. ``references``: held-out rows computed elsewhere
    (``{"v1": {"q_emotion": (600, 8), "q_mid": ..., "soundtracks": {...}}}``). ``eligible``: per candidate,
    whether the declared rule may pick it (default: all). ``jobs`` > 1: the candidates' folds run in that many
    worker processes (the results do not depend on it). ``earlier``: a finished run on the same folds
    (``{"summary": ..., "predictions": {...}}``) whose rows are kept (baselines and candidates not run now);
    ``baselines=False`` then skips recomputing them. The declared choice covers every candidate row."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    human = soundtracks.mid_emotion_correlation(root=dataset.root)
    poster = soundtracks.poster_weights(root=dataset.root)
    albums = folds_module.albums(dataset=dataset)
    st_folds, q_folds = _paired_folds(dataset=dataset, fourq=fourq, num_folds=num_folds, fold_seed=fold_seed,
                                      fourq_seed=fourq_seed)
    ratings = dataset.ratings
    common = dict(dataset=dataset, fourq=fourq, st_folds=st_folds, human=human)
    rows: dict[str, dict] = {}
    predictions: dict[str, np.ndarray] = {}

    # the candidates: one task per (candidate, outer fold), in worker processes (spawned: torch and fork do
    # not mix) while the baselines run here
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    features = {}
    tasks = {}
    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) if jobs > 1 else None
    for name, config in candidates.items():
        st_x = np.concatenate([clip_mean(st_sets[b]) for b in config.backbones], axis=1)
        q_x = np.concatenate([clip_mean(q_sets[b]) for b in config.backbones], axis=1)
        features[name] = (st_x, q_x)
        domains = Domains(st_x=st_x, st_y=ratings, st_albums=albums, q_x=q_x, q_data=fourq)
        for k in range(num_folds):
            task = (config, domains.take(st=_rest(st_folds, k), q=_rest(q_folds, k)), st_x[st_folds[k]],
                    q_x[q_folds[k]], human, poster)
            tasks[name, k] = pool.submit(_fold_task, *task) if pool else task
    started = time.perf_counter()

    if baselines:
        # baselines: ridge (Soundtracks only) and the per-sign logistic floor (4q-dev only)
        from .embedding_cv import ridge_predict

        st_ms = clip_mean_std(st_sets["mtt"])
        q_ms = clip_mean_std(q_sets["mtt"])
        st_out, q_out = np.zeros_like(ratings), np.zeros((len(fourq.files), labels.NUM_EMOTIONS))
        for k in range(num_folds):
            train = _rest(st_folds, k)
            both, _ = ridge_predict(x_train=st_ms[train], y_train=ratings[train],
                                    x_test=np.concatenate([st_ms[st_folds[k]], q_ms[q_folds[k]]]), seed=fold_seed + k)
            st_out[st_folds[k]], q_out[q_folds[k]] = both[: len(st_folds[k])], both[len(st_folds[k]) :]
        rows[RIDGE] = summarise(st_emotion=st_out, st_mid=None, q_emotion=q_out, q_mid=None, descriptors=None, **common)
        predictions[f"{RIDGE}/st_emotion"], predictions[f"{RIDGE}/q_emotion"] = st_out, q_out
        floors = {"mtt": q_ms}
        if "msd" in q_sets:
            floors["both"] = np.concatenate([q_ms, clip_mean_std(q_sets["msd"])], axis=1)
        for name, x in floors.items():
            q_out = np.zeros((len(fourq.files), labels.NUM_EMOTIONS))
            for k in range(num_folds):
                train = _rest(q_folds, k)
                quadrants = [fourq.quadrants[i] for i in train]
                for column, sign in ((VALENCE, fourq.valence_sign), (ENERGY, fourq.arousal_sign)):
                    q_out[q_folds[k], column], _ = logistic_predict(x_train=x[train], y_train=sign[train] > 0,
                                                                    x_test=x[q_folds[k]], quadrants=quadrants, seed=k)
            rows[LOGISTIC + name] = summarise(st_emotion=None, st_mid=None, q_emotion=q_out, q_mid=None,
                                              descriptors=None, **common)
            predictions[f"{LOGISTIC}{name}/q_emotion"] = q_out
            if progress:
                print(f"{LOGISTIC}{name}: {_line(rows[LOGISTIC + name])}", flush=True)
        if progress:
            print(f"{RIDGE}: {_line(rows[RIDGE])}", flush=True)
        for name, reference in (references or {}).items():
            rows[name] = summarise(st_emotion=None, st_mid=None, q_emotion=reference.get("q_emotion"),
                                   q_mid=reference.get("q_mid"), descriptors=None, **common)
            if "soundtracks" in reference:  # figures of the model's own CV run
                rows[name]["soundtracks"] = reference["soundtracks"]
                rows[name]["score"] = score(st_r=reference["soundtracks"]["album_r"],
                                            arousal_auc=rows[name]["fourq"]["arousal_auc"],
                                            valence_auc=rows[name]["fourq"]["valence_auc"])
            if progress:
                print(f"{name}: {_line(rows[name])}", flush=True)

    for name, config in candidates.items():
        st_x, q_x = features[name]
        st_emotion, st_mid = np.zeros_like(ratings), np.zeros((len(ratings), labels.NUM_MID_LEVELS))
        q_emotion = np.zeros((len(fourq.files), labels.NUM_EMOTIONS))
        q_mid = np.zeros((len(fourq.files), labels.NUM_MID_LEVELS))
        chosen = []
        for k in range(num_folds):
            task = tasks[name, k]
            done = task.result() if pool else _fold_task(*task)
            st_mid[st_folds[k]], st_emotion[st_folds[k]], q_mid[q_folds[k]], q_emotion[q_folds[k]], settings = done
            chosen.append(settings)
        rows[name] = summarise(st_emotion=st_emotion, st_mid=st_mid, q_emotion=q_emotion, q_mid=q_mid,
                               descriptors=descriptors, **common)
        rows[name]["config"] = config.to_dict()
        rows[name]["inner_choices"] = chosen
        for part, values in (("st_emotion", st_emotion), ("st_mid", st_mid), ("q_emotion", q_emotion), ("q_mid", q_mid)):
            predictions[f"{name}/{part}"] = values
        if progress:
            print(f"{name}: {_line(rows[name])} ({time.perf_counter() - started:.0f} s since the start)", flush=True)
    if pool:
        pool.shutdown()

    if earlier:
        if earlier["summary"]["fourq_files"] != list(fourq.files) or earlier["summary"]["soundtracks_ids"] != dataset.ids:
            raise ValueError("the earlier run used other clips")
        kept = {n: r for n, r in earlier["summary"]["rows"].items() if n not in rows}
        rows = {**kept, **rows}
        predictions = {**{k: v for k, v in earlier["predictions"].items() if k.split("/")[0] in kept}, **predictions}
        names = [n for n in earlier["summary"]["candidates"] if n not in candidates] + list(candidates)
        earlier_backbones = {n: len(rows[n]["config"]["backbones"]) for n in names}
    else:
        names, earlier_backbones = list(candidates), {}
    backbones = {**earlier_backbones, **{n: len(c.backbones) for n, c in candidates.items()}}
    eligible = {name: True for name in names} if eligible is None else {n: eligible.get(n, False) for n in names}
    choice = declared_choice(scores={n: rows[n]["score"] for n in names}, backbones=backbones, eligible=eligible)
    summary = {"command": command, "num_folds": num_folds, "fold_seed": fold_seed, "fourq_seed": fourq_seed,
               "soundtracks_ids": dataset.ids, "fourq_files": list(fourq.files),
               "st_fold_sizes": [len(f) for f in st_folds], "q_fold_sizes": [len(f) for f in q_folds],
               "candidates": names, "eligible": eligible, "declared_choice": choice, "rows": rows,
               "commands": [*(earlier["summary"].get("commands", [earlier["summary"]["command"]]) if earlier else []),
                            command]}
    (out_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=1))
    np.savez(out_dir / PREDICTIONS_FILE, **predictions)
    if progress:
        print(f"declared choice: {choice}", flush=True)
    return summary


def add_validity(*, out_dir: Path, descriptors: np.ndarray) -> dict:
    """Add the mid-level validity (against the Soundtracks descriptors ``(360, 7)``, in clip order) to every row
    of a finished run that has out-of-fold mid-level outputs; rewrites ``summary.json``."""
    from .descriptors import validity_table

    summary = json.loads((Path(out_dir) / SUMMARY_FILE).read_text())
    with np.load(Path(out_dir) / PREDICTIONS_FILE) as stored:
        for name, row in summary["rows"].items():
            if f"{name}/st_mid" in stored and "soundtracks" in row:
                row["soundtracks"]["validity"] = validity_table(stored[f"{name}/st_mid"], descriptors)
    (Path(out_dir) / SUMMARY_FILE).write_text(json.dumps(summary, indent=1))
    return summary


def _fold_task(config: JointConfig, train: Domains, st_test: np.ndarray, q_test: np.ndarray, human: np.ndarray,
               poster: np.ndarray) -> tuple:
    """One outer fold of one candidate: settings by inner CV on ``train``, then its held-out predictions
    ``(st mid, st emotion, q mid, q emotion, settings)``."""
    head = fit_chosen(config=config, domains=train, correlation=human, poster=poster)
    return (*head.predict(st_test), *head.predict(q_test), head.settings)


def _line(row: dict) -> str:
    parts = []
    if "soundtracks" in row:
        parts.append(f"album r {row['soundtracks']['album_r']:.3f}")
    if "fourq" in row:
        q = row["fourq"]
        parts.append(f"4q arousal AUC {q['arousal_auc']:.3f} valence AUC {q['valence_auc']:.3f} "
                     f"quadrants {q['quadrant_accuracy']:.3f}")
    if "score" in row:
        parts.append(f"score {row['score']:.4f}")
    return ", ".join(parts)
