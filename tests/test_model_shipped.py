"""The shipped model: its metadata, and a behaviour check on two real clips (happy 001 vs sad 031)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mer_live import labels, soundtracks
from mer_live.model import EmotionModel, default_model_path
from mer_live.train import cache, data

MODELS_DIR = Path(__file__).resolve().parent.parent / "models"

HAPPY_CLIP = "001"  # rated happy 7.33, sad 1.00
SAD_CLIP = "031"  # rated happy 1.00, sad 7.67


@pytest.fixture(scope="module")
def shipped() -> EmotionModel:
    return EmotionModel(path=default_model_path())


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
