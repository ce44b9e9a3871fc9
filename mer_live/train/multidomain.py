"""v3: linear Joint heads on frozen musicnn features, trained on Soundtracks and 4q-dev at once.

A candidate (:class:`JointConfig`) reads the frozen ``penultimate`` layer ``(200,)`` of one or two musicnn
backbones (MTT_musicnn, MSD_musicnn; features side by side), standardised, and maps it by ONE linear layer to
the 7 mid-level outputs and by the Joint layer ``(8, 7)`` to the 8 emotions. Being linear, the head gives the
same clip output whether it reads the clip's mean feature or averages its per-patch outputs, so it is trained
on per-clip means (patches every 0.99 s, the `sparse` embedding set, on both sets) and runs
per patch live, pooled as v2 (:mod:`mer_live.model.pooling`).

Loss (full batch, L-BFGS, float64), all terms in comparable units:

* Soundtracks: squared error of the 8 emotions, each divided by that rating's variance over the training
  clips, mean over emotions; plus ``mid_loss_weight`` times the same for the 7 pseudo mid-level targets
  (:func:`mer_live.train.data.pseudo_mid_targets`, v1/v2's recipe);
* 4q-dev (weak labels): logistic loss of the valence output against the valence sign and of the energy output
  against the arousal sign, each through its own learnt scale and offset (not part of the exported model),
  mean of the two, times ``weak_weight`` (0: Soundtracks only);
* ``weight_decay`` times the squared Frobenius norm of the feature->mid layer (a tiny fixed one on the Joint
  layer).

``weight_decay`` (and ``weak_weight`` when several are given) is chosen by inner cross-validation inside the
training clips (:func:`choose`), by the declared score (:func:`score`) on the inner held-out clips.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from mer_live.core import labels
from mer_live.train import soundtracks
from . import crossgenre, data
from .folds import make_group_folds

JOINT_DECAY = 1e-4
STD_FLOOR = 1e-6
SCALE_INIT = 10.0  # logistic scale of the valence/energy outputs (model units: ratings / 10)
BACKBONE_NAMES = ("mtt", "msd")


@dataclass(frozen=True)
class JointConfig:
    """One v3 candidate; ``weight_decays`` x ``weak_weights`` is the inner-CV grid."""

    backbones: tuple[str, ...] = ("mtt",)
    context_frames: int = 94
    weak_weights: tuple[float, ...] = (1.0,)
    weight_decays: tuple[float, ...] = (1e-4, 1e-3, 1e-2, 1e-1)
    mid_loss_weight: float = 1.0
    inner_folds: int = 3
    max_iterations: int = 150
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "backbones", tuple(self.backbones))
        object.__setattr__(self, "weak_weights", tuple(float(w) for w in self.weak_weights))
        object.__setattr__(self, "weight_decays", tuple(float(w) for w in self.weight_decays))
        unknown = sorted(set(self.backbones) - set(BACKBONE_NAMES))
        if unknown or not self.backbones:
            raise ValueError(f"backbones: choose one or two of {', '.join(BACKBONE_NAMES)}, got {list(self.backbones)}")
        if not self.weak_weights or not self.weight_decays or min(self.weak_weights) < 0 or min(self.weight_decays) < 0:
            raise ValueError("weak_weights and weight_decays: non-empty, non-negative")
        if self.inner_folds < 2:
            raise ValueError("inner_folds must be >= 2")

    def to_dict(self) -> dict:
        values = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}


@dataclass
class LinearJoint:
    """A fitted head: ``mid = W1 (x - mean) / std + b1`` ``(7,)``, ``emotion = W2 mid + b2`` ``(8,)``."""

    mean: np.ndarray  # (D,)
    std: np.ndarray  # (D,)
    w1: np.ndarray  # (7, D)
    b1: np.ndarray  # (7,)
    w2: np.ndarray  # (8, 7)
    b2: np.ndarray  # (8,)
    settings: dict = field(default_factory=dict)

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``x`` ``(n, D)`` -> mid ``(n, 7)``, emotion ``(n, 8)``."""
        mid = ((np.asarray(x, dtype=np.float64) - self.mean) / self.std) @ self.w1.T + self.b1
        return mid, mid @ self.w2.T + self.b2


@dataclass(frozen=True)
class Domains:
    """Training data of both domains. ``st_x`` ``(n_st, D)`` clip features, ``st_y`` ``(n_st, 8)`` ratings,
    ``st_albums`` (for inner folds); ``q_x`` ``(n_q, D)``, ``q_data`` the 4q-dev labels of those clips."""

    st_x: np.ndarray
    st_y: np.ndarray
    st_albums: list[str]
    q_x: np.ndarray
    q_data: crossgenre.FourQ

    def take(self, *, st: np.ndarray, q: np.ndarray) -> "Domains":
        return Domains(st_x=self.st_x[st], st_y=self.st_y[st], st_albums=[self.st_albums[i] for i in st],
                       q_x=self.q_x[q], q_data=self.q_data.subset(indices=q))


def mean_r(*, predicted: np.ndarray, actual: np.ndarray) -> float:
    return float(np.nanmean([soundtracks.pearson(x=predicted[:, e], y=actual[:, e]) for e in range(actual.shape[1])]))


def score(*, st_r: float, arousal_auc: float, valence_auc: float) -> float:
    """The declared score (configs/train_v3.toml): half the mean of the two 4q-dev AUCs, half the
    Soundtracks mean r."""
    return 0.5 * (arousal_auc + valence_auc) / 2.0 + 0.5 * st_r


def fit(*, domains: Domains, correlation: np.ndarray, poster: np.ndarray, weight_decay: float, weak_weight: float,
        mid_loss_weight: float = 1.0, max_iterations: int = 200, seed: int = 0) -> LinearJoint:
    """Fit one head on ``domains`` (see the module's loss). ``poster`` ``(8, 7)`` initialises the Joint layer;
    ``correlation`` ``(7, 8)`` gives the pseudo mid-level targets."""
    import torch

    torch.manual_seed(seed)
    torch.set_num_threads(1)  # tiny full-batch problems: threads only add overhead
    x = np.asarray(domains.st_x, dtype=np.float64)
    mean = x.mean(axis=0)
    std = np.maximum(x.std(axis=0), STD_FLOOR)
    ratings = np.asarray(domains.st_y, dtype=np.float64)
    mid_targets, _ = data.pseudo_mid_targets(ratings=ratings, correlation=correlation)
    t = lambda a: torch.tensor(np.asarray(a, dtype=np.float64))  # noqa: E731
    xs, xq = t((x - mean) / std), t((domains.q_x - mean) / std)
    y, m = t(ratings), t(mid_targets)
    y_var, m_var = y.var(dim=0) + 1e-8, m.var(dim=0) + 1e-8
    v_sign = t(domains.q_data.valence_sign > 0)
    a_sign = t(domains.q_data.arousal_sign > 0)
    rng = np.random.default_rng(seed)
    w1 = t(rng.standard_normal((labels.NUM_MID_LEVELS, x.shape[1])) * 0.01).requires_grad_()
    b1 = t(mid_targets.mean(axis=0)).requires_grad_()
    w2 = t(poster).requires_grad_()
    b2 = t(ratings.mean(axis=0) - poster @ mid_targets.mean(axis=0)).requires_grad_()
    valence, energy = labels.EMOTIONS.index("valence"), labels.EMOTIONS.index("energy")
    log_scale = t(np.full(2, np.log(SCALE_INIT))).requires_grad_()
    offset = t(ratings.mean(axis=0)[[valence, energy]]).requires_grad_()
    parameters = [w1, b1, w2, b2, log_scale, offset]
    optimiser = torch.optim.LBFGS(parameters, max_iter=max_iterations, line_search_fn="strong_wolfe",
                                  tolerance_grad=1e-9, tolerance_change=1e-12, history_size=20)
    bce = torch.nn.functional.binary_cross_entropy_with_logits

    def closure():
        optimiser.zero_grad()
        mid = xs @ w1.T + b1
        emotion = mid @ w2.T + b2
        loss = ((emotion - y) ** 2 / y_var).mean() + mid_loss_weight * ((mid - m) ** 2 / m_var).mean()
        if weak_weight > 0 and len(xq):
            q_emotion = (xq @ w1.T + b1) @ w2.T + b2
            scale = torch.exp(log_scale)
            loss = loss + weak_weight * 0.5 * (
                bce(scale[0] * (q_emotion[:, valence] - offset[0]), v_sign)
                + bce(scale[1] * (q_emotion[:, energy] - offset[1]), a_sign))
        loss = loss + weight_decay * (w1 ** 2).sum() + JOINT_DECAY * (w2 ** 2).sum()
        loss.backward()
        return loss

    optimiser.step(closure)
    detach = lambda p: p.detach().numpy().copy()  # noqa: E731
    return LinearJoint(mean=mean, std=std, w1=detach(w1), b1=detach(b1), w2=detach(w2), b2=detach(b2),
                       settings={"weight_decay": weight_decay, "weak_weight": weak_weight})


def evaluate(*, head: LinearJoint, domains: Domains) -> dict:
    """The score's parts on ``domains`` (held-out clips): Soundtracks mean r, the two 4q-dev AUCs, the score."""
    _, st_emotion = head.predict(domains.st_x)
    _, q_emotion = head.predict(domains.q_x)
    signs = crossgenre.sign_scores(valence=q_emotion[:, labels.EMOTIONS.index("valence")],
                                   energy=q_emotion[:, labels.EMOTIONS.index("energy")], data=domains.q_data)
    st_r = mean_r(predicted=st_emotion, actual=domains.st_y)
    return {"st_r": st_r, "arousal_auc": signs["arousal_auc"], "valence_auc": signs["valence_auc"],
            "score": score(st_r=st_r, arousal_auc=signs["arousal_auc"], valence_auc=signs["valence_auc"])}


def inner_folds(*, domains: Domains, count: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Inner test folds ``(st indices, q indices)``: Soundtracks grouped by album, 4q-dev stratified by quadrant."""
    st = make_group_folds(groups=domains.st_albums, num_folds=count, seed=seed)
    q = crossgenre.stratified_folds(quadrants=domains.q_data.quadrants, num_folds=count, seed=seed)
    return list(zip(st, q))


def choose(*, config: JointConfig, domains: Domains, correlation: np.ndarray, poster: np.ndarray) -> tuple[dict, list]:
    """The grid point with the best mean inner-CV score (ties: the larger weight decay), and every point's mean."""
    folds = inner_folds(domains=domains, count=config.inner_folds, seed=config.seed)
    grid = []
    for weak in config.weak_weights:
        for decay in config.weight_decays:
            scores = []
            for st_test, q_test in folds:
                st_train = np.setdiff1d(np.arange(len(domains.st_y)), st_test)
                q_train = np.setdiff1d(np.arange(len(domains.q_x)), q_test)
                head = fit(domains=domains.take(st=st_train, q=q_train), correlation=correlation, poster=poster,
                           weight_decay=decay, weak_weight=weak, mid_loss_weight=config.mid_loss_weight,
                           max_iterations=config.max_iterations, seed=config.seed)
                scores.append(evaluate(head=head, domains=domains.take(st=st_test, q=q_test))["score"])
            finite = [x for x in scores if np.isfinite(x)]  # a tiny inner fold may lack a quadrant
            grid.append({"weak_weight": weak, "weight_decay": decay,
                         "inner_score": float(np.mean(finite)) if finite else float("-inf")})
    best = max(grid, key=lambda g: (round(g["inner_score"], 12), g["weight_decay"]))
    return {"weak_weight": best["weak_weight"], "weight_decay": best["weight_decay"]}, grid


def fit_chosen(*, config: JointConfig, domains: Domains, correlation: np.ndarray, poster: np.ndarray) -> LinearJoint:
    """Inner CV on ``domains`` for the settings, then one fit on all of ``domains`` with them."""
    chosen, grid = choose(config=config, domains=domains, correlation=correlation, poster=poster)
    head = fit(domains=domains, correlation=correlation, poster=poster, weight_decay=chosen["weight_decay"],
               weak_weight=chosen["weak_weight"], mid_loss_weight=config.mid_loss_weight,
               max_iterations=config.max_iterations, seed=config.seed)
    head.settings["inner_grid"] = grid
    return head
