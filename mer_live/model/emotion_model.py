"""The exported A2Mid2E-Joint model under ONNX Runtime, and the metadata contract it must carry.

Two front-ends, told apart by the ``kind`` in the ``mer_live.frontend`` metadata:

* v1 (no ``kind``, or ``FRONTEND_V1``): input ``spectrogram`` ``(batch, 313, 149)`` float32, time-major,
  a 10 s window made by :mod:`mer_live.features.spectrogram`;
* v2 and v3 (``kind`` = ``"musicnn-mel96"``): input ``mel`` ``(batch, 187, 96)`` float32, one 3 s patch of
  :mod:`mer_live.features.mel` per row, plus ``mer_live.pooling`` metadata (:class:`~mer_live.model.pooling.Pooling`):
  patch outputs are pooled at run time.

Outputs ``mid`` ``(batch, 7)`` and ``emotion`` ``(batch, 8)`` in the paper's units (see
:mod:`mer_live.core.labels`), with emotion = Joint layer (metadata ``joint_weight``/``joint_bias``) of mid.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mer_live.features import spectrogram, mel
from mer_live.core import labels
from mer_live.model import patch_model
from mer_live.model.pooling import Pooling

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

INPUT_NAME = "spectrogram"
INPUT_NAME_V2 = "mel"
FRONTEND_V1 = "log-spectrogram-149"
FRONTEND_V2 = mel.KIND
OUTPUT_MID = "mid"
OUTPUT_EMOTION = "emotion"
MIN_OPSET = 17
# The models shipped inside the package, by the short name that --model also takes.
SHIPPED_MODELS = {"v1": "a2mid2e_joint.onnx", "v2": "musicnn_joint.onnx", "v3": "musicnn_joint_v3.onnx"}
DEFAULT_MODEL = "v3"  # what runs without --model or $MER_MODEL (v3: same front-end and contract as v2)
ASSETS_PACKAGE = "mer_live.model.assets"  # the shipped models, package data (see models/README.md)
MODEL_ENV = "MER_MODEL"
PATCH_REUSE_ENV = "MER_PATCH_REUSE"  # "0": run every v2 patch whole (benchmarks/daemon_cpu.py compares both)
PRECISION_ENV = "MER_PRECISION"  # "float": the exported float model, never its INT8 pack
PRECISIONS = ("int8", "float")
DEFAULT_PRECISION = "int8"  # a v2 model's shipped INT8 pack when there is one (it passes benchmarks/parity.py)
JOINT_TOLERANCE = 1e-3  # model units: the graph's emotion vs the metadata's Joint layer
CHECK_SEED = 1234

# metadata_props keys
META_FRONTEND = "mer_live.frontend"
META_EMOTIONS = "mer_live.emotions"
META_MID_LEVELS = "mer_live.mid_levels"
META_UNITS = "mer_live.units"
META_JOINT_WEIGHT = "mer_live.joint_weight"  # (NUM_EMOTIONS, NUM_MID_LEVELS), as nn.Linear(7, 8).weight
META_JOINT_BIAS = "mer_live.joint_bias"  # (NUM_EMOTIONS,)
META_VARIANT = "mer_live.variant"
META_DATA_HASH = "mer_live.data_hash"
META_CV_METRICS = "mer_live.cv_metrics"
META_VERSION = "mer_live.version"
META_POOLING = "mer_live.pooling"  # v2 only: JSON, see mer_live.model.pooling.Pooling
REQUIRED_METADATA = (
    META_FRONTEND,
    META_EMOTIONS,
    META_MID_LEVELS,
    META_UNITS,
    META_JOINT_WEIGHT,
    META_JOINT_BIAS,
)
UNITS = {
    "emotion": "mean rating on the 1-9 scale divided by 10 (0.1-0.9)",
    "mid": "mid-level rating in the paper's 0.1-1.0 range",
}


class ModelError(RuntimeError):
    """A model file that is missing, unreadable, or disagrees with this front-end."""


def shipped_model_path(name: str = DEFAULT_MODEL) -> Path | Traversable:
    """The shipped model ``name`` (a key of ``SHIPPED_MODELS``; ``v3``, the default, is
    ``mer_live/model/assets/musicnn_joint_v3.onnx``, ``v2`` ``musicnn_joint.onnx``, ``v1`` ``a2mid2e_joint.onnx``), package
    data that the wheel carries. A :class:`~pathlib.Path`
    for every installed or editable package; another :class:`~importlib.resources.abc.Traversable` only
    when the package is imported from a zip file."""
    return resources.files(ASSETS_PACKAGE) / SHIPPED_MODELS[name]


def resolve_model(spec: str | Path | None) -> Path | Traversable:
    """What ``--model`` names: a shipped model's short name (``v1``, ``v2``, ``v3``), a file path, or, when
    ``spec`` is None or empty, :func:`default_model_path`."""
    if spec is None or str(spec) == "":
        return default_model_path()
    if isinstance(spec, str) and spec in SHIPPED_MODELS:
        return shipped_model_path(spec)
    return Path(spec)


def default_model_path() -> Path | Traversable:
    """``$MER_MODEL`` if set, else :func:`shipped_model_path`."""
    override = os.environ.get(MODEL_ENV)
    if override:
        return Path(override)
    return shipped_model_path()


@dataclass(frozen=True)
class Prediction:
    """Model outputs in model units: ``mid`` ``(batch, 7)``, ``emotion`` ``(batch, 8)``, float64."""

    mid: np.ndarray
    emotion: np.ndarray


@dataclass(frozen=True)
class FrontEnd:
    """What a model's input is: the front-end ``kind``, the input name and ``(frames, bands)`` shape."""

    kind: str
    input_name: str
    frames: int
    bands: int
    constants: dict


FRONT_ENDS = {
    FRONTEND_V1: FrontEnd(kind=FRONTEND_V1, input_name=INPUT_NAME, frames=spectrogram.NUM_FRAMES,
                          bands=spectrogram.NUM_BANDS, constants=spectrogram.FRONTEND_CONSTANTS),
    FRONTEND_V2: FrontEnd(kind=FRONTEND_V2, input_name=INPUT_NAME_V2, frames=mel.PATCH_FRAMES,
                          bands=mel.NUM_BANDS, constants=mel.FRONTEND_CONSTANTS),
}


def _check_metadata(*, path: Path, metadata: dict[str, str]) -> tuple[np.ndarray, np.ndarray, FrontEnd, Pooling | None]:
    """Validate the contract; return the Joint layer ``(weight (8, 7), bias (8,))``, the front-end, and
    the pooling (v2) or None (v1)."""
    missing = [key for key in REQUIRED_METADATA if key not in metadata]
    if missing:
        raise ModelError(f"{path}: not a mer-live model (metadata lacks {', '.join(missing)})")
    try:
        frontend = json.loads(metadata[META_FRONTEND])
        emotions = tuple(json.loads(metadata[META_EMOTIONS]))
        mids = tuple(json.loads(metadata[META_MID_LEVELS]))
        weight = np.asarray(json.loads(metadata[META_JOINT_WEIGHT]), dtype=np.float64)
        bias = np.asarray(json.loads(metadata[META_JOINT_BIAS]), dtype=np.float64)
    except (json.JSONDecodeError, TypeError, ValueError) as error:
        raise ModelError(f"{path}: unreadable model metadata ({error})") from error
    if not isinstance(frontend, dict):
        raise ModelError(f"{path}: unreadable model metadata ({META_FRONTEND} is not a JSON object)")
    kind = frontend.get("kind", FRONTEND_V1)
    if kind not in FRONT_ENDS:
        raise ModelError(f"{path}: model front-end kind {kind!r} is unknown to this mer-live ({', '.join(FRONT_ENDS)})")
    front_end = FRONT_ENDS[kind]
    for key, expected in front_end.constants.items():
        if frontend.get(key) != expected:
            raise ModelError(
                f"{path}: model front-end {key}={frontend.get(key)!r} disagrees with this mer-live "
                f"({expected!r}); re-export the model or install the matching mer-live"
            )
    if emotions != labels.EMOTIONS or mids != labels.MID_LEVELS:
        raise ModelError(f"{path}: model label order differs from mer-live's; re-export the model")
    if weight.shape != (labels.NUM_EMOTIONS, labels.NUM_MID_LEVELS) or bias.shape != (labels.NUM_EMOTIONS,):
        raise ModelError(f"{path}: Joint layer metadata has shape {weight.shape}/{bias.shape}, expected (8, 7)/(8,)")
    pooling = None
    if kind == FRONTEND_V2:
        if META_POOLING not in metadata:
            raise ModelError(f"{path}: a {kind} model needs {META_POOLING} metadata; re-export the model")
        try:
            pooling = Pooling.from_json(metadata[META_POOLING])
        except ValueError as error:
            raise ModelError(f"{path}: bad {META_POOLING} metadata ({error})") from error
    return weight, bias, front_end, pooling


class EmotionModel:
    """An ONNX Runtime session over a validated mer-live model. Its outputs depend on its input only (no
    reset needed). A v2 model whose graph has frame-local branches (musicnn's timbral convolutions) runs
    patches through a :class:`~mer_live.model.patch_model.PatchRunner`: a patch that overlaps the one before
    reuses those branches' rows for the shared frames, with outputs bit for bit the whole model's
    (checked at load; see :mod:`mer_live.model.patch_model`). :attr:`incremental` tells which;
    ``MER_PATCH_REUSE=0`` in the environment turns the reuse off.

    ``precision`` (default ``$MER_PRECISION``, else ``int8``): with ``int8``, a v2 model that has a pack
    beside it (the shipped v2 does) runs its branch convolutions in INT8 from that pack (about 2.5 times
    faster; within ``benchmarks/parity.py``'s limits of the float model); ``float`` runs the exported model
    itself. :attr:`precision` tells which runs. ``reuse`` (default: unless ``MER_PATCH_REUSE=0``) may turn
    the reuse off (a model loaded only to be checked)."""

    def __init__(self, *, path: str | Path | None = None, threads: int = 1, precision: str | None = None,
                 reuse: bool | None = None) -> None:
        import onnxruntime

        requested = precision or os.environ.get(PRECISION_ENV) or DEFAULT_PRECISION
        if requested not in PRECISIONS:
            raise ModelError(f"precision must be one of {', '.join(PRECISIONS)}, got {requested!r}")

        self.path = resolve_model(path)
        if not self.path.is_file():
            raise ModelError(
                f"{self.path}: model file not found; pass --model PATH (or {', '.join(SHIPPED_MODELS)}) or set {MODEL_ENV}"
            )
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = max(1, int(threads))
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        self._options = options
        self._runner: patch_model.PatchRunner | None = None
        try:  # read once (a file on disk, or inside a zip-imported package): the session and the patch split
            model_bytes = self.path.read_bytes()
            # checked first without graph optimisations (cheap); the optimised session is made on first use, so a
            # model that runs from its pack never builds it
            self._session = onnxruntime.InferenceSession(model_bytes, sess_options=self._check_options(),
                                                         providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own exception types for bad files
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise ModelError(f"{self.path}: not a loadable ONNX model ({first_line})") from error
        self.metadata: dict[str, str] = dict(self._session.get_modelmeta().custom_metadata_map)
        self.weight, self.bias, self.front_end, self.pooling = _check_metadata(path=self.path, metadata=self.metadata)
        inputs = self._session.get_inputs()
        front = self.front_end
        if len(inputs) != 1 or inputs[0].name != front.input_name or list(inputs[0].shape[1:]) != [front.frames, front.bands]:
            raise ModelError(
                f"{self.path}: model input must be {front.input_name} (batch, {front.frames}, {front.bands})"
            )
        outputs = {o.name for o in self._session.get_outputs()}
        if not {OUTPUT_MID, OUTPUT_EMOTION} <= outputs:
            raise ModelError(f"{self.path}: model outputs must include {OUTPUT_MID!r} and {OUTPUT_EMOTION!r}")
        self._model_bytes = model_bytes
        self._optimised = None
        self.precision = "float"
        self._whole = self._run_whole
        if self.pooling is not None:  # v2: patches overlap, live and in analyze
            reuse = os.environ.get(PATCH_REUSE_ENV, "1") != "0" if reuse is None else reuse
            self._load_runner(model_bytes=model_bytes, precision=requested, reuse=reuse)

    def _load_runner(self, *, model_bytes: bytes, precision: str, reuse: bool) -> None:
        """The pack of ``precision`` if there is one (reused if ``reuse``), else the float model cut now
        (``reuse``, and ``onnx`` installed), else nothing: every patch runs whole."""
        pack = None
        if precision != "float":
            pack = patch_model.load_pack(model_path=self.path, model_bytes=model_bytes, precision=precision,
                                         make_session=self._make_session)
        if pack is not None:
            runner = patch_model.PatchRunner(split=pack)
            self.precision, self._whole = precision, runner.whole
            self._runner = runner if reuse and runner.agrees(full=runner.whole) else None
        elif reuse:
            self._runner = patch_model.split(model_bytes=model_bytes, make_session=self._make_session,
                                             full=self._run_whole)

    def _check_options(self):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
        return options

    def _make_session(self, model: bytes):
        import onnxruntime

        return onnxruntime.InferenceSession(model, sess_options=self._options, providers=["CPUExecutionProvider"])

    def _run_whole(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self._optimised is None:
            self._optimised = self._make_session(self._model_bytes)
        mid, emotion = self._optimised.run([OUTPUT_MID, OUTPUT_EMOTION], {self.front_end.input_name: batch})
        return mid, emotion

    @property
    def incremental(self) -> bool:
        """Whether patches run through a :class:`~mer_live.model.patch_model.PatchRunner` (v2 with frame-local branches)."""
        return self._runner is not None

    @property
    def variant(self) -> str:
        return self.metadata.get(META_VARIANT, "unknown")

    @property
    def input_shape(self) -> tuple[int, int]:
        """``(frames, bands)`` of one model input (v1: a 10 s window, v2: a 3 s patch)."""
        return self.front_end.frames, self.front_end.bands

    def process(self, *, windows: np.ndarray) -> Prediction:
        """Run ``windows`` ``(batch, frames, bands)`` or one ``(frames, bands)`` (see :attr:`input_shape`)."""
        batch = np.asarray(windows, dtype=np.float32)
        if batch.ndim == 2:
            batch = batch[None]
        if self._runner is not None and batch.shape[1:] == self.input_shape:
            mid, emotion = self._runner.process(windows=batch)
        else:
            mid, emotion = self._whole(batch)
        return Prediction(mid=mid.astype(np.float64), emotion=emotion.astype(np.float64))

    def warm_up(self) -> None:
        """One inference on silence, so the first real update is not slowed by lazy initialisation."""
        self.process(windows=np.zeros((1, *self.input_shape), dtype=np.float32))

    def close(self) -> None:
        if self._runner is not None:
            self._runner.close()
        self._runner = None
        self._session = self._optimised = None
        self._model_bytes = b""


def check_joint_layer(*, model: EmotionModel) -> None:
    """Warm the model up and check that its emotion output is the metadata's Joint layer of its
    mid-level output (the explanation relies on it). Raises :class:`ModelError` if not."""
    model.warm_up()
    rng = np.random.default_rng(CHECK_SEED)
    window = rng.uniform(0.0, 1.0, size=(1, *model.input_shape)).astype(np.float32)
    prediction = model.process(windows=window)
    implied = prediction.mid[0] @ model.weight.T + model.bias
    error = float(np.max(np.abs(implied - prediction.emotion[0])))
    if not error <= JOINT_TOLERANCE:
        raise ModelError(
            f"{model.path}: the Joint layer in the metadata disagrees with the model's output by {error:.3g}; "
            "re-export the model"
        )
