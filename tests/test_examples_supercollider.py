"""examples/supercollider/mer-live.scd in the real sclang (headless), fed real OSC over UDP."""

from __future__ import annotations

import shutil
import socket

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

from mer_live.labels import EMOTIONS, MID_LEVELS

SC_FLOAT_TOLERANCE = 1e-4  # sclang posts floats with about 6 significant digits
CUTOFF_RANGE_HZ = (300.0, 8000.0)
NOTES_PER_SECOND_RANGE = (0.75, 8.0)
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
    process = SclangProcess(directory=tmp_path)
    try:
        process.wait_ready()
        yield process
    finally:
        process.close()


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
    process = SclangProcess(directory=tmp_path)
    try:
        port = process.wait_ready()
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
    assert dump["status"][0] == "running"  # the last update, after the 10 s window filled
