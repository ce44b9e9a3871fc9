"""Cross-genre evaluation: the 4q-dev set (600 clips of the 4Q data set, 150 per valence/arousal quadrant) and
the measures that every v3 candidate is scored with, beside the Soundtracks CV.

* :func:`load` reads ``$MER_DATA_DIR/4q-dev/labels.csv`` (``file, quadrant, valence_sign, arousal_sign``);
* :func:`stratified_folds`: test folds stratified by quadrant, seeded (the issue's protocol: 5 folds, seed 0);
* :func:`sign_scores`: from clip predictions ``valence`` and ``energy`` ``(n,)``: the arousal AUC of energy
  against the arousal sign, the valence AUC of valence against the valence sign, and the quadrant accuracy
  when each output is split at its median over the scored clips, with the 4x4 confusion (rows: true
  quadrant Q1-Q4, columns: predicted);
* :func:`target_classification`: Soundtracks' own target labels, out of fold: the 5 discrete targets
  (anger, fear, happy, sad, tender) by argmax of the 5 discrete outputs, and the 6 dimensional poles (high/low
  valence, energy, tension) by a median split of that output over all 360 clips;
* :func:`table_match`: a model's own 7x8 correlation between its mid-level and emotion outputs over clips,
  against a reference table (the human one): Pearson r over the 56 cells and how many signs agree.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mer_live.core import labels
from mer_live.train import soundtracks

FOURQ_DIR = "4q-dev"
LABELS_FILE = "labels.csv"
AUDIO_DIR = "audio"
QUADRANTS = ("Q1", "Q2", "Q3", "Q4")  # +v+a, -v+a, -v-a, +v-a
QUADRANT_SIGNS = {"Q1": (1, 1), "Q2": (-1, 1), "Q3": (-1, -1), "Q4": (1, -1)}  # (valence, arousal)
DISCRETE_TARGETS = ("ANGER", "FEAR", "HAPPY", "SAD", "TENDER")
POLE_TARGETS = {"VALENCE": "valence", "ENERGY": "energy", "TENSION": "tension"}  # HIGH/LOW <name>


@dataclass(frozen=True)
class FourQ:
    """The 4q-dev clips in file order: paths, quadrant labels and the two signs (+1/-1), ``(n,)`` each."""

    root: Path
    files: tuple[str, ...]
    quadrants: tuple[str, ...]
    valence_sign: np.ndarray
    arousal_sign: np.ndarray

    @property
    def paths(self) -> list[Path]:
        return [self.root / FOURQ_DIR / AUDIO_DIR / name for name in self.files]

    def subset(self, *, indices) -> "FourQ":
        indices = [int(i) for i in indices]
        return FourQ(root=self.root, files=tuple(self.files[i] for i in indices),
                     quadrants=tuple(self.quadrants[i] for i in indices),
                     valence_sign=self.valence_sign[indices], arousal_sign=self.arousal_sign[indices])


def load(*, root: Path | None = None) -> FourQ:
    """Read ``4q-dev/labels.csv`` (sorted by file name); a row whose signs contradict its quadrant is an error."""
    root = soundtracks.data_dir() if root is None else Path(root)
    path = root / FOURQ_DIR / LABELS_FILE
    if not path.is_file():
        raise soundtracks.DataError(f"{path}: not found (set MER_DATA_DIR to the data directory)")
    with path.open(newline="", encoding=soundtracks.CSV_ENCODING) as handle:
        rows = sorted(csv.DictReader(handle), key=lambda row: row["file"])
    for row in rows:
        signs = (int(row["valence_sign"]), int(row["arousal_sign"]))
        if QUADRANT_SIGNS.get(row["quadrant"]) != signs:
            raise soundtracks.DataError(f"{path}: {row['file']}: quadrant {row['quadrant']} with signs {signs}")
    if not rows:
        raise soundtracks.DataError(f"{path}: no clips")
    return FourQ(root=root, files=tuple(r["file"] for r in rows), quadrants=tuple(r["quadrant"] for r in rows),
                 valence_sign=np.array([int(r["valence_sign"]) for r in rows]),
                 arousal_sign=np.array([int(r["arousal_sign"]) for r in rows]))


def stratified_folds(*, quadrants, num_folds: int, seed: int) -> list[np.ndarray]:
    """Test indices of each fold, stratified by quadrant, seeded."""
    from .folds import make_folds

    return make_folds(targets=list(quadrants), num_folds=num_folds, seed=seed)


def auc(*, scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` for the boolean ``positive`` (Mann-Whitney, ties count half)."""
    from scipy.stats import rankdata

    scores = np.asarray(scores, dtype=np.float64)
    positive = np.asarray(positive, dtype=bool)
    count_pos, count_neg = int(positive.sum()), int((~positive).sum())
    if count_pos == 0 or count_neg == 0:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[positive].sum() - count_pos * (count_pos + 1) / 2) / (count_pos * count_neg))


def quadrant_of(*, valence_high: np.ndarray, arousal_high: np.ndarray) -> np.ndarray:
    """Quadrant names for boolean ``(n,)`` high/low valence and arousal."""
    names = np.where(arousal_high, np.where(valence_high, "Q1", "Q2"), np.where(valence_high, "Q4", "Q3"))
    return names.astype(object)


def sign_scores(*, valence: np.ndarray, energy: np.ndarray, data: FourQ) -> dict:
    """The 4q-dev measures of clip predictions ``valence``, ``energy`` ``(n,)`` (any units; ranks only)."""
    valence = np.asarray(valence, dtype=np.float64)
    energy = np.asarray(energy, dtype=np.float64)
    predicted = quadrant_of(valence_high=valence > np.median(valence), arousal_high=energy > np.median(energy))
    truth = np.array(data.quadrants, dtype=object)
    confusion = [[int(np.sum((truth == t) & (predicted == p))) for p in QUADRANTS] for t in QUADRANTS]
    return {
        "arousal_auc": auc(scores=energy, positive=data.arousal_sign > 0),
        "valence_auc": auc(scores=valence, positive=data.valence_sign > 0),
        "quadrant_accuracy": float(np.mean(predicted == truth)),
        "confusion": confusion,
        "num_clips": int(len(valence)),
    }


def target_classification(*, emotion: np.ndarray, targets: list[str]) -> dict:
    """Soundtracks target classification of clip outputs ``emotion`` ``(n, 8)`` (predictions or ratings).

    ``discrete``: share of the clips targeted at one of the 5 discrete emotions whose largest output among
    those 5 is the target; ``poles``: share of the HIGH/LOW valence, energy and tension clips on the right
    side of that output's median over all ``n`` clips."""
    emotion = np.asarray(emotion, dtype=np.float64)
    targets = [t.strip().upper() for t in targets]
    columns = [labels.EMOTIONS.index(t.lower()) for t in DISCRETE_TARGETS]
    chosen = [i for i, t in enumerate(targets) if t in DISCRETE_TARGETS]
    picks = np.array(DISCRETE_TARGETS)[np.argmax(emotion[np.ix_(chosen, columns)], axis=1)]
    discrete = float(np.mean(picks == np.array([targets[i] for i in chosen])))
    correct, total = 0, 0
    for dimension, name in POLE_TARGETS.items():
        rows = [i for i, t in enumerate(targets) if t in (f"HIGH {dimension}", f"LOW {dimension}")]
        column = emotion[:, labels.EMOTIONS.index(name)]
        high = column[rows] > np.median(column)
        correct += int(np.sum(high == np.array([targets[i].startswith("HIGH") for i in rows])))
        total += len(rows)
    return {"discrete": discrete, "discrete_clips": len(chosen), "poles": correct / max(total, 1),
            "pole_clips": total}


def output_table(*, mid: np.ndarray, emotion: np.ndarray) -> np.ndarray:
    """Pearson r between each mid-level output and each emotion output over clips: ``(7, 8)``."""
    mid = np.asarray(mid, dtype=np.float64)
    emotion = np.asarray(emotion, dtype=np.float64)
    return np.array([[soundtracks.pearson(x=mid[:, m], y=emotion[:, e]) for e in range(emotion.shape[1])]
                     for m in range(mid.shape[1])])


def table_match(*, mid: np.ndarray, emotion: np.ndarray, reference: np.ndarray) -> dict:
    """The model's :func:`output_table` against ``reference`` ``(7, 8)``: r over the 56 cells, signs agreeing."""
    table = output_table(mid=mid, emotion=emotion)
    finite = np.isfinite(table)
    return {
        "r": soundtracks.pearson(x=table[finite], y=np.asarray(reference)[finite]) if finite.sum() > 2 else float("nan"),
        "signs_agree": int(np.sum(np.sign(table[finite]) == np.sign(np.asarray(reference)[finite]))),
        "cells": int(table.size),
        "table": table.tolist(),
    }
