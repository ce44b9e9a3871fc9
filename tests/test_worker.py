"""The worker: streaming equals offline, the update schedule, smoothing/silence, explanations, control."""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from mer_live.live import demo
from mer_live.features import spectrogram
from mer_live.core import labels
from mer_live.model.emotion_model import (
    META_JOINT_BIAS,
    EmotionModel,
    ModelError,
    check_joint_layer,
    default_model_path,
)
from mer_live.core.reading import Reading
from mer_live.live.source import ArraySource
from mer_live.live import worker as worker_module
from mer_live.live.worker import MAX_ABS_SAMPLE, Worker

from recording_model import RecordingModel
from worker_runs import Recorder, run_worker

SR = spectrogram.SAMPLE_RATE
HEARTBEAT_DEADLINE_S = 30.0


@pytest.fixture(scope="module")
def model() -> EmotionModel:
    """v1, the model that reads the windows these tests check (v2: tests/test_inference_v2.py)."""
    loaded = EmotionModel(path="v1")
    check_joint_layer(model=loaded)
    return loaded


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    return demo.synthesise()[: 14 * SR]


def _run(*, samplerate: float = SR, **options) -> tuple[Recorder, Worker]:
    return run_worker(samplerate=samplerate, **options)


def _offline_window(*, block: spectrogram.FrameBlock, frames: int) -> np.ndarray:
    if frames >= spectrogram.NUM_FRAMES:
        window, padded = spectrogram.window_at(block=block, start=frames - spectrogram.NUM_FRAMES)
        assert not padded
        return window
    window, _ = spectrogram.window_at(block=block.slice(start=0, stop=frames), start=0)
    return window


def test_every_model_input_equals_the_offline_window_of_the_same_samples(model: EmotionModel, clip: np.ndarray) -> None:
    recording = RecordingModel(model=model)
    recorder, _ = _run(model=recording, samples=clip, rate=4.0)
    offline = spectrogram.analyse(samples=clip)
    # the model ran once at every update
    assert len(recording.inputs) == len(recorder.frames) == len(recorder.updates) >= 14 * 4
    for window, frames in zip(recording.inputs, recorder.frames, strict=True):
        assert frames <= offline.num_frames
        np.testing.assert_array_equal(window, _offline_window(block=offline, frames=frames))
    states = [r.state for r in recorder.updates]
    assert states[0] == "warming" and states[-1] == "running"
    assert all(r.state == "warming" for r, frames in zip(recorder.updates, recorder.frames) if frames < spectrogram.NUM_FRAMES)


def test_resampled_input_goes_through_one_streaming_resampler(model: EmotionModel, clip: np.ndarray) -> None:
    import soxr

    rate_in = 44100
    stereo = np.stack([soxr.resample(clip[: 6 * SR], SR, rate_in), np.zeros(6 * rate_in, np.float32)[: len(soxr.resample(clip[: 6 * SR], SR, rate_in))]], axis=1)
    recording = RecordingModel(model=model)
    recorder, _ = _run(model=recording, samples=stereo, samplerate=rate_in, rate=4.0, channel=0)
    stream = soxr.ResampleStream(rate_in, SR, 1, dtype="float32", quality="HQ")
    offline = spectrogram.analyse(samples=stream.resample_chunk(np.ascontiguousarray(stereo[:, 0]), last=True))
    assert len(recording.inputs) == len(recorder.frames) == len(recorder.updates)
    for window, frames in zip(recording.inputs[:-1], recorder.frames[:-1], strict=True):
        np.testing.assert_allclose(window, _offline_window(block=offline, frames=frames), atol=1e-5)


def test_updates_follow_stream_time_exactly_and_stop_at_duration(model: EmotionModel, clip: np.ndarray) -> None:
    recorder, worker = _run(model=model, samples=clip, rate=3.0, duration_s=5.0)
    times = [r.stream_time_s for r in recorder.updates]
    expected = [round(k * SR / 3.0) / SR for k in range(1, 16)]
    np.testing.assert_allclose(times, expected, atol=0.5 / SR)
    assert worker.stream_time_s == pytest.approx(5.0)
    first = recorder.updates[0]
    assert first.stream_time_s < 1.0 and first.has_values


def test_readings_are_in_range_explained_exactly_and_deterministic(model: EmotionModel, clip: np.ndarray) -> None:
    first, _ = _run(model=model, samples=clip[: 6 * SR], rate=4.0, smoothing_s=1.0)
    second, _ = _run(model=model, samples=clip[: 6 * SR], rate=4.0, smoothing_s=1.0)
    for a, b in zip(first.updates, second.updates, strict=True):
        for name in ("emotion", "mid", "raw_emotion", "raw_mid", "contributions", "bias"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    for reading in first.updates:
        assert reading.emotion.shape == (labels.NUM_EMOTIONS,) and reading.mid.shape == (labels.NUM_MID_LEVELS,)
        assert reading.contributions.shape == (labels.NUM_EMOTIONS, labels.NUM_MID_LEVELS)
        for values in (reading.emotion, reading.mid, reading.raw_emotion, reading.raw_mid):
            assert np.all((values >= 0.0) & (values <= 1.0))
        np.testing.assert_allclose(reading.bias + reading.contributions.sum(axis=1), reading.emotion_unclipped, atol=1e-12)
        np.testing.assert_allclose(np.clip(reading.emotion_unclipped, 0, 1), reading.emotion, atol=1e-12)


def test_smoothing_off_sends_the_raw_values(model: EmotionModel, clip: np.ndarray) -> None:
    recorder, _ = _run(model=model, samples=clip[: 4 * SR], rate=4.0, smoothing_s=0.0)
    for reading in recorder.updates:
        np.testing.assert_allclose(reading.mid, reading.raw_mid, atol=1e-12)
        np.testing.assert_allclose(reading.emotion, reading.raw_emotion, atol=1e-4)


def test_silence_gate_holds_the_last_values(model: EmotionModel, clip: np.ndarray) -> None:
    samples = np.concatenate([clip[: 4 * SR], np.zeros(3 * SR, np.float32)])
    recorder, _ = _run(model=model, samples=samples, rate=4.0, smoothing_s=0.5, silence_dbfs=-60.0)
    loud = [r for r in recorder.updates if r.stream_time_s <= 4.0]
    quiet = [r for r in recorder.updates if r.stream_time_s > 4.3]
    assert all(r.state == "warming" for r in loud)
    assert quiet and all(r.state == "silent" and r.level_dbfs == -120.0 for r in quiet)
    for reading in quiet:
        np.testing.assert_array_equal(reading.mid, quiet[0].mid)
        np.testing.assert_array_equal(reading.emotion, quiet[0].emotion)


def test_silence_from_the_start_sends_no_values(model: EmotionModel) -> None:
    recorder, _ = _run(model=model, samples=np.full(2 * SR, 1e-5, np.float32), rate=4.0)
    assert recorder.updates and all(r.state == "silent" and not r.has_values for r in recorder.updates)


def test_channel_choice_and_mono_mix(model: EmotionModel, clip: np.ndarray) -> None:
    left, right = clip[: 3 * SR], clip[SR : 4 * SR]
    stereo = np.stack([left, right], axis=1)
    inputs = {name: RecordingModel(model=model) for name in ("picked", "alone", "mixed", "mono")}
    picked, _ = _run(model=inputs["picked"], samples=stereo, channel=1, rate=4.0)
    alone, _ = _run(model=inputs["alone"], samples=right, rate=4.0)
    mixed, _ = _run(model=inputs["mixed"], samples=stereo, rate=4.0)
    mono, _ = _run(model=inputs["mono"], samples=spectrogram.to_mono(audio=stereo), rate=4.0)
    for name, recorder in (("picked", picked), ("alone", alone), ("mixed", mixed), ("mono", mono)):
        assert len(inputs[name].inputs) == len(recorder.updates) > 0
    for a, b in zip(inputs["picked"].inputs, inputs["alone"].inputs, strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(inputs["mixed"].inputs, inputs["mono"].inputs, strict=True):
        np.testing.assert_array_equal(a, b)


def test_control_changes_apply_between_updates(model: EmotionModel, clip: np.ndarray) -> None:
    holder: dict[str, Worker] = {}

    def change() -> None:
        holder["worker"].set_setting(key="rate", value=10.0)
        holder["worker"].set_muted(muted=True)
        holder["worker"].set_setting(key="smoothing", value=0.0)

    recorder = Recorder(after=4, action=change)
    source = ArraySource(samples=clip[: 3 * SR], samplerate=SR, fast=True)
    worker = Worker(source=source, model=model, sinks=[recorder], rate=2.0, smoothing_s=5.0)
    holder["worker"] = worker
    source.start()
    worker.run()
    times = [r.stream_time_s for r in recorder.updates]
    np.testing.assert_allclose(np.diff(times[:4]), 0.5, atol=1e-4)
    np.testing.assert_allclose(np.diff(times[4:-1]), 0.1, atol=1e-4)
    assert not any(r.muted for r in recorder.updates[:4]) and all(r.muted for r in recorder.updates[4:])
    after = recorder.updates[5]
    np.testing.assert_allclose(after.mid, after.raw_mid, atol=1e-12)  # smoothing 0 applied
    assert worker.current_config()["rate"] == 10.0 and worker.current_config()["muted"] is True


def test_control_rejects_bad_values_and_keeps_the_config(model: EmotionModel) -> None:
    source = ArraySource(samples=np.zeros(SR, np.float32), samplerate=SR, fast=True)
    worker = Worker(source=source, model=model, sinks=[], rate=4.0, smoothing_s=2.0)
    for bad in (0.1, 31.0, float("nan"), float("inf")):
        with pytest.raises(ValueError):
            worker.set_setting(key="rate", value=bad)
    for bad in (-0.5, 61.0, float("nan")):
        with pytest.raises(ValueError):
            worker.set_setting(key="smoothing", value=bad)
    config = worker.current_config()
    assert config["rate"] == 4.0 and config["smoothing"] == 2.0 and config["muted"] is False
    assert {"state", "updates", "overflows", "version", "model", "silence_dbfs"} <= set(config)
    assert all(isinstance(v, (float, int, str, bool)) for v in config.values())


def test_reset_smoothing_takes_the_next_value_as_is(model: EmotionModel, clip: np.ndarray) -> None:
    holder: dict[str, Worker] = {}
    recorder = Recorder(after=6, action=lambda: holder["worker"].reset_smoothing())
    source = ArraySource(samples=clip[: 3 * SR], samplerate=SR, fast=True)
    worker = Worker(source=source, model=model, sinks=[recorder], rate=4.0, smoothing_s=60.0)
    holder["worker"] = worker
    source.start()
    worker.run()
    seventh = recorder.updates[6]
    np.testing.assert_allclose(seventh.mid, seventh.raw_mid, atol=1e-12)


def test_control_from_another_thread_while_running(model: EmotionModel, clip: np.ndarray) -> None:
    source = ArraySource(samples=clip[: 8 * SR], samplerate=SR, fast=True)
    recorder = Recorder()
    worker = Worker(source=source, model=model, sinks=[recorder], rate=4.0)
    stop = threading.Event()
    seen: list[dict] = []

    def hammer() -> None:
        value = 0
        while not stop.is_set():
            value += 1
            worker.set_setting(key="rate", value=4.0 if value % 2 else 8.0)
            worker.set_setting(key="smoothing", value=float(value % 7))
            worker.set_muted(muted=bool(value % 3))
            if value % 5 == 0:
                worker.reset_smoothing()
            seen.append(worker.current_config())

    thread = threading.Thread(target=hammer)
    source.start()
    thread.start()
    worker.run()
    stop.set()
    thread.join(10)
    assert worker.error is None and len(recorder.updates) >= 8 * 4 and seen
    gaps = np.diff([r.stream_time_s for r in recorder.updates[:-1]])
    assert np.all((np.abs(gaps - 0.25) < 1e-4) | (np.abs(gaps - 0.125) < 1e-4))


def test_heartbeat_reports_no_input_when_nothing_arrives(model: EmotionModel) -> None:
    source = ArraySource(samples=np.zeros(SR, np.float32), samplerate=SR)  # never started: no audio arrives
    recorder = Recorder()
    worker = Worker(source=source, model=model, sinks=[recorder], rate=4.0)
    worker.start()
    deadline = time.monotonic() + HEARTBEAT_DEADLINE_S  # generous: a loaded machine is slow, never fast
    while len([r for r in list(recorder.readings) if not r.is_update]) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert worker.stop()
    beats = [r for r in recorder.readings if not r.is_update]
    assert len(beats) >= 2 and not recorder.updates
    assert all(r.state == "no-input" and not r.has_values and r.updates == 0 for r in beats)
    assert all(later.wall_time >= earlier.wall_time for earlier, later in zip(beats, beats[1:]))


class _NonFiniteAt:
    """The real model, except that the given updates get a NaN (mid) or inf (emotion) output, as a
    broken export or a numerical blow-up would give."""

    def __init__(self, *, model: EmotionModel, bad_calls: set[int]) -> None:
        self._model = model
        self._bad_calls = bad_calls
        self.calls = 0
        self.weight, self.bias, self.variant = model.weight, model.bias, model.variant
        self.front_end, self.pooling, self.input_shape = model.front_end, model.pooling, model.input_shape

    def process(self, *, windows: np.ndarray):
        prediction = self._model.process(windows=windows)
        self.calls += 1
        if self.calls in self._bad_calls:
            prediction.mid[0, self.calls % labels.NUM_MID_LEVELS] = np.nan
            prediction.emotion[0, 0] = np.inf
        return prediction


def test_a_non_finite_model_output_keeps_the_last_values(model: EmotionModel, clip: np.ndarray, caplog: pytest.LogCaptureFixture) -> None:
    broken = _NonFiniteAt(model=model, bad_calls={6, 7})
    recorder = Recorder()
    source = ArraySource(samples=clip[: 6 * SR], samplerate=SR, fast=True)
    worker = Worker(source=source, model=broken, sinks=[recorder], rate=4.0)
    source.start()
    with caplog.at_level(logging.WARNING, logger="mer_live"):
        worker.run()
    source.close()
    updates = recorder.updates
    assert worker.error is None and len(updates) >= 20 and broken.calls == len(updates)
    for reading in updates:
        for values in (reading.emotion, reading.mid, reading.raw_emotion, reading.raw_mid, reading.contributions):
            assert np.all(np.isfinite(values))
    np.testing.assert_array_equal(updates[6].mid, updates[5].mid)  # calls 6 and 7 = updates 6 and 7 (1-based)
    np.testing.assert_array_equal(updates[6].raw_emotion, updates[5].raw_emotion)
    assert not np.array_equal(updates[-1].mid, updates[5].mid)  # smoothing carried on afterwards
    assert len([r for r in caplog.records if "non-finite" in r.getMessage()]) == 1  # rate-limited


def test_huge_finite_samples_are_clipped_before_the_features(model: EmotionModel, clip: np.ndarray) -> None:
    huge = (clip[: 4 * SR] * np.float32(1e30)).astype(np.float32)
    with np.errstate(over="ignore"):
        assert np.all(np.isfinite(huge)) and not np.all(np.isfinite(np.square(huge)))  # would overflow float32
    recording = RecordingModel(model=model)
    recorder, _ = _run(model=recording, samples=huge, rate=4.0)
    assert len(recording.inputs) == len(recorder.updates) >= 15
    assert all(np.all(np.isfinite(window)) for window in recording.inputs)
    for reading in recorder.updates:
        assert reading.has_values and np.all(np.isfinite(reading.emotion))
        assert reading.level_dbfs == pytest.approx(20 * np.log10(MAX_ABS_SAMPLE), abs=6.0)


class _Blocking:
    """A sink stuck in ``process`` until released (a wedged output), recording what happens to it."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()
        self.closed_while_stuck = False
        self.closed = False
        self.stuck = False

    def process(self, *, reading: Reading) -> None:
        self.stuck = True
        self.entered.set()
        self.release.wait(30.0)
        self.stuck = False

    def close(self) -> None:
        self.closed_while_stuck |= self.stuck
        self.closed = True


def test_a_worker_that_does_not_stop_keeps_its_sinks_open(model: EmotionModel, clip: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker_module, "STOP_TIMEOUT_S", 0.2)
    sink = _Blocking()
    source = ArraySource(samples=clip[: 2 * SR], samplerate=SR, fast=True)
    worker = Worker(source=source, model=model, sinks=[sink], rate=4.0)
    source.start()
    worker.start()
    assert sink.entered.wait(30.0)
    assert not worker.stop() and worker.alive
    worker.close()
    assert not sink.closed and not sink.closed_while_stuck
    sink.release.set()
    worker.close()
    source.close()
    assert not worker.alive and sink.closed and not sink.closed_while_stuck


def test_a_model_whose_joint_metadata_disagrees_is_refused(tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    if not default_model_path().is_file():
        pytest.skip("no model file yet")
    proto = onnx.load(str(default_model_path()))
    for prop in proto.metadata_props:
        if prop.key == META_JOINT_BIAS:
            prop.value = json.dumps([v + 0.5 for v in json.loads(prop.value)])
    path = tmp_path / "tampered.onnx"
    onnx.save(proto, str(path))
    with pytest.raises(ModelError, match="Joint layer"):
        check_joint_layer(model=EmotionModel(path=path))
