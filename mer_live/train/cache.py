"""On-disk cache of per-clip front-end frames (never inside the repository).

Each clip's :class:`mer_live.features.spectrogram.FrameBlock` (``linear (num_frames, 149)``, ``power (num_frames,)``)
is stored as ``.npz`` in ``$MER_CACHE_DIR`` (default ``~/.cache/mer-live``), named by the SHA-256 of the
audio file and a front-end version string, so a changed file or a changed front-end never reuses stale
features.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
from tqdm import tqdm

from mer_live.audio import load_audio
from mer_live.features import spectrogram

CACHE_ENV = "MER_CACHE_DIR"
DEFAULT_CACHE = Path.home() / ".cache" / "mer-live"
CACHE_FORMAT = 1
HASH_CHUNK = 1 << 20
VERSION_DIGITS = 16


def cache_dir() -> Path:
    override = os.environ.get(CACHE_ENV)
    return Path(override) if override else DEFAULT_CACHE


def frontend_version() -> str:
    """A short digest of the front-end constants and the cache format."""
    text = json.dumps({"format": CACHE_FORMAT, **spectrogram.FRONTEND_CONSTANTS}, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:VERSION_DIGITS]


def file_hash(*, path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(HASH_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def cache_path(*, path: Path, directory: Path | None = None) -> Path:
    directory = cache_dir() if directory is None else Path(directory)
    return directory / f"{file_hash(path=path)}-{frontend_version()}.npz"


def frames_for(*, path: Path, directory: Path | None = None) -> spectrogram.FrameBlock:
    """The clip's frames, from the cache if present, else analysed and stored."""
    target = cache_path(path=path, directory=directory)
    if target.is_file():
        with np.load(target) as stored:
            return spectrogram.FrameBlock(linear=stored["linear"], power=stored["power"])
    block = spectrogram.analyse(samples=load_audio(path=path))
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(target.name + ".tmp.npz")
    np.savez(temporary, linear=block.linear, power=block.power)
    temporary.replace(target)
    return block


def load_all(
    *, paths: list[Path], directory: Path | None = None, progress: bool = True
) -> list[spectrogram.FrameBlock]:
    """Frames of every clip in ``paths`` order (building missing cache entries)."""
    return [
        frames_for(path=path, directory=directory)
        for path in tqdm(paths, desc="spectrograms", unit="clip", disable=not progress)
    ]
