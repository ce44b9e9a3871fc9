"""Recency-weighted pooling of v2 patch outputs (numpy only).

A v2 model gives one output row per 3 s patch, and the live daemon computes a patch every
``patch_hop_frames`` mel frames. A reading pools the last ``patches`` patch outputs with weights that
halve every ``halflife_s`` seconds of age (the newest patch has weight 1):

    pooled = sum_k w_k * out_k / sum_k w_k,   w_k = 0.5 ** (age_k / halflife_s)

A weighted mean is linear, so the pooled emotion is the Joint layer of the pooled mid-level values,
and the explanations still add up exactly. The settings travel in the model's metadata
(``mer_live.pooling``, JSON ``{"patch_hop_frames": H, "patches": K, "halflife_s": T}``; ``T`` null or
0 means a plain mean), chosen by the training side on held-out data.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np

from mer_live.features import mel

MAX_PATCHES = 1000


@dataclass(frozen=True)
class Pooling:
    """How patch outputs are pooled: a patch every ``patch_hop_frames`` mel frames, the last
    ``patches`` of them, weights halving every ``halflife_s`` seconds (None: equal weights)."""

    patch_hop_frames: int
    patches: int
    halflife_s: float | None

    def __post_init__(self) -> None:
        if not (isinstance(self.patch_hop_frames, int) and 1 <= self.patch_hop_frames <= mel.PATCH_FRAMES):
            raise ValueError(f"patch_hop_frames must be an integer 1-{mel.PATCH_FRAMES}, got {self.patch_hop_frames!r}")
        if not (isinstance(self.patches, int) and 1 <= self.patches <= MAX_PATCHES):
            raise ValueError(f"patches must be an integer 1-{MAX_PATCHES}, got {self.patches!r}")
        if self.halflife_s is not None and not (math.isfinite(self.halflife_s) and self.halflife_s >= 0.0):
            raise ValueError(f"halflife_s must be a number >= 0 or null, got {self.halflife_s!r}")

    @property
    def hop_seconds(self) -> float:
        return self.patch_hop_frames / mel.FPS

    @staticmethod
    def from_json(text: str) -> "Pooling":
        """Parse the metadata value; raises ValueError naming what is wrong."""
        try:
            values = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"pooling metadata is not JSON ({error})") from error
        if not isinstance(values, dict) or set(values) != {"patch_hop_frames", "patches", "halflife_s"}:
            raise ValueError("pooling metadata must hold exactly patch_hop_frames, patches and halflife_s")
        halflife = values["halflife_s"]
        return Pooling(
            patch_hop_frames=values["patch_hop_frames"],
            patches=values["patches"],
            halflife_s=None if halflife in (None, 0, 0.0) else float(halflife),
        )

    def to_json(self) -> str:
        return json.dumps({"patch_hop_frames": self.patch_hop_frames, "patches": self.patches, "halflife_s": self.halflife_s})

    def weights(self, *, count: int) -> np.ndarray:
        """Weights of the last ``count`` patches, oldest first, ``(count,)``; the newest has weight 1."""
        return recency_weights(count=count, hop_s=self.hop_seconds, halflife_s=self.halflife_s)


def recency_weights(*, count: int, hop_s: float, halflife_s: float | None) -> np.ndarray:
    """Weights ``(count,)`` of patches ``hop_s`` apart, oldest first: the newest has weight 1, and a
    weight halves every ``halflife_s`` seconds of age (None or 0: equal weights). Not normalised."""
    if not halflife_s:
        return np.ones(count, dtype=np.float64)
    ages = (count - 1 - np.arange(count)) * hop_s
    return 0.5 ** (ages / halflife_s)


def pool(outputs: np.ndarray, *, pooling: Pooling) -> np.ndarray:
    """The pooled row of the last ``pooling.patches`` rows of ``outputs`` ``(num_patches, k)``, oldest
    first: ``(k,)`` float64."""
    recent = np.asarray(outputs, dtype=np.float64)[-pooling.patches :]
    if len(recent) == 0:
        raise ValueError("nothing to pool")
    weights = pooling.weights(count=len(recent))
    return weights @ recent / weights.sum()


class PatchPool:
    """The last ``pooling.patches`` patch outputs ``(k,)``, in a preallocated ring, and their pooled row."""

    def __init__(self, *, pooling: Pooling, size: int) -> None:
        self._pooling = pooling
        self._rows = np.zeros((pooling.patches, size), dtype=np.float64)
        self._count = 0  # patches seen since the last reset

    @property
    def count(self) -> int:
        return self._count

    def process(self, *, row: np.ndarray) -> None:
        """Add the output ``(k,)`` of the newest patch."""
        self._rows[self._count % self._pooling.patches] = row
        self._count += 1

    def pooled(self) -> np.ndarray:
        """The recency-weighted mean ``(k,)`` of the patches held (exactly :func:`pool` of them)."""
        held = min(self._count, self._pooling.patches)
        order = (self._count - held + np.arange(held)) % self._pooling.patches  # oldest first
        return pool(self._rows[order], pooling=self._pooling)

    def reset(self) -> None:
        self._rows[:] = 0.0
        self._count = 0

    def close(self) -> None:
        self.reset()
