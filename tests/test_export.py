"""ONNX export: graph contract, metadata, batch axis and parity with torch (synthetic windows)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from mer_live import __version__
from mer_live.features import spectrogram
from mer_live.core import labels
from mer_live.model import emotion_model
from mer_live.model.emotion_model import EmotionModel
from mer_live.train import export, networks
from mer_live.train.networks import EmotionNet

PARITY_TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[EmotionNet, Path]:
    torch.manual_seed(0)
    net = EmotionNet(variant=networks.VARIANT_JOINT, width=0.25)
    net.backbone.set_standardisation(mean=torch.full((spectrogram.NUM_BANDS,), 0.3),
                                     std=torch.full((spectrogram.NUM_BANDS,), 0.2))
    net.init_joint(weight=torch.randn(labels.NUM_EMOTIONS, labels.NUM_MID_LEVELS),
                   mid_mean=torch.full((labels.NUM_MID_LEVELS,), 0.5), emotion_mean=torch.full((labels.NUM_EMOTIONS,), 0.4))
    path = tmp_path_factory.mktemp("export") / "joint.onnx"
    export.export_onnx(net=net, path=path, variant="joint_ab_w0.25", data_hash="abc123",
                       cv_metrics={"clip_r_avg": 0.5})
    return net.eval(), path


def test_graph_contract(exported: tuple[EmotionNet, Path]) -> None:
    _, path = exported
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto)
    assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) >= emotion_model.MIN_OPSET
    (graph_input,) = proto.graph.input
    assert graph_input.name == emotion_model.INPUT_NAME
    dims = graph_input.type.tensor_type.shape.dim
    assert dims[0].dim_param and [d.dim_value for d in dims[1:]] == [spectrogram.NUM_FRAMES, spectrogram.NUM_BANDS]
    assert graph_input.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert [o.name for o in proto.graph.output] == [emotion_model.OUTPUT_MID, emotion_model.OUTPUT_EMOTION]


def test_metadata_carries_the_contract(exported: tuple[EmotionNet, Path]) -> None:
    net, path = exported
    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert json.loads(meta[emotion_model.META_FRONTEND]) == json.loads(json.dumps(spectrogram.FRONTEND_CONSTANTS))
    assert tuple(json.loads(meta[emotion_model.META_EMOTIONS])) == labels.EMOTIONS
    assert tuple(json.loads(meta[emotion_model.META_MID_LEVELS])) == labels.MID_LEVELS
    assert json.loads(meta[emotion_model.META_UNITS]) == emotion_model.UNITS
    assert meta[emotion_model.META_VARIANT] == "joint_ab_w0.25" and meta[emotion_model.META_DATA_HASH] == "abc123"
    assert json.loads(meta[emotion_model.META_CV_METRICS]) == {"clip_r_avg": 0.5}
    assert meta[emotion_model.META_VERSION] == __version__
    np.testing.assert_array_equal(np.asarray(json.loads(meta[emotion_model.META_JOINT_WEIGHT]), dtype=np.float32),
                                  net.emotion_head.weight.detach().numpy())
    np.testing.assert_array_equal(np.asarray(json.loads(meta[emotion_model.META_JOINT_BIAS]), dtype=np.float32),
                                  net.emotion_head.bias.detach().numpy())


def test_runtime_loads_it_and_matches_torch(exported: tuple[EmotionNet, Path]) -> None:
    net, path = exported
    runtime = EmotionModel(path=path)
    assert runtime.variant == "joint_ab_w0.25"
    rng = np.random.default_rng(1)
    batch = rng.uniform(0.0, 1.5, (5, spectrogram.NUM_FRAMES, spectrogram.NUM_BANDS)).astype(np.float32)
    prediction = runtime.process(windows=batch)
    with torch.no_grad():
        mid, emotion = net(torch.from_numpy(batch))
    np.testing.assert_allclose(prediction.mid, mid.numpy(), atol=PARITY_TOLERANCE, rtol=0)
    np.testing.assert_allclose(prediction.emotion, emotion.numpy(), atol=PARITY_TOLERANCE, rtol=0)
    # the explanation metadata reproduces the model's own emotion output from its mid output
    np.testing.assert_allclose(prediction.mid @ runtime.weight.T + runtime.bias, prediction.emotion, atol=1e-5)
    single = runtime.process(windows=batch[2])
    np.testing.assert_allclose(single.emotion[0], prediction.emotion[2], atol=1e-6)


def test_a2e_cannot_be_exported_as_a_runtime_model(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="Joint"):
        export.export_onnx(net=EmotionNet(variant=networks.VARIANT_A2E, width=0.25), path=tmp_path / "a2e.onnx",
                           variant="a2e", data_hash="x")
    assert not (tmp_path / "a2e.onnx").exists()
