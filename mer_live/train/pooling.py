"""Recency-weighted pooling of per-patch outputs, and the step response it implies (numpy).

The v2 model emits one ``mid`` ``(7,)`` and ``emotion`` ``(8,)`` row per 3 s patch; patches start every
``hop_s`` seconds. The live output is the weighted mean of the last ``patches`` rows with weights
``0.5 ** (age / halflife_s)`` (age 0 for the newest patch). A weighted mean commutes with the linear
7->8 layer, so pooled emotion = W · pooled mid + b exactly.
"""

from __future__ import annotations

import numpy as np

from mer_live.model import pooling as runtime_pooling

STEP_PHASES = 50  # phases of the patch grid relative to the step, averaged in :func:`step_times`
STEP_RESOLUTION_S = 0.01


def recency_weights(*, count: int, hop_s: float, halflife_s: float) -> np.ndarray:
    """The run time's weights (:func:`mer_live.model.pooling.recency_weights`) ``(count,)``, oldest first,
    normalised to sum to 1 (``halflife_s <= 0``: uniform)."""
    weights = runtime_pooling.recency_weights(count=count, hop_s=hop_s, halflife_s=max(0.0, halflife_s))
    return weights / weights.sum()


def pool_stream(*, rows: np.ndarray, patches: int, hop_s: float, halflife_s: float) -> np.ndarray:
    """The live output after each patch: ``rows`` ``(num_patches, D)`` -> ``(num_patches, D)``.

    Output ``i`` pools rows ``max(0, i - patches + 1) .. i`` (fewer at the start, as live).
    """
    out = np.empty_like(rows, dtype=np.float64)
    for i in range(len(rows)):
        start = max(0, i - patches + 1)
        weights = recency_weights(count=i + 1 - start, hop_s=hop_s, halflife_s=halflife_s)
        out[i] = weights @ rows[start : i + 1]
    return out


def step_times(*, patches: int, hop_s: float, halflife_s: float, patch_s: float,
               levels: tuple[float, ...] = (0.5, 0.9)) -> dict[str, float]:
    """Seconds after a step in the music until the pooled output covers each of ``levels`` of the step.

    A model-only estimate: each patch is assumed to respond in proportion to the share of new audio it
    holds (the real network is not linear; ``benchmarks/responsiveness.py`` measures the daemon). Averaged
    over the phase of the patch grid relative to the step; no smoother.
    """
    times = np.arange(0.0, patch_s + patches * hop_s + 2 * hop_s, STEP_RESOLUTION_S)
    weights = recency_weights(count=patches, hop_s=hop_s, halflife_s=halflife_s)
    found = {level: [] for level in levels}
    for phase in np.linspace(0.0, hop_s, STEP_PHASES, endpoint=False):
        for level in levels:
            for t in times:
                last_end = phase + np.floor((t - phase) / hop_s) * hop_s  # the newest patch ends at or before t
                ends = last_end - (patches - 1 - np.arange(patches)) * hop_s
                response = float(weights @ np.clip(ends / patch_s, 0.0, 1.0))
                if response >= level:
                    found[level].append(t)
                    break
    return {f"t{int(round(level * 100))}_s": float(np.mean(found[level])) for level in levels}
