"""The shipped models' INT8 packs: each built from its shipped model file; the default model's loaded without
``onnx``, reused bit for bit, and within issue 24's parity limits of the float model on three real clips (the
full check on every clip is ``benchmarks/parity.py``)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mer_live.core import labels
from mer_live.features import mel
from mer_live.model import emotion_model, patch_model
from mer_live.model.emotion_model import EmotionModel, ModelError, check_joint_layer
from mer_live.audio import FileDecoder
from mer_live.offline.recipe import KIND_MEL_PATCHES, RECIPES

SHIPPED_V2 = Path(str(emotion_model.shipped_model_path()))  # the default model (a v2-kind one)
PARITY_CLIPS = ("001", "031", "010")  # happy, sad, and one more: none of them calibrated the pack
MAX_CLIP_DIFF = 0.02  # sent 0-1 units, as benchmarks/parity.py
MIN_WINDOW_R = 0.99  # per output over the clips' windows (the benchmark's r is over clip means)


@pytest.fixture(scope="module")
def models() -> dict[str, EmotionModel]:
    return {precision: EmotionModel(path=SHIPPED_V2, precision=precision) for precision in emotion_model.PRECISIONS}


def test_each_pack_was_cut_from_its_shipped_model_file() -> None:
    """Fails when a model changes and its pack is not rebuilt: python -m mer_live.train.fast_pack."""
    import onnx

    from mer_live.train.fast_pack import shipped_v2_models

    models = shipped_v2_models()
    assert SHIPPED_V2 in models
    for model in models:
        local = onnx.load(str(patch_model.pack_paths(model, precision="int8")["local"]))
        meta = json.loads({p.key: p.value for p in local.metadata_props}[patch_model.META_PACK])
        assert meta["source_sha256"] == hashlib.sha256(model.read_bytes()).hexdigest(), model.name
        assert meta["precision"] == "int8" and not set(PARITY_CLIPS) & set(meta["calibration"]["clips"])


def test_the_default_runs_the_pack_without_onnx() -> None:
    code = ("import sys; from mer_live.model.emotion_model import EmotionModel, check_joint_layer\n"
            "m = EmotionModel(); check_joint_layer(model=m)\n"
            "print(m.precision, m.incremental, sorted(n for n in sys.modules if n == 'onnx' or n.startswith('onnx.')))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split("\n")[0] == "int8 True []", done.stdout + done.stderr


def test_float_is_the_exported_model(models: dict[str, EmotionModel]) -> None:
    assert models["float"].precision == "float" and models["int8"].precision == "int8"
    check_joint_layer(model=models["int8"])  # the explanation still adds up (the Joint layer is float)


def test_a_bad_precision_is_a_model_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(emotion_model.PRECISION_ENV, "int4")
    with pytest.raises(ModelError, match="precision"):
        EmotionModel(path=SHIPPED_V2)


@pytest.mark.parametrize("hop", [31, 62])
def test_int8_reuse_gives_the_same_bits_as_every_row(models: dict[str, EmotionModel], hop: int) -> None:
    rng = np.random.default_rng(hop)
    frames = rng.uniform(0.0, 4.0, size=(mel.PATCH_FRAMES + 6 * hop, mel.NUM_BANDS)).astype(np.float32)
    patches = np.stack([frames[s : s + mel.PATCH_FRAMES] for s in range(0, 7 * hop, hop)])
    model = models["int8"]
    model._runner.reset()
    for patch in patches:  # one at a time, as the daemon's patch thread
        np.testing.assert_array_equal(model.process(windows=patch).mid, model.process(windows=patch[None]).mid)
    model._runner.reset()
    reused = model.process(windows=patches)  # one batch, as analyze
    whole = model._whole(patches)
    np.testing.assert_array_equal(reused.emotion, whole[1])


def _windows(path: Path) -> np.ndarray:
    recipe = RECIPES[KIND_MEL_PATCHES]
    frontend = recipe.frontend(batch_windows=1000)
    with FileDecoder(path, sample_rate=recipe.sample_rate) as decoder:
        batches = [b for block in decoder.blocks() for b in frontend.process(block)] + frontend.flush()
    return np.concatenate([b.inputs for b in batches])


def _sent(model: EmotionModel, windows: np.ndarray) -> np.ndarray:
    prediction = model.process(windows=windows)
    return np.clip(np.concatenate([labels.emotion_to_unit(model_values=prediction.emotion),
                                   labels.mid_to_unit(model_values=prediction.mid)], axis=1), 0.0, 1.0)


def test_int8_is_within_the_parity_limits_on_three_clips(models: dict[str, EmotionModel], shared_data: Path) -> None:
    per_window = {precision: [] for precision in models}
    for clip in PARITY_CLIPS:
        windows = _windows(shared_data / "soundtracks" / "audio" / f"{clip}.mp3")
        for precision, model in models.items():
            per_window[precision].append(_sent(model, windows))
        difference = np.abs(per_window["int8"][-1].mean(axis=0) - per_window["float"][-1].mean(axis=0))
        assert difference.max() <= MAX_CLIP_DIFF, (clip, difference)
    reference, fast = (np.concatenate(per_window[p]) for p in ("float", "int8"))
    r = [np.corrcoef(reference[:, i], fast[:, i])[0, 1] for i in range(reference.shape[1])]
    assert min(r) >= MIN_WINDOW_R, r


def _outputs(model_bytes: bytes, patches: np.ndarray) -> np.ndarray:
    import onnxruntime

    session = onnxruntime.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    return np.concatenate(session.run(["mid", "emotion"], {"mel": patches}), axis=1)


@pytest.mark.parametrize("which", ["shipped", "like_187", "like_94"])
def test_the_rewrites_compute_the_same_values(which: str, tmp_path: Path) -> None:
    """Max-pool before ReLU and batch normalisation (with the sign of each channel's scale), and the
    temporal branches as Toeplitz products: the model's outputs up to float rounding."""
    import onnx

    from mer_live.model import graph_cut
    from v2_models import write_musicnn_like_model

    path = Path(str(emotion_model.shipped_model_path("v2"))) if which == "shipped" else write_musicnn_like_model(tmp_path / "like.onnx", heard=int(which[5:]))
    model = onnx.load(str(path))
    original = model.SerializeToString()
    pooled = graph_cut.rewrite_pooling(model)
    temporal = graph_cut.rewrite_temporal(model, frames=graph_cut.heard_frames(model))
    assert (pooled, temporal) == ((5, 3) if which == "shipped" else (3, 1))
    patches = np.random.default_rng(7).uniform(0.0, 4.0, size=(3, mel.PATCH_FRAMES, mel.NUM_BANDS)).astype(np.float32)
    np.testing.assert_allclose(_outputs(model.SerializeToString(), patches), _outputs(original, patches), atol=1e-5)


def test_analyze_says_which_precision_made_each_row(shared_data: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    """``mer-live analyze`` runs the pack by default and the float model with ``--precision float``; the
    rows' ``model_version`` tells them apart; a bad ``$MER_PRECISION`` is a one-line usage error."""
    import csv

    from mer_live.offline.analysis import main as analyze

    clip = str(shared_data / "soundtracks" / "audio" / f"{PARITY_CLIPS[0]}.mp3")
    rows = {}
    for name, extra in (("int8", []), ("float", ["--precision", "float"])):
        out = tmp_path / f"{name}.csv"
        assert analyze([clip, "--csv", str(out), "-q", "--jobs", "1", *extra]) == 0
        with out.open() as handle:
            rows[name] = next(csv.DictReader(handle))
    assert rows["int8"]["model_version"].endswith("+int8") and not rows["float"]["model_version"].endswith("+int8")
    for name in labels.EMOTIONS + labels.MID_LEVELS:
        assert abs(float(rows["int8"][name]) - float(rows["float"][name])) <= MAX_CLIP_DIFF, name
    monkeypatch.setenv(emotion_model.PRECISION_ENV, "int4")
    assert analyze([clip, "--csv", str(tmp_path / "bad.csv"), "-q"]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(errors) == 1 and "precision" in errors[0] and not (tmp_path / "bad.csv").exists()
