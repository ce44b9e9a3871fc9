"""The v2 model on overlapping patches: each frame's frame-local branch rows are computed once, not once
per patch, with outputs bit for bit those of the same graphs run on every patch whole.

musicnn's timbral branches (Pons & Serra, MTG-UPF) are convolutions 7 frames long and 38 or 67 bands
high over the normalised mel patch, then ReLU, batch normalisation and a max-pool over frequency. Row
``t`` of such a branch depends on mel frames ``t - c .. t + c`` of its patch only (``c`` = 3, zero-padded
at the patch's edges). The live daemon runs a patch every 31 frames and analyze every 62, so most of a
patch's rows were computed for the previous patch already; these branches are most of the model's time.

The model is cut in two graphs (:mod:`mer_live.model.graph_cut`): *local* (the patch as heard -> every
frame-local branch's output ``(batch, C_i, T)``, for any ``T``) and *rest* (the model, with those outputs
as inputs). They come from one of two places:

* a **pack** shipped beside the model, cut at build time (:mod:`mer_live.train.fast_pack`):
  ``NAME.int8-local.onnx`` and ``NAME.int8-rest.onnx`` for ``NAME.onnx``, whose branch convolutions run in
  INT8 (static quantization, calibrated on Soundtracks clips; ``benchmarks/parity.py`` checks it against the
  float model). :func:`load_pack` loads it with ONNX Runtime only, when its recorded SHA-256 is the model
  file's;
* :func:`split`, at load time, when ``onnx`` is installed: the float graphs, bit for bit the whole model.

:class:`PatchRunner` keeps the last patch and its branch rows. A patch whose first ``187 - h`` frames
equal the last ``187 - h`` frames of the previous one (compared, never assumed) reuses rows
``c .. 186 - h - c`` of the previous patch; only its last ``h + c`` rows (from frames ``181 - h ..
186``) and its first ``c`` rows (from frames ``0 .. 2c - 1``, whose zero padding differs) are computed.
ONNX Runtime's convolution computes a row the same way whatever the length of its input (float, and INT8
with fixed quantization parameters), so reuse gives the same bits as computing every row. That is an
observation, not a promise, so the runner is checked (:meth:`PatchRunner.agrees`) on random patches
(overlapping by 31 and 62 frames, and unrelated), one at a time and two in a batch, before it is used.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mer_live.features import mel

PATCH_FRAMES = mel.PATCH_FRAMES
CHECK_SEED = 1234
CHECK_SHIFTS = (None, 31, 62, None)  # the daemon's hop, analyze's; None: a patch unrelated to the last
CHECK_BATCH = 2  # check patches also run as one batch
CHECK_LEVEL = 4.0  # random frames in 0 .. this (log10(1 + 10000 S) of music stays below it)
META_PACK = "mer_live.pack"  # in a pack's local graph: JSON, see pack_metadata
PACK_PARTS = ("local", "rest")


@dataclass(frozen=True)
class Split:
    """The model cut in two ONNX Runtime sessions: ``local`` (the patch as heard -> branch outputs
    ``names``) and ``rest`` (the model input and branch outputs -> mid, emotion); ``context`` = ``c``,
    the frames each side that a branch row reads."""

    local: object  # onnxruntime.InferenceSession
    rest: object
    input_name: str
    names: tuple[str, ...]
    context: int
    local_input: str  # the local graph's input: the model's, or the Slice of the frames it hears
    offset: int  # the model hears frames offset .. 186 of each patch (a Slice in front; 0: all of them)


def pack_paths(model_path: Path, *, precision: str) -> dict[str, Path]:
    """The pack files of the model at ``model_path``: ``{"local": NAME.PRECISION-local.onnx, "rest": ...}``."""
    stem = model_path.name[: -len(model_path.suffix)] if model_path.suffix else model_path.name
    return {part: model_path.with_name(f"{stem}.{precision}-{part}.onnx") for part in PACK_PARTS}


def pack_metadata(*, source_sha256: str, precision: str, cut, calibration: dict) -> str:
    """The ``mer_live.pack`` JSON of a pack cut from a model whose file has SHA-256 ``source_sha256``
    (``cut``: a :class:`mer_live.model.graph_cut.Cut`)."""
    return json.dumps({
        "source_sha256": source_sha256, "precision": precision, "input_name": cut.input_name,
        "names": list(cut.names), "context": cut.context, "local_input": cut.local_input, "offset": cut.offset,
        "calibration": calibration,
    })


def load_pack(*, model_path, model_bytes: bytes, precision: str, make_session: Callable[[bytes], object]) -> Split | None:
    """The shipped pack of ``precision`` for the model at ``model_path`` (file bytes ``model_bytes``), or
    None when there is none or it was cut from another version of the model file."""
    if not isinstance(model_path, Path):
        return None  # a model inside a zip-imported package: no pack beside it
    paths = pack_paths(model_path, precision=precision)
    if not all(path.is_file() for path in paths.values()):
        return None
    try:
        local = make_session(paths["local"].read_bytes())
        meta = json.loads(local.get_modelmeta().custom_metadata_map[META_PACK])
        if meta.get("source_sha256") != hashlib.sha256(model_bytes).hexdigest() or meta.get("precision") != precision:
            return None
        return Split(local=local, rest=make_session(paths["rest"].read_bytes()), input_name=meta["input_name"],
                     names=tuple(meta["names"]), context=int(meta["context"]), local_input=meta["local_input"],
                     offset=int(meta["offset"]))
    except Exception:  # noqa: BLE001 - an unreadable pack (ONNX Runtime's errors, bad metadata): the float model runs
        return None


def split(*, model_bytes: bytes, make_session: Callable[[bytes], object], full: Callable[[np.ndarray], tuple]) -> PatchRunner | None:
    """A :class:`PatchRunner` over the float model ``model_bytes``, cut now; None when ``onnx`` is not
    installed, the model has no frame-local branch, or the split differs from the whole model (``full``:
    ``(batch, 187, 96)`` -> ``(mid, emotion)``) in any bit on the check patches. ``make_session`` makes an
    ONNX Runtime session from model bytes."""
    try:
        import onnx

        from mer_live.model import graph_cut
    except ImportError:  # onnx is optional at run time: the model then runs whole
        return None
    cut = graph_cut.cut(onnx.load_from_string(model_bytes), min_heard=max(shift or 0 for shift in CHECK_SHIFTS))
    if cut is None:
        return None
    try:
        local, rest = make_session(cut.local), make_session(cut.rest)
    except Exception:  # noqa: BLE001 - a graph this cut does not fit (ours or ONNX Runtime's errors): run it whole
        return None
    runner = PatchRunner(split=Split(local=local, rest=rest, input_name=cut.input_name, names=cut.names,
                                     context=cut.context, local_input=cut.local_input, offset=cut.offset))
    return runner if runner.agrees(full=full) else None


class PatchRunner:
    """Runs patches ``(batch, 187, 96)`` through a :class:`Split`, reusing the branch rows of the frames
    that a patch shares with the one before (see the module docstring). Thread-safe (one lock); its
    outputs depend on its input only, the cache only saves work."""

    def __init__(self, *, split: Split) -> None:
        self._split = split
        self._lock = threading.Lock()
        self._last_heard: np.ndarray | None = None  # (L, 96): the frames of the last patch the model hears
        self._last_rows: list[np.ndarray] = []  # per branch (C_i, L)
        self._last_shift = 0
        self.rows_computed = 0  # branch rows computed (a whole patch: L = 187 - offset)

    def _shift(self, *, heard: np.ndarray, last: np.ndarray | None) -> int | None:
        """``h`` such that ``heard[: L - h]`` equals ``last[h:]`` (the patch before) and ``h + 2c < L``, or None."""
        if last is None:
            return None
        length = len(heard)
        limit = length - 2 * self._split.context
        candidates = np.flatnonzero(np.all(last[:limit] == heard[0], axis=1))
        for shift in sorted(candidates, key=lambda h: h != self._last_shift):  # the usual hop first
            if np.array_equal(heard[: length - shift], last[shift:]):
                return int(shift)
        return None

    def _local(self, frames: np.ndarray) -> list[np.ndarray]:
        """Branch rows of ``frames`` ``(n, T, 96)``: per branch ``(n, C_i, T)``."""
        self.rows_computed += frames.shape[0] * frames.shape[1]
        return self._split.local.run(list(self._split.names), {self._split.local_input: np.ascontiguousarray(frames)})

    def _rows(self, *, heard: np.ndarray) -> list[list[np.ndarray]]:
        """Each patch's branch rows, per branch ``(C_i, L)``, reusing the patch before's where they match
        (the cache's last patch for the first): one local call for the patches that share nothing, and two
        (first ``2c`` frames, last ``h + 2c``) for those that follow a patch ``h`` frames earlier."""
        c, length = self._split.context, heard.shape[1]
        shifts, last = [], self._last_heard
        for patch in heard:
            shifts.append(self._shift(heard=patch, last=last))
            last = patch
            self._last_shift = shifts[-1] if shifts[-1] is not None else self._last_shift
        fresh = [index for index, shift in enumerate(shifts) if shift is None]
        computed = dict(zip(fresh, zip(*self._local(heard[fresh])))) if fresh else {}
        edges = {}
        for shift in {shift for shift in shifts if shift is not None}:
            chosen = [index for index, value in enumerate(shifts) if value == shift]
            heads, tails = self._local(heard[chosen, : 2 * c]), self._local(heard[chosen, length - shift - 2 * c :])
            edges.update(zip(chosen, zip(zip(*heads), zip(*tails))))
        per_patch, previous = [], self._last_rows
        for index, shift in enumerate(shifts):
            if shift is None:
                rows = list(computed[index])
            else:
                head, tail = edges[index]
                rows = [np.concatenate([h[:, :c], p[:, c + shift : length - c], t[:, c:]], axis=1)
                        for h, p, t in zip(head, previous, tail)]
            per_patch.append(rows)
            previous = rows
        self._last_heard, self._last_rows = heard[-1].copy(), per_patch[-1]
        return per_patch

    def process(self, *, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``windows`` ``(batch, 187, 96)`` float32 -> ``mid (batch, 7)``, ``emotion (batch, 8)`` float32."""
        with self._lock:
            per_patch = self._rows(heard=windows[:, self._split.offset :])
            return self._rest(windows=windows, rows=[np.stack([rows[index] for rows in per_patch])
                                                     for index in range(len(self._split.names))])

    def whole(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """As :meth:`process`, every row computed (no reuse, the cache untouched)."""
        split = self._split
        rows = split.local.run(list(split.names), {split.local_input: np.ascontiguousarray(windows[:, split.offset :])})
        return self._rest(windows=windows, rows=rows)

    def _rest(self, *, windows: np.ndarray, rows: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        feeds = {self._split.input_name: windows} | dict(zip(self._split.names, rows))
        mid, emotion = self._split.rest.run(None, feeds)[:2]
        return mid, emotion

    def agrees(self, *, full: Callable[[np.ndarray], tuple]) -> bool:
        """Whether the check patches (each shift of ``CHECK_SHIFTS``, one call each, as the daemon runs
        them; then the first ``CHECK_BATCH`` in one call, as ``analyze`` batches them) give exactly
        ``full``'s outputs called the same way (ONNX Runtime's sums may differ between a batch and single
        patches); leaves the cache empty."""
        rng = np.random.default_rng(CHECK_SEED)
        stream = rng.uniform(0.0, CHECK_LEVEL, size=(4 * PATCH_FRAMES, mel.NUM_BANDS)).astype(np.float32)
        patches, start = [], 0
        for shift in CHECK_SHIFTS:
            start = 2 * PATCH_FRAMES if shift is None and patches else start + (shift or 0)
            patches.append(stream[start : start + PATCH_FRAMES])
        batch = np.stack(patches)
        calls = [batch[index : index + 1] for index in range(len(batch))] + [batch[:CHECK_BATCH]]
        self.reset()
        agree = True
        for index, windows in enumerate(calls):
            if index == len(batch):
                self.reset()
            got, expected = self.process(windows=windows), full(windows)
            agree = agree and all(np.array_equal(got[k], expected[k]) for k in range(2))
        self.reset()
        return agree

    def reset(self) -> None:
        with self._lock:
            self._last_heard, self._last_rows, self._last_shift = None, [], 0

    def close(self) -> None:
        self.reset()
