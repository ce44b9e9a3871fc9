"""The training loop: Adam, random 10 s crops, early stopping on a validation split, seeded.

Variants (``TrainConfig.variant``):

* ``a2e``: audio -> 8 emotions directly (the reference);
* ``joint_ab``: A2Mid2E-Joint, the 7->8 layer initialised from the poster's published weights (a) and the
  mid-level outputs supervised with pseudo mid-level targets (b); both losses are summed;
* ``joint_frozen``: A2Mid2E-Joint with the poster's 7->8 weights frozen (a) and no mid-level loss; only
  the emotion loss trains the network, and the frozen layer gives the 7 outputs their meaning;
* ``joint_frozen_b``: the poster's weights frozen and the pseudo mid-level loss.

Every statistic (band standardisation, pseudo targets, output means) comes from the training split.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, field, fields

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from mer_live.features import spectrogram
from mer_live.core import labels
from mer_live.train import soundtracks
from . import data
from .networks import VARIANT_A2E, VARIANT_JOINT, EmotionNet

VARIANTS = {
    # name: (network kind, poster init, freeze poster layer, mid-level loss)
    "a2e": (VARIANT_A2E, False, False, False),
    "joint_ab": (VARIANT_JOINT, True, False, True),
    "joint_frozen": (VARIANT_JOINT, True, True, False),
    "joint_frozen_b": (VARIANT_JOINT, True, True, True),
}
EVAL_BATCH = 64


@dataclass
class TrainConfig:
    """Hyper-parameters (defaults are the paper's where it gives them)."""

    variant: str = "joint_ab"
    width: float = 0.25
    dropout: float = 0.3
    learning_rate: float = 5e-4
    batch_size: int = 8
    max_epochs: int = 60
    patience: int = 15  # the recipe of configs/train.toml
    crops_per_clip: int = 1
    validation_fraction: float = 0.1
    mid_loss_weight: float = 1.0
    ridge: float = data.DEFAULT_RIDGE
    tag: str = ""  # optional suffix of the run name, to tell apart recipes of one variant and width
    seed: int = 20190101
    threads: int = 2
    device: str = "auto"
    progress: bool = True

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown variant {self.variant!r}; choose from {', '.join(VARIANTS)}")

    @classmethod
    def from_dict(cls, *, values: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown training setting(s): {', '.join(unknown)}")
        return cls(**values)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class TrainResult:
    net: EmotionNet
    best_epoch: int
    epochs_run: int
    seconds: float
    history: list[dict] = field(default_factory=list)
    pseudo_info: dict = field(default_factory=dict)


def pick_device(*, name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def seed_everything(*, seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % (2**32))


def split_validation(*, indices: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split ``indices`` into (train, validation), seeded; at least one clip in each when possible."""
    rng = np.random.default_rng(seed)
    shuffled = rng.permutation(np.asarray(indices))
    count = max(1, int(round(fraction * len(shuffled)))) if len(shuffled) > 1 else 0
    return np.sort(shuffled[count:]), np.sort(shuffled[:count])


def predict_clips(
    *, net: EmotionNet, windows: list[np.ndarray], device: torch.device
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray], list[np.ndarray]]:
    """Clip-level predictions (mean over each clip's windows) and the per-window predictions.

    ``windows``: per clip ``(num_windows, NUM_FRAMES, NUM_BANDS)``. Returns ``(mid (clips, 7),
    emotion (clips, 8), per-clip window mids, per-clip window emotions)``.
    """
    net.eval()
    counts = [len(w) for w in windows]
    stacked = np.concatenate(windows, axis=0)
    mids, emotions = [], []
    with torch.no_grad():
        for start in range(0, len(stacked), EVAL_BATCH):
            batch = torch.from_numpy(stacked[start : start + EVAL_BATCH]).to(device)
            mid, emotion = net(batch)
            mids.append(mid.cpu().double().numpy())
            emotions.append(emotion.cpu().double().numpy())
    all_mid = np.concatenate(mids)
    all_emotion = np.concatenate(emotions)
    bounds = np.cumsum([0] + counts)
    window_mid = [all_mid[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
    window_emotion = [all_emotion[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
    clip_mid = np.stack([w.mean(axis=0) for w in window_mid])
    clip_emotion = np.stack([w.mean(axis=0) for w in window_emotion])
    return clip_mid, clip_emotion, window_mid, window_emotion


def build_net(
    *, config: TrainConfig, train_blocks: list[spectrogram.FrameBlock], train_ratings: np.ndarray,
    mid_targets: np.ndarray | None, poster_weight: np.ndarray
) -> EmotionNet:
    """A freshly initialised network with standardisation and output biases from the training split."""
    kind, poster_init, freeze, _ = VARIANTS[config.variant]
    net = EmotionNet(variant=kind, width=config.width, dropout=config.dropout)
    mean, std = data.band_statistics(blocks=train_blocks)
    net.backbone.set_standardisation(mean=torch.from_numpy(mean), std=torch.from_numpy(std))
    emotion_mean = torch.tensor(train_ratings.mean(axis=0), dtype=torch.float32)
    if kind == VARIANT_JOINT:
        mid_mean = (
            torch.tensor(mid_targets.mean(axis=0), dtype=torch.float32)
            if mid_targets is not None
            else torch.full((labels.NUM_MID_LEVELS,), (labels.MID_MODEL_MIN + labels.MID_MODEL_MAX) / 2)
        )
        if poster_init:
            weight = torch.tensor(poster_weight, dtype=torch.float32)
        else:
            weight = net.emotion_head.weight.detach().clone()
        net.init_joint(weight=weight, mid_mean=mid_mean, emotion_mean=emotion_mean)
        if freeze:
            net.emotion_head.weight.requires_grad_(False)
    else:
        net.init_emotion_bias(emotion_mean=emotion_mean)
    return net


def _train_epoch(
    *, net: nn.Module, optimiser: torch.optim.Optimizer, loss_fn: nn.Module, blocks: list[spectrogram.FrameBlock],
    emotion_targets: torch.Tensor, mid_targets: torch.Tensor | None, config: TrainConfig, rng: np.random.Generator,
    device: torch.device,
) -> float:
    """One epoch: ``crops_per_clip`` random 10 s crops of every clip in ``blocks``, shuffled, in batches; the
    emotion loss plus, with ``mid_targets`` ``(clips, 7)``, the weighted mid-level loss. Returns the mean loss."""
    net.train()
    order = np.concatenate([rng.permutation(len(blocks)) for _ in range(config.crops_per_clip)])
    total, steps = 0.0, 0
    for start in range(0, len(order), config.batch_size):
        chosen = order[start : start + config.batch_size]
        if len(chosen) < 2:  # BatchNorm needs more than one example
            continue
        batch = np.stack([data.random_crop(block=blocks[i], rng=rng) for i in chosen])
        x = torch.from_numpy(batch).to(device)
        mid, emotion = net(x)
        loss = loss_fn(emotion, emotion_targets[chosen].to(device))
        if mid_targets is not None:
            loss = loss + config.mid_loss_weight * loss_fn(mid, mid_targets[chosen].to(device))
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        total += float(loss.detach())
        steps += 1
    return total / max(steps, 1)


def _validate(*, net: nn.Module, windows: list[np.ndarray], ratings: np.ndarray, device: torch.device) -> dict:
    """Clip-level validation: each clip's mean prediction over its windows against ``ratings`` ``(clips, 8)``;
    the emotion MSE (``val_loss``, what early stopping watches) and the mean Pearson r over emotions."""
    _, emotion, _, _ = predict_clips(net=net, windows=windows, device=device)
    return {
        "val_loss": float(np.mean((emotion - ratings) ** 2)),
        "val_r": float(np.nanmean([soundtracks.pearson(x=emotion[:, e], y=ratings[:, e]) for e in range(labels.NUM_EMOTIONS)])),
    }


def train(
    *, config: TrainConfig, blocks: list[spectrogram.FrameBlock], ratings: np.ndarray,
    train_indices: np.ndarray, val_indices: np.ndarray, poster_weight: np.ndarray,
    mid_correlation: np.ndarray, description: str = "train"
) -> TrainResult:
    """Train on ``train_indices`` and early-stop on the clip-level emotion MSE of ``val_indices``."""
    seed_everything(seed=config.seed)
    torch.set_num_threads(max(1, config.threads))
    device = pick_device(name=config.device)
    rng = np.random.default_rng(config.seed)
    kind, _, _, use_mid_loss = VARIANTS[config.variant]
    train_blocks = [blocks[i] for i in train_indices]
    train_ratings = ratings[train_indices]
    mid_targets, pseudo_info = None, {}
    if kind == VARIANT_JOINT:
        mid_targets, pseudo_info = data.pseudo_mid_targets(
            ratings=train_ratings, correlation=mid_correlation, ridge=config.ridge
        )
    net = build_net(
        config=config, train_blocks=train_blocks, train_ratings=train_ratings,
        mid_targets=mid_targets, poster_weight=poster_weight,
    ).to(device)
    optimiser = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=config.learning_rate)
    loss_fn = nn.MSELoss()
    val_windows = [data.clip_windows(block=blocks[i])[0] for i in val_indices]
    val_ratings = ratings[val_indices]
    emotion_targets = torch.tensor(train_ratings, dtype=torch.float32)
    mid_tensor = torch.tensor(mid_targets, dtype=torch.float32) if mid_targets is not None else None

    best_loss, best_state, best_epoch, stale = math.inf, copy.deepcopy(net.state_dict()), 0, 0
    history: list[dict] = []
    started = time.perf_counter()
    epochs = tqdm(range(1, config.max_epochs + 1), desc=description, unit="epoch", disable=not config.progress)
    for epoch in epochs:
        record = {"epoch": epoch, "train_loss": _train_epoch(
            net=net, optimiser=optimiser, loss_fn=loss_fn, blocks=train_blocks, emotion_targets=emotion_targets,
            mid_targets=mid_tensor if use_mid_loss else None, config=config, rng=rng, device=device,
        )}
        if val_windows:
            record.update(_validate(net=net, windows=val_windows, ratings=val_ratings, device=device))
        val_loss = record.get("val_loss", record["train_loss"])
        history.append(record)
        epochs.set_postfix(loss=f"{record['train_loss']:.4f}", val=f"{val_loss:.4f}", r=f"{record.get('val_r', 0):.3f}")
        if val_loss < best_loss:
            best_loss, best_state, best_epoch, stale = val_loss, copy.deepcopy(net.state_dict()), epoch, 0
        else:
            stale += 1
            if stale >= config.patience:
                break
    net.load_state_dict(best_state)
    net.eval()
    return TrainResult(
        net=net.cpu(), best_epoch=best_epoch, epochs_run=len(history),
        seconds=time.perf_counter() - started, history=history, pseudo_info=pseudo_info,
    )
