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

from mer_live import labels, mel_features, model
from mer_live.pooling import Pooling

OPSET = 17
DEFAULT_POOLING = Pooling(patch_hop_frames=31, patches=4, halflife_s=1.0)


def write_v2_model(path: Path, *, pooling: Pooling = DEFAULT_POOLING, seed: int = 0,
                   frontend: dict | None = None) -> Path:
    rng = np.random.default_rng(seed)
    bands, mids, emotions = mel_features.NUM_BANDS, labels.NUM_MID_LEVELS, labels.NUM_EMOTIONS
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
        [helper.make_tensor_value_info("mel", TensorProto.FLOAT, ["batch", mel_features.PATCH_FRAMES, bands])],
        [helper.make_tensor_value_info("mid", TensorProto.FLOAT, ["batch", mids]),
         helper.make_tensor_value_info("emotion", TensorProto.FLOAT, ["batch", emotions])],
        initialisers,
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    proto.ir_version = 8
    metadata = {
        model.META_FRONTEND: json.dumps(frontend if frontend is not None else mel_features.FRONTEND_CONSTANTS),
        model.META_EMOTIONS: json.dumps(list(labels.EMOTIONS)),
        model.META_MID_LEVELS: json.dumps(list(labels.MID_LEVELS)),
        model.META_UNITS: json.dumps(model.UNITS),
        model.META_JOINT_WEIGHT: json.dumps(joint_weight.astype(np.float64).tolist()),
        model.META_JOINT_BIAS: json.dumps(joint_bias.astype(np.float64).tolist()),
        model.META_VARIANT: "synthetic-v2",
        model.META_POOLING: pooling.to_json(),
    }
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(proto)
    path = Path(path)
    onnx.save(proto, str(path))
    return path
