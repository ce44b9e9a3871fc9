"""The shipped model: its metadata, and a behaviour check on two real clips (happy 001 vs sad 031)."""

from __future__ import annotations

import json
import subprocess
from csv import DictReader
from pathlib import Path

import numpy as np
import pytest

from mer_live.core import labels
from mer_live.features import mel
from mer_live.train import soundtracks
from mer_live.model.emotion_model import (
    SHIPPED_MODELS,
    EmotionModel,
    default_model_path,
    resolve_model,
    shipped_model_path,
)
from mer_live.train import cache, data

MODELS_DIR = Path(__file__).resolve().parent.parent / "models"

HAPPY_CLIP = "001"  # rated happy 7.33, sad 1.00
SAD_CLIP = "031"  # rated happy 1.00, sad 7.67
RUN_TIMEOUT_S = 120


@pytest.fixture(scope="module")
def shipped() -> EmotionModel:
    return EmotionModel(path="v1")


def test_shipped_model_is_a_trained_joint_model(shipped: EmotionModel, shared_data: Path) -> None:
    assert shipped.variant.startswith("joint")
    assert shipped.metadata["mer_live.data_hash"] == soundtracks.data_hash(data=soundtracks.load(root=shared_data))
    metrics = json.loads(shipped.metadata["mer_live.cv_metrics"])
    assert metrics["num_folds"] >= 5 and len(metrics["folds_done"]) == metrics["num_folds"]
    assert set(metrics["clip_r_mean"]) == set(labels.EMOTIONS)


@pytest.mark.slow
def test_happy_clip_is_happier_and_sad_clip_sadder(shipped: EmotionModel, shared_data: Path) -> None:
    clips = {clip.clip_id: clip for clip in soundtracks.load(root=shared_data).clips}
    means = {}
    for clip_id in (HAPPY_CLIP, SAD_CLIP):
        windows, _ = data.clip_windows(block=cache.frames_for(path=clips[clip_id].path))
        means[clip_id] = shipped.process(windows=windows).emotion.mean(axis=0)
    happy, sad = labels.EMOTIONS.index("happy"), labels.EMOTIONS.index("sad")
    assert means[HAPPY_CLIP][happy] > means[SAD_CLIP][happy]
    assert means[SAD_CLIP][sad] > means[HAPPY_CLIP][sad]
    assert np.all(np.isfinite(means[HAPPY_CLIP]))


@pytest.mark.slow
def test_shipped_onnx_matches_its_torch_weights_on_real_clips(shipped: EmotionModel, shared_data: Path) -> None:
    import torch

    from mer_live.train.networks import VARIANT_JOINT, EmotionNet

    weights = MODELS_DIR / "a2mid2e_joint.pt"  # the training side stays in models/; the .onnx is package data
    record = json.loads((MODELS_DIR / "a2mid2e_joint.training.json").read_text())
    net = EmotionNet(variant=VARIANT_JOINT, width=record["width"])
    net.load_state_dict(torch.load(weights, weights_only=True))
    net.eval()
    clips = {clip.clip_id: clip for clip in soundtracks.load(root=shared_data).clips}
    windows = np.concatenate([data.clip_windows(block=cache.frames_for(path=clips[c].path))[0]
                              for c in (HAPPY_CLIP, SAD_CLIP, "200", "333")])
    prediction = shipped.process(windows=windows)
    with torch.no_grad():
        mid, emotion = net(torch.from_numpy(windows))
    np.testing.assert_allclose(prediction.emotion, emotion.numpy(), atol=1e-4, rtol=0)
    np.testing.assert_allclose(prediction.mid, mid.numpy(), atol=1e-4, rtol=0)


def test_model_names_v1_v2_and_v3_pick_the_shipped_files(tmp_path: Path) -> None:
    assert resolve_model("v3") == shipped_model_path() == default_model_path()  # v3 is the default
    assert Path(str(resolve_model("v2"))).name == SHIPPED_MODELS["v2"]
    assert Path(str(resolve_model("v1"))).name == SHIPPED_MODELS["v1"]
    assert resolve_model("") == resolve_model(None) == default_model_path()
    v2 = EmotionModel(path="v2")
    assert Path(str(v2.path)).name == SHIPPED_MODELS["v2"] and v2.front_end.kind == mel.KIND
    assert Path(str(resolve_model(str(tmp_path / "v2")))) == tmp_path / "v2"  # a path is a path, even so named


def test_analyze_and_the_daemon_take_a_shipped_model_name(tmp_path: Path) -> None:
    from tests.osc_receivers import mer_live_command

    csv = tmp_path / "demo.csv"
    done = subprocess.run(
        [*mer_live_command(), "--demo", "--fast", "--duration", "4", "--model", "v2", "--no-osc", "--no-control",
         "--csv", str(csv), "-q"],
        capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
    )
    assert done.returncode == 0, done.stderr
    with csv.open(newline="") as handle:
        rows = list(DictReader(handle))
    assert len(rows) == 16  # 4 s at the default 4 updates/s
    energy = [float(row["energy"]) for row in rows]
    assert all(0.0 <= value <= 1.0 for value in energy) and len(set(energy)) > 1
    missing = subprocess.run(
        [*mer_live_command(), "analyze", "--model", "v9", str(csv)], capture_output=True, text=True, timeout=RUN_TIMEOUT_S
    )
    lines = missing.stderr.strip().splitlines()
    assert missing.returncode == 2 and len(lines) == 1 and "v1, v2, v3" in lines[0], missing.stderr
