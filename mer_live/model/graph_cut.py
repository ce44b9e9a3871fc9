"""Cutting a v2 model's graph (with ``onnx``; build time, or load time when ``onnx`` is installed).

:func:`cut` splits a model into the two graphs that :class:`mer_live.model.patch_model.PatchRunner` runs:

* *local*: ``mel`` ``(batch, T, 96)`` -> every frame-local branch's output ``(batch, C_i, T)``, for any ``T``;
* *rest*: the model, with those branch outputs as inputs next to ``mel``.

A model may hear only the last ``L`` frames of each patch (v2's shipped head: 94, 1.5 s): its input's only
reader is then a ``Slice`` of frames ``187 - L`` .. 186, the branches start from that ``Slice``, and all
that follows works on those ``L`` frames instead of the 187.

A frame-local branch is found by its shape in the graph: a ``Conv`` over time with an odd kernel, stride 1
and symmetric ``same`` padding, fed from ``mel`` through reshaping and batch normalisation only, followed
by ``Relu`` / ``BatchNormalization`` / a ``MaxPool`` that does not mix frames / a ``Mul`` by a constant /
``Squeeze``.

:func:`rewrite_pooling` makes musicnn's branches cheaper without changing what they compute: each ends in
``Conv -> Relu -> BatchNormalization -> MaxPool`` over every frequency position, so the ReLU and the batch
normalisation ran on every position of a tensor 30 to 96 times larger than the pooled one. Both are
monotone per channel (non-decreasing where the batch normalisation's scale is positive, non-increasing where
it is negative), so the max-pool can come first: a channel with a negative scale has its convolution
negated (exact in floating point) and its pooled maximum negated back (``Mul`` by -1), which gives the
minimum that the non-increasing map turns into the maximum. ``Conv -> MaxPool -> Mul(sign) -> Relu ->
BatchNormalization``: the same values up to float rounding (1.8e-7 on the shipped v2), 16 % less time.

The packs that ship with the package are cut at build time (:mod:`mer_live.train.fast_pack`), so the
runtime does not need ``onnx``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from mer_live.features import mel

PATCH_FRAMES = mel.PATCH_FRAMES
LOCAL_SUFFIX = "mer_live_local"
MAX_CONTEXT = PATCH_FRAMES // 8  # a wider "local" kernel would save little (23 frames each side)
PREFIX_OPS = frozenset({"Unsqueeze", "Reshape", "BatchNormalization", "Identity"})  # mel -> conv input, frame by frame
BRANCH_OPS = frozenset({"Relu", "BatchNormalization", "MaxPool", "Mul", "Squeeze"})  # conv output -> branch output, row by row
DEFAULT_OPSET_DOMAINS = ("", "ai.onnx")


@dataclass(frozen=True)
class Cut:
    """A model cut in two ONNX graphs (serialised): ``local`` (the patch as heard -> branch outputs
    ``names``) and ``rest`` (the model input and the branch outputs -> mid, emotion)."""

    local: bytes
    rest: bytes
    input_name: str
    names: tuple[str, ...]
    context: int  # the frames each side that a branch row reads
    local_input: str  # the local graph's input: the model's, or the Slice of the frames it hears
    offset: int  # the model hears frames offset .. 186 of each patch (a Slice in front; 0: all of them)


def _opsets(model) -> list:
    """The model's opset imports, one per domain (some exporters repeat the default domain)."""
    seen, opsets = set(), []
    for opset in model.opset_import:
        domain = "" if opset.domain in DEFAULT_OPSET_DOMAINS else opset.domain
        if domain not in seen:
            seen.add(domain)
            opsets.append(helper.make_opsetid(domain, opset.version))
    return opsets


def _attribute(node, name: str, default=None):

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
    consumers = _consumers(graph)
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
            if following.op_type == "Mul" and (following.input[0] != tensor or following.input[1] not in initialisers):
                break  # only a scaling by a constant (the sign of rewrite_pooling) is row by row
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

    used = {name for node in nodes for name in node.input}
    graph = helper.make_graph(
        nodes, f"{model.graph.name}_{LOCAL_SUFFIX}", inputs, outputs,
        [tensor for name, tensor in initialisers.items() if name in used] + list(extra_initialisers),
    )
    part = helper.make_model(graph, opset_imports=_opsets(model), ir_version=model.ir_version)
    return part.SerializeToString()


def _local_model(*, model, nodes: list, names: list[str], initialisers: dict, input_name: str, heard: int) -> bytes:
    """The local graph from ``input_name`` (``heard`` frames in the model), with every reshape's fixed
    length ``heard`` replaced by the input's length."""

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


def cut(model, *, min_heard: int) -> Cut | None:
    """Cut ``model`` (an ``onnx.ModelProto``) at its frame-local branches; None when it has none or hears
    fewer than ``min_heard`` frames beyond the branches' context."""
    initialisers = {tensor.name: tensor for tensor in model.graph.initializer}
    local_input, offset = _heard_input(model.graph, initialisers)
    found = _frame_local_branches(model.graph, initialisers, input_name=local_input)
    if found is None:
        return None
    nodes, names, context = found
    if 2 * context + min_heard >= PATCH_FRAMES - offset:
        return None  # too short a hearing for any reuse at the daemon's hops
    local = _local_model(model=model, nodes=nodes, names=names, initialisers=initialisers,
                         input_name=local_input, heard=PATCH_FRAMES - offset)
    rest = _rest_model(model=model, names=names, initialisers=initialisers)
    return Cut(local=local, rest=rest, input_name=model.graph.input[0].name, names=tuple(names), context=context,
               local_input=local_input, offset=offset)


def _consumers(graph) -> dict[str, list]:
    """The nodes that read each tensor, by name."""
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    return consumers


def heard_frames(model) -> int:
    """The frames of each patch that ``model`` hears (187, or fewer behind a ``Slice``)."""
    initialisers = {tensor.name: tensor for tensor in model.graph.initializer}
    return PATCH_FRAMES - _heard_input(model.graph, initialisers)[1]


def rewrite_pooling(model) -> int:
    """Rewrite every ``Conv -> Relu -> BatchNormalization -> MaxPool`` whose pool spans the whole frequency
    axis into ``Conv -> MaxPool -> Mul(sign) -> Relu -> BatchNormalization`` (see the module docstring), in
    place; returns how many were rewritten."""
    graph = model.graph
    initialisers = {tensor.name: tensor for tensor in graph.initializer}
    consumers = _consumers(graph)

    def only(tensor: str, op_type: str):
        following = consumers.get(tensor, [])
        return following[0] if len(following) == 1 and following[0].op_type == op_type else None

    rewritten = 0
    for conv in list(graph.node):
        relu = only(conv.output[0], "Relu") if conv.op_type == "Conv" and len(conv.input) == 3 else None
        norm = only(relu.output[0], "BatchNormalization") if relu is not None else None
        pool = only(norm.output[0], "MaxPool") if norm is not None else None
        if pool is None or not {conv.input[1], conv.input[2], norm.input[1]} <= set(initialisers):
            continue
        if _attribute(pool, "kernel_shape", [1, 1])[0] != 1 or any(_attribute(pool, "pads", [0, 0, 0, 0])):
            continue  # the pool must not mix frames (nor pad): it is over frequency only
        sign = np.where(numpy_helper.to_array(initialisers[norm.input[1]]) < 0, -1.0, 1.0).astype(np.float32)
        weight = numpy_helper.to_array(initialisers[conv.input[1]])
        bias = numpy_helper.to_array(initialisers[conv.input[2]])
        initialisers[conv.input[1]].CopyFrom(numpy_helper.from_array(weight * sign.reshape(-1, 1, 1, 1), conv.input[1]))
        initialisers[conv.input[2]].CopyFrom(numpy_helper.from_array(bias * sign, conv.input[2]))
        sign_name = f"{conv.output[0]}_{LOCAL_SUFFIX}_sign"
        graph.initializer.append(numpy_helper.from_array(sign.reshape(1, -1, 1, 1), sign_name))
        pooled, signed, result = f"{conv.output[0]}_{LOCAL_SUFFIX}_pooled", f"{sign_name}_applied", pool.output[0]
        pool.input[0], pool.output[0] = conv.output[0], pooled
        relu.input[0] = signed
        norm.output[0] = result
        graph.node.append(helper.make_node("Mul", [pooled, sign_name], [signed], name=f"{sign_name}_mul"))
        rewritten += 1
    _sort_nodes(graph)
    return rewritten


def _sort_nodes(graph) -> None:
    """Put ``graph``'s nodes in topological order again (ONNX requires it)."""
    available = {tensor.name for tensor in graph.input} | {tensor.name for tensor in graph.initializer} | {""}
    pending = []
    for node in graph.node:
        copy = onnx.NodeProto()
        copy.CopyFrom(node)
        pending.append(copy)
    ordered = []
    while pending:
        ready = next(i for i, node in enumerate(pending) if all(name in available for name in node.input))
        node = pending.pop(ready)
        ordered.append(node)
        available.update(node.output)
    del graph.node[:]
    graph.node.extend(ordered)



def rewrite_temporal(model, *, frames: int) -> int:
    """Rewrite every ``Conv`` with one input channel and a ``(k, 1)`` kernel (musicnn's temporal branches:
    one filter along time, the same for each frequency bin) whose output only a ``MaxPool`` over every
    frequency bin reads, in a graph whose time axis has ``frames`` frames, into a ``MatMul`` by the
    convolution's Toeplitz matrix ``(C * frames, frames)`` (gathered from the kernel at load time), a
    ``ReduceMax`` over the bins and the bias added after the maximum; in place; returns how many were
    rewritten. The same sums (the zero padding is the matrix's zeros). ONNX Runtime's convolution wrote
    these outputs in a blocked layout that had to be reordered for the max-pool; the product and a reduction
    over the contiguous last axis take about 25 % less time for the rest of the shipped v2 (batches of 16)."""
    graph = model.graph
    initialisers = {tensor.name: tensor for tensor in graph.initializer}
    consumers = _consumers(graph)
    rewritten = 0
    for conv in list(graph.node):
        if conv.op_type != "Conv" or len(conv.input) != 3 or not {conv.input[1], conv.input[2]} <= set(initialisers):
            continue
        weight = numpy_helper.to_array(initialisers[conv.input[1]])
        following = consumers.get(conv.output[0], [])
        if weight.ndim != 4 or weight.shape[1] != 1 or weight.shape[3] != 1 or len(following) != 1 or following[0].op_type != "MaxPool":
            continue
        pool, pads = following[0], _attribute(conv, "pads", [0, 0, 0, 0])
        if (_attribute(pool, "kernel_shape", [0, 0])[0] != 1 or any(_attribute(pool, "pads", [0, 0, 0, 0])) or pads[1] or pads[3]
                or _attribute(conv, "strides", [1, 1]) != [1, 1] or _attribute(conv, "dilations", [1, 1]) != [1, 1]
                or _attribute(conv, "group", 1) != 1 or pads[0] + pads[2] != weight.shape[2] - 1):
            continue  # only a stride-1 'same' convolution along time
        channels, kernel = weight.shape[0], weight.shape[2]
        taps = np.arange(frames)[None, :] - np.arange(frames)[:, None] + pads[0]  # (t, s): the tap that s is for t
        taps = np.where((taps >= 0) & (taps < kernel), taps, kernel).astype(np.int64)  # tap `kernel`: a zero
        padded = np.concatenate([weight[:, 0, :, 0], np.zeros((channels, 1), weight.dtype)], axis=1)  # (C, k + 1)
        bias = numpy_helper.to_array(initialisers[conv.input[2]]).reshape(channels, 1).astype(np.float32)
        name = f"{conv.output[0]}_{LOCAL_SUFFIX}_toeplitz"
        graph.initializer.extend([  # the matrix is made from these at load time (ONNX Runtime folds constants)
            numpy_helper.from_array(padded.astype(np.float32), f"{name}_taps"),
            numpy_helper.from_array(taps, f"{name}_index"),
            numpy_helper.from_array(np.array([channels * frames, frames], dtype=np.int64), f"{name}_matrix_shape"),
            numpy_helper.from_array(bias, f"{name}_bias"),
            numpy_helper.from_array(np.array([1], dtype=np.int64), f"{name}_axis1"),
            numpy_helper.from_array(np.array([3], dtype=np.int64), f"{name}_axis3"),
            numpy_helper.from_array(np.array([-1, channels, frames], dtype=np.int64), f"{name}_shape"),
        ])
        graph.node.extend([
            helper.make_node("Gather", [f"{name}_taps", f"{name}_index"], [f"{name}_ctt"], axis=1),  # (C, T, T)
            helper.make_node("Reshape", [f"{name}_ctt", f"{name}_matrix_shape"], [f"{name}_matrix"]),  # (C * T, T)
        ])
        graph.node.extend([
            helper.make_node("Squeeze", [conv.input[0], f"{name}_axis1"], [f"{name}_in"]),  # (B, T, F)
            helper.make_node("MatMul", [f"{name}_matrix", f"{name}_in"], [f"{name}_out"]),  # (B, C * T, F)
            helper.make_node("ReduceMax", [f"{name}_out"], [f"{name}_max"], axes=[2], keepdims=0),  # (B, C * T)
            helper.make_node("Reshape", [f"{name}_max", f"{name}_shape"], [f"{name}_ct"]),  # (B, C, T)
            helper.make_node("Add", [f"{name}_ct", f"{name}_bias"], [f"{name}_biased"]),
            helper.make_node("Unsqueeze", [f"{name}_biased", f"{name}_axis3"], [pool.output[0]]),  # (B, C, T, 1)
        ])
        graph.node.remove(pool)
        graph.node.remove(conv)
        rewritten += 1
    _sort_nodes(graph)
    return rewritten
