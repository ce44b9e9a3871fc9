"""MIDI CC out: the mapping parser, scaling, send-on-change and the rate limit (fast), and a real JACK
MIDI receiver, ``jack_midi_dump`` on a JACK dummy server (slow): the port going away and coming back."""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mer_live.config import options
from mer_live.core import labels
from mer_live.outputs.midi import (
    mapping_from_settings,
    DEFAULT_MAPPING,
    LSB_OFFSET,
    MAX_7BIT,
    MAX_14BIT,
    VALUE_NAMES,
    CcControl,
    CcEncoder,
    MidiError,
    MidiMapping,
    match_port,
    parse_mapping,
    scale,
)
from mer_live.core.reading import Reading

CC_STATUS = 0xB0

mido = pytest.importorskip("mido")


def _values(level: float) -> dict[str, float]:
    return {name: level for name in VALUE_NAMES}


# ------------------------------------------------------------------------------------------ mapping


def test_the_preset_parses_and_covers_every_value_once() -> None:
    settings = options.resolve(toml_path="midi", cli={})
    mapping = mapping_from_settings(midi=settings.midi)
    assert sorted(c.value for c in mapping.controls) == sorted(VALUE_NAMES)
    assert any(c.high_resolution for c in mapping.controls) and not settings.midi.enabled


def test_no_cc_tables_means_the_default_mapping_and_the_settings_are_checked(tmp_path: Path) -> None:
    path = tmp_path / "show.toml"
    path.write_text('[midi]\nvirtual = "show"\nmax_rate_hz = 5\n')
    settings = options.resolve(toml_path=path, cli={"midi": {"virtual": "show", "enabled": True}})
    assert settings.midi.enabled and settings.midi.virtual == "show"
    assert mapping_from_settings(midi=settings.midi) == MidiMapping(controls=DEFAULT_MAPPING.controls, max_rate_hz=5.0)
    for text, needle in (
        ('[midi]\napi = "coreaudio"\n', "midi.api: 'coreaudio'"),
        ("[midi]\nmax_rate_hz = 0\n", "midi.max_rate_hz = 0"),
        ("[midi]\ncc = 3\n", "array of tables"),
        ("[midi]\nenabled = true\n", "there is no port"),
    ):
        path.write_text(text)
        with pytest.raises(options.ConfigError, match=needle):
            options.resolve(toml_path=path, cli={})


def test_a_bad_mapping_in_the_config_is_one_line_exit_2(tmp_path: Path, capsys) -> None:
    from mer_live import cli

    path = tmp_path / "show.toml"
    path.write_text('[[midi.cc]]\nvalue = "joy"\nchannel = 1\ncc = 3\n')
    code = cli.main(["--demo", "--config", str(path), "--midi-virtual", "x", "--no-osc", "--no-control", "-q"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "value 'joy' is not one of" in lines[0], lines
    code = cli.main(["--demo", "--midi", "a", "--midi-virtual", "b", "--no-osc", "--no-control", "-q"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "--midi and --midi-virtual contradict" in lines[0], lines


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"cc": []}, "at least one"),
        ({"cc": [{"value": "joy", "channel": 1, "cc": 1}]}, "'joy' is not one of"),
        ({"cc": [{"value": "happy", "channel": 0, "cc": 1}]}, "channel = 0"),
        ({"cc": [{"value": "happy", "channel": 17, "cc": 1}]}, "channel = 17"),
        ({"cc": [{"value": "happy", "channel": 1, "cc": 120}]}, "cc = 120"),
        ({"cc": [{"value": "happy", "channel": 1, "cc": 40, "high_resolution": True}]}, "cc = 40; use a whole number from 0 to 31"),
        ({"cc": [{"value": "happy", "channel": 1}]}, "missing cc"),
        ({"cc": [{"value": "happy", "channel": 1, "cc": 1, "colour": 3}]}, "unknown key 'colour'"),
        ({"cc": [{"value": "happy", "channel": 1, "cc": 1.5}]}, "cc = 1.5"),
        ({"cc": [{"value": "happy", "channel": 1, "cc": 1}], "max_rate_hz": 0}, "max_rate_hz = 0"),
        ({"cc": [{"value": "happy", "channel": 1, "cc": 1}], "rate": 3}, "unknown key midi.rate"),
        (
            {"cc": [{"value": "happy", "channel": 1, "cc": 1, "high_resolution": True}, {"value": "sad", "channel": 1, "cc": 33}]},
            "channel 1 CC 33 is already used by happy",
        ),
    ],
)
def test_bad_mappings_are_one_line_errors_naming_the_key(data: dict, needle: str) -> None:
    with pytest.raises(MidiError) as caught:
        parse_mapping(data=data, source="test.toml")
    message = str(caught.value)
    assert needle in message and "\n" not in message and message.startswith("test.toml")


@given(st.floats(allow_nan=True, allow_infinity=True), st.booleans())
def test_scale_stays_in_range_and_is_monotonic_at_the_ends(value: float, high: bool) -> None:
    top = MAX_14BIT if high else MAX_7BIT
    scaled = scale(value=value, high_resolution=high)
    assert 0 <= scaled <= top
    if math.isfinite(value):
        assert scaled == round(min(1.0, max(0.0, value)) * top)
    assert scale(value=0.0, high_resolution=high) == 0 and scale(value=1.0, high_resolution=high) == top


def test_match_port_takes_an_exact_name_or_a_unique_substring() -> None:
    ports = ["Midi Through:Midi Through Port-0 14:0", "UM-ONE:UM-ONE MIDI 1 24:0", "dumper:input"]
    assert match_port(spec="dumper:input", ports=ports) == 2
    assert match_port(spec="um-one", ports=ports) == 1
    assert match_port(spec=":", ports=ports) is None  # ambiguous
    assert match_port(spec="nothing", ports=ports) is None


# ------------------------------------------------------------------------------------------ encoder


def test_encoder_sends_only_changes() -> None:
    encoder = CcEncoder(mapping=DEFAULT_MAPPING)
    first = encoder.process(values=_values(0.5), now=0.0)
    assert len(first) == len(VALUE_NAMES)
    assert encoder.process(values=_values(0.5), now=1.0) == []
    changed = _values(0.5) | {"minorness": 1.0}
    control = next(c for c in DEFAULT_MAPPING.controls if c.value == "minorness")
    assert encoder.process(values=changed, now=2.0) == [(CC_STATUS | (control.channel - 1), control.cc, MAX_7BIT)]
    encoder.reset()
    assert len(encoder.process(values=changed, now=3.0)) == len(VALUE_NAMES)


def test_encoder_rate_limit_holds_a_change_until_the_interval_has_passed() -> None:
    mapping = MidiMapping(controls=(CcControl(value="happy", channel=3, cc=7),), max_rate_hz=10.0)
    encoder = CcEncoder(mapping=mapping)
    assert encoder.process(values=_values(0.0), now=0.0) == [(CC_STATUS | 2, 7, 0)]
    assert encoder.process(values=_values(1.0), now=0.05) == []  # 50 ms after the last send: held
    assert encoder.process(values=_values(0.9), now=0.10) == [(CC_STATUS | 2, 7, round(0.9 * MAX_7BIT))]  # the latest value


def test_encoder_14_bit_pairs_send_msb_then_lsb_and_only_the_lsb_when_the_msb_holds() -> None:
    mapping = MidiMapping(controls=(CcControl(value="valence", channel=1, cc=1, high_resolution=True),), max_rate_hz=1000.0)
    encoder = CcEncoder(mapping=mapping)
    level = scale(value=0.5, high_resolution=True)
    assert encoder.process(values=_values(0.5), now=0.0) == [
        (CC_STATUS, 1, level >> 7),
        (CC_STATUS, 1 + LSB_OFFSET, level & MAX_7BIT),
    ]
    nudged = (level + 1) / MAX_14BIT  # same MSB, next LSB
    assert (level + 1) >> 7 == level >> 7
    assert encoder.process(values=_values(nudged), now=1.0) == [(CC_STATUS, 1 + LSB_OFFSET, (level + 1) & MAX_7BIT)]


@given(st.lists(st.floats(min_value=0.0, max_value=1.0), min_size=1, max_size=40), st.booleans())
def test_encoder_output_replays_to_the_last_value_without_repeats(levels: list[float], high: bool) -> None:
    """A receiver that applies every message ends on the last value, and never sees a repeated value."""
    control = CcControl(value="tension", channel=16, cc=5, high_resolution=high)
    encoder = CcEncoder(mapping=MidiMapping(controls=(control,), max_rate_hz=1000.0))
    msb = lsb = None
    seen = []
    for step, level in enumerate(levels):
        for status, controller, value in encoder.process(values=_values(level), now=float(step)):
            assert status == CC_STATUS | 15 and 0 <= value <= MAX_7BIT
            if controller == control.cc:
                msb, lsb = value, (0 if high else None)
            else:
                assert high and controller == control.cc + LSB_OFFSET and msb is not None
                lsb = value
                seen.append((msb << 7) | lsb)
            if not high:
                seen.append(msb)
    assert seen[-1] == scale(value=levels[-1], high_resolution=high)
    assert all(a != b for a, b in zip(seen, seen[1:]))


# ------------------------------------------------------------------------------------------ JACK


JACK_SERVER = "merlive-midi-test"  # its own name: the capture tests' server may run beside it
JACK_RATE = 44100
JACK_PERIOD = 1024
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0
DUMP_LINE = re.compile(r"^\s*\d+:\s+((?:[0-9a-f]{2} )+)")

jack_tools = pytest.mark.skipif(
    shutil.which("jackd") is None or shutil.which("jack_midi_dump") is None, reason="jackd2 is not installed"
)


class JackMidi:
    """A private ``jackd -d dummy`` server and ``jack_midi_dump`` receivers on it."""

    def __init__(self) -> None:
        self.env = dict(os.environ, JACK_NO_AUDIO_RESERVATION="1", JACK_DEFAULT_SERVER=JACK_SERVER, JACK_NO_START_SERVER="1")
        self.server = subprocess.Popen(
            ["jackd", "--no-realtime", "-n", JACK_SERVER, "-d", "dummy", "-r", str(JACK_RATE), "-p", str(JACK_PERIOD)],
            env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while subprocess.run(["jack_lsp"], env=self.env, capture_output=True).returncode != 0:
            assert time.monotonic() < deadline and self.server.poll() is None, "jackd did not start"
            time.sleep(0.1)

    def ports(self) -> list[str]:
        return subprocess.run(["jack_lsp"], env=self.env, capture_output=True, text=True).stdout.split()

    def dump(self, *, name: str = "dumper") -> subprocess.Popen:
        """``jack_midi_dump`` with its input port ``NAME:input`` registered (line-buffered output)."""
        process = subprocess.Popen(
            ["stdbuf", "-oL", "jack_midi_dump", name], env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while f"{name}:input" not in self.ports():
            assert time.monotonic() < deadline and process.poll() is None, "jack_midi_dump did not start"
            time.sleep(0.05)
        return process

    def stop(self) -> None:
        if self.server.poll() is None:
            self.server.terminate()  # SIGTERM: jackd frees its slot in JACK's shared registry
            try:
                self.server.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.server.kill()


def dump_messages(process: subprocess.Popen) -> list[tuple[int, ...]]:
    """Stop a ``jack_midi_dump`` and return the messages it printed, as byte tuples."""
    process.terminate()
    output, _ = process.communicate(timeout=STOP_TIMEOUT_S)
    return [tuple(int(b, 16) for b in match.group(1).split()) for line in output.splitlines() if (match := DUMP_LINE.match(line))]


@pytest.fixture()
def jack_midi():
    if shutil.which("jackd") is None or shutil.which("jack_midi_dump") is None:
        pytest.skip("jackd2 is not installed")
    pytest.importorskip("rtmidi")
    server = JackMidi()
    os.environ["JACK_DEFAULT_SERVER"], os.environ["JACK_NO_START_SERVER"] = JACK_SERVER, "1"
    try:
        yield server
    finally:
        os.environ.pop("JACK_DEFAULT_SERVER", None)
        os.environ.pop("JACK_NO_START_SERVER", None)
        server.stop()


def _reading(level: float) -> Reading:
    return Reading(
        stream_time_s=0.0, wall_time=0.0, state="running", level_dbfs=-20.0, overflows=0, updates=1,
        emotion=np.full(labels.NUM_EMOTIONS, level), mid=np.full(labels.NUM_MID_LEVELS, level),
    )


def _wait_for(condition, timeout_s: float = START_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.mark.slow
@jack_tools
def test_missing_port_names_the_ones_that_exist(jack_midi: JackMidi) -> None:
    from mer_live.outputs.midi import MidiSink

    import sys

    receiver = jack_midi.dump()
    try:
        with pytest.raises(MidiError) as caught:
            MidiSink(port="no-such-synth", api="jack")
        assert "'dumper:input'" in str(caught.value) and "no-such-synth" in str(caught.value)
        done = subprocess.run(
            [sys.executable, "-m", "mer_live", "--demo", "--midi", "no-such-synth", "--midi-api", "jack", "--no-osc", "--no-control", "-q"],
            env=jack_midi.env, capture_output=True, text=True, timeout=120,
        )
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2 and len(lines) == 1 and lines[0].startswith("mer-live: error: --midi 'no-such-synth'"), done.stderr
        assert "'dumper:input'" in lines[0]
        listing = subprocess.run([sys.executable, "-m", "mer_live", "-l"], env=jack_midi.env, capture_output=True, text=True, timeout=120)
        assert listing.returncode == 0 and re.search(r"MIDI outputs \(jack\):\n  dumper:input", listing.stdout), listing.stdout
    finally:
        dump_messages(receiver)


@pytest.mark.slow
@jack_tools
def test_a_port_that_goes_away_is_retried_and_gets_the_values_again(jack_midi: JackMidi, caplog) -> None:
    from mer_live.outputs.midi import MidiSink

    receiver = jack_midi.dump()
    sink = MidiSink(port="dumper", api="jack", check_s=0.2)
    try:
        sink.process(reading=_reading(0.25))
        sink.process(reading=_reading(0.25))  # unchanged: nothing sent
        time.sleep(0.3)
        first = dump_messages(receiver)
        assert sorted(first) == sorted(
            (CC_STATUS | (c.channel - 1), c.cc, scale(value=0.25, high_resolution=False)) for c in DEFAULT_MAPPING.controls
        )
        _wait_for(lambda: "has gone" in caplog.text)
        sink.process(reading=_reading(0.5))  # dropped while the port is away, analysis goes on
        assert sink.dropped == 1
        receiver = jack_midi.dump()
        _wait_for(lambda: "is back" in caplog.text)
        sink.process(reading=_reading(0.5))
        time.sleep(0.3)
        second = dump_messages(receiver)
        assert sorted(second) == sorted(
            (CC_STATUS | (c.channel - 1), c.cc, scale(value=0.5, high_resolution=False)) for c in DEFAULT_MAPPING.controls
        )
        assert sink.messages_sent == 2 * len(DEFAULT_MAPPING.controls)
        assert (sink.delivered, sink.dropped) == (3, 1)  # updates: two before, one dropped while away, one after
    finally:
        sink.close()
        if receiver.poll() is None:
            dump_messages(receiver)


@pytest.mark.slow
@jack_tools
def test_a_virtual_port_is_what_a_receiver_connects_to(jack_midi: JackMidi) -> None:
    from mer_live.outputs.midi import MidiSink

    sink = MidiSink(virtual="show", api="jack")
    receiver = jack_midi.dump()
    try:
        assert "mer-live:show" in jack_midi.ports()
        subprocess.run(["jack_connect", "mer-live:show", "dumper:input"], env=jack_midi.env, check=True)
        sink.process(reading=_reading(1.0))
        time.sleep(0.3)
    finally:
        sink.close()
    assert sorted(dump_messages(receiver)) == sorted((CC_STATUS | (c.channel - 1), c.cc, MAX_7BIT) for c in DEFAULT_MAPPING.controls)


DAEMON_MAPPING = """
[osc]
enabled = false

[midi]
max_rate_hz = 1000.0   # every change goes out

[[midi.cc]]
value = "valence"
channel = 1
cc = 20
high_resolution = true

[[midi.cc]]
value = "happy"
channel = 1
cc = 25

[[midi.cc]]
value = "minorness"
channel = 2
cc = 108
"""
RUN_TIMEOUT_S = 180


def _replay(messages: list[tuple[int, ...]]) -> dict[tuple[int, int], list[int]]:
    """What a receiver sees: per (channel, controller) the values in order; 14-bit pairs combined on LSB."""
    seen: dict[tuple[int, int], list[int]] = {}
    msb: dict[int, int] = {}
    for status, controller, value in messages:
        assert status & 0xF0 == CC_STATUS
        channel = (status & 0x0F) + 1
        if controller == 20:
            msb[channel] = value
        elif controller == 20 + LSB_OFFSET:
            seen.setdefault((channel, 20), []).append((msb[channel] << 7) | value)
        else:
            seen.setdefault((channel, controller), []).append(value)
    return seen


def _changes(values: list[int]) -> list[int]:
    return [v for i, v in enumerate(values) if i == 0 or v != values[i - 1]]


@pytest.mark.slow
@jack_tools
def test_a_real_daemon_run_reaches_jack_midi_dump(jack_midi: JackMidi, tmp_path: Path) -> None:
    import sys

    config = tmp_path / "midi.toml"
    config.write_text(DAEMON_MAPPING)
    log = tmp_path / "run.csv"
    receiver = jack_midi.dump()
    done = subprocess.run(
        # real time, as on stage: a --fast run sends faster than a JACK cycle's MIDI buffer takes on a busy machine
        [sys.executable, "-m", "mer_live", "--demo", "--rate", "20", "--duration", "6", "--config", str(config), "--midi", "dumper",
         "--midi-api", "jack", "--csv", str(log), "--no-control", "-q"],
        env=jack_midi.env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
    )
    assert done.returncode == 0, done.stderr
    time.sleep(0.5)
    seen = _replay(dump_messages(receiver))
    header, *rows = [line.split(",") for line in log.read_text().splitlines()]
    rows = [row for row in rows if row[4] != ""]
    expected = {
        (1, 20): _changes([scale(value=float(r[header.index("valence")]), high_resolution=True) for r in rows]),
        (1, 25): _changes([scale(value=float(r[header.index("happy")]), high_resolution=False) for r in rows]),
        (2, 108): _changes([scale(value=float(r[header.index("minorness")]), high_resolution=False) for r in rows]),
    }
    assert set(seen) == set(expected)
    for key, values in seen.items():
        tolerance = 2 if key == (1, 20) else 1  # the CSV keeps 6 decimals: a value on a rounding edge may differ by a step
        assert abs(values[-1] - expected[key][-1]) <= tolerance, (key, values[-6:], expected[key][-6:])
        # in order, and (almost) all of them: without real-time scheduling, a JACK cycle that runs late (an xrun on
        # this busy machine) can lose the odd event between two clients, and a lost MSB shifts a 14-bit value
        position, in_order = 0, 0
        for value in values:
            ahead = [i for i in range(position, len(expected[key])) if abs(expected[key][i] - value) <= tolerance]
            if ahead:
                position, in_order = ahead[0] + 1, in_order + 1
        assert in_order >= 0.9 * len(values) and len(values) >= 0.85 * len(expected[key]), (key, in_order, len(values), len(expected[key]))


def test_the_default_midi_system_is_the_platforms_in_python_rtmidis_order(monkeypatch: pytest.MonkeyPatch) -> None:
    """``--midi-api ""`` tries what python-rtmidi was built with, in its order for the platform (CoreMIDI on
    macOS, WinMM on Windows, ALSA then JACK on Linux); a named API is tried alone."""
    rtmidi = pytest.importorskip("rtmidi")
    from mer_live.outputs import midi

    if sys.platform.startswith("linux"):
        assert midi._api_names(api="")[:1] == ["alsa"]  # this machine: ALSA first, as before
    monkeypatch.setattr(rtmidi, "get_compiled_api", lambda: [rtmidi.API_MACOSX_CORE, rtmidi.API_UNIX_JACK])
    assert midi._api_names(api="") == ["coremidi", "jack"]
    assert midi._api_names(api="jack") == ["jack"] and midi._api_names(api="alsa") == []
    monkeypatch.setattr(rtmidi, "get_compiled_api", lambda: [rtmidi.API_WINDOWS_MM, rtmidi.API_RTMIDI_DUMMY])
    assert midi._api_names(api="") == ["winmm"]
    for api in ("coremidi", "winmm", "alsa", "jack", ""):
        assert options.resolve(toml_path=None, cli={"midi": {"api": api}}).midi.api == api
