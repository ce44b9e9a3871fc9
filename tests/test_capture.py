"""The real capture path: sounddevice -> PortAudio -> ALSA, fed by an ALSA ``file`` capture PCM.

The PCM (``type file`` with ``infile`` and slave ``null``) is defined in a temporary ALSA config that
``ALSA_CONFIG_PATH`` points at; it must be set before sounddevice (PortAudio) is imported, so every
check runs in a fresh interpreter. The PCM delivers the raw file bit-exactly when the stream opens
it in the file's format, rate and channel count, as fast as the reader takes it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mer_live.features import spectrogram
from mer_live.core import labels

SR = spectrogram.SAMPLE_RATE
PCM_NAME = "mertestcapture"
SYSTEM_ALSA_CONF = Path("/usr/share/alsa/alsa.conf")
SUBPROCESS_TIMEOUT_S = 120

pytestmark = pytest.mark.skipif(not SYSTEM_ALSA_CONF.is_file(), reason="ALSA is not installed (alsa-utils/libasound2)")


def alsa_env(*, tmp_path: Path, audio: np.ndarray) -> dict[str, str]:
    """Write ``audio`` ``(num_frames, channels)`` float32 as the PCM's raw infile; return the env."""
    raw = tmp_path / "capture.raw"
    np.ascontiguousarray(audio, dtype=np.float32).tofile(raw)
    conf = tmp_path / "asound.conf"
    conf.write_text(
        f'pcm.{PCM_NAME} {{\n    type file\n    slave.pcm "null"\n    file "/dev/null"\n'
        f'    infile "{raw}"\n    format "raw"\n}}\n'
    )
    env = dict(os.environ)
    env["ALSA_CONFIG_PATH"] = f"{SYSTEM_ALSA_CONF}:{conf}"
    env.pop("JACK_DEFAULT_SERVER", None)
    return env


def run_python(*, code: str, env: dict[str, str]) -> str:
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT_S)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


CAPTURE_TO_RING = """
import json, sys, time
import numpy as np
from mer_live.live.source import CaptureSource
channel = json.loads(sys.argv[1]) if len(sys.argv) > 1 else None
source = CaptureSource(device={pcm!r}, channel={channel}, samplerate={rate})
source.start()
deadline = time.monotonic() + 20
while source.ring.written < {frames} and time.monotonic() < deadline:
    time.sleep(0.01)
source.close()
np.save({out!r}, source.ring.read(max_frames={frames}))
print(json.dumps({{"channels": source.channels, "rate": source.samplerate, "channel": source.channel}}))
"""


def _signal(seconds: float, channels: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.uniform(-0.5, 0.5, size=(int(seconds * SR), channels))).astype(np.float32)


@pytest.mark.parametrize(("channels", "channel"), [(1, 0), (2, None), (3, 2)])
def test_samples_reaching_the_ring_buffer_equal_the_file(tmp_path: Path, channels: int, channel: int | None) -> None:
    audio = _signal(2.0, channels, seed=channels)
    env = alsa_env(tmp_path=tmp_path, audio=audio)
    out = tmp_path / "ring.npy"
    code = CAPTURE_TO_RING.format(pcm=PCM_NAME, channel=channel, rate=SR, frames=len(audio), out=str(out))
    info = json.loads(run_python(code=code, env=env))
    opened = channel + 1 if channel is not None else 2
    assert info["channels"] == opened and info["rate"] == SR
    np.testing.assert_array_equal(np.load(out), audio)


LIVE_FEATURES = """
import json
import numpy as np
from mer_live.model.emotion_model import EmotionModel, check_joint_layer
from mer_live.live.source import CaptureSource
from mer_live.live.worker import Worker
inputs, frames = [], []
class Recording:  # the model, keeping every input (one window per update)
    def __init__(self, model):
        self._model = model
        for name in ("weight", "bias", "variant", "front_end", "pooling", "input_shape", "path"):
            setattr(self, name, getattr(model, name))
    def process(self, *, windows):
        inputs.append(np.array(windows, copy=True))
        return self._model.process(windows=windows)
class Keep:  # keeps the model stage's frame count at each update
    def process(self, *, reading):
        if reading.is_update:
            frames.append(worker._inference.frames_emitted)
    def close(self):
        pass
model = EmotionModel(path="v1")
check_joint_layer(model=model)
source = CaptureSource(device={pcm!r}, channel=0, samplerate={rate})
worker = Worker(source=source, model=Recording(model), sinks=[Keep()], rate=4.0, duration_s={seconds})
source.start()
worker.start()
worker.finished.wait(60)
source.close()
worker.stop()
np.save({out!r}, np.stack(inputs))
print(json.dumps({{"frames": frames, "error": worker.error}}))
"""


def test_live_features_equal_offline_features_of_the_same_samples(tmp_path: Path) -> None:
    from mer_live.live import demo

    seconds = 4.0
    audio = demo.synthesise()[: int(seconds * SR), None]
    env = alsa_env(tmp_path=tmp_path, audio=audio)
    out = tmp_path / "windows.npy"
    code = LIVE_FEATURES.format(pcm=PCM_NAME, rate=SR, seconds=seconds, out=str(out))
    info = json.loads(run_python(code=code, env=env))
    assert info["error"] is None
    windows = np.load(out)
    assert len(windows) == len(info["frames"]) == seconds * 4
    offline = spectrogram.analyse(samples=audio[:, 0])
    for window, count in zip(windows, info["frames"]):
        expected, _ = spectrogram.window_at(block=offline.slice(start=0, stop=count), start=0)
        np.testing.assert_array_equal(window, expected)


# --------------------------------------------------------------------------- the daemon on the PCM


def _daemon(*args: str, env: dict[str, str], **popen) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "mer_live", *args], env=env, text=True, **popen)


@pytest.mark.slow
def test_daemon_on_the_test_pcm_sends_osc_and_writes_csv(tmp_path: Path, shared_data: Path) -> None:
    """``mer-live --device <test PCM> --osc 127.0.0.1:PORT --csv out.csv`` on a real clip, received by oscdump."""
    import soundfile

    from osc_receivers import OscDump, check_osc_run

    audio, rate = soundfile.read(str(shared_data / "soundtracks" / "audio" / "001.mp3"), dtype="float32", always_2d=True)
    assert rate == 44100  # the PCM's default rate, so the daemon opens it at the file's rate
    env = alsa_env(tmp_path=tmp_path, audio=audio[: int(12.5 * rate)])
    csv_path = tmp_path / "out.csv"
    with OscDump() as dump:
        daemon = _daemon(
            "--device", PCM_NAME, "--osc", f"127.0.0.1:{dump.port}", "--csv", str(csv_path),
            "--duration", "12", "--no-control", env=env, stderr=subprocess.PIPE,
        )
        _, stderr = daemon.communicate(timeout=SUBPROCESS_TIMEOUT_S)
        assert daemon.returncode == 0, stderr
        messages = dump.messages(settle_s=0.5)
    assert f"device 0: '{PCM_NAME}'" in stderr and "44100 Hz" in stderr
    updates = check_osc_run(messages=messages, prefix="/mer")
    assert updates == 48
    rows = csv_path.read_text().splitlines()
    assert len(rows) == 1 + 48
    assert rows[-1].split(",")[1] == "12.000"
    assert all(len(row.split(",")) == 4 + labels.NUM_EMOTIONS + labels.NUM_MID_LEVELS for row in rows)
