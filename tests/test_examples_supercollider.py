"""mer_live/examples/supercollider/mer-live.scd in the real sclang (headless), fed real OSC over UDP."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time

import pytest
from pythonosc.osc_message_builder import OscMessageBuilder
from osc_receivers import (
    SC_SCRIPT,
    STATES,
    DaemonProcess,
    SclangProcess,
    clip_path,
    contract_datagrams,
    distinct_frame,
    send_datagrams,
)

from mer_live.core.labels import EMOTIONS, MID_LEVELS

SC_FLOAT_TOLERANCE = 1e-4  # sclang posts floats with about 6 significant digits
CUTOFF_RANGE_HZ = (300.0, 8000.0)
NOTES_PER_SECOND_RANGE = (0.75, 8.0)
SCLANG_ATTEMPTS = 2
SCLANG_START_TIMEOUT_S = 30.0
sclang_missing = shutil.which("sclang") is None


def test_script_defines_the_oscdefs_and_a_synthdef() -> None:
    text = SC_SCRIPT.read_text()
    for key, address in (("merEmotion", '"/emotion"'), ("merMid", '"/mid"'), ("merStatus", '"/status"')):
        assert f"OSCdef(\\{key}," in text and address in text
    assert '"/explain/" ++ emotion' in text and '"/explain/bias"' in text
    assert "SynthDef(\\merNote" in text
    assert "NetAddr.langPort" in text
    assert text.count("(") == text.count(")") and text.count("{") == text.count("}")


@pytest.fixture
def sclang(tmp_path):
    if sclang_missing:
        pytest.skip("sclang (Debian supercollider-language) is not installed")
    process = start_sclang(directory=tmp_path)
    try:
        yield process
    finally:
        process.close()


def start_sclang(*, directory) -> SclangProcess:
    """sclang with the harness; one retry, because a cold start under heavy load has hung once here."""
    for attempt in range(SCLANG_ATTEMPTS):
        process = SclangProcess(directory=directory)
        try:
            process.wait_ready(timeout=SCLANG_START_TIMEOUT_S)
            return process
        except AssertionError:
            process.close()
            if attempt == SCLANG_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def numbers(words: list[str]) -> list[float]:
    return [float(word) for word in words]


def check_dump(dump: dict, *, expect_explain: bool = True) -> None:
    """What every run must leave in ~mer: every OSCdef fired with the right number of values."""
    received = dict(zip(dump["received"][::2], (int(v) for v in dump["received"][1::2])))
    assert received["emotion"] >= 1 and received["mid"] >= 1 and received["status"] >= 1, received
    if expect_explain:
        assert received["explain"] >= len(EMOTIONS) + 1, received
        for name in EMOTIONS:
            assert len(numbers(dump[f"explain.{name}"])) == len(MID_LEVELS)
    emotion, mid = numbers(dump["emotion"]), numbers(dump["mid"])
    assert len(emotion) == len(EMOTIONS) and len(mid) == len(MID_LEVELS)
    assert all(0.0 <= value <= 1.0 for value in emotion + mid)
    assert len(numbers(dump["bias"])) == len(EMOTIONS)
    state, level, overflows, updates = dump["status"]
    assert state in STATES and -120.0 <= float(level) <= 0.0 and int(overflows) >= 0 and int(updates) >= 1
    params = dict(zip(dump["params"][::2], dump["params"][1::2]))
    assert CUTOFF_RANGE_HZ[0] - 1e-3 <= float(params["cutoff"]) <= CUTOFF_RANGE_HZ[1] + 1e-3
    assert NOTES_PER_SECOND_RANGE[0] - 1e-6 <= float(params["notesPerSecond"]) <= NOTES_PER_SECOND_RANGE[1] + 1e-6
    assert params["scale"] in ("major", "minor")
    assert dump["synthdef"] == ["true"]


@pytest.mark.slow
def test_sclang_oscdefs_receive_every_value(sclang) -> None:
    frame = distinct_frame(updates=5)
    send_datagrams(datagrams=contract_datagrams(frame=frame), port=sclang.port)
    dump = sclang.dump()
    check_dump(dump)
    assert not [line for line in sclang.output.snapshot() if line.startswith(("ERROR", "WARNING: Meta_"))]
    assert numbers(dump["emotion"]) == pytest.approx(list(frame.emotion), abs=SC_FLOAT_TOLERANCE)
    assert numbers(dump["mid"]) == pytest.approx(list(frame.mid), abs=SC_FLOAT_TOLERANCE)
    for index, name in enumerate(EMOTIONS):
        assert numbers(dump[f"explain.{name}"]) == pytest.approx(list(frame.explain[index]), abs=SC_FLOAT_TOLERANCE)
    assert numbers(dump["bias"]) == pytest.approx(list(frame.bias), abs=SC_FLOAT_TOLERANCE)
    assert dump["status"] == ["running", "-23.5", "3", "5"]
    params = dict(zip(dump["params"][::2], dump["params"][1::2]))
    tension = frame.emotion[EMOTIONS.index("tension")]
    expected_cutoff = CUTOFF_RANGE_HZ[0] * (CUTOFF_RANGE_HZ[1] / CUTOFF_RANGE_HZ[0]) ** tension
    assert float(params["cutoff"]) == pytest.approx(expected_cutoff, rel=1e-3)
    minorness = frame.mid[MID_LEVELS.index("minorness")]
    assert params["scale"] == ("minor" if minorness > 0.5 else "major")


@pytest.mark.slow
def test_sclang_ignores_wrong_sized_lists(sclang) -> None:
    bad = contract_datagrams(frame=distinct_frame(), bundle=False)
    short = [datagram for datagram in bad if datagram.startswith(b"/mer/status")]
    builder = OscMessageBuilder(address="/mer/emotion")
    for value in (0.9, 0.9, 0.9):
        builder.add_arg(value)
    send_datagrams(datagrams=[builder.build().dgram, *short], port=sclang.port)
    dump = sclang.dump()
    received = dict(zip(dump["received"][::2], (int(v) for v in dump["received"][1::2])))
    assert received["emotion"] == 0 and received["status"] == 1
    assert numbers(dump["emotion"]) == [0.5] * len(EMOTIONS)


@pytest.mark.slow
def test_sclang_moves_to_another_port_when_57120_is_busy(tmp_path) -> None:
    """The reason the tests parse the port: sclang takes the next free one silently."""
    if sclang_missing:
        pytest.skip("sclang is not installed")
    blocker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        blocker.bind(("0.0.0.0", 57120))
    except OSError:
        blocker.close()
        pytest.skip("57120 already taken by something else")
    process = start_sclang(directory=tmp_path)
    try:
        port = process.port
        assert port != 57120
        frame = distinct_frame(updates=2)
        send_datagrams(datagrams=contract_datagrams(frame=frame), port=port)
        check_dump(process.dump())
    finally:
        process.close()
        blocker.close()


@pytest.mark.slow
def test_sclang_receives_the_daemon_on_a_real_clip(sclang, shared_data) -> None:
    clip = clip_path(shared_data=shared_data)
    daemon = DaemonProcess(args=["--input", str(clip), "--fast", "--duration", "12", "--osc",
                                 f"127.0.0.1:{sclang.port}", "--no-control", "-q"])
    assert daemon.wait() == 0, daemon.stderr_text()
    sclang.output.wait_quiet(quiet_s=0.3)
    dump = sclang.dump()
    check_dump(dump)
    received = dict(zip(dump["received"][::2], (int(v) for v in dump["received"][1::2])))
    assert received["emotion"] >= 40 and received["status"] >= 40  # 48 updates; UDP may drop a few
    assert received["explain"] == received["emotion"] * (len(EMOTIONS) + 1)


@pytest.mark.slow
def test_sclang_receives_the_daemon_demo_as_messages(sclang) -> None:
    daemon = DaemonProcess(args=["--demo", "--fast", "--duration", "12", "--osc", f"127.0.0.1:{sclang.port}",
                                 "--osc-format", "messages", "--no-control", "-q"])
    assert daemon.wait() == 0, daemon.stderr_text()
    dump = sclang.dump()
    check_dump(dump)
    # the last status: "running" after the 10 s window filled, or "no-input" once the piece has ended
    assert dump["status"][0] in ("running", "no-input")
    assert int(dump["status"][3]) >= 40


SC_SOUND_HARNESS = r"""
~merBootServer = true;
~notes = 0;
thisProcess.interpreter.executeFile(%s);
s.doWhenBooted {
    OSCFunc({ ~notes = ~notes + 1 }, '/n_go', s.addr);
    OSCdef(\merHarnessCount, { ("MERNOTES " ++ ~notes).postln; ~notes = 0 }, '/merharness/count');
    OSCdef(\merHarnessQuit, { 0.exit }, '/merharness/quit');
    "MERSERVER READY".postln;
};
"""
NOTE_WINDOW_S = 2.5
LOW_ENERGY, HIGH_ENERGY = 0.05, 0.95


def start_jack_dummy(*, name: str) -> subprocess.Popen:
    """A private JACK server with the dummy driver (no sound card), ready for clients."""
    import jack

    server = subprocess.Popen(["jackd", "-n", name, "-d", "dummy", "-r", "48000", "-p", "1024"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            jack.Client("probe", servername=name, no_start_server=True).close()
            return server
        except jack.JackOpenError:
            time.sleep(0.2)
    server.kill()
    raise AssertionError("jackd -d dummy did not come up")


def count_notes(process: SclangProcess, *, energy: float) -> int:
    """Send a frame with this energy, then count the notes the player starts in NOTE_WINDOW_S."""
    frame = distinct_frame()
    frame.emotion[EMOTIONS.index("energy")] = energy
    send_datagrams(datagrams=contract_datagrams(frame=frame), port=process.port)
    time.sleep(0.5)  # let the note already scheduled at the old rate pass
    count = OscMessageBuilder(address="/merharness/count").build().dgram
    send_datagrams(datagrams=[count], port=process.port)
    time.sleep(NOTE_WINDOW_S)
    before = len(process.output.snapshot())
    send_datagrams(datagrams=[count], port=process.port)
    assert process.output.wait_for(
        predicate=lambda lines: any(line.startswith("MERNOTES") for line in lines[before:]), timeout=5
    )
    (line,) = [line for line in process.output.snapshot()[before:] if line.startswith("MERNOTES")]
    return int(line.split()[1])


@pytest.mark.slow
def test_sclang_player_follows_energy_on_a_real_server(tmp_path) -> None:
    """scsynth on a JACK dummy server: the SynthDef plays, and more energy means more notes."""
    if sclang_missing or shutil.which("scsynth") is None or shutil.which("jackd") is None:
        pytest.skip("needs sclang, scsynth (supercollider-server) and jackd (jackd2)")
    name = "merlive-sc"  # a fixed name: a later jackd of the same name reclaims a leaked registry slot
    jack_server = start_jack_dummy(name=name)
    process = SclangProcess(directory=tmp_path, harness_text=SC_SOUND_HARNESS, ready="MERSERVER READY",
                            extra_env={"JACK_DEFAULT_SERVER": name})
    try:
        process.wait_ready(timeout=SCLANG_START_TIMEOUT_S)
        low = count_notes(process, energy=LOW_ENERGY)
        high = count_notes(process, energy=HIGH_ENERGY)
        expected_low = 0.75 * (8 / 0.75) ** LOW_ENERGY * NOTE_WINDOW_S  # the script's energy mapping
        expected_high = 0.75 * (8 / 0.75) ** HIGH_ENERGY * NOTE_WINDOW_S
        assert low <= expected_low + 2, (low, expected_low)
        assert high >= expected_high * 0.6, (high, expected_high)
        send_datagrams(datagrams=[OscMessageBuilder(address="/merharness/quit").build().dgram], port=process.port)
        process.process.wait(timeout=10)
    finally:
        process.close()
        jack_server.terminate()
        jack_server.wait(timeout=10)
