"""The VGG-style networks of Chowdhury et al. (2019): A2E and A2Mid2E-Joint, with a width multiplier.

Input: raw front-end windows ``(batch, NUM_FRAMES, NUM_BANDS)`` (time-major, as made by
:func:`mer_live.features.spectrogram.normalise`). The network standardises each band with mean/std buffers computed
from training data, so an exported model takes exactly what the live front-end produces.

Stack (channel counts at width 1.0):
conv 5x5 stride 2 (64) -> conv 3x3 (64) -> max-pool 2 + dropout
-> conv 3x3 (128) x2 -> max-pool 2 + dropout
-> conv 3x3 256, 256, 384, 512, 256 -> global average pool.
Every convolution is followed by BatchNorm and ReLU.
"""

from __future__ import annotations

import torch
from torch import nn

from mer_live.features import spectrogram
from mer_live.core import labels

VARIANT_A2E = "a2e"
VARIANT_JOINT = "joint"
STEM_CHANNELS = 64
STEM_KERNEL = 5
STEM_STRIDE = 2
BLOCK2_CHANNELS = 128
DEEP_CHANNELS = (256, 256, 384, 512, 256)
KERNEL = 3
POOL = 2
DEFAULT_DROPOUT = 0.3
MIN_CHANNELS = 4
STD_FLOOR = 1e-3


def _channels(*, base: int, width: float) -> int:
    return max(MIN_CHANNELS, int(round(base * width)))


def _conv(*, inputs: int, outputs: int, kernel: int, stride: int = 1) -> list[nn.Module]:
    return [
        nn.Conv2d(inputs, outputs, kernel_size=kernel, stride=stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(outputs),
        nn.ReLU(inplace=True),
    ]


class Backbone(nn.Module):
    """Standardisation + the VGG-style stack + global average pool: ``(batch, T, F) -> (batch, C)``."""

    def __init__(self, *, width: float = 1.0, dropout: float = DEFAULT_DROPOUT) -> None:
        super().__init__()
        self.register_buffer("band_mean", torch.zeros(spectrogram.NUM_BANDS))
        self.register_buffer("band_std", torch.ones(spectrogram.NUM_BANDS))
        stem = _channels(base=STEM_CHANNELS, width=width)
        mid = _channels(base=BLOCK2_CHANNELS, width=width)
        deep = [_channels(base=c, width=width) for c in DEEP_CHANNELS]
        layers: list[nn.Module] = []
        layers += _conv(inputs=1, outputs=stem, kernel=STEM_KERNEL, stride=STEM_STRIDE)
        layers += _conv(inputs=stem, outputs=stem, kernel=KERNEL)
        layers += [nn.MaxPool2d(POOL), nn.Dropout(dropout)]
        layers += _conv(inputs=stem, outputs=mid, kernel=KERNEL)
        layers += _conv(inputs=mid, outputs=mid, kernel=KERNEL)
        layers += [nn.MaxPool2d(POOL), nn.Dropout(dropout)]
        previous = mid
        for channels in deep:
            layers += _conv(inputs=previous, outputs=channels, kernel=KERNEL)
            previous = channels
        self.stack = nn.Sequential(*layers)
        self.out_channels = previous

    def set_standardisation(self, *, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Per-band ``mean`` and ``std`` ``(NUM_BANDS,)`` of training windows."""
        self.band_mean.copy_(mean.to(self.band_mean))
        self.band_std.copy_(torch.clamp(std.to(self.band_std), min=STD_FLOOR))

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        x = (windows - self.band_mean) / self.band_std
        x = self.stack(x.unsqueeze(1))  # (batch, 1, T, F) -> (batch, C, T', F')
        return x.mean(dim=(2, 3))


class EmotionNet(nn.Module):
    """A2E (``variant="a2e"``) or A2Mid2E-Joint (``variant="joint"``).

    ``forward`` returns ``(mid (batch, 7), emotion (batch, 8))``; for A2E ``mid`` is zeros (no mid head).
    """

    def __init__(self, *, variant: str, width: float = 1.0, dropout: float = DEFAULT_DROPOUT) -> None:
        super().__init__()
        if variant not in (VARIANT_A2E, VARIANT_JOINT):
            raise ValueError(f"unknown variant {variant!r}; expected {VARIANT_A2E!r} or {VARIANT_JOINT!r}")
        self.variant = variant
        self.width = width
        self.backbone = Backbone(width=width, dropout=dropout)
        channels = self.backbone.out_channels
        if variant == VARIANT_JOINT:
            self.mid_head = nn.Linear(channels, labels.NUM_MID_LEVELS)
            self.emotion_head = nn.Linear(labels.NUM_MID_LEVELS, labels.NUM_EMOTIONS)
        else:
            self.mid_head = None
            self.emotion_head = nn.Linear(channels, labels.NUM_EMOTIONS)

    @property
    def is_joint(self) -> bool:
        return self.variant == VARIANT_JOINT

    def init_joint(self, *, weight: torch.Tensor, mid_mean: torch.Tensor, emotion_mean: torch.Tensor) -> None:
        """Joint: set the 7->8 layer to ``weight`` ``(8, 7)``, the mid head's bias to ``mid_mean`` ``(7,)``
        and the emotion bias so that the mean prediction equals ``emotion_mean`` ``(8,)``."""
        if not self.is_joint:
            raise ValueError("init_joint needs the joint variant")
        with torch.no_grad():
            self.emotion_head.weight.copy_(weight)
            self.mid_head.bias.copy_(mid_mean)
            self.emotion_head.bias.copy_(emotion_mean - weight @ mid_mean)

    def init_emotion_bias(self, *, emotion_mean: torch.Tensor) -> None:
        """A2E: start the emotion output at the training mean ``(8,)``."""
        with torch.no_grad():
            self.emotion_head.bias.copy_(emotion_mean)

    def forward(self, windows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pooled = self.backbone(windows)
        if self.mid_head is not None:
            mid = self.mid_head(pooled)
            return mid, self.emotion_head(mid)
        emotion = self.emotion_head(pooled)
        return emotion.new_zeros((emotion.shape[0], labels.NUM_MID_LEVELS)), emotion
