"""v2 heads on musicnn patch embeddings: per patch -> 7 mid-level -> linear 7->8 emotions (torch).

Two kinds (``HeadConfig.kind``):

* ``frozen``: the backbone's ``penultimate`` ``(200,)`` is standardised and mapped to the 7 mid-level
  outputs by a linear layer (``hidden = 0``) or a one-hidden-layer MLP;
* ``pools``: the frozen ``max_pool`` and ``mean_pool`` ``(1506,)`` (the input of musicnn's back-end), standardised,
  then the same head as ``frozen``;
* ``finetune``: musicnn's own back-end (batch norm, dense 1506->200 + ReLU, batch norm; initialised from
  ``models/musicnn/musicnn_mtt_backend.npz``) is trained too, on the interleaved ``max_pool``/``mean_pool``
  ``(1506,)``, at a smaller learning rate; then the same head as ``frozen``.

Both end in the Joint layer ``nn.Linear(7, 8)`` initialised from the poster's weights, and the mid-level
outputs are supervised with pseudo mid-level targets (v1's recipe "ab"). With ``descriptor_loss_weight``
> 0 the pooled mid-level outputs are also pulled towards the clip's signal descriptors
(:mod:`.descriptors`, auxiliary targets): each descriptor standardised over the training clips only and
mapped to the pseudo target's mean and spread, so both mid-level terms share units.

With ``seeds`` > 1 (``frozen``/``pools`` only), that many heads are trained from different seeds and merged
into ONE head (:func:`merge_heads`): their hidden units side by side, the mid-level outputs averaged exactly,
and one Joint 7->8 layer, the mean of theirs. The emotions are that layer applied to the averaged mid-level
outputs, so ``/mer/explain`` stays exact (they are not the average of the members' emotions). Pooling over patches is a
weighted mean of per-patch outputs (see :mod:`.pooling`): a training example is a random run of 1 to
``max_crop_patches`` consecutive patches of one clip (from the clean or an augmented embedding set),
pooled uniformly, against the clip's ratings.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch
from torch import nn

from mer_live.core import labels
from . import data
from .embeddings import BACKBONES, BACKENDS, DEFAULT_BACKBONE, PATCH_FRAMES, PENULTIMATE_SIZE, POOL_SIZE, ClipEmbeddings, set_key

FROZEN = "frozen"
FINETUNE = "finetune"
POOLS = "pools"
KINDS = (FROZEN, FINETUNE, POOLS)
INPUT_SIZES = {FROZEN: PENULTIMATE_SIZE, FINETUNE: PENULTIMATE_SIZE, POOLS: 2 * POOL_SIZE}  # width of the standardised features the head reads
STD_FLOOR = 1e-3
EVAL_BATCH = 4096


@dataclass
class HeadConfig:
    kind: str = FROZEN
    hidden: int = 0
    dropout: float = 0.3
    learning_rate: float = 1e-3
    backend_learning_rate: float = 1e-4
    weight_decay: float = 1e-4
    batch_clips: int = 32
    crops_per_clip: int = 4
    max_crop_patches: int = 20
    max_epochs: int = 100
    patience: int = 15
    mid_loss_weight: float = 1.0
    descriptor_loss_weight: float = 0.0  # auxiliary targets: the clip's signal descriptors (training clips only)
    descriptor_features: tuple[str, ...] = ()  # the mid-level features those targets pull (empty: all 7)
    augmented_sets: tuple[str, ...] = ()
    clean_probability: float = 0.5  # with augmented sets: chance that a crop comes from the clean set
    validation_fraction: float = 0.1
    seed: int = 20190101
    seeds: int = 1  # > 1: that many heads (seed, seed + 1, ...) merged into one (frozen and pools kinds)
    context_frames: int = PATCH_FRAMES  # the backbone hears the last this many frames of each patch
    backbone: str = DEFAULT_BACKBONE  # a key of embeddings.BACKBONES: which musicnn checkpoint

    def set_key(self, set_name: str) -> str:
        """The key of ``set_name``'s embeddings for this head's backbone and context."""
        return set_key(set_name=set_name, context_frames=self.context_frames, backbone=self.backbone)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown head kind {self.kind!r}; choose from {', '.join(KINDS)}")
        self.augmented_sets = tuple(self.augmented_sets)
        self.descriptor_features = tuple(self.descriptor_features)
        unknown = sorted(set(self.descriptor_features) - set(labels.MID_LEVELS))
        if unknown:
            raise ValueError(f"descriptor_features: unknown mid-level features {', '.join(unknown)}")
        if not 1 <= self.context_frames <= PATCH_FRAMES:
            raise ValueError(f"context_frames = {self.context_frames}: must be 1-{PATCH_FRAMES}")
        if self.backbone not in BACKBONES:
            raise ValueError(f"unknown backbone {self.backbone!r}; choose from {', '.join(sorted(BACKBONES))}")
        if self.seeds < 1 or (self.seeds > 1 and self.kind == FINETUNE):
            raise ValueError(f"seeds = {self.seeds}: must be >= 1, and 1 for the {FINETUNE} kind")

    def to_dict(self) -> dict:
        values = asdict(self)
        values["augmented_sets"] = list(self.augmented_sets)
        if self.descriptor_features:  # left out when empty (all 7), as in the records written before it existed
            values["descriptor_features"] = list(self.descriptor_features)
        else:
            del values["descriptor_features"]
        if self.context_frames == PATCH_FRAMES:  # likewise
            del values["context_frames"]
        if self.backbone == DEFAULT_BACKBONE:  # likewise
            del values["backbone"]
        return values


def interleaved(*, clip: ClipEmbeddings) -> np.ndarray:
    """musicnn's back-end input ``(num_patches, 1506)``: max and mean pools interleaved (see convert_musicnn)."""
    return np.stack([clip.max_pool, clip.mean_pool], axis=-1).reshape(clip.num_patches, -1)


def head_input(*, clip: ClipEmbeddings, kind: str) -> np.ndarray:
    return clip.penultimate if kind == FROZEN else interleaved(clip=clip)


def input_names(*, kind: str) -> list[str]:
    """The backbone outputs the head reads (the merged ONNX file wires them)."""
    return ["penultimate"] if kind == FROZEN else ["max_pool", "mean_pool"]


class Backend(nn.Module):
    """musicnn's back-end as inference-mode affine batch norms around a trainable dense layer."""

    def __init__(self, *, backbone: str = DEFAULT_BACKBONE) -> None:
        super().__init__()
        weights = np.load(BACKENDS[backbone])
        eps = float(weights["epsilon"])

        def folded(prefix: str) -> tuple[torch.Tensor, torch.Tensor]:
            scale = weights[f"{prefix}_gamma"] / np.sqrt(weights[f"{prefix}_moving_variance"] + eps)
            shift = weights[f"{prefix}_beta"] - weights[f"{prefix}_moving_mean"] * scale
            return torch.tensor(scale, dtype=torch.float32), torch.tensor(shift, dtype=torch.float32)

        scale_in, shift_in = folded("bn_in")
        self.register_buffer("scale_in", scale_in)
        self.register_buffer("shift_in", shift_in)
        self.dense = nn.Linear(scale_in.numel(), weights["dense_bias"].size)
        with torch.no_grad():
            self.dense.weight.copy_(torch.tensor(weights["dense_kernel"].T))
            self.dense.bias.copy_(torch.tensor(weights["dense_bias"]))
        scale_out, shift_out = folded("bn_out")
        self.scale_out = nn.Parameter(scale_out)
        self.shift_out = nn.Parameter(shift_out)

    def forward(self, pools: torch.Tensor) -> torch.Tensor:
        x = pools * self.scale_in + self.shift_in
        return torch.relu(self.dense(x)) * self.scale_out + self.shift_out


class PatchHead(nn.Module):
    """``(batch, D)`` patch embeddings -> ``(mid (batch, 7), emotion (batch, 8))``."""

    def __init__(self, *, kind: str, hidden: int, dropout: float, backbone: str = DEFAULT_BACKBONE) -> None:
        super().__init__()
        self.kind = kind
        feature_size = INPUT_SIZES[kind]
        self.backend = Backend(backbone=backbone) if kind == FINETUNE else None
        self.register_buffer("feature_mean", torch.zeros(feature_size))
        self.register_buffer("feature_std", torch.ones(feature_size))
        self.dropout = nn.Dropout(dropout)
        if hidden > 0:
            self.mid_head = nn.Sequential(nn.Linear(feature_size, hidden), nn.ReLU(), nn.Dropout(dropout),
                                          nn.Linear(hidden, labels.NUM_MID_LEVELS))
        else:
            self.mid_head = nn.Linear(feature_size, labels.NUM_MID_LEVELS)
        self.emotion_head = nn.Linear(labels.NUM_MID_LEVELS, labels.NUM_EMOTIONS)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The standardised features of each patch ``(batch, INPUT_SIZES[kind])``."""
        if self.backend is not None:
            x = self.backend(x)
        return (x - self.feature_mean) / self.feature_std

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mid = self.mid_head(self.dropout(self.features(x)))
        return mid, self.emotion_head(mid)

    def set_standardisation(self, *, inputs: np.ndarray) -> None:
        """Mean and std of the (pre-standardisation) features over training patches ``inputs``."""
        with torch.no_grad():
            x = torch.from_numpy(np.asarray(inputs, dtype=np.float32))
            if self.backend is not None:
                x = self.backend(x)
            self.feature_mean.copy_(x.mean(dim=0))
            self.feature_std.copy_(torch.clamp(x.std(dim=0), min=STD_FLOOR))

    def init_joint(self, *, weight: np.ndarray, mid_mean: np.ndarray, emotion_mean: np.ndarray) -> None:
        last = self.mid_head[-1] if isinstance(self.mid_head, nn.Sequential) else self.mid_head
        w = torch.tensor(weight, dtype=torch.float32)
        m = torch.tensor(mid_mean, dtype=torch.float32)
        with torch.no_grad():
            last.bias.copy_(m)
            last.weight.mul_(0.1)
            self.emotion_head.weight.copy_(w)
            self.emotion_head.bias.copy_(torch.tensor(emotion_mean, dtype=torch.float32) - w @ m)


@dataclass
class HeadResult:
    net: PatchHead
    best_epoch: int
    epochs_run: int
    seconds: float
    best_val_r: float
    history: list[dict] = field(default_factory=list)
    pseudo_info: dict = field(default_factory=dict)


def predict_patches(*, net: PatchHead, inputs: list[np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per-patch ``mid`` and ``emotion`` of each clip (float64), in eval mode."""
    net.eval()
    counts = [len(x) for x in inputs]
    stacked = torch.from_numpy(np.concatenate(inputs).astype(np.float32))
    mids, emotions = [], []
    with torch.no_grad():
        for start in range(0, len(stacked), EVAL_BATCH):
            mid, emotion = net(stacked[start : start + EVAL_BATCH])
            mids.append(mid.double().numpy())
            emotions.append(emotion.double().numpy())
    bounds = np.cumsum([0] + counts)
    mid, emotion = np.concatenate(mids), np.concatenate(emotions)
    return ([mid[a:b] for a, b in zip(bounds[:-1], bounds[1:])],
            [emotion[a:b] for a, b in zip(bounds[:-1], bounds[1:])])


def clip_predictions(*, net: PatchHead, inputs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Whole-clip predictions (uniform mean over each clip's patches): ``(clips, 7)``, ``(clips, 8)``."""
    mids, emotions = predict_patches(net=net, inputs=inputs)
    return np.stack([m.mean(axis=0) for m in mids]), np.stack([e.mean(axis=0) for e in emotions])


def descriptor_targets(*, descriptors: np.ndarray, mid_targets: np.ndarray) -> np.ndarray:
    """Auxiliary mid-level targets ``(n_train, 7)`` from the TRAINING clips' descriptors ``(n_train, 7)``: each
    column standardised over these clips, then given the mean and std of the pseudo targets ``mid_targets``
    ``(n_train, 7)`` (model units), so that the two mid-level loss terms are on one scale."""
    descriptors = np.asarray(descriptors, dtype=np.float64)
    z = (descriptors - descriptors.mean(axis=0)) / np.maximum(descriptors.std(axis=0), np.finfo(np.float64).eps)
    return mid_targets.mean(axis=0) + mid_targets.std(axis=0) * z


def _mean_r(*, predicted: np.ndarray, actual: np.ndarray) -> float:
    values = [np.corrcoef(predicted[:, e], actual[:, e])[0, 1] for e in range(actual.shape[1])]
    return float(np.nanmean(values))


def merge_heads(nets: list[PatchHead]) -> PatchHead:
    """One head whose mid-level output is exactly the mean of ``nets``' (same kind, width and standardisation;
    no trainable back-end), with the mean of their Joint 7->8 layers."""
    first = nets[0]
    if first.backend is not None or any(n.kind != first.kind for n in nets):
        raise ValueError("only heads of one frozen/pools kind can be merged")
    if any(not torch.equal(n.feature_mean, first.feature_mean) or not torch.equal(n.feature_std, first.feature_std)
           for n in nets):
        raise ValueError("heads to merge must share their input standardisation")
    count = len(nets)
    layered = isinstance(first.mid_head, nn.Sequential)
    hidden = first.mid_head[0].out_features * count if layered else 0
    merged = PatchHead(kind=first.kind, hidden=hidden, dropout=first.dropout.p)
    with torch.no_grad():
        merged.feature_mean.copy_(first.feature_mean)
        merged.feature_std.copy_(first.feature_std)
        if layered:
            merged.mid_head[0].weight.copy_(torch.cat([n.mid_head[0].weight for n in nets], dim=0))
            merged.mid_head[0].bias.copy_(torch.cat([n.mid_head[0].bias for n in nets]))
            merged.mid_head[-1].weight.copy_(torch.cat([n.mid_head[-1].weight for n in nets], dim=1) / count)
            merged.mid_head[-1].bias.copy_(torch.stack([n.mid_head[-1].bias for n in nets]).mean(dim=0))
        else:
            merged.mid_head.weight.copy_(torch.stack([n.mid_head.weight for n in nets]).mean(dim=0))
            merged.mid_head.bias.copy_(torch.stack([n.mid_head.bias for n in nets]).mean(dim=0))
        merged.emotion_head.weight.copy_(torch.stack([n.emotion_head.weight for n in nets]).mean(dim=0))
        merged.emotion_head.bias.copy_(torch.stack([n.emotion_head.bias for n in nets]).mean(dim=0))
    merged.eval()
    return merged


def train_head(
    *, config: HeadConfig, sets: dict[str, list[ClipEmbeddings]], ratings: np.ndarray, train_indices: np.ndarray,
    val_indices: np.ndarray, poster_weight: np.ndarray, mid_correlation: np.ndarray, threads: int = 1,
    descriptors: np.ndarray | None = None,
) -> HeadResult:
    """Train on ``train_indices`` (clean + augmented sets), early-stop on the clean clip-level emotion MSE of
    ``val_indices`` (or run ``max_epochs`` when there are none); with ``config.seeds`` > 1, one head per seed
    (each early-stopped on its own) merged by :func:`merge_heads`.

    ``descriptors``: ``(num_clips, 7)`` signal descriptors of every clip, needed when
    ``config.descriptor_loss_weight`` > 0; only the rows of ``train_indices`` are read.
    """
    if config.seeds == 1:
        return _train_single(config=config, sets=sets, ratings=ratings, train_indices=train_indices,
                             val_indices=val_indices, poster_weight=poster_weight, mid_correlation=mid_correlation,
                             threads=threads, descriptors=descriptors)
    members = [_train_single(config=replace(config, seed=config.seed + k, seeds=1), sets=sets, ratings=ratings,
                             train_indices=train_indices, val_indices=val_indices, poster_weight=poster_weight,
                             mid_correlation=mid_correlation, threads=threads, descriptors=descriptors)
               for k in range(config.seeds)]
    net = merge_heads([m.net for m in members])
    val_r = float("nan")
    if len(val_indices):
        _, val_emotion = clip_predictions(net=net, inputs=[head_input(clip=sets[config.set_key("clean")][i], kind=config.kind)
                                                           for i in val_indices])
        val_r = _mean_r(predicted=val_emotion, actual=ratings[val_indices])
    return HeadResult(net=net, best_epoch=members[0].best_epoch, epochs_run=max(m.epochs_run for m in members),
                      seconds=sum(m.seconds for m in members), best_val_r=val_r,
                      history=[{"seed": config.seed + k, "best_epoch": m.best_epoch, "epochs_run": m.epochs_run,
                                "best_val_r": m.best_val_r} for k, m in enumerate(members)],
                      pseudo_info=members[0].pseudo_info)


def _train_single(
    *, config: HeadConfig, sets: dict[str, list[ClipEmbeddings]], ratings: np.ndarray, train_indices: np.ndarray,
    val_indices: np.ndarray, poster_weight: np.ndarray, mid_correlation: np.ndarray, threads: int = 1,
    descriptors: np.ndarray | None = None,
) -> HeadResult:
    """Train on ``train_indices`` (clean + augmented sets), early-stop on the clean clip-level emotion MSE of
    ``val_indices`` (or run ``max_epochs`` when there are none).

    ``descriptors``: ``(num_clips, 7)`` signal descriptors of every clip, needed when
    ``config.descriptor_loss_weight`` > 0; only the rows of ``train_indices`` are read.
    """
    if config.descriptor_loss_weight > 0 and descriptors is None:
        raise ValueError("descriptor_loss_weight > 0 needs the clips' descriptors")
    torch.manual_seed(config.seed)
    torch.set_num_threads(threads)
    rng = np.random.default_rng(config.seed)
    set_names = ["clean", *config.augmented_sets]
    inputs = {name: [head_input(clip=sets[config.set_key(name)][i], kind=config.kind) for i in range(len(ratings))]
              for name in set_names}
    train_ratings = ratings[train_indices]
    mid_targets, pseudo_info = data.pseudo_mid_targets(ratings=train_ratings, correlation=mid_correlation)
    net = PatchHead(kind=config.kind, hidden=config.hidden, dropout=config.dropout, backbone=config.backbone)
    net.set_standardisation(inputs=np.concatenate([inputs["clean"][i] for i in train_indices]))
    net.init_joint(weight=poster_weight, mid_mean=mid_targets.mean(axis=0), emotion_mean=train_ratings.mean(axis=0))
    groups = [{"params": [p for n, p in net.named_parameters() if not n.startswith("backend.")],
               "lr": config.learning_rate}]
    if net.backend is not None:
        groups.append({"params": list(net.backend.parameters()), "lr": config.backend_learning_rate})
    optimiser = torch.optim.AdamW(groups, weight_decay=config.weight_decay)
    emotion_targets = torch.tensor(train_ratings, dtype=torch.float32)
    mid_tensor = torch.tensor(mid_targets, dtype=torch.float32)
    aux_tensor = None
    if config.descriptor_loss_weight > 0:
        aux = descriptor_targets(descriptors=np.asarray(descriptors)[train_indices], mid_targets=mid_targets)
        aux_tensor = torch.tensor(aux, dtype=torch.float32)
        pulled = config.descriptor_features or labels.MID_LEVELS
        # per-feature pull as in the all-7 loss at the same weight: squared errors of the pulled columns, / 7
        aux_mask = torch.tensor([[float(name in pulled) for name in labels.MID_LEVELS]])
    val_inputs = [inputs["clean"][i] for i in val_indices]
    val_ratings = ratings[val_indices]

    best = (math.inf, copy.deepcopy(net.state_dict()), 0, float("nan"))
    stale, history = 0, []
    started = time.perf_counter()
    for epoch in range(1, config.max_epochs + 1):
        net.train()
        order = np.concatenate([rng.permutation(len(train_indices)) for _ in range(config.crops_per_clip)])
        total, steps = 0.0, 0
        for start in range(0, len(order), config.batch_clips):
            chosen = order[start : start + config.batch_clips]
            rows, segment, weight = [], [], []
            for slot, local in enumerate(chosen):
                name = "clean"
                if config.augmented_sets and rng.random() >= config.clean_probability:
                    name = config.augmented_sets[int(rng.integers(len(config.augmented_sets)))]
                clip = inputs[name][train_indices[local]]
                length = int(rng.integers(1, min(config.max_crop_patches, len(clip)) + 1))
                first = int(rng.integers(0, len(clip) - length + 1))
                rows.append(clip[first : first + length])
                segment += [slot] * length
                weight += [1.0 / length] * length
            x = torch.from_numpy(np.concatenate(rows).astype(np.float32))
            seg = torch.tensor(segment)
            w = torch.tensor(weight, dtype=torch.float32)[:, None]
            mid, emotion = net(x)
            pooled_mid = torch.zeros(len(chosen), labels.NUM_MID_LEVELS).index_add_(0, seg, w * mid)
            pooled_emotion = torch.zeros(len(chosen), labels.NUM_EMOTIONS).index_add_(0, seg, w * emotion)
            picked = torch.from_numpy(chosen)
            loss = nn.functional.mse_loss(pooled_emotion, emotion_targets[picked])
            loss = loss + config.mid_loss_weight * nn.functional.mse_loss(pooled_mid, mid_tensor[picked])
            if aux_tensor is not None:
                squared = aux_mask * (pooled_mid - aux_tensor[picked]) ** 2
                loss = loss + config.descriptor_loss_weight * squared.mean()
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            total += float(loss.detach())
            steps += 1
        record = {"epoch": epoch, "train_loss": total / max(steps, 1)}
        if val_inputs:
            _, val_emotion = clip_predictions(net=net, inputs=val_inputs)
            record["val_loss"] = float(np.mean((val_emotion - val_ratings) ** 2))
            record["val_r"] = _mean_r(predicted=val_emotion, actual=val_ratings)
            criterion = record["val_loss"]
        else:
            criterion = -epoch  # no validation: keep the last epoch
        history.append(record)
        if criterion < best[0]:
            best, stale = (criterion, copy.deepcopy(net.state_dict()), epoch, record.get("val_r", float("nan"))), 0
        else:
            stale += 1
            if stale >= config.patience:
                break
    net.load_state_dict(best[1])
    net.eval()
    return HeadResult(net=net, best_epoch=best[2], epochs_run=len(history), seconds=time.perf_counter() - started,
                      best_val_r=best[3], history=history, pseudo_info=pseudo_info)
