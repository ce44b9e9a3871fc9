"""The runtime refuses models whose metadata disagrees with the front-end or the label contract."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest
import torch

from mer_live.features import spectrogram
from mer_live.model import emotion_model
from mer_live.model.emotion_model import EmotionModel, ModelError
from mer_live.train import export, networks
from mer_live.train.networks import EmotionNet


@pytest.fixture(scope="module")
def good_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(1)
    path = tmp_path_factory.mktemp("model") / "good.onnx"
    export.export_onnx(net=EmotionNet(variant=networks.VARIANT_JOINT, width=0.25), path=path,
                       variant="test", data_hash="test")
    return path


def _tampered(*, source: Path, target: Path, key: str, value: str | None) -> Path:
    proto = onnx.load(str(source))
    entries = {p.key: p.value for p in proto.metadata_props}
    if value is None:
        entries.pop(key)
    else:
        entries[key] = value
    del proto.metadata_props[:]
    for k, v in entries.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = k, v
    onnx.save(proto, str(target))
    return target


def test_good_model_loads(good_model: Path) -> None:
    runtime = EmotionModel(path=good_model)
    runtime.warm_up()
    assert runtime.weight.shape == (8, 7) and runtime.bias.shape == (8,)


@pytest.mark.parametrize("key,change", [("fps", 31.0), ("num_bands", 150), ("rms_floor_dbfs", -60.0), ("window", "hamming")])
def test_front_end_mismatch_is_refused(good_model: Path, tmp_path: Path, key: str, change: object) -> None:
    frontend = dict(spectrogram.FRONTEND_CONSTANTS)
    frontend[key] = change
    path = _tampered(source=good_model, target=tmp_path / "bad.onnx", key=emotion_model.META_FRONTEND,
                     value=json.dumps(frontend))
    with pytest.raises(ModelError, match=key):
        EmotionModel(path=path)


def test_label_order_mismatch_is_refused(good_model: Path, tmp_path: Path) -> None:
    emotions = ["energy", "valence", "tension", "anger", "fear", "happy", "sad", "tender"]
    path = _tampered(source=good_model, target=tmp_path / "bad.onnx", key=emotion_model.META_EMOTIONS,
                     value=json.dumps(emotions))
    with pytest.raises(ModelError, match="label order"):
        EmotionModel(path=path)


def test_missing_metadata_is_refused(good_model: Path, tmp_path: Path) -> None:
    path = _tampered(source=good_model, target=tmp_path / "bad.onnx", key=emotion_model.META_JOINT_WEIGHT, value=None)
    with pytest.raises(ModelError, match="not a mer-live model"):
        EmotionModel(path=path)


def test_garbage_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "garbage.onnx"
    path.write_bytes(b"not an onnx model")
    with pytest.raises(ModelError, match="garbage.onnx"):
        EmotionModel(path=path)
