"""Parity of the default v2 path (its INT8 pack) against the float model, clip by clip, and the headline figures.

Issue 24's rule: a path that is not the float model on full windows is the default only if, between
clip-level values (the mean over a file's analyze windows, as ``mer-live analyze`` writes them), Pearson r
>= 0.995 for every output (8 emotions and 7 mid-level features in sent 0-1 units, and the 56
contributions of :mod:`mer_live.model.explanation`) and no clip differs by more than 0.02, on the first
``--clips`` Soundtracks clips (the speed benchmark's) and on every 4Q-dev clip. The same run recomputes the
headline figures with both paths: Pearson r per emotion against the Soundtracks ratings (``--headline-clips``,
all 360 by default; in sample: the card's figures are cross-validated), and on 4Q-dev r between predicted
valence and energy and the valence and arousal halves.

    python benchmarks/parity.py --out benchmarks/parity.json
"""

from __future__ import annotations

import os

for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import argparse  # noqa: E402
import csv
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from bench import clips, data_dir, report, write

PATHS = ("float", "int8")
MIN_R = 0.995
MAX_ABS = 0.02
DEFAULT_CLIPS = 40
_MODELS: dict = {}


def clip_values(path: str) -> dict[str, np.ndarray]:
    """Per path: a clip's mean sent values ``(15,)`` (8 emotions, 7 mid-levels, clipped per window as analyze
    does) then its mean contributions ``(56,)``."""
    from mer_live.core import labels
    from mer_live.model.emotion_model import EmotionModel
    from mer_live.model.explanation import explain
    from mer_live.audio import FileDecoder
    from mer_live.offline.recipe import RECIPES, KIND_MEL_PATCHES

    if not _MODELS:
        _MODELS.update({precision: EmotionModel(precision=precision) for precision in PATHS})
        assert [_MODELS[p].precision for p in PATHS] == list(PATHS)
    recipe = RECIPES[KIND_MEL_PATCHES]
    frontend = recipe.frontend()
    with FileDecoder(path, sample_rate=recipe.sample_rate) as decoder:
        batches = [batch for block in decoder.blocks() for batch in frontend.process(block)] + frontend.flush()
    out = {}
    for precision, model in _MODELS.items():
        predictions = [model.process(windows=batch.inputs) for batch in batches]
        mid = np.concatenate([p.mid for p in predictions])
        emotion = np.concatenate([p.emotion for p in predictions])
        sent = np.clip(np.concatenate([labels.emotion_to_unit(model_values=emotion), labels.mid_to_unit(model_values=mid)],
                                      axis=1), 0.0, 1.0).mean(axis=0)
        contributions = explain(mid=mid.mean(axis=0), weight=model.weight, bias=model.bias).contributions.reshape(-1)
        out[precision] = np.concatenate([sent, contributions])
    return out


def compare(values: list[dict[str, np.ndarray]]) -> dict:
    """Per output: Pearson r and the largest clip-level difference between the two paths; pass or fail."""
    from mer_live.core import labels

    reference, fast = (np.stack([v[p] for v in values]) for p in PATHS)
    names = list(labels.EMOTIONS) + list(labels.MID_LEVELS)
    names += [f"{e}<-{m}" for e in labels.EMOTIONS for m in labels.MID_LEVELS]
    rows = {}
    for index, name in enumerate(names):
        a, b = reference[:, index], fast[:, index]
        r = 1.0 if np.ptp(a) == 0 and np.array_equal(a, b) else float(np.corrcoef(a, b)[0, 1])
        rows[name] = {"r": r, "max_abs": float(np.max(np.abs(a - b)))}
    worst_r = min(row["r"] for row in rows.values())
    worst_abs = max(row["max_abs"] for row in rows.values())
    return {"clips": len(values), "min_r": worst_r, "max_abs": worst_abs,
            "pass": bool(worst_r >= MIN_R and worst_abs <= MAX_ABS), "outputs": rows}


def headline(values: dict[str, list], *, soundtracks: list[Path], fourq: list[Path]) -> dict:
    """Both paths' Soundtracks r per emotion against the ratings (in-sample) and 4Q-dev sign correlations."""
    from mer_live.core import labels

    ratings = {}
    with (data_dir() / "soundtracks" / "mean_ratings_set1.csv").open(encoding="utf-8-sig") as handle:
        for row in csv.DictReader(handle):
            ratings[f"{int(row['number']):03d}"] = [float(row[e]) for e in labels.EMOTIONS]
    signs = {}
    with (data_dir() / "4q-dev" / "labels.csv").open() as handle:
        for row in csv.DictReader(handle):
            signs[row["file"]] = (int(row["valence_sign"]), int(row["arousal_sign"]))
    truth = np.array([ratings[p.stem] for p in soundtracks])
    quadrant = np.array([signs[p.name] for p in fourq])
    out = {}
    for path in PATHS:
        predicted = np.stack([v[path][: labels.NUM_EMOTIONS] for v in values["soundtracks"]])
        by_emotion = {e: float(np.corrcoef(truth[:, i], predicted[:, i])[0, 1]) for i, e in enumerate(labels.EMOTIONS)}
        four = np.stack([v[path][: labels.NUM_EMOTIONS] for v in values["4q-dev"]])
        out[path] = {"soundtracks_in_sample_r": by_emotion, "soundtracks_in_sample_r_mean": float(np.mean(list(by_emotion.values()))),
                     "4q_valence_r": float(np.corrcoef(quadrant[:, 0], four[:, labels.EMOTIONS.index("valence")])[0, 1]),
                     "4q_arousal_energy_r": float(np.corrcoef(quadrant[:, 1], four[:, labels.EMOTIONS.index("energy")])[0, 1])}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=DEFAULT_CLIPS, help="Soundtracks clips for the parity check")
    parser.add_argument("--fourq", type=int, help="4Q-dev clips (default: all)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--headline-clips", type=int, default=360,
                        help="Soundtracks clips for the headline figures (default: all 360; at least --clips)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    soundtracks = clips("soundtracks", max(args.clips, args.headline_clips))
    sets = {"soundtracks": soundtracks, "4q-dev": clips("4q-dev", args.fourq)}
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        values = {name: list(pool.map(clip_values, map(str, paths), chunksize=4)) for name, paths in sets.items()}
    result = report(rule={"min_r": MIN_R, "max_abs": MAX_ABS}, paths=PATHS)
    result["parity"] = {f"soundtracks_first_{args.clips}": compare(values["soundtracks"][: args.clips]),
                        "4q-dev": compare(values["4q-dev"])}
    result["pass"] = all(part["pass"] for part in result["parity"].values())
    for name, part in result["parity"].items():
        print(f"{name}: {part['clips']} clips, min r {part['min_r']:.5f}, max |diff| {part['max_abs']:.4f}: "
              f"{'pass' if part['pass'] else 'FAIL'}")
    result["headline"] = figures = headline(values, soundtracks=sets["soundtracks"], fourq=sets["4q-dev"])
    for path, row in figures.items():
        print(f"{path}: Soundtracks ({len(sets['soundtracks'])} clips, in sample) mean r "
              f"{row['soundtracks_in_sample_r_mean']:.4f}, 4Q valence r {row['4q_valence_r']:.4f}, arousal r "
              f"{row['4q_arousal_energy_r']:.4f}")
    write(result, args.out)


if __name__ == "__main__":
    main()
