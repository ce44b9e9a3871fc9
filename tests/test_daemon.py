"""The daemon as a program: every startup error (one line, exit 2), signals, CSV integrity, and real
OSC receivers (oscdump, headless Pure Data) on the demo piece."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from osc_receivers import OscDump, PdReceiver, check_osc_run, group_bundles

from mer_live.config import options
from mer_live.live import daemon
from mer_live.core import labels
from mer_live.outputs import readout
from mer_live.outputs.csv import CSV_COLUMNS, CSV_HEADER
from mer_live.model.emotion_model import META_FRONTEND, default_model_path, shipped_model_path
from mer_live.core.reading import STATES, Reading

PROJECT_ROOT = Path(__file__).resolve().parent.parent
RUN_TIMEOUT_S = 120
SYSTEM_ALSA_CONF = Path("/usr/share/alsa/alsa.conf")
CSV_WIDTH = 4 + labels.NUM_EMOTIONS + labels.NUM_MID_LEVELS


def _one_line_error(capsys: pytest.CaptureFixture, code: int, *needles: str) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert code == 2, captured.err
    assert len(lines) == 1 and lines[0].startswith("mer-live: error: "), captured.err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def _main(*args: str) -> int:
    return daemon.main([*args, "--no-control", "--no-osc", "-q"])


def _mer_live(*args: str, env: dict | None = None, **popen) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "mer_live", *args], env=env, text=True, **popen)


needs_model = pytest.mark.skipif(not default_model_path().is_file(), reason="no model file yet")


# ------------------------------------------------------------------------------------ error cases


def test_no_input_device_at_all_suggests_input_or_demo() -> None:
    env = dict(os.environ, ALSA_CONFIG_PATH=str(SYSTEM_ALSA_CONF), JACK_NO_START_SERVER="1", JACK_DEFAULT_SERVER="mer-live-test-none")
    probe = subprocess.run(
        [sys.executable, "-c", "import sounddevice as sd; print(sum(d['max_input_channels'] > 0 for d in sd.query_devices()))"],
        env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
    )
    if probe.returncode != 0 or probe.stdout.strip() != "0":
        pytest.skip("this machine has an input device, so 'no device at all' cannot be staged")
    done = subprocess.run(
        [sys.executable, "-m", "mer_live", "--no-control", "--no-osc", "-q"], env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S
    )
    lines = [line for line in done.stderr.splitlines() if line.startswith("mer-live")]
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert "no audio input device" in lines[0] and "--input" in lines[0] and "--demo" in lines[0]


NO_PORTAUDIO = (
    "import ctypes.util as u, sys; find = u.find_library; "
    "u.find_library = lambda name: None if 'portaudio' in name else find(name); "  # as on a box without libportaudio2
    "from mer_live.live import daemon; sys.exit(daemon.main(sys.argv[1:]))"
)


def test_list_devices_without_portaudio_is_one_line_exit_2() -> None:
    done = subprocess.run([sys.executable, "-c", NO_PORTAUDIO, "-l"], capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert lines[0].startswith("mer-live: error: cannot load PortAudio") and "libportaudio2" in lines[0]


def _pcm_env(tmp_path: Path) -> dict[str, str]:
    from test_capture import alsa_env

    return alsa_env(tmp_path=tmp_path, audio=np.zeros((100, 1), np.float32))


@pytest.mark.parametrize(
    ("device", "needles"),
    [
        ("mertestkapture", ["no input device matches 'mertestkapture'", "close matches", "mertestcapture"]),
        ("zzzz", ["no input device matches 'zzzz'", "inputs are", "mertestcapture"]),
        ("99", ["no input device with id 99", "mertestcapture"]),
    ],
)
@needs_model
def test_unknown_device_lists_close_matches(tmp_path: Path, device: str, needles: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mer_live", "-d", device, "--no-control", "--no-osc", "-q"],
        env=_pcm_env(tmp_path), capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
    )
    lines = [line for line in done.stderr.splitlines() if line.startswith("mer-live")]
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_list_devices_shows_the_test_pcm(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "mer_live", "-l"], env=_pcm_env(tmp_path), capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    assert done.returncode == 0 and "mertestcapture" in done.stdout


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--demo", "--osc", "localhost"], ["--osc", "expected HOST:PORT"]),
        (["--demo", "--osc", "127.0.0.1:99999"], ["port must be a number"]),
        (["--demo", "--rate", "0"], ["analysis.rate", "out of range"]),
        (["--demo", "--smoothing", "-3"], ["analysis.smoothing"]),
        (["--demo", "--osc-format", "json"], ["invalid choice", "--help"]),
        (["--demo", "--nonsense"], ["unrecognized arguments: --nonsense"]),
        (["--demo", "--input", "x.wav"], ["--demo or --input"]),
        (["--demo", "--osc-prefix", "mer"], ["osc.prefix"]),
        (["--demo", "--osc", "a..b:9000"], ["--osc", "a..b:9000", "bad host name"]),
        (["--demo", "--control", "a..b:9001"], ["--control", "a..b:9001", "bad host name"]),
        (["--demo", "--osc", "127.0.0.1:9000", "--no-osc"], ["--osc and --no-osc", "give one of them"]),
        (["--demo", "--control", "127.0.0.1:9001", "--no-control"], ["--control and --no-control", "give one of them"]),
    ],
)
def test_bad_arguments(capsys: pytest.CaptureFixture, args: list[str], needles: list[str]) -> None:
    code = daemon.main(args)
    _one_line_error(capsys, code, *needles)


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--demo", "--samplerate", "48000"], ["--samplerate 48000 only applies to a sound card", "drop --samplerate"]),
        (["--input", "x.wav", "--samplerate", "44100"], ["--samplerate 44100 only applies to a sound card", "--input FILE and --demo"]),
        (["--fast"], ["--fast only applies to --input FILE or --demo", "drop --fast"]),
        (["-d", "2", "--fast"], ["--fast only applies to --input FILE or --demo", "real time"]),
        (["--demo", "-d", "2"], ["--device '2' does not apply to --demo", "drop one of them"]),
        (["--input", "x.wav", "--device", "Scarlett"], ["--device 'Scarlett' does not apply to --input FILE"]),
        (["--demo", "--channel", "1"], ["--channel 1 does not apply to --demo", "drop --channel"]),
    ],
)
def test_flags_the_chosen_input_would_ignore_are_errors(capsys: pytest.CaptureFixture, args: list[str], needles: list[str]) -> None:
    _one_line_error(capsys, _main(*args), *needles)


def test_config_values_the_chosen_input_would_ignore(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    both = tmp_path / "both.toml"
    both.write_text("[input]\ndemo = true\nsamplerate = 48000\n")
    _one_line_error(capsys, _main("--config", str(both)), "input.samplerate 48000 only applies to a sound card", "drop input.samplerate")
    fast_card = tmp_path / "fast_card.toml"
    fast_card.write_text("[input]\nfast = true\n")
    _one_line_error(capsys, _main("--config", str(fast_card)), "input.fast only applies to --input FILE or --demo")
    _one_line_error(capsys, _main("--config", str(fast_card), "--samplerate", "48000", "--fast"), "--fast only applies")
    card_file = tmp_path / "card_file.toml"
    card_file.write_text('[input]\ndevice = "Scarlett"\nfile = "take.wav"\n')
    _one_line_error(capsys, _main("--config", str(card_file)), "input.device 'Scarlett' does not apply to --input FILE")


@needs_model
def test_a_card_config_still_runs_the_demo_chosen_on_the_command_line(tmp_path: Path) -> None:
    card = tmp_path / "card.toml"
    card.write_text("[input]\nsamplerate = 48000\n")
    assert _main("--config", str(card), "--demo", "--fast", "--duration", "1") == 0


def test_bad_config_files(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("[analysis]\nrate = 4.0\nsmothing = 1.0\n")
    _one_line_error(capsys, _main("--demo", "--config", str(unknown)), "analysis.smothing", "unknown key")
    broken = tmp_path / "broken.toml"
    broken.write_text("[analysis\nrate = 4\n")
    _one_line_error(capsys, _main("--demo", "--config", str(broken)), "not valid TOML")
    _one_line_error(capsys, _main("--demo", "--config", str(tmp_path / "missing.toml")), "no such file")


def test_missing_and_invalid_model_files(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    _one_line_error(capsys, _main("--demo", "--model", str(tmp_path / "none.onnx")), "model file not found", "--model")
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"this is not a model")
    _one_line_error(capsys, _main("--demo", "--model", str(garbage)), "not a loadable ONNX model")


@needs_model
def test_model_whose_metadata_disagrees_with_the_front_end(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    proto = onnx.load(str(shipped_model_path("v1")))
    for prop in proto.metadata_props:
        if prop.key == META_FRONTEND:
            frontend = json.loads(prop.value)
            frontend["fps"] = 50.0
            prop.value = json.dumps(frontend)
    path = tmp_path / "other-frontend.onnx"
    onnx.save(proto, str(path))
    _one_line_error(capsys, _main("--demo", "--model", str(path)), "fps", "disagrees", "re-export")


@needs_model
def test_unreadable_input_files(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    _one_line_error(capsys, _main("--input", str(tmp_path / "missing.wav")), "missing.wav", "no such file")
    text = tmp_path / "notes.wav"
    text.write_text("not audio at all\n" * 20)
    _one_line_error(capsys, _main("--input", str(text)), "cannot decode audio")
    mono = tmp_path / "mono.wav"
    import soundfile

    soundfile.write(str(mono), np.zeros(2205, np.float32), 22050)
    _one_line_error(capsys, _main("--input", str(mono), "--channel", "3"), "--channel 3", "1 channel")


def test_command_line_outputs_beat_a_config_that_turns_them_off(tmp_path: Path) -> None:
    rehearsal = PROJECT_ROOT / "mer_live" / "config" / "presets" / "rehearsal.toml"
    args = daemon.build_parser().parse_args(["--config", str(rehearsal), "--osc", "127.0.0.1:9000", "--control", "127.0.0.1:0"])
    settings = options.resolve(toml_path=args.config, cli=options.given_on_command_line(args=args))
    assert settings.osc.enabled and settings.osc.targets == ("127.0.0.1:9000",)
    assert settings.control.enabled and settings.control.listen == "127.0.0.1:0"
    assert settings.csv.path == "rehearsal.csv"  # the rest of the file still applies
    on = tmp_path / "on.toml"
    on.write_text("[osc]\nenabled = true\n[control]\nenabled = true\n")
    args = daemon.build_parser().parse_args(["--config", str(on), "--no-osc", "--no-control"])
    settings = options.resolve(toml_path=args.config, cli=options.given_on_command_line(args=args))
    assert not settings.osc.enabled and not settings.control.enabled


@needs_model
def test_osc_on_the_command_line_sends_despite_a_config_that_turns_osc_off(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver:
        receiver.bind(("127.0.0.1", 0))
        receiver.settimeout(10.0)
        port = receiver.getsockname()[1]
        config = tmp_path / "quiet.toml"
        config.write_text("[osc]\nenabled = false\n[control]\nenabled = false\n[log]\nquiet = true\n")
        code = daemon.main(["--config", str(config), "--demo", "--fast", "--duration", "1", "--osc", f"127.0.0.1:{port}"])
        assert code == 0
        assert receiver.recv(65536).startswith(b"#bundle\x00")


@needs_model
def test_empty_and_broken_input_files_are_exit_2(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    import soundfile

    empty = tmp_path / "empty.wav"
    soundfile.write(str(empty), np.zeros((0, 1), np.float32), 22050)
    _one_line_error(capsys, _main("--input", str(empty), "--fast"), "empty.wav", "holds no audio")
    good = tmp_path / "noise.flac"
    soundfile.write(str(good), (np.random.default_rng(0).standard_normal(4 * 22050) * 0.1).astype(np.float32), 22050)
    data = bytearray(good.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 4000] = b"\xff" * 4000  # decodes up to here, then libsndfile fails
    broken = tmp_path / "broken.flac"
    broken.write_bytes(bytes(data))
    code = _main("--input", str(broken), "--fast")
    captured = capsys.readouterr()
    assert code == 2, captured.err
    assert "reading input failed" in captured.err


@needs_model
def test_a_bad_model_creates_no_csv(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    csv = tmp_path / "out.csv"
    _one_line_error(capsys, _main("--demo", "--fast", "--model", str(tmp_path / "none.onnx"), "--csv", str(csv)), "model file not found")
    _one_line_error(capsys, _main("--input", str(tmp_path / "none.wav"), "--csv", str(csv)), "no such file")
    assert not csv.exists()


@needs_model
def test_a_stuck_sink_delays_neither_the_others_nor_shutdown(capsys: pytest.CaptureFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A sink wedged for good (here the readout): the CSV still gets every update, SIGTERM still ends
    the run promptly with exit 0, and the stuck sink is neither called again nor closed under itself."""
    import threading

    release = threading.Event()
    seen = {"stuck": False, "closed_while_stuck": False, "calls_while_stuck": 0, "signalled": 0.0, "once": False}
    real_process, real_close = readout.Readout.process, readout.Readout.close

    def stop_later() -> None:
        seen["signalled"] = time.monotonic()
        os.kill(os.getpid(), signal.SIGTERM)

    def stuck_process(self, *, reading: Reading) -> None:
        if seen["stuck"]:
            seen["calls_while_stuck"] += 1
            return
        if seen["once"]:  # released at the end of the test: no second stall, no second signal
            return
        seen["stuck"] = seen["once"] = True
        threading.Timer(1.0, stop_later).start()
        release.wait(30.0)
        seen["stuck"] = False
        real_process(self, reading=reading)

    def watched_close(self) -> None:
        seen["closed_while_stuck"] |= seen["stuck"]
        real_close(self)

    monkeypatch.setattr(readout.Readout, "process", stuck_process)
    monkeypatch.setattr(readout.Readout, "close", watched_close)
    csv = tmp_path / "out.csv"
    try:
        code = daemon.main(["--demo", "--no-osc", "--no-control", "--csv", str(csv)])
        returned = time.monotonic()
    finally:
        release.set()
    err = capsys.readouterr().err
    assert code == 0 and "output Readout did not finish" in err, err
    assert returned - seen["signalled"] < 2.0, f"shutdown took {returned - seen['signalled']:.1f} s"
    assert not seen["closed_while_stuck"] and seen["calls_while_stuck"] == 0
    rows = csv.read_text().splitlines()[1:]
    assert len(rows) >= 4, rows  # 4 updates/s for over a second, none held up by the readout


@needs_model
@pytest.mark.parametrize(("model_name", "model_thread"), [("v1", "mer-live-worker"), ("v2", "mer-live-patches")])
def test_a_stuck_worker_gets_no_final_status_and_its_outputs_stay_open(model_name: str, model_thread: str, capsys: pytest.CaptureFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker thread wedged (here in the model: v1 runs it on the worker thread, v2 on its patch
    thread) at shutdown: the daemon must not send the final status nor close the outputs under it; it
    says so and exits 1."""
    import threading

    from mer_live.model import emotion_model as model_module
    from mer_live.live import worker as worker_module

    monkeypatch.setattr(worker_module, "STOP_TIMEOUT_S", 0.2)
    monkeypatch.setattr(daemon, "STOP_TIMEOUT_S", 0.2)
    release = threading.Event()
    real_process = model_module.EmotionModel.process

    def stuck_process(self, *, windows):
        if threading.current_thread().name.startswith(model_thread):
            threading.Timer(0.3, os.kill, args=(os.getpid(), signal.SIGTERM)).start()
            release.wait(30.0)
        return real_process(self, windows=windows)

    monkeypatch.setattr(model_module.EmotionModel, "process", stuck_process)
    csv = tmp_path / "out.csv"
    try:
        code = daemon.main(["--demo", "--model", model_name, "--no-osc", "--no-control", "--csv", str(csv), "-q"])
    finally:
        release.set()
        for thread in threading.enumerate():
            if thread.name.startswith(("mer-live-worker", "mer-live-patches")):
                thread.join(30.0)  # let it finish before tmp_path goes
    err = capsys.readouterr().err
    assert code == 1 and "did not stop" in err, err


@needs_model
def test_csv_with_a_foreign_header_is_refused_and_left_alone(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    path = tmp_path / "theirs.csv"
    path.write_text("name,score\nx,1\n")
    _one_line_error(capsys, _main("--demo", "--fast", "--duration", "1", "--csv", str(path)), "header", "another --csv path")
    assert path.read_text() == "name,score\nx,1\n"


@needs_model
def test_control_port_that_cannot_bind(capsys: pytest.CaptureFixture) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("127.0.0.1", 0))
        port = busy.getsockname()[1]
        code = daemon.main(["--demo", "--fast", "--duration", "1", "--no-osc", "-q", "--control", f"127.0.0.1:{port}"])
    _one_line_error(capsys, code, f"control port 127.0.0.1:{port}", "--no-control")


@needs_model
def test_a_v1_model_with_the_v2_tuned_smoothing_gets_a_hint(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    assert _main("--demo", "--fast", "--duration", "1", "--model", "v1", "--csv", str(tmp_path / "a.csv")) == 0
    assert "with a v1 model use --smoothing 1 --follow 0 --change 0" in capsys.readouterr().err
    assert _main("--demo", "--fast", "--duration", "1", "--model", "v1", "--change", "0", "--csv", str(tmp_path / "b.csv")) == 0
    assert "tuned for v2" not in capsys.readouterr().err
    assert _main("--demo", "--fast", "--duration", "1", "--csv", str(tmp_path / "c.csv")) == 0  # v2, the default
    assert "tuned for v2" not in capsys.readouterr().err


def test_help_and_version(capsys: pytest.CaptureFixture) -> None:
    assert daemon.main(["--help"]) == 0
    assert "--list-devices" in capsys.readouterr().out
    assert daemon.main(["--version"]) == 0
    assert "mer-live" in capsys.readouterr().out


@needs_model
def test_fast_demo_run_in_process_writes_the_csv(tmp_path: Path) -> None:
    path = tmp_path / "demo.csv"
    assert _main("--demo", "--fast", "--duration", "3", "--csv", str(path)) == 0
    rows = path.read_text().splitlines()
    assert rows[0] == CSV_HEADER.strip() and len(rows) == 1 + 12
    assert [r.split(",")[1] for r in rows[1:]] == [f"{k / 4:.3f}" for k in range(1, 13)]


# ------------------------------------------------------------------------- real receivers (slow)


@pytest.mark.slow
@needs_model
def test_demo_reaches_oscdump_with_every_address_type_and_range() -> None:
    with OscDump() as dump:
        done = subprocess.run(
            [sys.executable, "-m", "mer_live", "--demo", "--fast", "--duration", "25", "--osc", f"127.0.0.1:{dump.port}", "--no-control", "-q"],
            capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
        )
        assert done.returncode == 0, done.stderr
        messages = dump.messages()
    assert check_osc_run(messages=messages, prefix="/mer") == 100
    groups = group_bundles(messages=messages, prefix="/mer")
    states = [g[0].args[0] for g in groups]
    assert states[0] == "warming" and "running" in states and states[-1] == "no-input"  # final status
    assert [g[0].args[3] for g in groups[:-1]] == list(range(1, 101))


@pytest.mark.slow
@needs_model
def test_messages_format_and_prefix_reach_oscdump_unbundled() -> None:
    with OscDump() as dump:
        done = subprocess.run(
            [sys.executable, "-m", "mer_live", "--demo", "--fast", "--duration", "2", "--osc", f"127.0.0.1:{dump.port}",
             "--osc-format", "messages", "--osc-prefix", "/stage/mer", "--no-control", "-q"],
            capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
        )
        assert done.returncode == 0, done.stderr
        messages = dump.messages()
    assert check_osc_run(messages=messages, prefix="/stage/mer") == 8


@pytest.mark.slow
@needs_model
def test_headless_pure_data_receives_the_bundles(tmp_path: Path) -> None:
    with PdReceiver(directory=tmp_path) as pd:
        done = subprocess.run(
            [sys.executable, "-m", "mer_live", "--demo", "--fast", "--duration", "3", "--osc", f"127.0.0.1:{pd.port}", "--no-control", "-q"],
            capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
        )
        assert done.returncode == 0, done.stderr
        messages = pd.messages()
    assert check_osc_run(messages=messages, prefix="/mer", typed=False) == 12


def _csv_rows_complete(path: Path) -> list[list[str]]:
    data = path.read_bytes()
    assert data.endswith(b"\n"), "partial last line"
    rows = [line.split(",") for line in data.decode().splitlines()]
    assert rows[0] == list(CSV_COLUMNS)
    assert all(len(row) == CSV_WIDTH for row in rows)
    for row in rows[1:]:
        assert row[2] in STATES
        float(row[1]), float(row[3])
        assert all(0.0 <= float(v) <= 1.0 for v in row[4:] if v)
    return rows


def _wait_rows(path: Path, count: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_bytes().count(b"\n") >= count + 1:
            return
        time.sleep(0.05)
    raise AssertionError(f"{path} did not reach {count} rows")


@pytest.mark.slow
@needs_model
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_flushes_sends_final_status_and_exits_0(tmp_path: Path, signum: int) -> None:
    path = tmp_path / "show.csv"
    with OscDump() as dump:
        process = _mer_live("--demo", "--rate", "10", "--csv", str(path), "--osc", f"127.0.0.1:{dump.port}", "--no-control", stderr=subprocess.PIPE)
        _wait_rows(path, 10)
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=15)
        messages = dump.messages()
    assert process.returncode == 0, stderr
    assert "stopped:" in stderr
    rows = _csv_rows_complete(path)
    groups = group_bundles(messages=messages, prefix="/mer")
    assert groups[-1][0].args[0] == "no-input" and len(groups[-1]) == 1
    assert groups[-2][0].args[3] == len(rows) - 1  # every update that was sent was also logged


@pytest.mark.slow
@needs_model
def test_kill_9_leaves_no_partial_line_and_the_file_can_be_appended(tmp_path: Path) -> None:
    path = tmp_path / "rehearsal.csv"
    process = _mer_live("--demo", "--rate", "30", "--csv", str(path), "--no-osc", "--no-control", "-q")
    _wait_rows(path, 40)
    process.kill()
    process.wait(10)
    before = _csv_rows_complete(path)
    assert len(before) > 40
    assert _main("--demo", "--fast", "--duration", "1", "--csv", str(path)) == 0
    after = _csv_rows_complete(path)
    assert len(after) == len(before) + 4 and after[: len(before)] == before
