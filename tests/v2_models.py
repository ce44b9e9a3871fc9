"""Small synthetic v2 models that follow the v2 contract, built with the ``onnx`` helper API.

Input ``mel`` ``(batch, 187, 96)``; ``mid`` = a linear map of the patch's mean mel frame, plus a linear
map of its last frame (so the output follows the audio within a patch); ``emotion`` = the Joint layer
of ``mid``; metadata as a real v2 export carries it (front-end, labels, Joint layer, pooling).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from mer_live.core import labels
from mer_live.features import mel
from mer_live.model import emotion_model
from mer_live.model.pooling import Pooling

OPSET = 17
DEFAULT_POOLING = Pooling(patch_hop_frames=31, patches=4, halflife_s=1.0)


def write_v2_model(path: Path, *, pooling: Pooling = DEFAULT_POOLING, seed: int = 0,
                   frontend: dict | None = None) -> Path:
    rng = np.random.default_rng(seed)
    bands, mids, emotions = mel.NUM_BANDS, labels.NUM_MID_LEVELS, labels.NUM_EMOTIONS
    mean_map = (rng.standard_normal((bands, mids)) * 0.004).astype(np.float32)
    last_map = (rng.standard_normal((bands, mids)) * 0.002).astype(np.float32)
    mid_bias = np.full(mids, 0.55, dtype=np.float32)
    joint_weight = (rng.standard_normal((emotions, mids)) * 0.1).astype(np.float32)
    joint_bias = (rng.uniform(0.3, 0.6, emotions)).astype(np.float32)
    initialisers = [
        numpy_helper.from_array(mean_map, "mean_map"),
        numpy_helper.from_array(last_map, "last_map"),
        numpy_helper.from_array(mid_bias, "mid_bias"),
        numpy_helper.from_array(joint_weight.T.copy(), "joint_weight_t"),
        numpy_helper.from_array(joint_bias, "joint_bias"),
        numpy_helper.from_array(np.array([-1], dtype=np.int64), "last_start"),
        numpy_helper.from_array(np.array([np.iinfo(np.int64).max], dtype=np.int64), "last_end"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "time_axis"),
    ]
    nodes = [
        helper.make_node("ReduceMean", ["mel"], ["frame_mean"], axes=[1], keepdims=0),
        helper.make_node("Slice", ["mel", "last_start", "last_end", "time_axis"], ["last_frame_3d"]),
        helper.make_node("Squeeze", ["last_frame_3d", "time_axis"], ["last_frame"]),
        helper.make_node("MatMul", ["frame_mean", "mean_map"], ["from_mean"]),
        helper.make_node("MatMul", ["last_frame", "last_map"], ["from_last"]),
        helper.make_node("Add", ["from_mean", "from_last"], ["mid_raw"]),
        helper.make_node("Add", ["mid_raw", "mid_bias"], ["mid"]),
        helper.make_node("MatMul", ["mid", "joint_weight_t"], ["emotion_raw"]),
        helper.make_node("Add", ["emotion_raw", "joint_bias"], ["emotion"]),
    ]
    graph = helper.make_graph(
        nodes, "synthetic_v2",
        [helper.make_tensor_value_info("mel", TensorProto.FLOAT, ["batch", mel.PATCH_FRAMES, bands])],
        [helper.make_tensor_value_info("mid", TensorProto.FLOAT, ["batch", mids]),
         helper.make_tensor_value_info("emotion", TensorProto.FLOAT, ["batch", emotions])],
        initialisers,
    )
    return _save(graph, path, pooling=pooling, frontend=frontend, joint_weight=joint_weight, joint_bias=joint_bias,
                 variant="synthetic-v2")


def _save(graph, path: Path, *, pooling: Pooling, frontend: dict | None, joint_weight: np.ndarray, joint_bias: np.ndarray,
          variant: str) -> Path:
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    proto.ir_version = 8
    metadata = {
        emotion_model.META_FRONTEND: json.dumps(frontend if frontend is not None else mel.FRONTEND_CONSTANTS),
        emotion_model.META_EMOTIONS: json.dumps(list(labels.EMOTIONS)),
        emotion_model.META_MID_LEVELS: json.dumps(list(labels.MID_LEVELS)),
        emotion_model.META_UNITS: json.dumps(emotion_model.UNITS),
        emotion_model.META_JOINT_WEIGHT: json.dumps(joint_weight.astype(np.float64).tolist()),
        emotion_model.META_JOINT_BIAS: json.dumps(joint_bias.astype(np.float64).tolist()),
        emotion_model.META_VARIANT: variant,
        emotion_model.META_POOLING: pooling.to_json(),
    }
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(proto)
    path = Path(path)
    onnx.save(proto, str(path))
    return path


# (name, filters, time kernel, band kernel, time pads before/after): two timbral branches (frame-local, one
# with less context) and one temporal branch (32 frames, asymmetric padding: not frame-local), as in musicnn
MUSICNN_LIKE_BRANCHES = (("timbral_a", 8, 7, 38, (3, 3)), ("timbral_b", 8, 5, 67, (2, 2)), ("temporal", 4, 32, 1, (15, 16)))
MUSICNN_LIKE_LOCAL = ("timbral_a_out", "timbral_b_out")


def write_musicnn_like_model(path: Path, *, pooling: Pooling = DEFAULT_POOLING, seed: int = 0,
                             heard: int = mel.PATCH_FRAMES) -> Path:
    """A small v2 model with musicnn's layout, as tf2onnx exports it: ``mel`` -> a fixed-length reshape
    to ``(batch, 1, 187, 96)`` -> input batch norm -> branches (Conv -> Relu -> BatchNormalization ->
    MaxPool over the bands -> Squeeze, ``(batch, C, 187)``; see ``MUSICNN_LIKE_BRANCHES``) -> Concat -> a
    7-frame "mid-end" Conv over the concatenated features (not frame-local: it reads every branch) ->
    max and mean over time -> Gemm -> ``mid`` -> the Joint layer -> ``emotion``. With ``heard`` < 187 the
    model hears only the last ``heard`` frames of each patch, as ``shorten_backbone`` cuts musicnn: a
    ``Slice`` of them in front, and ``heard`` in place of 187 in the reshape."""
    rng = np.random.default_rng(seed)
    bands, frames = mel.NUM_BANDS, mel.PATCH_FRAMES
    mids, emotions = labels.NUM_MID_LEVELS, labels.NUM_EMOTIONS
    joint_weight = (rng.standard_normal((emotions, mids)) * 0.1).astype(np.float32)
    joint_bias = rng.uniform(0.3, 0.6, emotions).astype(np.float32)

    def constant(name: str, value) -> str:
        initialisers.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def batch_norm(name: str, source: str, channels: int) -> str:
        ins = [constant(f"{name}_{part}", value.astype(np.float32)) for part, value in (
            ("scale", rng.uniform(0.5, 1.5, channels)), ("bias", rng.uniform(-0.1, 0.1, channels)),
            ("mean", rng.uniform(-0.1, 0.1, channels)), ("var", rng.uniform(0.5, 1.5, channels)))]
        nodes.append(helper.make_node("BatchNormalization", [source, *ins], [name], epsilon=1e-3))
        return name

    initialisers: list = []
    nodes: list = []
    shape = constant("patch_shape", np.array([-1, 1, heard, bands], dtype=np.int64))
    source = "mel"
    if heard < frames:
        bounds = [constant(f"heard_{k}", np.array(v, dtype=np.int64)) for k, v in
                  (("starts", [frames - heard]), ("ends", [frames]), ("axes", [1]))]
        nodes.append(helper.make_node("Slice", ["mel", *bounds], ["heard"]))
        source = "heard"
    nodes.append(helper.make_node("Unsqueeze", [source, constant("axis_3", np.array([3], dtype=np.int64))], ["expanded"]))
    nodes.append(helper.make_node("Reshape", ["expanded", shape], ["reshaped"]))
    normalised = batch_norm("input_bn", "reshaped", 1)
    nodes.append(helper.make_node("Reshape", [normalised, shape], ["patch"]))
    branch_outputs = []
    for name, filters, time_kernel, band_kernel, (before, after) in MUSICNN_LIKE_BRANCHES:
        weight = constant(f"{name}_w", (rng.standard_normal((filters, 1, time_kernel, band_kernel)) * 0.05).astype(np.float32))
        bias = constant(f"{name}_b", rng.uniform(-0.1, 0.1, filters).astype(np.float32))
        nodes.append(helper.make_node("Conv", ["patch", weight, bias], [f"{name}_conv"], kernel_shape=[time_kernel, band_kernel],
                                      pads=[before, 0, after, 0], strides=[1, 1], dilations=[1, 1], group=1))
        nodes.append(helper.make_node("Relu", [f"{name}_conv"], [f"{name}_relu"]))
        normed = batch_norm(f"{name}_bn", f"{name}_relu", filters)
        width = bands - band_kernel + 1
        nodes.append(helper.make_node("MaxPool", [normed], [f"{name}_pool"], kernel_shape=[1, width], strides=[1, width]))
        nodes.append(helper.make_node("Squeeze", [f"{name}_pool", "axis_3"], [f"{name}_out"]))
        branch_outputs.append(f"{name}_out")
    channels = sum(branch[1] for branch in MUSICNN_LIKE_BRANCHES)
    nodes.append(helper.make_node("Concat", branch_outputs, ["front"], axis=1))  # (batch, C, 187)
    nodes.append(helper.make_node("Transpose", ["front"], ["front_t"], perm=[0, 2, 1]))
    nodes.append(helper.make_node("Unsqueeze", ["front_t", constant("axis_1", np.array([1], dtype=np.int64))], ["mid_in"]))
    mid_filters = 6
    nodes.append(helper.make_node("Conv", ["mid_in", constant("midend_w", (rng.standard_normal((mid_filters, 1, 7, channels)) * 0.05).astype(np.float32))],
                                  ["midend_conv"], kernel_shape=[7, channels], pads=[3, 0, 3, 0]))
    nodes.append(helper.make_node("Relu", ["midend_conv"], ["midend_relu"]))
    nodes.append(helper.make_node("Squeeze", ["midend_relu", "axis_3"], ["midend"]))  # (batch, 6, 187)
    nodes.append(helper.make_node("ReduceMax", ["front"], ["front_max"], axes=[2], keepdims=0))
    nodes.append(helper.make_node("ReduceMean", ["midend"], ["midend_mean"], axes=[2], keepdims=0))
    nodes.append(helper.make_node("Concat", ["front_max", "midend_mean"], ["pooled"], axis=1))
    head = (rng.standard_normal((mids, channels + mid_filters)) * 0.02).astype(np.float32)
    nodes.append(helper.make_node("Gemm", ["pooled", constant("head_w", head), constant("head_b", np.full(mids, 0.5, dtype=np.float32))],
                                  ["mid"], transB=1))
    nodes.append(helper.make_node("Gemm", ["mid", constant("joint_w", joint_weight), constant("joint_b", joint_bias)], ["emotion"], transB=1))
    graph = helper.make_graph(
        nodes, "musicnn_like_v2",
        [helper.make_tensor_value_info("mel", TensorProto.FLOAT, ["batch", frames, bands])],
        [helper.make_tensor_value_info("mid", TensorProto.FLOAT, ["batch", mids]),
         helper.make_tensor_value_info("emotion", TensorProto.FLOAT, ["batch", emotions])],
        initialisers,
    )
    return _save(graph, path, pooling=pooling, frontend=None, joint_weight=joint_weight, joint_bias=joint_bias,
                 variant="musicnn-like-v2")
