"""The VGG-style networks: shapes, the Joint structure, standardisation inside, initialisation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mer_live.features import spectrogram
from mer_live.core import labels
from mer_live.train import networks
from mer_live.train.networks import EmotionNet
from mer_live.train.training import VARIANTS, TrainConfig, build_net

WIDTH = 0.25


def _windows(*, batch: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(batch, spectrogram.NUM_FRAMES, spectrogram.NUM_BANDS, generator=generator)


@pytest.mark.parametrize("variant", [networks.VARIANT_A2E, networks.VARIANT_JOINT])
def test_output_shapes(variant: str) -> None:
    net = EmotionNet(variant=variant, width=WIDTH).eval()
    mid, emotion = net(_windows(batch=3))
    assert mid.shape == (3, labels.NUM_MID_LEVELS) and emotion.shape == (3, labels.NUM_EMOTIONS)


def test_unknown_variant_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown variant"):
        EmotionNet(variant="a2mid", width=WIDTH)


def test_width_scales_the_channels_and_the_paper_stack_is_there() -> None:
    full = EmotionNet(variant=networks.VARIANT_JOINT, width=1.0)
    convs = [m for m in full.backbone.stack if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 64, 128, 128, 256, 256, 384, 512, 256]
    assert convs[0].kernel_size == (5, 5) and convs[0].stride == (2, 2)
    assert all(c.kernel_size == (3, 3) for c in convs[1:])
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in full.backbone.stack) == len(convs)
    assert sum(isinstance(m, torch.nn.MaxPool2d) for m in full.backbone.stack) == 2
    small = EmotionNet(variant=networks.VARIANT_JOINT, width=WIDTH)
    assert small.backbone.out_channels == 64 and full.backbone.out_channels == 256
    assert full.mid_head.in_features == 256 and full.emotion_head.in_features == labels.NUM_MID_LEVELS


def test_joint_emotion_is_a_linear_function_of_mid() -> None:
    net = EmotionNet(variant=networks.VARIANT_JOINT, width=WIDTH).eval()
    with torch.no_grad():
        mid, emotion = net(_windows(batch=4))
        expected = mid @ net.emotion_head.weight.T + net.emotion_head.bias
    torch.testing.assert_close(emotion, expected, rtol=1e-6, atol=1e-6)


def test_standardisation_is_inside_the_model() -> None:
    net = EmotionNet(variant=networks.VARIANT_JOINT, width=WIDTH).eval()
    x = _windows(batch=2)
    shift = torch.linspace(0.0, 1.0, spectrogram.NUM_BANDS)
    scale = torch.linspace(0.5, 2.0, spectrogram.NUM_BANDS)
    with torch.no_grad():
        before = net(x)[1]
        net.backbone.set_standardisation(mean=shift, std=scale)
        after = net(x * scale + shift)[1]  # standardising undoes the affine change exactly
    torch.testing.assert_close(before, after, rtol=1e-4, atol=1e-5)


def test_init_joint_puts_the_mean_prediction_on_the_training_means() -> None:
    net = EmotionNet(variant=networks.VARIANT_JOINT, width=WIDTH)
    weight = torch.randn(labels.NUM_EMOTIONS, labels.NUM_MID_LEVELS)
    mid_mean = torch.rand(labels.NUM_MID_LEVELS)
    emotion_mean = torch.rand(labels.NUM_EMOTIONS)
    net.init_joint(weight=weight, mid_mean=mid_mean, emotion_mean=emotion_mean)
    torch.testing.assert_close(net.emotion_head(mid_mean[None])[0], emotion_mean, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(net.mid_head.bias, mid_mean)
    with pytest.raises(ValueError):
        EmotionNet(variant=networks.VARIANT_A2E, width=WIDTH).init_joint(
            weight=weight, mid_mean=mid_mean, emotion_mean=emotion_mean)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_build_net_applies_the_variant(variant: str) -> None:
    rng = np.random.default_rng(0)
    blocks = [spectrogram.analyse(samples=(0.1 * rng.standard_normal(spectrogram.SAMPLE_RATE * 11)).astype(np.float32))]
    ratings = rng.uniform(0.1, 0.9, (5, labels.NUM_EMOTIONS))
    mids = rng.uniform(0.1, 1.0, (5, labels.NUM_MID_LEVELS))
    poster = rng.uniform(-0.5, 0.5, (labels.NUM_EMOTIONS, labels.NUM_MID_LEVELS))
    net = build_net(config=TrainConfig(variant=variant, width=WIDTH), train_blocks=blocks, train_ratings=ratings,
                    mid_targets=mids, poster_weight=poster)
    kind, poster_init, freeze, _ = VARIANTS[variant]
    assert net.variant == kind
    assert float(net.backbone.band_std.min()) > 0.0 and float(net.backbone.band_mean.abs().sum()) > 0.0
    if kind == networks.VARIANT_JOINT:
        np.testing.assert_allclose(net.emotion_head.weight.detach().numpy(), poster, rtol=1e-6, atol=1e-7)
        assert net.emotion_head.weight.requires_grad is (not freeze)
        expected = torch.tensor(ratings.mean(axis=0), dtype=torch.float32)
        got = net.emotion_head(torch.tensor(mids.mean(axis=0), dtype=torch.float32)[None])[0]
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    else:
        np.testing.assert_allclose(net.emotion_head.bias.detach().numpy(), ratings.mean(axis=0), rtol=1e-6)
