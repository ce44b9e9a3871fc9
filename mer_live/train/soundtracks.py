"""The Soundtracks data set (Eerola & Vuoskoski 2011): clip list, ratings, and a hash of both (numpy only).

The data live outside the repository, in ``$MER_DATA_DIR`` (default ``<project root>/../shared/data``):

* ``soundtracks/audio/NNN.mp3``: the 360 set-1 clips;
* ``soundtracks/mean_ratings_set1.csv``: mean ratings (1-9) of the 8 emotions per clip, with a UTF-8 BOM;
* ``soundtracks/mean_ratings_set2.csv``: a second panel's ratings of 110 of the clips; ``link`` is the
  set-1 number;
* ``reference/*.csv``: figures from Chowdhury et al. (2019).

Ratings are returned in model units (rating / 10, see :mod:`mer_live.core.labels`), as ``(num_clips, 8)``
arrays in :data:`mer_live.core.labels.EMOTIONS` order.
"""

from __future__ import annotations

import csv
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mer_live.core import labels

DATA_ENV = "MER_DATA_DIR"
SOUNDTRACKS_DIR = "soundtracks"
REFERENCE_DIR = "reference"
AUDIO_DIR = "audio"
SET1_FILE = "mean_ratings_set1.csv"
SET2_FILE = "mean_ratings_set2.csv"
CHECKSUM_FILE = "SHA256SUMS"
AUDIO_SUFFIX = ".mp3"
SET1_ID_COLUMN = "number"
SET2_LINK_COLUMN = "link"
TARGET_COLUMN = "TARGET"
POSTER_WEIGHTS_FILE = "mid2emo_weights_poster.csv"
MID_EMOTION_CORRELATION_FILE = "midlevel_emotion_annotation_correlation.csv"
PAPER_RESULTS_FILE = "paper_results_pearson.csv"
CSV_ENCODING = "utf-8-sig"  # the ratings files start with a byte-order mark


class DataError(RuntimeError):
    """The data set is missing or malformed."""


def data_dir() -> Path:
    """``$MER_DATA_DIR``, else ``../shared/data`` beside the project root."""
    override = os.environ.get(DATA_ENV)
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[3] / "shared" / "data"


@dataclass(frozen=True)
class Clip:
    """One set-1 clip: its id (``"001"``), audio path, ratings ``(8,)`` in model units, and target label."""

    clip_id: str
    path: Path
    ratings: np.ndarray
    target: str


@dataclass(frozen=True)
class Soundtracks:
    """All set-1 clips in id order. ``ratings``: ``(num_clips, 8)`` model units."""

    root: Path
    clips: tuple[Clip, ...]

    @property
    def ratings(self) -> np.ndarray:
        return np.stack([clip.ratings for clip in self.clips])

    @property
    def ids(self) -> list[str]:
        return [clip.clip_id for clip in self.clips]

    def subset(self, *, indices: np.ndarray | list[int]) -> "Soundtracks":
        return Soundtracks(root=self.root, clips=tuple(self.clips[int(i)] for i in indices))


def _read_rows(*, path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        raise DataError(f"{path}: not found (set {DATA_ENV} to the data directory)")
    with path.open(newline="", encoding=CSV_ENCODING) as handle:
        return list(csv.DictReader(handle))


def _ratings_from_row(*, row: dict[str, str], path: Path) -> np.ndarray:
    """The 8 emotion ratings of one CSV row in model units; column names are matched case-insensitively."""
    lowered = {key.strip().lower(): value for key, value in row.items() if key is not None}
    try:
        values = [float(lowered[name]) for name in labels.EMOTIONS]
    except (KeyError, ValueError) as error:
        raise DataError(f"{path}: bad or missing emotion rating ({error})") from error
    return np.asarray(values, dtype=np.float64) * labels.RATING_TO_MODEL


def load(*, root: Path | None = None) -> Soundtracks:
    """Read set 1: the clip list in id order with ratings in model units."""
    root = data_dir() if root is None else Path(root)
    folder = root / SOUNDTRACKS_DIR
    path = folder / SET1_FILE
    clips = []
    for row in _read_rows(path=path):
        clip_id = row[SET1_ID_COLUMN].strip()
        clips.append(
            Clip(
                clip_id=clip_id,
                path=folder / AUDIO_DIR / f"{clip_id}{AUDIO_SUFFIX}",
                ratings=_ratings_from_row(row=row, path=path),
                target=row.get(TARGET_COLUMN, "").strip(),
            )
        )
    if not clips:
        raise DataError(f"{path}: no clips")
    clips.sort(key=lambda clip: clip.clip_id)
    return Soundtracks(root=root, clips=tuple(clips))


def load_set2(*, root: Path | None = None) -> list[tuple[str, np.ndarray]]:
    """Set 2 rows as ``(set-1 clip id from the link column, ratings (8,) in model units)``, in file order.

    Some set-1 clips are linked from more than one set-2 row; every row is kept.
    """
    root = data_dir() if root is None else Path(root)
    path = root / SOUNDTRACKS_DIR / SET2_FILE
    result: list[tuple[str, np.ndarray]] = []
    for row in _read_rows(path=path):
        try:
            link = f"{int(row[SET2_LINK_COLUMN].strip()):03d}"
        except (KeyError, ValueError) as error:
            raise DataError(f"{path}: bad or missing {SET2_LINK_COLUMN} ({error})") from error
        result.append((link, _ratings_from_row(row=row, path=path)))
    return result


def human_ceiling(*, data: Soundtracks, set2: list[tuple[str, np.ndarray]]) -> dict[str, float]:
    """Pearson r per emotion between the two panels over the set-2 rows whose clip is in ``data``.

    Returns r per emotion, ``"mean"`` over the 8, and ``"num_clips"`` (the number of rating pairs).
    """
    by_id = {clip.clip_id: clip.ratings for clip in data.clips}
    pairs = [(by_id[clip_id], ratings) for clip_id, ratings in set2 if clip_id in by_id]
    if len(pairs) < 3:
        raise DataError("fewer than 3 clips are rated by both panels")
    first = np.stack([a for a, _ in pairs])
    second = np.stack([b for _, b in pairs])
    result = {name: pearson(x=first[:, e], y=second[:, e]) for e, name in enumerate(labels.EMOTIONS)}
    result["mean"] = float(np.mean([result[name] for name in labels.EMOTIONS]))
    result["num_clips"] = float(len(pairs))
    return result


def pearson(*, x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation of two ``(n,)`` vectors (nan if either is constant)."""
    x = np.asarray(x, dtype=np.float64) - np.mean(x)
    y = np.asarray(y, dtype=np.float64) - np.mean(y)
    x_peak, y_peak = float(np.max(np.abs(x), initial=0.0)), float(np.max(np.abs(y), initial=0.0))
    if x_peak == 0.0 or y_peak == 0.0:
        return float("nan")
    x, y = x / x_peak, y / y_peak  # scaled first, so tiny or huge values neither underflow nor overflow
    return float(np.clip(np.sum(x * y) / np.sqrt(np.sum(x * x) * np.sum(y * y)), -1.0, 1.0))


def read_table(*, path: Path) -> tuple[list[str], list[str], np.ndarray]:
    """A reference table: ``(row names, column names, values (rows, columns))``."""
    with Path(path).open(newline="", encoding=CSV_ENCODING) as handle:
        rows = list(csv.reader(handle))
    if len(rows) < 2:
        raise DataError(f"{path}: empty table")
    columns = [name.strip() for name in rows[0][1:]]
    names = [row[0].strip() for row in rows[1:]]
    try:
        values = np.asarray([[float(v) for v in row[1:]] for row in rows[1:]], dtype=np.float64)
    except ValueError as error:
        raise DataError(f"{path}: non-numeric cell ({error})") from error
    return names, columns, values


def mid_emotion_table(*, path: Path) -> np.ndarray:
    """A ``midlevel x emotion`` reference table as ``(7, 8)``, reordered to the label orders."""
    names, columns, values = read_table(path=path)
    try:
        rows = [names.index(name) for name in labels.MID_LEVELS]
        cols = [columns.index(name) for name in labels.EMOTIONS]
    except ValueError as error:
        raise DataError(f"{path}: label missing ({error})") from error
    return values[np.ix_(rows, cols)]


def poster_weights(*, root: Path | None = None) -> np.ndarray:
    """The published Joint layer as ``nn.Linear(7, 8).weight``: ``(8, 7)``."""
    root = data_dir() if root is None else Path(root)
    return mid_emotion_table(path=root / REFERENCE_DIR / POSTER_WEIGHTS_FILE).T.copy()


def mid_emotion_correlation(*, root: Path | None = None) -> np.ndarray:
    """The poster's human mid-level vs emotion correlations, ``(7, 8)``."""
    root = data_dir() if root is None else Path(root)
    return mid_emotion_table(path=root / REFERENCE_DIR / MID_EMOTION_CORRELATION_FILE)


def paper_results(*, root: Path | None = None) -> dict[str, dict[str, float]]:
    """The paper's Pearson r per emotion (and ``avg``) for each model name."""
    root = data_dir() if root is None else Path(root)
    names, columns, values = read_table(path=root / REFERENCE_DIR / PAPER_RESULTS_FILE)
    return {name: dict(zip(columns, (float(v) for v in row))) for name, row in zip(names, values)}


def _audio_checksums(*, root: Path) -> dict[str, str]:
    path = root / SOUNDTRACKS_DIR / CHECKSUM_FILE
    if not path.is_file():
        return {}
    sums = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if len(parts) == 2:
            sums[Path(parts[1]).stem] = parts[0]
    return sums


def data_hash(*, data: Soundtracks) -> str:
    """SHA-256 over the clip list: each clip's id, ratings and (if listed) audio checksum, in order."""
    sums = _audio_checksums(root=data.root)
    digest = hashlib.sha256()
    for clip in data.clips:
        ratings = ",".join(f"{value:.4f}" for value in clip.ratings)
        digest.update(f"{clip.clip_id};{ratings};{sums.get(clip.clip_id, '')}\n".encode("utf-8"))
    return digest.hexdigest()
