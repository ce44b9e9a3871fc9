"""v2 patches that overlap reuse the frame-local branch rows of the frames they share, with outputs bit
for bit the whole model's: on a musicnn-shaped test model for any sequence of shifts (hypothesis), and on
the shipped v2 model along the daemon's and analyze's hops and in the live worker."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mer_live.live import demo
from mer_live.features import spectrogram, mel
from mer_live.model import emotion_model as model_module
from mer_live.model.emotion_model import EmotionModel, check_joint_layer
from mer_live.live.source import ArraySource
from mer_live.live.worker import Worker

from v2_models import MUSICNN_LIKE_LOCAL, write_musicnn_like_model, write_v2_model

P = mel.PATCH_FRAMES
SHIPPED_V2 = model_module.shipped_model_path("v2")


@pytest.fixture(scope="module", params=[P, 94], ids=["whole_patch", "last_94_frames"])
def like_path(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A musicnn-like model hearing the whole patch, or its last 94 frames (a Slice in front)."""
    return write_musicnn_like_model(tmp_path_factory.mktemp("like") / "like.onnx", heard=request.param)


@pytest.fixture(scope="module")
def like(like_path: Path) -> EmotionModel:
    loaded = EmotionModel(path=like_path)
    check_joint_layer(model=loaded)
    return loaded


def _whole_model(path: Path) -> EmotionModel:
    """The model with every patch run whole (``MER_PATCH_REUSE=0``)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(model_module.PATCH_REUSE_ENV, "0")
        return EmotionModel(path=path)


@pytest.fixture(scope="module")
def like_whole(like_path: Path) -> EmotionModel:
    return _whole_model(like_path)


def test_the_frame_local_branches_are_found_and_nothing_else(like: EmotionModel, like_whole: EmotionModel) -> None:
    assert like.incremental and not like_whole.incremental
    split = like._runner._split
    # the timbral convolutions (7 and 5 frames), not the 32-frame temporal one nor the mid-end over the Concat
    assert split.names == MUSICNN_LIKE_LOCAL and split.context == 3
    heard = int(like.input_shape[0]) - split.offset
    assert split.offset in (0, P - 94) and (split.local_input == "heard") == (split.offset > 0)
    assert heard in (P, 94)


def test_a_model_without_frame_local_branches_runs_whole(tmp_path: Path) -> None:
    plain = EmotionModel(path=write_v2_model(tmp_path / "plain.onnx"))
    assert not plain.incremental


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    shifts=st.lists(st.one_of(st.integers(0, P - 7), st.integers(P - 7, 2 * P), st.just(31)), min_size=1, max_size=6),
    batched=st.booleans(),
    silent=st.booleans(),
)
def test_any_sequence_of_patches_gives_the_whole_models_output(
    like: EmotionModel, like_whole: EmotionModel, shifts: list[int], batched: bool, silent: bool
) -> None:
    """Overlaps of 0 to 180 frames are reused, larger shifts are not; silent stretches (many equal
    frames: several shifts match) must give the same bits too."""
    rng = np.random.default_rng(len(shifts))
    frames = rng.uniform(0.0, 4.0, size=(P + sum(shifts), mel.NUM_BANDS)).astype(np.float32)
    if silent:
        frames[P // 2 : P + P // 2] = 0.0
    starts = np.cumsum([0, *shifts])
    patches = np.stack([frames[s : s + P] for s in starts])
    like._runner.reset()
    if batched:
        got = like.process(windows=patches)
        expected = like_whole.process(windows=patches)
        np.testing.assert_array_equal(got.mid, expected.mid)
        np.testing.assert_array_equal(got.emotion, expected.emotion)
    else:
        for patch in patches:
            got, expected = like.process(windows=patch), like_whole.process(windows=patch)
            np.testing.assert_array_equal(got.mid, expected.mid)
            np.testing.assert_array_equal(got.emotion, expected.emotion)


def test_reuse_computes_only_the_new_rows(like: EmotionModel) -> None:
    like._runner.reset()
    before = like._runner.rows_computed
    frames = np.random.default_rng(3).uniform(0.0, 4.0, size=(P + 10 * 31, mel.NUM_BANDS)).astype(np.float32)
    for start in range(0, 11 * 31, 31):
        like.process(windows=frames[start : start + P])
    context, heard = like._runner._split.context, P - like._runner._split.offset
    assert like._runner.rows_computed - before == heard + 10 * (2 * context + 31 + 2 * context)


@pytest.fixture(scope="module")
def shipped() -> tuple[EmotionModel, EmotionModel]:
    if not SHIPPED_V2.is_file():
        pytest.skip("the shipped v2 model is not in this checkout")
    return EmotionModel(path=SHIPPED_V2), _whole_model(SHIPPED_V2)


@pytest.fixture(scope="module")
def demo_frames() -> np.ndarray:
    samples = mel.resample(samples=demo.synthesise()[: 12 * spectrogram.SAMPLE_RATE], source_rate=spectrogram.SAMPLE_RATE)
    return mel.analyse(samples=samples)


@pytest.mark.parametrize("hop", [31, 62])
def test_the_shipped_v2_model_gives_the_same_bits_with_reuse(shipped, demo_frames: np.ndarray, hop: int) -> None:
    reuse, whole = shipped
    assert reuse.incremental and not whole.incremental
    starts = mel.patch_starts(total_frames=len(demo_frames), hop_frames=hop)
    patches = np.stack([demo_frames[s : s + P] for s in starts])
    reuse._runner.reset()
    for patch in patches:  # one at a time, as the daemon's patch thread runs them
        np.testing.assert_array_equal(reuse.process(windows=patch).mid, whole.process(windows=patch).mid)
    batched, expected = reuse.process(windows=patches[:3]), whole.process(windows=patches[:3])  # as analyze batches them
    np.testing.assert_array_equal(batched.emotion, expected.emotion)


def test_the_live_worker_gives_the_same_readings_with_and_without_reuse(shipped) -> None:
    import soxr

    audio = soxr.resample(demo.synthesise()[: 8 * spectrogram.SAMPLE_RATE], spectrogram.SAMPLE_RATE, 44100).astype(np.float32)

    def run(model: EmotionModel) -> list:
        readings = []

        class Keep:
            def process(self, *, reading) -> None:
                if reading.is_update:
                    readings.append(reading)

            def close(self) -> None:
                pass

        source = ArraySource(samples=audio, samplerate=44100, fast=True)
        worker = Worker(source=source, model=model, sinks=[Keep()], rate=10.0)
        source.start()
        worker.run()
        source.close()
        worker._inference.close()
        assert worker.error is None
        return readings

    reuse, whole = shipped
    with_reuse, without = run(reuse), run(whole)
    assert len(with_reuse) == len(without) >= 80
    assert sum(r.state == "running" for r in with_reuse) >= 40
    for a, b in zip(with_reuse, without):
        np.testing.assert_array_equal(a.raw_mid, b.raw_mid)
        np.testing.assert_array_equal(a.emotion, b.emotion)
