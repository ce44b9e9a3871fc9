"""The two cross-validation protocols: the paper's (stratified by target emotion) and grouped by album.

* ``paper``: 5 folds stratified by the clips' TARGET category, seeded (:func:`make_folds`, the
  folds of the v1 CV run);
* ``album``: 5 folds in which every album of ``set1_tracklist.csv`` (47 albums) lies in one fold only, so
  no film has clips on both sides of a split. Albums are shuffled with the seed, then placed largest
  first into the fold with the fewest clips so far.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from mer_live.train import soundtracks

TRACKLIST_FILE = "set1_tracklist.csv"
TRACKLIST_ID_COLUMN = "Nro"
TRACKLIST_ALBUM_COLUMN = "Album name"
PAPER = "paper"
ALBUM = "album"
PROTOCOLS = (PAPER, ALBUM)


def albums(*, dataset: soundtracks.Soundtracks) -> list[str]:
    """The album of every clip of ``dataset``, in clip order."""
    path = Path(dataset.root) / soundtracks.SOUNDTRACKS_DIR / TRACKLIST_FILE
    if not path.is_file():
        raise soundtracks.DataError(f"{path}: not found")
    with path.open(newline="", encoding=soundtracks.CSV_ENCODING) as handle:
        by_id = {row[TRACKLIST_ID_COLUMN].strip(): row[TRACKLIST_ALBUM_COLUMN].strip() for row in csv.DictReader(handle)}
    missing = [clip.clip_id for clip in dataset.clips if clip.clip_id not in by_id]
    if missing:
        raise soundtracks.DataError(f"{path}: no album for clip(s) {', '.join(missing[:5])}")
    return [by_id[clip.clip_id] for clip in dataset.clips]


def make_folds(*, targets: list[str], num_folds: int, seed: int) -> list[np.ndarray]:
    """Test indices of each fold, stratified by the clips' TARGET category, seeded."""
    rng = np.random.default_rng(seed)
    assignment = np.zeros(len(targets), dtype=np.int64)
    offset = 0
    for category in sorted(set(targets)):
        members = rng.permutation([i for i, t in enumerate(targets) if t == category])
        assignment[members] = (np.arange(len(members)) + offset) % num_folds
        offset += len(members)
    return [np.flatnonzero(assignment == k) for k in range(num_folds)]


def make_group_folds(*, groups: list[str], num_folds: int, seed: int) -> list[np.ndarray]:
    """Test indices of each fold; all members of a group share a fold; folds balanced by clip count."""
    rng = np.random.default_rng(seed)
    names = sorted(set(groups))
    names = [names[i] for i in rng.permutation(len(names))]
    members = {name: [i for i, g in enumerate(groups) if g == name] for name in names}
    names.sort(key=lambda name: -len(members[name]))  # stable: ties keep the shuffled order
    assignment = np.zeros(len(groups), dtype=np.int64)
    sizes = np.zeros(num_folds, dtype=np.int64)
    for name in names:
        fold = int(np.argmin(sizes))
        assignment[members[name]] = fold
        sizes[fold] += len(members[name])
    return [np.flatnonzero(assignment == k) for k in range(num_folds)]


def protocol_folds(*, dataset: soundtracks.Soundtracks, protocol: str, num_folds: int, seed: int) -> list[np.ndarray]:
    if protocol == PAPER:
        return make_folds(targets=[clip.target for clip in dataset.clips], num_folds=num_folds, seed=seed)
    if protocol == ALBUM:
        return make_group_folds(groups=albums(dataset=dataset), num_folds=num_folds, seed=seed)
    raise ValueError(f"unknown CV protocol {protocol!r}; choose from {', '.join(PROTOCOLS)}")
