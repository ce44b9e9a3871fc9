"""A tiny end-to-end run on the real data (slow): fit + export, torch/ONNX parity on real clips, CV, card.

Uses ``configs/train_ci.toml`` (12 clips, one epoch), so it checks the pipeline, not the accuracy.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mer_live.core import labels
from mer_live.train import soundtracks
from mer_live.model.emotion_model import EmotionModel
from mer_live.train import cache, data
from mer_live.train.networks import EmotionNet

pytestmark = pytest.mark.slow

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CI_CONFIG = PROJECT_ROOT / "configs" / "train_ci.toml"
PARITY_TOLERANCE = 1e-4
SUBPROCESS_TIMEOUT_S = 600.0  # a hang guard only; speed is measured in benchmarks/, not asserted here
PARITY_CLIPS = ("001", "031", "120", "250")


def _train_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mer_live.train", *args], capture_output=True, text=True,
                          timeout=SUBPROCESS_TIMEOUT_S, cwd=PROJECT_ROOT)


@pytest.fixture(scope="module")
def tiny_run(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("tiny")
    fitted = _train_cli("fit", "--config", str(CI_CONFIG), "--out", str(folder / "tiny.onnx"), "--save-torch",
                        "--cv-dir", str(folder / "cv"))
    assert fitted.returncode == 0, fitted.stderr[-2000:]
    assert "fit joint_ab" in fitted.stderr  # tqdm progress
    crossed = _train_cli("cv", "--config", str(CI_CONFIG), "--out", str(folder / "cv"), "--no-progress")
    assert crossed.returncode == 0, crossed.stderr[-2000:]
    return {"folder": folder, "onnx": folder / "tiny.onnx", "torch": folder / "tiny.pt", "cv": folder / "cv"}


def test_tiny_fit_exports_a_loadable_model(tiny_run: dict[str, Path], shared_data: Path) -> None:
    runtime = EmotionModel(path=tiny_run["onnx"])
    assert runtime.variant == "joint_ab_w0.25"
    subset = json.loads(tiny_run["onnx"].with_suffix(".training.json").read_text())
    assert subset["num_clips"] == 12 and subset["epochs_run"] == 1
    assert runtime.metadata["mer_live.data_hash"] == subset["data_hash"]
    assert len(runtime.metadata["mer_live.data_hash"]) == 64


def test_torch_and_onnxruntime_agree_on_real_clips(tiny_run: dict[str, Path], shared_data: Path) -> None:
    net = EmotionNet(variant="joint", width=0.25)
    net.load_state_dict(torch.load(tiny_run["torch"], weights_only=True))
    net.eval()
    assert float(net.backbone.band_mean.abs().sum()) > 0.0  # trained standardisation travelled with the weights
    runtime = EmotionModel(path=tiny_run["onnx"])
    dataset = soundtracks.load(root=shared_data)
    by_id = {clip.clip_id: clip for clip in dataset.clips}
    windows = np.concatenate([
        data.clip_windows(block=cache.frames_for(path=by_id[clip_id].path))[0] for clip_id in PARITY_CLIPS
    ])
    prediction = runtime.process(windows=windows)
    with torch.no_grad():
        mid, emotion = net(torch.from_numpy(windows))
    np.testing.assert_allclose(prediction.emotion, emotion.numpy(), atol=PARITY_TOLERANCE, rtol=0)
    np.testing.assert_allclose(prediction.mid, mid.numpy(), atol=PARITY_TOLERANCE, rtol=0)
    assert prediction.emotion.shape == (len(windows), labels.NUM_EMOTIONS)


def test_tiny_cv_writes_folds_and_summary(tiny_run: dict[str, Path]) -> None:
    run = tiny_run["cv"] / "joint_ab_w0.25"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["folds_done"] == [0, 1] and summary["num_folds"] == 2
    folds = [json.loads((run / f"fold{k}.json").read_text()) for k in (0, 1)]
    assert not set(folds[0]["test_ids"]) & set(folds[1]["test_ids"])
    assert len(folds[0]["test_ids"]) + len(folds[1]["test_ids"]) == 12
    assert set(summary["clip_r_mean"]) == set(labels.EMOTIONS)
    assert len(summary["mid_consistency"]["matrix"]) == labels.NUM_MID_LEVELS


def test_card_renders_from_the_run(tiny_run: dict[str, Path]) -> None:
    folder = tiny_run["folder"]
    rendered = _train_cli("card", "--cv-dir", str(tiny_run["cv"]), "--model", str(tiny_run["onnx"]),
                          "--metrics", str(folder / "metrics.json"), "--card", str(folder / "CARD.md"),
                          "--shipped-run", "joint_ab_w0.25")
    assert rendered.returncode == 0, rendered.stderr[-2000:]
    metrics = json.loads((folder / "metrics.json").read_text())
    card = (folder / "CARD.md").read_text()
    summary = metrics["cv"]["joint_ab_w0.25"]
    assert f"{summary['clip_r_avg']:.3f}" in card
    assert "A2Mid2E-Joint (paper)" in card and "human ceiling" in card
    assert metrics["data"]["human_ceiling"]["num_clips"] == 110
    assert "No mid-level annotations were used" in card


def test_bad_config_is_a_one_line_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[train]\nwidht = 0.5\n")
    completed = _train_cli("fit", "--config", str(bad))
    assert completed.returncode == 2
    assert completed.stderr.strip().splitlines() == ["mer-live-train: error: unknown training setting(s): widht"]


def test_export_command_adds_the_cv_summary(tiny_run: dict[str, Path]) -> None:
    out = tiny_run["folder"] / "reexported.onnx"
    completed = _train_cli("export", "--weights", str(tiny_run["torch"]), "--out", str(out),
                           "--cv-dir", str(tiny_run["cv"]))
    assert completed.returncode == 0, completed.stderr[-2000:]
    before = EmotionModel(path=tiny_run["onnx"])
    after = EmotionModel(path=out)
    summary = json.loads((tiny_run["cv"] / "joint_ab_w0.25" / "summary.json").read_text())
    assert json.loads(after.metadata["mer_live.cv_metrics"])["clip_r_avg"] == summary["clip_r_avg"]
    np.testing.assert_array_equal(after.weight, before.weight)
    windows = np.random.default_rng(0).uniform(0, 1, (2, 313, 149)).astype(np.float32)
    np.testing.assert_array_equal(after.process(windows=windows).emotion, before.process(windows=windows).emotion)


# ------------------------------------------------------------------------------------------- v2 (musicnn)

V2_CI_CONFIG = PROJECT_ROOT / "configs" / "train_v2_ci.toml"
V2_PARITY_TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def tiny_v2(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """cv2 then fit2 of configs/train_v2_ci.toml (8 clips, 2 epochs) with the committed backbone."""
    folder = tmp_path_factory.mktemp("tiny_v2")
    crossed = _train_cli("cv2", "--config", str(V2_CI_CONFIG), "--out", str(folder / "cv"), "--no-progress")
    assert crossed.returncode == 0, crossed.stderr[-2000:]
    fitted = _train_cli("fit2", "--config", str(V2_CI_CONFIG), "--cv-dir", str(folder / "cv"),
                        "--out", str(folder / "tiny_v2.onnx"), "--no-progress")
    assert fitted.returncode == 0, fitted.stderr[-2000:]
    return {"folder": folder, "cv": folder / "cv", "onnx": folder / "tiny_v2.onnx", "torch": folder / "tiny_v2.pt"}


def test_tiny_v2_cv_reports_both_protocols(tiny_v2: dict[str, Path], shared_data: Path) -> None:
    from mer_live.train import folds

    summary = json.loads((tiny_v2["cv"] / "summary.json").read_text())
    assert set(summary["protocols"]) == {"paper", "album"}
    for result in summary["protocols"].values():
        assert set(result["candidates"]) == {"ridge", "frozen", "finetune", "frozen_desc", "frozen_ctx94", "frozen_msd"}
        assert 0 <= result["candidates"]["frozen_desc"]["validity"]["passing"] <= 7
        assert result["declared_choice"] in {"frozen", "finetune", "frozen_desc", "frozen_ctx94", "frozen_msd"}
        assert result["candidates"]["frozen_ctx94"]["config"]["context_frames"] == 94
        assert result["candidates"]["frozen_msd"]["config"]["backbone"] == "msd"
        assert "backbone" not in result["candidates"]["frozen_ctx94"]["config"]
        assert sum(result["fold_sizes"]) == 8
        finetune = result["candidates"]["finetune"]
        assert set(finetune["clip_r_mean"]) == set(labels.EMOTIONS)
        assert set(finetune["live_r_avg"]) == set(summary["pooling_grid"])
        assert all(f["epochs_run"] <= 2 for f in finetune["folds"])
    dataset = soundtracks.load(root=shared_data)
    subset = dataset.subset(indices=list(range(0, 360, 45))[:8])
    grouped = folds.protocol_folds(dataset=subset, protocol="album", num_folds=2, seed=1)
    albums = folds.albums(dataset=subset)
    assert not {albums[i] for i in grouped[0]} & {albums[i] for i in grouped[1]}
    stored = np.load(tiny_v2["cv"] / "predictions.npz")
    assert stored["album/finetune/mid"].shape == (8, labels.NUM_MID_LEVELS)


def test_tiny_v2_onnx_matches_torch_and_keeps_the_contract(tiny_v2: dict[str, Path], shared_data: Path) -> None:
    import onnxruntime

    from mer_live.train import embeddings, heads

    session = onnxruntime.InferenceSession(str(tiny_v2["onnx"]), providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    assert [i.name for i in session.get_inputs()] == ["mel"]
    assert session.get_inputs()[0].shape[1:] == [187, 96]
    assert json.loads(meta["mer_live.frontend"]) == embeddings.FRONTEND_CONSTANTS
    assert json.loads(meta["mer_live.pooling"]) == {"patch_hop_frames": 31, "patches": 4, "halflife_s": 0.5}
    assert "ISC" in meta["mer_live.licence"]
    cv_metrics = json.loads(meta["mer_live.cv_metrics"])
    assert set(cv_metrics) >= {"paper", "album"} and cv_metrics["candidate"] == "finetune"
    net = heads.PatchHead(kind="finetune", hidden=0, dropout=0.0)
    net.load_state_dict(torch.load(tiny_v2["torch"], weights_only=True))
    net.eval()
    clip = soundtracks.load(root=shared_data).clips[int(PARITY_CLIPS[1])]
    mel = embeddings.patches(mel=embeddings.log_mel(samples=embeddings.load_audio(path=clip.path)))
    mid, emotion = session.run(["mid", "emotion"], {"mel": mel})
    backbone = embeddings.Backbone().process(batch=mel)
    with torch.no_grad():
        torch_mid, torch_emotion = net(torch.from_numpy(heads.head_input(clip=backbone, kind="finetune")))
    np.testing.assert_allclose(mid, torch_mid.numpy(), atol=V2_PARITY_TOLERANCE, rtol=0)
    np.testing.assert_allclose(emotion, torch_emotion.numpy(), atol=V2_PARITY_TOLERANCE, rtol=0)
    weight = np.asarray(json.loads(meta["mer_live.joint_weight"]))
    bias = np.asarray(json.loads(meta["mer_live.joint_bias"]))
    np.testing.assert_allclose(emotion, mid @ weight.T + bias, atol=1e-5, rtol=0)  # explanations add up
    assert mid.shape == (len(mel), labels.NUM_MID_LEVELS)


def test_tiny_v2_card_renders(tiny_v2: dict[str, Path]) -> None:
    import shutil

    folder = tiny_v2["folder"]
    shutil.copyfile(PROJECT_ROOT / "models" / "metrics.json", folder / "metrics.json")
    rendered = _train_cli("card2", "--cv-dir", str(tiny_v2["cv"]), "--model", str(tiny_v2["onnx"]),
                          "--metrics", str(folder / "metrics.json"), "--card", str(folder / "CARD.md"),
                          "--responsiveness", str(folder / "none.json"), "--daemon-cpu", str(folder / "none.json"),
                          "--validity", str(folder / "none.json"))
    assert rendered.returncode == 0, rendered.stderr[-2000:]
    metrics = json.loads((folder / "metrics.json").read_text())
    card = (folder / "CARD.md").read_text()
    album = metrics["v2"]["cv"]["protocols"]["album"]["candidates"]["finetune"]
    assert f"{album['clip_r_avg']:.3f}" in card
    assert "grouped by album" in card and "human ceiling" in card and "ISC" in card
    assert metrics["v2"]["shipped"]["pooling"]["patches"] == 4


def test_tiny_v2_on_the_msd_backbone_exports_with_its_notice(tiny_v2: dict[str, Path], shared_data: Path) -> None:
    """fit2 of the MSD_musicnn candidate: one file with that backbone, its licence notice, ONNX == torch."""
    import onnxruntime

    from mer_live.train import embeddings, heads

    out = tiny_v2["folder"] / "tiny_msd.onnx"
    fitted = _train_cli("fit2", "--config", str(V2_CI_CONFIG), "--cv-dir", str(tiny_v2["cv"]), "--candidate", "frozen_msd",
                        "--out", str(out), "--no-progress")
    assert fitted.returncode == 0, fitted.stderr[-2000:]
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    assert "Contains MSD_musicnn from musicnn 0.1.0" in meta["mer_live.licence"] and "ISC" in meta["mer_live.licence"]
    record = json.loads(out.with_suffix(".training.json").read_text())
    assert record["config"]["backbone"] == "msd" and record["config"]["context_frames"] == 94
    parity = record["onnx_vs_torch"]  # fit2 runs the file (from mel) against torch on the MSD embeddings
    assert parity["num_patches"] > 0 and max(parity["max_abs"].values()) <= V2_PARITY_TOLERANCE
    # and independently: the file equals the saved head on the MSD backbone's embeddings, not on MTT's
    net = heads.PatchHead(kind="frozen", hidden=8, dropout=0.0)
    net.load_state_dict(torch.load(out.with_suffix(".pt"), weights_only=True))
    net.eval()
    clip = soundtracks.load(root=shared_data).clips[int(PARITY_CLIPS[1])]
    mel = embeddings.patches(mel=embeddings.log_mel(samples=embeddings.load_audio(path=clip.path)))
    mid = session.run(["mid"], {"mel": mel})[0]
    for backbone, same in (("msd", True), ("mtt", False)):
        embedded = embeddings.Backbone(path=embeddings.backbone_path(context_frames=94, backbone=backbone)).process(batch=mel)
        with torch.no_grad():
            torch_mid = net(torch.from_numpy(embedded.penultimate))[0].numpy()
        assert np.allclose(mid, torch_mid, atol=V2_PARITY_TOLERANCE, rtol=0) == same
