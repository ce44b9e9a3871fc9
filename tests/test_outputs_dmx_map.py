"""Channel maps: parsing (one-line errors with file and line, hypothesis), the shipped maps, and the
renderer (ranges, curves, 8/16-bit MSB first, invert, bars, fixtures, fades, slew, silence)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mer_live.outputs.dmx import channel_map as cm
from mer_live.outputs.dmx import signals

from dmx_helpers import reading


def _frame(channel_map: cm.ChannelMap) -> np.ndarray:
    return np.zeros((len(channel_map.universes), 512), dtype=np.uint8)


def _render(text: str, values: dict[str, float], *, silent: bool = False, steps: int = 1, dt: float = 0.025) -> np.ndarray:
    channel_map = cm.parse(text)
    renderer = cm.Renderer(channel_map)
    vector = signals.vector(reading(emotion={k.split(".")[1]: v for k, v in values.items() if k.startswith("emotion.")}))
    if "level" in values:
        vector[signals.LEVEL_AT] = values["level"]
    frame = _frame(channel_map)
    for _ in range(steps):
        renderer.render(vector, silent=silent, dt=dt, frame=frame)
    return frame


def test_8_and_16_bit_msb_first_ranges_curves_invert() -> None:
    text = """
[[channel]]
address = 1
source = "emotion.energy"
[[channel]]
address = 2
source = "emotion.energy"
bits = 16
[[channel]]
address = 4
source = "emotion.energy"
range = [0.5, 1.0]
[[channel]]
address = 5
source = "emotion.energy"
curve = "gamma"
gamma = 2.0
[[channel]]
address = 6
source = "emotion.energy"
curve = "s-curve"
[[channel]]
address = 7
source = "emotion.energy"
invert = true
output = [10, 110]
"""
    frame = _render(text, {"emotion.energy": 0.75})
    assert frame[0, 0] == round(0.75 * 255)
    assert int(frame[0, 1]) * 256 + int(frame[0, 2]) == round(0.75 * 65535)
    assert frame[0, 3] == round(0.5 * 255)
    assert frame[0, 4] == round(0.75**2 * 255)
    assert frame[0, 5] == round((0.75 * 0.75 * (3 - 1.5)) * 255)
    assert frame[0, 6] == round(10 + 0.25 * 100)


def test_bar_spreads_a_level_over_channels() -> None:
    text = '[[channel]]\naddress = 1\nsource = "level"\nrange = [-60.0, 0.0]\nbar = 4\n'
    frame = _render(text, {"level": -60.0 + 0.6 * 60.0})
    assert list(frame[0, :5]) == [255, 255, round(0.4 * 255), 0, 0]


def test_rgb_and_rgbw_fixtures() -> None:
    text = """
[[fixture]]
address = 1
kind = "rgb"
hue = "emotion.valence"
hue_range = [240.0, 0.0]
brightness = "emotion.energy"
[[fixture]]
address = 4
kind = "rgbw"
saturation = 0.5
"""
    frame = _render(text, {"emotion.valence": 1.0, "emotion.energy": 1.0})
    assert list(frame[0, :3]) == [255, 0, 0]  # valence 1 -> hue 0: red
    frame = _render(text, {"emotion.valence": 0.0, "emotion.energy": 0.5})
    assert list(frame[0, :3]) == [0, 0, round(0.5 * 255)]  # valence 0 -> blue, at half brightness
    r, g, b, w = (int(v) for v in frame[0, 3:7])  # hue blue, saturation 0.5: white takes the common part
    assert r == 0 and g == 0 and w == round(0.25 * 255) and b == round(0.25 * 255)


def test_fade_time_constant_slew_and_silence_rest() -> None:
    fade = '[[channel]]\naddress = 1\nsource = "emotion.energy"\nfade_s = 1.0\n'
    renderer = cm.Renderer(cm.parse(fade))
    frame = np.zeros((1, 512), dtype=np.uint8)
    low, high = signals.vector(reading(emotion={"energy": 0.0})), signals.vector(reading(emotion={"energy": 1.0}))
    renderer.render(low, silent=False, dt=0.025, frame=frame)
    for _ in range(40):  # 1 s = one time constant
        renderer.render(high, silent=False, dt=0.025, frame=frame)
    assert abs(frame[0, 0] - 255 * (1 - np.exp(-1))) <= 1
    slew = '[[channel]]\naddress = 1\nsource = "emotion.energy"\nslew = 0.5\n'
    renderer = cm.Renderer(cm.parse(slew))
    renderer.render(low, silent=False, dt=0.025, frame=frame)
    for _ in range(40):
        renderer.render(high, silent=False, dt=0.025, frame=frame)
    assert abs(frame[0, 0] - 0.5 * 255) <= 1  # half of full scale in 1 s
    rest = '[[channel]]\naddress = 1\nsource = "emotion.energy"\non_silence = "rest"\nrest = 0.2\nrest_fade_s = 0.0\n' \
           '[[channel]]\naddress = 2\nsource = "emotion.energy"\n'
    frame = _render(rest, {"emotion.energy": 0.9}, silent=True)
    assert frame[0, 0] == round(0.2 * 255) and frame[0, 1] == round(0.9 * 255)  # rests / holds


def test_two_universes_and_a_full_universe() -> None:
    text = "".join(f'[[channel]]\naddress = {a}\nsource = "emotion.energy"\nuniverse = {u}\n' for u in (1, 2) for a in range(1, 513))
    channel_map = cm.parse(text)
    assert channel_map.universes == (1, 2)
    frame = _render(text, {"emotion.energy": 1.0})
    assert frame.shape == (2, 512) and (frame == 255).all()


@pytest.mark.parametrize("name", cm.shipped_names())
def test_shipped_maps_load_and_render(name: str) -> None:
    channel_map = cm.load(cm.resolve(name))
    renderer = cm.Renderer(channel_map)
    frame = _frame(channel_map)
    renderer.render(signals.vector(reading()), silent=False, dt=0.025, frame=frame)
    assert frame.any()


BAD_MAPS = [
    ('[[channel]]\naddress = 513\nsource = "level"\n', 2, "address 513 is out of range"),
    ('[[channel]]\naddress = 1\nsource = "emotion.joy"\n', 3, "source 'emotion.joy' is not a value"),
    ('name = "x"\n\n[[channel]]\naddress = 510\nsource = "level"\nbar = 4\n', 4, "run past slot 512"),
    ('[[channel]]\naddress = 1\nsource = "level"\n[[channel]]\naddress = 1\nsource = "silence"\n', 5, "slot 1 of universe 1 is already driven by channel 1 (line 1)"),
    ('[[channel]]\naddress = 1\nsource = "level"\nbits = 12\n', 4, "bits 12"),
    ('[[channel]]\naddress = 1\nsource = "level"\nfrobnicate = 1\n', 4, "unknown key 'frobnicate'"),
    ('[[channel]]\nsource = "level"\n', 1, "address is missing"),
    ('[[channel]]\naddress = 1\nsource = "level"\nrange = [1, 1]\n', 4, "is empty"),
    ('[[channel]]\naddress = 1\nsource = "level"\noutput = [0, 300]\n', 4, "out of range for 8-bit"),
    ('[defaults]\ncurve = "cubic"\n[[channel]]\naddress = 1\nsource = "level"\n', 2, "curve 'cubic'"),
    ('[[channel]\naddress = 1\n', 1, "not valid TOML"),
    ('name = "nothing"\n', 1, "drives no channel"),
    ('[[fixture]]\naddress = 511\nkind = "rgb"\n', 2, "run past slot 512"),
]


@pytest.mark.parametrize("text, line, reason", BAD_MAPS)
def test_bad_maps_name_file_line_and_reason(text: str, line: int, reason: str) -> None:
    with pytest.raises(cm.MapError) as error:
        cm.parse(text, path="my.toml")
    message = str(error.value)
    assert message.startswith(f"my.toml:{line}: ") and reason in message and "\n" not in message


_VALUE = st.one_of(st.integers(-1000, 100000), st.floats(allow_nan=True), st.text(max_size=8), st.booleans(),
                   st.lists(st.integers(-5, 70000), max_size=3))
_KEYS = st.sampled_from([*cm.CHANNEL_KEYS, *cm.FIXTURE_KEYS, "bogus"])


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    if isinstance(value, float):
        return "nan" if value != value else ("inf" if value > 0 else "-inf") if abs(value) == float("inf") else repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(map(str, value)) + "]"
    return str(value)


@settings(max_examples=300, deadline=None)
@given(tables=st.lists(st.tuples(st.sampled_from(["channel", "fixture"]), st.dictionaries(_KEYS, _VALUE, max_size=6)), max_size=4))
def test_any_map_parses_or_fails_with_one_line_naming_file_and_line(tables) -> None:
    text = "".join(f"[[{kind}]]\n" + "".join(f"{k} = {_toml_value(v)}\n" for k, v in entries.items()) for kind, entries in tables)
    try:
        channel_map = cm.parse(text, path="fuzz.toml")
    except cm.MapError as error:
        message = str(error)
        assert message.startswith("fuzz.toml:") and "\n" not in message
        line = int(message.split(":")[1])
        assert 1 <= line <= max(1, text.count("\n"))
        return
    renderer = cm.Renderer(channel_map)  # whatever parses, renders
    frame = _frame(channel_map)
    renderer.render(signals.vector(reading()), silent=True, dt=0.025, frame=frame)
    renderer.render(None, silent=False, dt=0.025, frame=frame)


def test_venue_and_relative_ranges(tmp_path) -> None:
    from mer_live.outputs.dmx.sender import Transport
    from mer_live.outputs.dmx.sink import DmxSink
    from mer_live.outputs.dmx.venue import VenueProfile

    text = ('[[channel]]\naddress = 1\nsource = "emotion.energy"\nrange = "venue"\n'
            '[[channel]]\naddress = 2\nsource = "emotion.energy"\nrange = "relative"\n'
            '[[channel]]\naddress = 3\nsource = "emotion.energy"\n')
    venue = VenueProfile(ranges={"emotion.energy": (0.4, 0.6)}, noise_floor_dbfs=-70.0, show_level_dbfs=-10.0, rows=100)
    factory = lambda u: Transport(protocol="artnet", universes=u, host="127.0.0.1", port=9)  # noqa: E731
    with pytest.raises(ValueError, match='range = "venue"'):
        DmxSink(channel_map=cm.parse(text), transport_factory=factory, start=False)
    sink = DmxSink(channel_map=cm.parse(text), transport_factory=factory, venue=venue, relative_minutes=1.0, start=False, clock=lambda: 0.0)
    try:
        for second in range(60):  # a minute of energy between 0.45 and 0.55
            r = reading(emotion={"energy": 0.45 + 0.1 * (second % 11) / 10})
            r.stream_time_s = float(second)
            sink.process(reading=r)
        sink.process(reading=reading(emotion={"energy": 0.55}))
        sink.frames.tick(1.0, 0.025)
        sink.frames.tick(2.0, 1.0)  # a second later: the interpolation has reached the last update
        frame = sink.frames.frame[0]
        assert frame[0] == round(0.75 * 255)  # (0.55 - 0.4) / 0.2 of the venue range
        assert frame[1] >= 240  # near the top of the last minute's 5-95 % range
        assert frame[2] == round(0.55 * 255)  # the fixed default range
    finally:
        sink.close()


def test_calibrate_from_a_csv_log(tmp_path) -> None:
    import argparse

    from mer_live.core import labels
    from mer_live.outputs.dmx import venue

    log = tmp_path / "soundcheck.csv"
    header = ["time", "stream_time_s", "state", "level_dbfs", *labels.EMOTIONS, *labels.MID_LEVELS]
    rows = [",".join(header)]
    for index in range(200):
        quiet = index < 50
        values = ["0.5"] * 15 if not quiet else [""] * 15
        values[1] = f"{0.2 + 0.6 * (index % 10) / 9:.3f}" if not quiet else ""
        rows.append(",".join(["t", f"{index * 0.25:.2f}", "silent" if quiet else "running", "-70" if quiet else "-12", *values]))
    log.write_text("\n".join(rows) + "\n")
    out = tmp_path / "venue.toml"
    assert venue.run(argparse.Namespace(log=str(log), out=str(out), minutes=None)) == 0
    profile = venue.load(out)
    assert profile.noise_floor_dbfs == pytest.approx(-70.0) and profile.show_level_dbfs == pytest.approx(-12.0)
    low, high = profile.ranges["emotion.energy"]
    assert 0.2 <= low < 0.3 and 0.7 < high <= 0.8
    assert profile.ranges["emotion.valence"] == pytest.approx((0.475, 0.525))  # a flat value: widened, not amplified
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(venue.UsageError, match="not a mer-live CSV log"):
        venue.profile_from_csv(bad)
