"""Model v3: the cross-genre measures, the multi-domain linear head, the declared rule, and (slow) a tiny v3
trained end to end (configs/train_v3_ci.toml: cv3 then fit3, one ONNX file with the v2 contract)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mer_live.core import labels
from mer_live.train import soundtracks
from mer_live.train import crossgenre, multidomain
from mer_live.train.joint_cv import declared_choice

PROJECT_ROOT = Path(__file__).resolve().parent.parent
V3_CI_CONFIG = PROJECT_ROOT / "configs" / "train_v3_ci.toml"
SUBPROCESS_TIMEOUT_S = 900.0  # a hang guard only
PARITY_TOLERANCE = 1e-4


@given(st.lists(st.floats(-5, 5, allow_nan=False), min_size=4, max_size=40), st.integers(0, 2**31 - 1))
@settings(max_examples=60, deadline=None)
def test_auc_equals_the_share_of_correctly_ordered_pairs(scores: list[float], seed: int) -> None:
    positive = np.random.default_rng(seed).random(len(scores)) < 0.5
    if positive.all() or not positive.any():
        assert np.isnan(crossgenre.auc(scores=np.array(scores), positive=positive))
        return
    x = np.array(scores)
    pairs = [(1.0 if p > n else 0.5 if p == n else 0.0) for p in x[positive] for n in x[~positive]]
    assert crossgenre.auc(scores=x, positive=positive) == pytest.approx(np.mean(pairs))


def _fourq(quadrants: list[str]) -> crossgenre.FourQ:
    signs = np.array([crossgenre.QUADRANT_SIGNS[q] for q in quadrants])
    return crossgenre.FourQ(root=Path("."), files=tuple(f"{i}.mp3" for i in range(len(quadrants))),
                            quadrants=tuple(quadrants), valence_sign=signs[:, 0], arousal_sign=signs[:, 1])


def test_sign_scores_of_perfect_and_of_swapped_outputs() -> None:
    data = _fourq(["Q1", "Q2", "Q3", "Q4"] * 5)
    perfect = crossgenre.sign_scores(valence=data.valence_sign * 1.0, energy=data.arousal_sign * 1.0, data=data)
    assert perfect["arousal_auc"] == perfect["valence_auc"] == perfect["quadrant_accuracy"] == 1.0
    assert perfect["confusion"] == [[5, 0, 0, 0], [0, 5, 0, 0], [0, 0, 5, 0], [0, 0, 0, 5]]
    swapped = crossgenre.sign_scores(valence=-data.valence_sign * 1.0, energy=data.arousal_sign * 1.0, data=data)
    assert swapped["valence_auc"] == 0.0 and swapped["quadrant_accuracy"] == 0.0
    assert swapped["confusion"][0] == [0, 5, 0, 0]  # every Q1 clip called Q2


def test_the_ratings_classify_their_own_targets_as_the_issue_says(shared_data: Path) -> None:
    dataset = soundtracks.load(root=shared_data)
    own = crossgenre.target_classification(emotion=dataset.ratings, targets=[c.target for c in dataset.clips])
    assert (own["discrete_clips"], own["pole_clips"]) == (150, 180)
    assert round(own["discrete"], 2) == 0.71 and round(own["poles"], 2) == 0.96


def test_the_4q_dev_labels_and_folds(shared_data: Path) -> None:
    data = crossgenre.load(root=shared_data)
    assert len(data.files) == 600 and data.files == tuple(sorted(data.files))
    assert {q: data.quadrants.count(q) for q in crossgenre.QUADRANTS} == {q: 150 for q in crossgenre.QUADRANTS}
    folds = crossgenre.stratified_folds(quadrants=data.quadrants, num_folds=5, seed=0)
    assert sorted(np.concatenate(folds).tolist()) == list(range(600))
    assert all([data.quadrants[i] for i in f].count("Q3") == 30 for f in folds)


def test_table_match_counts_signs_over_56_cells() -> None:
    rng = np.random.default_rng(0)
    mid = rng.standard_normal((50, 7))
    emotion = mid @ rng.standard_normal((7, 8)) + 0.1 * rng.standard_normal((50, 8))
    table = crossgenre.output_table(mid=mid, emotion=emotion)
    same = crossgenre.table_match(mid=mid, emotion=emotion, reference=table)
    assert same["r"] == pytest.approx(1.0) and same["signs_agree"] == 56 == same["cells"]
    assert crossgenre.table_match(mid=mid, emotion=emotion, reference=-table)["signs_agree"] == 0


def test_declared_choice_ties_go_to_fewer_backbones_and_ineligible_ones_never_win() -> None:
    scores = {"a": 0.800, "b": 0.8015, "c": 0.90}
    backbones = {"a": 1, "b": 2, "c": 2}
    assert declared_choice(scores=scores, backbones=backbones, eligible={"a": True, "b": True, "c": False}) == "a"
    assert declared_choice(scores=scores, backbones=backbones, eligible={"a": True, "b": True, "c": True}) == "c"
    with pytest.raises(ValueError):
        declared_choice(scores=scores, backbones=backbones, eligible={})


def _synthetic(seed: int = 0, st_clips: int = 120, q_clips: int = 160, width: int = 12):
    """Features whose first direction carries energy and second valence in both domains."""
    rng = np.random.default_rng(seed)
    quadrants = [crossgenre.QUADRANTS[i % 4] for i in range(q_clips)]
    q = _fourq(quadrants)
    q_x = rng.standard_normal((q_clips, width))
    q_x[:, 0] += 1.5 * q.arousal_sign
    q_x[:, 1] += 1.5 * q.valence_sign
    st_x = rng.standard_normal((st_clips, width))
    ratings = np.full((st_clips, labels.NUM_EMOTIONS), 0.5) + 0.01 * rng.standard_normal((st_clips, 8))
    ratings[:, labels.EMOTIONS.index("energy")] += 0.1 * st_x[:, 0]
    ratings[:, labels.EMOTIONS.index("valence")] += 0.1 * st_x[:, 1]
    return multidomain.Domains(st_x=st_x, st_y=ratings, st_albums=[f"a{i % 12}" for i in range(st_clips)],
                               q_x=q_x, q_data=q)


def test_the_multi_domain_head_learns_both_signs_and_stays_an_exact_joint_model(shared_data: Path) -> None:
    domains = _synthetic()
    head = multidomain.fit(domains=domains, correlation=soundtracks.mid_emotion_correlation(root=shared_data),
                           poster=soundtracks.poster_weights(root=shared_data), weight_decay=1e-3, weak_weight=1.0,
                           max_iterations=100)
    held_out = _synthetic(seed=1)
    scores = multidomain.evaluate(head=head, domains=held_out)
    assert scores["arousal_auc"] > 0.9 and scores["valence_auc"] > 0.9
    mid, emotion = head.predict(held_out.q_x)
    np.testing.assert_allclose(emotion, mid @ head.w2.T + head.b2, atol=1e-12)  # bias + 7 contributions
    # linear: the clip output of mean features is the mean of per-patch outputs (what the runtime pools)
    patches = held_out.q_x[:5]
    np.testing.assert_allclose(head.predict(patches.mean(axis=0, keepdims=True))[1][0],
                               head.predict(patches)[1].mean(axis=0), atol=1e-12)


def test_the_exported_head_equals_the_fit(shared_data: Path) -> None:
    from mer_live.train.cli import head_of

    domains = _synthetic(width=200)
    head = multidomain.fit(domains=domains, correlation=soundtracks.mid_emotion_correlation(root=shared_data),
                           poster=soundtracks.poster_weights(root=shared_data), weight_decay=1e-2, weak_weight=0.5,
                           max_iterations=30)
    net = head_of(head=head, backbone="mtt")
    with torch.no_grad():
        mid, emotion = net(torch.tensor(domains.q_x[:7], dtype=torch.float32))
    expected_mid, expected_emotion = head.predict(domains.q_x[:7])
    np.testing.assert_allclose(mid.numpy(), expected_mid, atol=1e-4)
    np.testing.assert_allclose(emotion.numpy(), expected_emotion, atol=1e-4)


def test_a_bad_candidate_is_refused() -> None:
    with pytest.raises(ValueError):
        multidomain.JointConfig(backbones=("vgg",))
    with pytest.raises(ValueError):
        multidomain.JointConfig(weak_weights=())


# --------------------------------------------------------------------------------------- slow: end to end


def _train_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mer_live.train", *args], capture_output=True, text=True,
                          timeout=SUBPROCESS_TIMEOUT_S, cwd=PROJECT_ROOT)


@pytest.fixture(scope="module")
def tiny_v3(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("tiny_v3")
    crossed = _train_cli("cv3", "--config", str(V3_CI_CONFIG), "--out", str(folder / "cv"), "--no-progress")
    assert crossed.returncode == 0, crossed.stderr[-2000:]
    fitted = _train_cli("fit3", "--config", str(V3_CI_CONFIG), "--cv-dir", str(folder / "cv"),
                        "--out", str(folder / "tiny_v3.onnx"), "--records", str(folder), "--no-progress")
    assert fitted.returncode == 0, fitted.stderr[-2000:]
    return {"cv": folder / "cv", "onnx": folder / "tiny_v3.onnx", "record": folder / "tiny_v3.training.json"}


@pytest.mark.slow
def test_tiny_v3_cv_scores_every_row_on_both_sets(tiny_v3: dict[str, Path]) -> None:
    summary = json.loads((tiny_v3["cv"] / "summary.json").read_text())
    rows = summary["rows"]
    assert {"ridge", "logistic_mtt", "mtt_st", "mtt_md"} <= set(rows)
    assert summary["declared_choice"] in {"mtt_st", "mtt_md"}
    for name in ("mtt_st", "mtt_md"):
        row = rows[name]
        assert 0.0 <= row["fourq"]["arousal_auc"] <= 1.0 and 0.0 <= row["fourq"]["quadrant_accuracy"] <= 1.0
        assert sum(map(sum, row["fourq"]["confusion"])) == 12
        assert row["soundtracks"]["table_match"]["cells"] == 56
        assert len(row["inner_choices"]) == 2
    assert rows["mtt_st"]["inner_choices"][0]["weak_weight"] == 0.0
    assert "soundtracks" not in rows["logistic_mtt"]
    stored = np.load(tiny_v3["cv"] / "predictions.npz")
    assert stored["mtt_md/q_mid"].shape == (12, labels.NUM_MID_LEVELS)


@pytest.mark.slow
def test_tiny_v3_runs_under_the_runtime_with_the_contract(tiny_v3: dict[str, Path], shared_data: Path) -> None:
    import onnxruntime

    from mer_live.train import embeddings

    session = onnxruntime.InferenceSession(str(tiny_v3["onnx"]), providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    assert [i.name for i in session.get_inputs()] == ["mel"]
    assert json.loads(meta["mer_live.pooling"]) == {"patch_hop_frames": 31, "patches": 4, "halflife_s": 0.25}
    assert "ISC" in meta["mer_live.licence"] and "4Q" in meta["mer_live.licence"]
    assert json.loads(meta["mer_live.cv_metrics"])["candidate"] == "mtt_md"
    record = json.loads(tiny_v3["record"].read_text())
    assert max(record["onnx_vs_torch"]["max_abs"].values()) < PARITY_TOLERANCE
    assert record["torch_vs_fit_max_abs"] < PARITY_TOLERANCE
    clip = soundtracks.load(root=shared_data).clips[31]
    mel = embeddings.patches(mel=embeddings.log_mel(samples=embeddings.load_audio(path=clip.path)))
    mid, emotion = session.run(["mid", "emotion"], {"mel": mel})
    weight = np.asarray(json.loads(meta["mer_live.joint_weight"]))
    bias = np.asarray(json.loads(meta["mer_live.joint_bias"]))
    np.testing.assert_allclose(emotion, mid @ weight.T + bias, atol=1e-5, rtol=0)  # explanations add up
