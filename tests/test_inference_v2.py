"""v2 in the live worker: each 3 s patch runs once, updates pool them, streaming equals offline, the
metadata picks the front-end, and the explanation still adds up exactly."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mer_live.live import demo
from mer_live.features import spectrogram, mel
from mer_live.core import labels
from mer_live.model import emotion_model as model_module
from mer_live.model.inference import PATCH_LAG_FRAMES, PatchInference, WindowInference, for_model
from mer_live.model.emotion_model import EmotionModel, ModelError, check_joint_layer
from mer_live.model.pooling import PatchPool, Pooling, pool
from mer_live.live.source import ArraySource
from mer_live.live.worker import Worker

from recording_model import RecordingModel
from v2_models import DEFAULT_POOLING, write_v2_model
from worker_runs import Recorder, run_worker

SR = mel.SAMPLE_RATE
SECONDS = 9


@pytest.fixture(scope="module")
def v2_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_v2_model(tmp_path_factory.mktemp("v2") / "v2.onnx")


@pytest.fixture(scope="module")
def v2(v2_path: Path) -> EmotionModel:
    loaded = EmotionModel(path=v2_path)
    check_joint_layer(model=loaded)
    return loaded


@pytest.fixture(scope="module")
def audio() -> np.ndarray:
    import soxr

    piece = demo.synthesise()
    return soxr.resample(piece, spectrogram.SAMPLE_RATE, SR).astype(np.float32)[: SECONDS * SR]


def _run(*, samplerate: float = SR, **options) -> tuple[Recorder, Worker]:
    return run_worker(samplerate=samplerate, **options)


def test_the_metadata_picks_the_front_end(v2: EmotionModel) -> None:
    assert v2.front_end.kind == mel.KIND and v2.input_shape == (187, 96)
    assert v2.pooling == DEFAULT_POOLING
    assert isinstance(for_model(model=v2), PatchInference)
    if model_module.default_model_path().is_file():
        v1 = EmotionModel(path="v1")
        assert v1.front_end.kind == model_module.FRONTEND_V1 and v1.pooling is None
        assert isinstance(for_model(model=v1), WindowInference)


def test_every_update_pools_the_offline_patches_that_have_ended(v2: EmotionModel, audio: np.ndarray) -> None:
    audio = audio[: -SR // 20]  # ends between two updates: the last update comes after the flush
    counting = RecordingModel(model=v2)
    recorder, _ = _run(model=counting, samples=audio, rate=10.0, smoothing_s=0.0)
    offline = mel.analyse(samples=audio)
    assert len(recorder.frames) == len(recorder.updates) and recorder.frames[-1] == offline.shape[0]
    hop = v2.pooling.patch_hop_frames
    starts = mel.patch_starts(total_frames=offline.shape[0], hop_frames=hop)
    patches = np.stack([offline[s : s + mel.PATCH_FRAMES] for s in starts])
    outputs = v2.process(windows=patches)
    rows = np.concatenate([outputs.mid, outputs.emotion], axis=1)
    assert len(recorder.updates) >= SECONDS * 10
    seen = recorder.frames
    assert sum(frames < mel.PATCH_FRAMES for frames in seen) >= 20
    for index, reading in enumerate(recorder.updates):
        # an update pools the patches handed over at an earlier update with at most F - lag frames
        # (an update after the end of the file, with the flushed frames: all of them)
        flushed = index == len(seen) - 1 and seen[index] == offline.shape[0]
        limit = seen[index] - (0 if flushed else PATCH_LAG_FRAMES)
        frames = max([f for f in seen[: index + 1] if f <= limit], default=0)
        if frames < mel.PATCH_FRAMES:
            assert reading.state == "warming"
            continue
        assert reading.state == "running"
        ended = (frames - mel.PATCH_FRAMES) // hop + 1
        expected = pool(rows[:ended], pooling=v2.pooling)
        np.testing.assert_allclose(reading.raw_mid, np.clip(labels.mid_to_unit(model_values=expected[:7]), 0, 1), atol=1e-6)
        np.testing.assert_allclose(reading.raw_emotion, np.clip(labels.emotion_to_unit(model_values=expected[7:]), 0, 1), atol=1e-6)
        np.testing.assert_allclose(reading.bias + reading.contributions.sum(axis=1), reading.emotion_unclipped, atol=1e-12)
    # each real patch ran once; warm-up patches run once per patch hop of the first 3 s
    warm_up_runs = counting.rows - len(starts)
    assert 1 <= warm_up_runs <= mel.PATCH_FRAMES // hop + 1
    assert counting.rows < len(recorder.updates) / 2


def test_warm_up_loop_pads_the_frames_so_far(v2: EmotionModel, audio: np.ndarray) -> None:
    recording = RecordingModel(model=v2)
    recorder, _ = _run(model=recording, samples=audio[: 2 * SR], rate=10.0)
    offline = mel.analyse(samples=audio[: 2 * SR])
    first = recorder.updates[0]
    assert first.stream_time_s == pytest.approx(0.1) and first.has_values and first.state == "warming"
    # the first model input: the warm-up patch of the first update, the frames so far loop-padded
    assert recording.inputs[0].shape == (1, mel.PATCH_FRAMES, mel.NUM_BANDS)
    np.testing.assert_array_equal(recording.inputs[0][0], mel.loop_pad(frames=offline[: recorder.frames[0]]))


def test_resampled_input_and_smoothing_give_finite_explained_readings(v2: EmotionModel, audio: np.ndarray) -> None:
    import soxr

    rate_in = 44100
    resampled = soxr.resample(audio[: 5 * SR], SR, rate_in).astype(np.float32)
    recorder, _ = _run(model=v2, samples=resampled, samplerate=rate_in, rate=10.0, smoothing_s=1.0)
    assert len(recorder.updates) >= 49
    for reading in recorder.updates:
        assert np.all(np.isfinite(reading.emotion)) and np.all((reading.mid >= 0) & (reading.mid <= 1))
        np.testing.assert_allclose(reading.bias + reading.contributions.sum(axis=1), reading.emotion_unclipped, atol=1e-12)


def test_pooling_weights_halve_every_halflife_and_the_ring_equals_the_batch() -> None:
    pooling = Pooling(patch_hop_frames=31, patches=3, halflife_s=31 / mel.FPS)
    np.testing.assert_allclose(pooling.weights(count=3), [0.25, 0.5, 1.0])
    rows = np.random.default_rng(0).standard_normal((7, 5))
    ring = PatchPool(pooling=pooling, size=5)
    for index, row in enumerate(rows):
        ring.process(row=row)
        np.testing.assert_array_equal(ring.pooled(), pool(rows[: index + 1], pooling=pooling))
    np.testing.assert_allclose(pool(rows, pooling=pooling), (0.25 * rows[4] + 0.5 * rows[5] + rows[6]) / 1.75)
    uniform = Pooling.from_json(json.dumps({"patch_hop_frames": 62, "patches": 2, "halflife_s": None}))
    np.testing.assert_allclose(pool(rows, pooling=uniform), rows[5:].mean(axis=0))


@pytest.mark.parametrize("text", ['{"patch_hop_frames": 0, "patches": 4, "halflife_s": 1}', '{"patches": 4}',
                                  '{"patch_hop_frames": 31, "patches": 4, "halflife_s": -1}', "not json"])
def test_bad_pooling_metadata_is_refused(tmp_path: Path, v2_path: Path, text: str) -> None:
    import onnx

    proto = onnx.load(str(v2_path))
    for entry in proto.metadata_props:
        if entry.key == model_module.META_POOLING:
            entry.value = text
    onnx.save(proto, str(tmp_path / "bad.onnx"))
    with pytest.raises(ModelError, match="pooling"):
        EmotionModel(path=tmp_path / "bad.onnx")


@pytest.mark.parametrize("key,change", [("n_mels", 128), ("hop_length", 512), ("kind", "musicnn-mel128")])
def test_v2_front_end_mismatch_is_refused(tmp_path: Path, key: str, change: object) -> None:
    frontend = dict(mel.FRONTEND_CONSTANTS)
    frontend[key] = change
    path = write_v2_model(tmp_path / "bad.onnx", frontend=frontend)
    with pytest.raises(ModelError, match=key if key != "kind" else "unknown"):
        EmotionModel(path=path)


class SlowModel(RecordingModel):
    """The real session, taking ``delay_s`` longer per call (a loaded machine)."""

    def __init__(self, *, model: EmotionModel, delay_s: float) -> None:
        super().__init__(model=model)
        self._delay_s = delay_s

    def process(self, *, windows: np.ndarray):
        import time

        time.sleep(self._delay_s)
        return super().process(windows=windows)


def test_readings_do_not_depend_on_how_long_a_patch_takes(v2: EmotionModel, audio: np.ndarray) -> None:
    """The patch thread changes when a result arrives, never which patches an update pools."""
    quick, _ = _run(model=v2, samples=audio[: 5 * SR], rate=10.0, smoothing_s=1.0)
    slow, worker = _run(model=SlowModel(model=v2, delay_s=0.15), samples=audio[: 5 * SR], rate=10.0, smoothing_s=1.0)
    assert len(quick.updates) == len(slow.updates) >= 50
    for a, b in zip(quick.updates, slow.updates):
        np.testing.assert_array_equal(a.raw_mid, b.raw_mid)
        np.testing.assert_array_equal(a.emotion, b.emotion)
        assert a.state == b.state
    # an update that did not have to wait for a patch computed no model itself
    assert min(worker.compute_times_s) < 0.15


def test_live_updates_never_wait_for_a_late_patch(v2: EmotionModel, audio: np.ndarray) -> None:
    """Paced in real time on an overloaded machine (a patch takes longer than the 0.25 s lag), updates
    come on time with the patches that have finished; the late ones are pooled at a later update."""
    from mer_live.model import inference

    delay = 2 * inference.PATCH_LAG_S
    recorder = Recorder()
    source = ArraySource(samples=audio[: 5 * SR], samplerate=SR, fast=False)
    worker = Worker(source=source, model=SlowModel(model=v2, delay_s=delay), sinks=[recorder], rate=10.0)
    source.start()
    worker.run()
    source.close()
    assert worker.error is None and worker._inference.late > 0
    times = np.array(worker.compute_times_s)
    assert times[0] >= delay  # the first reading waits for its warm-up patch
    assert np.median(times[1:-1]) < delay / 5  # later updates do not wait
    running = [r for r in recorder.updates if r.state == "running"]
    assert running and all(np.all(np.isfinite(r.emotion)) for r in recorder.updates)


@pytest.mark.slow
def test_the_daemon_runs_a_v2_file_with_unchanged_csv(tmp_path: Path, v2_path: Path, audio: np.ndarray) -> None:
    """The real program: ``mer-live --model V2 --input FILE --fast --csv OUT`` gives mer-live's CSV."""
    import subprocess
    import sys

    import soundfile

    from mer_live.outputs import csv

    wav = tmp_path / "in.wav"
    soundfile.write(str(wav), np.repeat(audio[: 6 * SR, None], 2, axis=1), SR, subtype="FLOAT")
    out = tmp_path / "out.csv"
    done = subprocess.run(
        [sys.executable, "-m", "mer_live", "--input", str(wav), "--fast", "--rate", "10", "--csv", str(out),
         "--model", str(v2_path), "--no-osc", "--no-control", "-q"],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = out.read_text().splitlines()
    assert lines[0] + "\n" == csv.CSV_HEADER
    rows = [line.split(",") for line in lines[1:]]
    assert len(rows) >= 60
    values = np.array([[float(v) for v in row[4:]] for row in rows])
    assert values.shape[1] == labels.NUM_EMOTIONS + labels.NUM_MID_LEVELS
    assert np.all((values >= 0) & (values <= 1))
    assert {row[2] for row in rows} == {"warming", "running"}


def test_analyze_runs_a_v2_model_on_3_s_patches(tmp_path: Path, v2_path: Path, v2: EmotionModel, audio: np.ndarray) -> None:
    import pandas as pd
    import soundfile

    from mer_live.offline import analysis, recipe
    from mer_live.features import spectrogram

    long_file, short_file = tmp_path / "long.wav", tmp_path / "short.wav"
    soundfile.write(str(long_file), audio[: int(7.3 * SR)], SR, subtype="FLOAT")
    soundfile.write(str(short_file), audio[: 2 * SR], SR, subtype="FLOAT")
    files, windows = tmp_path / "files.csv", tmp_path / "windows.csv"
    assert analysis.main([str(long_file), str(short_file), "--model", str(v2_path), "--csv", str(files),
                          "--window-csv", str(windows), "--jobs", "1", "--quiet"]) == 0
    per_file = pd.read_csv(files).set_index("file")
    per_window = pd.read_csv(windows)
    frames = mel.analyse(samples=audio[: int(7.3 * SR)])
    starts = spectrogram.window_starts(total_frames=len(frames), hop_frames=recipe.MEL_HOP_FRAMES,
                                    num_frames=mel.PATCH_FRAMES)
    assert starts[:2] == [0, 62] and starts[-1] == len(frames) - mel.PATCH_FRAMES
    long_name, short_name = str(long_file.resolve()), str(short_file.resolve())
    assert per_file.loc[long_name, "num_windows"] == len(starts) and per_file.loc[short_name, "num_windows"] == 1
    assert not per_file.loc[long_name, "padded"] and per_file.loc[short_name, "padded"]
    long_rows = per_window[per_window["file"] == long_name]
    spans = (long_rows["end_s"] - long_rows["start_s"]).to_numpy()
    np.testing.assert_allclose(spans[:-1], mel.PATCH_SECONDS, atol=1e-5)
    expected = v2.process(windows=np.stack([frames[s : s + mel.PATCH_FRAMES] for s in starts]))
    np.testing.assert_allclose(long_rows[list(labels.MID_LEVELS)].to_numpy(),
                               np.clip(labels.mid_to_unit(model_values=expected.mid), 0, 1), atol=2e-6)
    np.testing.assert_allclose(per_file.loc[long_name, list(labels.EMOTIONS)].to_numpy(dtype=float),
                               long_rows[list(labels.EMOTIONS)].to_numpy().mean(axis=0), atol=2e-6)


@pytest.mark.parametrize("chunk", [1000, 16000, 10**6])
def test_analyze_patches_do_not_depend_on_the_chunking(audio: np.ndarray, chunk: int) -> None:
    from mer_live.features import spectrogram
    from mer_live.offline import recipe

    samples = audio[: int(6.1 * SR)]
    stream = recipe.MelPatchWindows(batch_windows=3)
    batches = [b for start in range(0, len(samples), chunk) for b in stream.process(samples[start : start + chunk])]
    batches += stream.flush()
    frames = mel.analyse(samples=samples)
    starts = spectrogram.window_starts(total_frames=len(frames), hop_frames=recipe.MEL_HOP_FRAMES,
                                    num_frames=mel.PATCH_FRAMES)
    np.testing.assert_array_equal(np.concatenate([b.inputs for b in batches]),
                                  np.stack([frames[s : s + mel.PATCH_FRAMES] for s in starts]))
    np.testing.assert_allclose(np.concatenate([b.starts_s for b in batches]), np.array(starts) / mel.FPS)
    assert all(len(b) <= 3 for b in batches)


def test_a_machine_too_slow_for_the_model_drops_queued_patches_instead_of_piling_them_up(v2: EmotionModel, audio: np.ndarray) -> None:
    from mer_live.model import inference

    stage = PatchInference(model=SlowModel(model=v2, delay_s=0.2), wait=False)
    chunk = SR // 10
    for start in range(0, 6 * SR, chunk):  # 6 s of audio handed over at once, far faster than the model
        stage.process(samples=audio[start : start + chunk])
        assert len(stage._jobs) <= inference.MAX_BACKLOG
        stage.predict()
    assert stage.dropped > 0
    stage.close()
