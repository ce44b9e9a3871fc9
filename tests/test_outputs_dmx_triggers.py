"""Cue triggers: thresholds with hysteresis, hold and cool-down, the explanation in the message, received
by a real OSC receiver (oscdump); MIDI notes through JACK (jack_midi_dump); DMX values held in the frame;
the shipped Eos and QLC+ files; bad files are one line with file and line."""

from __future__ import annotations

import shutil
import uuid

import numpy as np
import pytest

from mer_live.outputs.dmx import channel_map as cm
from mer_live.outputs.dmx import triggers as tr
from mer_live.outputs.dmx.sender import Transport
from mer_live.outputs.dmx.sink import DmxSink

from dmx_helpers import reading
from osc_receivers import OscDump

oscdump = pytest.mark.skipif(shutil.which("oscdump") is None, reason="oscdump (liblo-tools) is not installed")

RULES = """
[osc]
target = "127.0.0.1:{port}"

[[trigger]]
name = "peak"
source = "emotion.tension"
on = 0.7
off = 0.5
hold_s = 2.0
cooldown_s = 10.0
osc = "/eos/cue/1/10/fire"
osc_args = ["{{top}}", "{{value}}", 3]
osc_release = "/eos/cue/1/11/fire"

[[trigger]]
name = "calm"
source = "emotion.energy"
on = 0.2
off = 0.4
osc = "/calm"

[[follow]]
source = "emotion.valence"
osc = "/eos/sub/1"
"""


def _run(sink: tr.TriggerSink, series: list[tuple[float, float, float]], *, rate: float = 4.0) -> None:
    """Feed (tension, energy, valence) at ``rate`` updates per second of stream time."""
    for index, (tension, energy, valence) in enumerate(series):
        r = reading(emotion={"tension": tension, "energy": energy, "valence": valence})
        r.stream_time_s = index / rate
        sink.process(reading=r)


def test_hysteresis_hold_and_cooldown() -> None:
    sink = tr.TriggerSink(triggers=tr.parse(RULES.format(port=9), path="t.toml"))
    try:
        quiet, loud = (0.3, 0.5, 0.5), (0.8, 0.5, 0.5)
        series = [quiet] * 4 + [loud] * 4 + [quiet] * 2  # 1 s above: too short
        series += [loud] * 12 + [(0.6, 0.5, 0.5)] * 4  # 3 s above fires at 2 s; 0.6 is between off and on: stays
        series += [quiet] * 4 + [loud] * 12  # released; loud again within the 10 s cool-down: no fire
        series += [quiet] * 40 + [loud] * 12  # after the cool-down: fires again
        _run(sink, series)
        peaks = [(f.fired, f.time_s) for f in sink.history if f.name == "peak"]
        assert [fired for fired, _ in peaks] == [True, False, True]
        assert peaks[0][1] == pytest.approx((10 + 8) / 4)  # 2 s after the value rose above 0.7 at update 10
        _run(sink, [(0.3, 0.1, 0.5)] * 3)  # energy below 0.2 (on < off: fires below), no hold
        assert [f.fired for f in sink.history if f.name == "calm"] == [True]
    finally:
        sink.close()


@oscdump
def test_osc_messages_carry_the_top_contributing_feature_to_a_real_receiver() -> None:
    with OscDump() as dump:
        sink = tr.TriggerSink(triggers=tr.parse(RULES.format(port=dump.port), path="t.toml"))
        _run(sink, [(0.3, 0.5, 0.2)] * 2 + [(0.9, 0.5, 0.6)] * 10 + [(0.3, 0.5, 0.6)] * 2)
        sink.close()
        messages = dump.messages()
    fired = [m for m in messages if m.address == "/eos/cue/1/10/fire"]
    assert len(fired) == 1 and fired[0].types == "sfi"
    assert fired[0].args[0] == "dissonance"  # the helper's readings make dissonance drive tension
    assert fired[0].args[1] == pytest.approx(0.9) and fired[0].args[2] == 3
    assert [m.address for m in messages].count("/eos/cue/1/11/fire") == 1
    subs = [m.args[0] for m in messages if m.address == "/eos/sub/1"]
    assert subs == [pytest.approx(0.2), pytest.approx(0.6)]  # sent when it changes, not every update


def test_dmx_action_holds_a_slot_while_active() -> None:
    text = '[[channel]]\naddress = 1\nsource = "emotion.energy"\n'
    sink = DmxSink(channel_map=cm.parse(text), start=False, clock=lambda: 0.0,
                   transport_factory=lambda u: Transport(protocol="artnet", universes=u, host="127.0.0.1", port=9))
    rules = '[[trigger]]\nsource = "emotion.tension"\non = 0.7\noff = 0.5\ndmx = [1, 100, 200]\n'
    triggers = tr.TriggerSink(triggers=tr.parse(rules), dmx=sink)
    try:
        _run(triggers, [(0.9, 0.5, 0.5)])
        sink.process(reading=reading())
        sink.frames.tick(1.0, 0.025)
        assert sink.frames.frame[0, 99] == 200 and sink.frames.frame[0, 0] == round(0.5 * 255)
        _run(triggers, [(0.1, 0.5, 0.5)])
        sink.frames.tick(1.1, 0.025)
        assert sink.frames.frame[0, 99] == 0
    finally:
        triggers.close()
        sink.close()


def test_a_dmx_action_without_the_dmx_output_is_refused() -> None:
    with pytest.raises(tr.TriggerError, match="DMX output is off"):
        tr.TriggerSink(triggers=tr.parse('[[trigger]]\nsource = "level"\non = -10\noff = -20\ndmx = [1, 1, 255]\n', path="x.toml"))


@pytest.mark.parametrize("name", ["eos", "qlcplus"])
def test_shipped_console_files_load(name: str) -> None:
    loaded = tr.load(name)
    assert loaded.triggers and loaded.follows


BAD = [
    ('[[trigger]]\nsource = "emotion.tension"\non = 0.7\n', 1, "off is missing"),
    ('[[trigger]]\nsource = "emotion.tension"\non = 0.7\noff = 0.7\nosc = "/x"\nosc_target = "127.0.0.1:1"\n', 4, "on and off are equal"),
    ('[osc]\ntarget = "localhost:9000"\n', 2, "give an IPv4 address"),
    ('[[trigger]]\nsource = "emotion.tension"\non = 0.7\noff = 0.5\n', 1, "sends nothing"),
    ('[[trigger]]\nsource = "emotion.tension"\non = 0.7\noff = 0.5\nosc = "/x"\n', 5, "no OSC target"),
    ('\n[[trigger]]\nsource = "emotion.tension"\non = 0.7\noff = 0.5\nosc = "/x"\nosc_target = "127.0.0.1:9"\nosc_args = ["{nope}"]\n', 8, "unknown placeholder"),
    ('[[trigger]]\nsource = "emotion.tension"\non = 0.7\noff = 0.5\nnote = 60\n', 5, "needs [midi] port"),
    ('[[trigger]]\nsource = "emotion.tension"\non = 0.7\noff = 0.5\ndmx = [1, 600, 1]\n', 5, "dmx address 600 is out of range"),
    ('name = "x"\n', 1, "nothing to do"),
]


@pytest.mark.parametrize("text, line, reason", BAD)
def test_bad_trigger_files(text: str, line: int, reason: str) -> None:
    with pytest.raises(tr.TriggerError) as error:
        tr.parse(text, path="cues.toml")
    assert str(error.value).startswith(f"cues.toml:{line}: ") and reason in str(error.value)


@pytest.mark.slow
def test_midi_note_on_and_off_through_jack() -> None:
    from test_midi import JackMidi, dump_messages  # the MIDI tests' private JACK server and receiver

    if shutil.which("jackd") is None or shutil.which("jack_midi_dump") is None:
        pytest.skip("jackd2 is not installed")
    pytest.importorskip("rtmidi")
    import os

    server = JackMidi()
    saved = {k: os.environ.get(k) for k in ("JACK_DEFAULT_SERVER", "JACK_NO_START_SERVER")}
    os.environ.update(JACK_DEFAULT_SERVER=server.env["JACK_DEFAULT_SERVER"], JACK_NO_START_SERVER="1")
    name = f"cues{uuid.uuid4().hex[:6]}"
    try:
        receiver = server.dump(name=name)
        rules = f'[midi]\nport = "{name}:input"\napi = "jack"\n[[trigger]]\nsource = "emotion.tension"\non = 0.7\noff = 0.5\nnote = 61\nchannel = 2\nvelocity = 90\n'
        sink = tr.TriggerSink(triggers=tr.parse(rules))
        _run(sink, [(0.9, 0.5, 0.5), (0.2, 0.5, 0.5)])
        import time

        time.sleep(0.5)
        sink.close()
        messages = dump_messages(receiver)
        assert (0x91, 61, 90) in messages and (0x81, 61, 0) in messages, messages
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        server.stop()


def test_muted_readings_fire_nothing_and_hold_the_lights() -> None:
    sink = tr.TriggerSink(triggers=tr.parse(RULES.format(port=9), path="t.toml"))
    muted = reading(emotion={"tension": 0.9})
    muted.muted = True
    for second in range(5):
        muted.stream_time_s = float(second)
        sink.process(reading=muted)
    assert not sink.history
    sink.close()
    dmx = DmxSink(channel_map=cm.parse('[[channel]]\naddress = 1\nsource = "emotion.tension"\n'), start=False, clock=lambda: 0.0,
                  transport_factory=lambda u: Transport(protocol="artnet", universes=u, host="127.0.0.1", port=9))
    dmx.process(reading=reading(emotion={"tension": 0.2}))
    dmx.process(reading=muted)
    dmx.frames.tick(1.0, 0.025)
    dmx.frames.tick(2.0, 1.0)
    assert dmx.frames.frame[0, 0] == round(0.2 * 255)
    dmx.close()
