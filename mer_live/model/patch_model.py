"""The v2 model on overlapping patches: each frame's frame-local branch rows are computed once, not once
per patch, with outputs bit for bit those of the whole model.

musicnn's timbral branches (Pons & Serra, MTG-UPF) are convolutions 7 frames long and 38 or 67 bands
high over the normalised mel patch, then ReLU, batch normalisation and a max-pool over frequency. Row
``t`` of such a branch depends on mel frames ``t - c .. t + c`` of its patch only (``c`` = 3, zero-padded
at the patch's edges). The live daemon runs a patch every 31 frames, so 156 of a patch's 187 rows were
computed for the previous patch already; these branches are more than half of the model's time per
patch (``benchmarks/daemon_stages.py``: 39.1 ms per patch whole, 17.8 ms with this reuse, one thread).

:func:`split` cuts the model graph (read with ``onnx``) into two ONNX Runtime sessions:

* *local*: ``mel`` ``(batch, T, 96)`` -> every frame-local branch's output ``(batch, C_i, T)``, for any ``T``;
* *rest*: the model, with those branch outputs as inputs next to ``mel``.

A model may hear only the last ``L`` frames of each patch (v2's shipped head: 94, 1.5 s): its input's only
reader is then a ``Slice`` of frames ``187 - L`` .. 186, the branches start from that ``Slice``, and all
that follows works on those ``L`` frames instead of the 187.

A frame-local branch is found by its shape in the graph: a ``Conv`` over time with an odd kernel, stride 1
and symmetric ``same`` padding, fed from ``mel`` through reshaping and batch normalisation only, followed
by ``Relu`` / ``BatchNormalization`` / a ``MaxPool`` that does not mix frames / ``Squeeze``.

:class:`PatchRunner` keeps the last patch and its branch rows. A patch whose first ``187 - h`` frames
equal the last ``187 - h`` frames of the previous one (compared, never assumed) reuses rows
``c .. 186 - h - c`` of the previous patch; only its last ``h + c`` rows (from frames ``181 - h ..
186``) and its first ``c`` rows (from frames ``0 .. 2c - 1``, whose zero padding differs) are computed.
ONNX Runtime's convolution computes a row the same way whatever the length of its input, so the result
is bit for bit the whole model's. That is an observation, not a promise, so :func:`split` checks it on
random patches (overlapping by 31 and 62 frames, and unrelated), one at a time and two in a batch,
before it returns a runner; a model without such branches, or whose split disagrees in any bit, is run
whole (``split`` returns None).

``onnx`` (a run-time dependency for this) is imported only when a v2 model is loaded.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mer_live.features import mel

PATCH_FRAMES = mel.PATCH_FRAMES
LOCAL_SUFFIX = "mer_live_local"
MAX_CONTEXT = PATCH_FRAMES // 8  # a wider "local" kernel would save little (23 frames each side)
PREFIX_OPS = frozenset({"Unsqueeze", "Reshape", "BatchNormalization", "Identity"})  # mel -> conv input, frame by frame
BRANCH_OPS = frozenset({"Relu", "BatchNormalization", "MaxPool", "Squeeze"})  # conv output -> branch output, row by row
CHECK_SEED = 1234
CHECK_SHIFTS = (None, 31, 62, None)  # the daemon's hop, analyze's; None: a patch unrelated to the last
CHECK_BATCH = 2  # check patches also run as one batch
CHECK_LEVEL = 4.0  # random frames in 0 .. this (log10(1 + 10000 S) of music stays below it)


@dataclass(frozen=True)
class Split:
    """The model cut in two: ``local`` (mel -> branch outputs ``names``) and ``rest`` (mel and branch
    outputs -> mid, emotion); ``context`` = ``c``, the frames each side that a branch row reads."""

    local: object  # onnxruntime.InferenceSession
    rest: object
    input_name: str
    names: tuple[str, ...]
    context: int
    local_input: str  # the local graph's input: the model's, or the Slice of the frames it hears
    offset: int  # the model hears frames offset .. 186 of each patch (a Slice in front; 0: all of them)


def _attribute(node, name: str, default=None):
    from onnx import helper

    for attribute in node.attribute:
        if attribute.name == name:
            return helper.get_attribute_value(attribute)
    return default


def _time_context(node, initialisers: dict) -> int | None:
    """``c`` for a Conv over time with an odd kernel ``2c + 1``, stride 1, no dilation, ``same`` padding
    (pads ``c`` before and after along time); None for any other Conv."""
    weight = initialisers.get(node.input[1]) if len(node.input) > 1 else None
    kernel = _attribute(node, "kernel_shape") or (list(weight.dims[2:]) if weight is not None else None)
    if not kernel or len(kernel) != 2 or kernel[0] % 2 == 0:
        return None
    context = (kernel[0] - 1) // 2
    pads = _attribute(node, "pads", [0, 0, 0, 0])
    strides = _attribute(node, "strides", [1, 1])
    dilations = _attribute(node, "dilations", [1, 1])
    auto_pad = _attribute(node, "auto_pad", b"NOTSET")
    if auto_pad not in (b"NOTSET", "NOTSET") or strides[0] != 1 or dilations[0] != 1:
        return None
    if len(pads) != 4 or pads[0] != context or pads[2] != context or not 1 <= context <= MAX_CONTEXT:
        return None
    return context


def _heard_input(graph, initialisers: dict) -> tuple[str, int]:
    """Where the patch enters the frame-local part: ``(the model's input, 0)``, or, when the input's only
    reader is a ``Slice`` of its last frames along time (a model that hears the last ``187 - offset``
    frames of each patch), ``(that Slice's output, offset)``."""
    from onnx import numpy_helper

    input_name = graph.input[0].name
    readers = [node for node in graph.node if input_name in node.input]
    if len(readers) != 1 or readers[0].op_type != "Slice" or readers[0].input[0] != input_name:
        return input_name, 0
    node = readers[0]
    constant = [numpy_helper.to_array(initialisers[name]).tolist() if name in initialisers else None
                for name in list(node.input[1:]) + [""] * (5 - len(node.input))]
    starts, ends, axes, steps = constant[0], constant[1], constant[2], constant[3]
    if (axes != [1] or starts is None or ends is None or len(starts) != 1 or steps not in (None, [1])
            or not 0 < starts[0] < PATCH_FRAMES or ends[0] < PATCH_FRAMES):
        return input_name, 0
    return node.output[0], int(starts[0])


def _frame_local_branches(graph, initialisers: dict, *, input_name: str) -> tuple[list, list[str], int] | None:
    """The nodes from ``input_name`` (the patch as the model hears it) to the frame-local branch outputs,
    those outputs, and their largest context."""
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    prefix, prefix_nodes = {input_name}, []
    for node in graph.node:  # nodes are stored in topological order
        if node.op_type in PREFIX_OPS and node.input and node.input[0] in prefix:
            prefix.add(node.output[0])
            prefix_nodes.append(node)
    outputs = {o.name for o in graph.output}
    branch_nodes, names, context = [], [], 0
    for node in graph.node:
        if node.op_type != "Conv" or node.input[0] not in prefix:
            continue
        conv_context = _time_context(node, initialisers)
        if conv_context is None:
            continue
        chain, tensor = [node], node.output[0]
        while len(consumers.get(tensor, [])) == 1 and consumers[tensor][0].op_type in BRANCH_OPS:
            following = consumers[tensor][0]
            if following.op_type == "MaxPool" and (
                _attribute(following, "kernel_shape", [1])[0] != 1 or _attribute(following, "strides", [1])[0] != 1
                or any(_attribute(following, "pads", [0, 0, 0, 0])[::2])
            ):
                break
            chain.append(following)
            tensor = following.output[0]
        if tensor in outputs or len(chain) == 1:  # a bare Conv: no branch worth cutting
            continue
        branch_nodes.extend(chain)
        names.append(tensor)
        context = max(context, conv_context)
    if not names:
        return None
    wanted = {name for node in branch_nodes for name in node.input}
    needed_prefix = []
    for node in reversed(prefix_nodes):  # only the prefix that the branches read
        if node.output[0] in wanted:
            needed_prefix.insert(0, node)
            wanted.update(node.input)
    return needed_prefix + branch_nodes, names, context


def _graph_bytes(*, model, nodes: list, inputs: list, outputs: list, initialisers: dict, extra_initialisers=()) -> bytes:
    """A model of ``nodes`` with only the initialisers they use (ONNX Runtime warns about unused ones)."""
    from onnx import helper

    used = {name for node in nodes for name in node.input}
    graph = helper.make_graph(
        nodes, f"{model.graph.name}_{LOCAL_SUFFIX}", inputs, outputs,
        [tensor for name, tensor in initialisers.items() if name in used] + list(extra_initialisers),
    )
    part = helper.make_model(graph, opset_imports=list(model.opset_import), ir_version=model.ir_version)
    return part.SerializeToString()


def _local_model(*, model, nodes: list, names: list[str], initialisers: dict, input_name: str, heard: int) -> bytes:
    """The local graph from ``input_name`` (``heard`` frames in the model), with every reshape's fixed
    length ``heard`` replaced by the input's length."""
    from onnx import TensorProto, helper, numpy_helper

    time_name = f"{LOCAL_SUFFIX}_time"
    rewritten = [helper.make_node("Shape", [input_name], [time_name], start=1, end=2)]
    extra = []
    for node in nodes:
        if node.op_type != "Reshape":
            rewritten.append(node)
            continue
        shape = numpy_helper.to_array(initialisers[node.input[1]]) if node.input[1] in initialisers else None
        if shape is None or int(np.sum(shape == heard)) != 1:
            raise ValueError(f"reshape {node.name!r} has no single patch-length axis")
        at = int(np.flatnonzero(shape == heard)[0])
        pieces = []
        for side, values in (("before", shape[:at]), ("after", shape[at + 1 :])):
            if len(values):
                name = f"{LOCAL_SUFFIX}_{node.output[0]}_{side}"
                extra.append(numpy_helper.from_array(values.astype(np.int64), name))
                pieces.append(name)
        pieces.insert(1 if len(shape[:at]) else 0, time_name)
        shape_name = f"{LOCAL_SUFFIX}_{node.output[0]}_shape"
        rewritten.append(helper.make_node("Concat", pieces, [shape_name], axis=0))
        rewritten.append(helper.make_node("Reshape", [node.input[0], shape_name], list(node.output)))
    inputs = [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["batch", "time", mel.NUM_BANDS])]
    outputs = [helper.make_tensor_value_info(name, TensorProto.FLOAT, None) for name in names]
    return _graph_bytes(model=model, nodes=rewritten, inputs=inputs, outputs=outputs, initialisers=initialisers,
                        extra_initialisers=extra)


def _rest_model(*, model, names: list[str], initialisers: dict) -> bytes:
    """The model with the branch outputs as inputs: only the nodes the outputs still need."""
    from onnx import TensorProto, helper

    producers = {output: node for node in model.graph.node for output in node.output}
    needed, stack, keep = set(), [o.name for o in model.graph.output], set()
    while stack:
        tensor = stack.pop()
        if tensor in needed or tensor in names:
            continue
        needed.add(tensor)
        node = producers.get(tensor)
        if node is not None and id(node) not in keep:
            keep.add(id(node))
            stack.extend(name for name in node.input if name)
    nodes = [node for node in model.graph.node if id(node) in keep]
    inputs = list(model.graph.input) + [helper.make_tensor_value_info(name, TensorProto.FLOAT, None) for name in names]
    return _graph_bytes(model=model, nodes=nodes, inputs=inputs, outputs=list(model.graph.output), initialisers=initialisers)


def split(*, model_bytes: bytes, make_session: Callable[[bytes], object], full: Callable[[np.ndarray], tuple]) -> PatchRunner | None:
    """A :class:`PatchRunner` for the model ``model_bytes``, or None when it has no frame-local branch or
    its split differs from the whole model (``full``: ``(batch, 187, 96)`` -> ``(mid, emotion)``) in any bit
    on the check patches. ``make_session`` makes an ONNX Runtime session from model bytes."""
    import onnx

    model = onnx.load_from_string(model_bytes)
    initialisers = {tensor.name: tensor for tensor in model.graph.initializer}
    local_input, offset = _heard_input(model.graph, initialisers)
    found = _frame_local_branches(model.graph, initialisers, input_name=local_input)
    if found is None:
        return None
    nodes, names, context = found
    if 2 * context + max(shift or 0 for shift in CHECK_SHIFTS) >= PATCH_FRAMES - offset:
        return None  # too short a hearing for any reuse at the daemon's hops
    try:
        local = make_session(_local_model(model=model, nodes=nodes, names=names, initialisers=initialisers,
                                          input_name=local_input, heard=PATCH_FRAMES - offset))
        rest = make_session(_rest_model(model=model, names=names, initialisers=initialisers))
    except Exception:  # noqa: BLE001 - a graph this cut does not fit (ours or ONNX Runtime's errors): run it whole
        return None
    runner = PatchRunner(split=Split(local=local, rest=rest, input_name=model.graph.input[0].name, names=tuple(names),
                                     context=context, local_input=local_input, offset=offset))
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

    def _shift(self, *, heard: np.ndarray) -> int | None:
        """``h`` such that ``heard[: L - h]`` equals the last patch's ``[h:]`` and ``h + 2c < L``, or None."""
        last = self._last_heard
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
        """Branch rows of ``frames`` ``(T, 96)``: per branch ``(C_i, T)``."""
        self.rows_computed += len(frames)
        outputs = self._split.local.run(list(self._split.names), {self._split.local_input: frames[None]})
        return [output[0] for output in outputs]

    def _rows(self, *, patch: np.ndarray) -> list[np.ndarray]:
        """The patch's branch rows, per branch ``(C_i, L)``, reusing the last patch's where they match."""
        heard = patch[self._split.offset :]
        shift = self._shift(heard=heard)
        if shift is None:
            rows = self._local(heard)
        else:
            c, length = self._split.context, len(heard)
            head = self._local(heard[: 2 * c])
            new = self._local(heard[length - shift - 2 * c :])
            rows = [
                np.concatenate([h[:, :c], last[:, c + shift : length - c], n[:, c:]], axis=1)
                for h, last, n in zip(head, self._last_rows, new)
            ]
            self._last_shift = shift
        self._last_heard, self._last_rows = heard.copy(), rows
        return rows

    def process(self, *, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``windows`` ``(batch, 187, 96)`` float32 -> ``mid (batch, 7)``, ``emotion (batch, 8)`` float32."""
        with self._lock:
            per_patch = [self._rows(patch=patch) for patch in windows]
            feeds = {self._split.input_name: windows}
            for index, name in enumerate(self._split.names):
                feeds[name] = np.stack([rows[index] for rows in per_patch])
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
