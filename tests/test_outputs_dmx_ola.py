"""The DMX outputs against a real receiver: OLA's olad (E1.31 and Art-Net plugins on this machine), read
back through OLA's own Python client (tests/ola_fixture.py). Values, frame rate, universes, the stream
termination, and a receiver that vanishes and comes back."""

from __future__ import annotations

import re
import time

import numpy as np
import pytest

from mer_live.outputs.dmx import channel_map as cm
from mer_live.outputs.dmx.sender import Transport
from mer_live.outputs.dmx.sink import DmxSink

from dmx_helpers import reading
from ola_fixture import Olad, ola_available

pytestmark = [pytest.mark.skipif(ola_available() is not None, reason=str(ola_available())), pytest.mark.slow]

FPS = 40.0
MAP = """
name = "test"
[[channel]]
address = 1
source = "emotion.energy"
[[channel]]
address = 2
source = "emotion.valence"
bits = 16
[[channel]]
address = 10
source = "emotion.tension"
invert = true
universe = 2
"""


def _sink(*, protocol: str, host: str = "", universe_base: int = 1, text: str = MAP, fps: float = FPS, **options) -> DmxSink:
    def transport(universes: list[int]) -> Transport:
        return Transport(protocol=protocol, universes=universes, host=host, ttl=0, source_name="mer-live test")

    return DmxSink(channel_map=cm.parse(text, path="test.toml"), transport_factory=transport, universe_base=universe_base,
                   fps=fps, **options)


def _expected(energy: float, valence: float, tension: float) -> tuple[int, int, int]:
    return round(energy * 255), round(valence * 65535), round((1.0 - tension) * 255)


def _check_values(receiver, *, universes: tuple[int, int], energy: float, valence: float, tension: float) -> None:
    e8, v16, t8 = _expected(energy, valence, tension)
    first = receiver.wait_for(lambda f: f.universe == universes[0] and abs(f.data[0] - e8) <= 1
                              and abs(f.data[1] * 256 + f.data[2] - v16) <= 1, timeout_s=5)
    assert first is not None, f"no frame with energy {e8} and valence {v16} on universe {universes[0]}: " \
        f"last {receiver.frames[-1].data[:3].hex() if receiver.frames else 'none'}"
    second = receiver.wait_for(lambda f: f.universe == universes[1] and abs(f.data[9] - t8) <= 1, timeout_s=5)
    assert second is not None, f"no frame with tension {t8} on universe {universes[1]}"


def _feed(sink: DmxSink, *, seconds: float, rate: float = 10.0, ramp: bool = False) -> None:
    start = time.monotonic()
    count = 0
    while (now := time.monotonic()) - start < seconds:
        energy = ((now - start) / seconds) if ramp else 0.6
        sink.process(reading=reading(emotion={"energy": energy, "valence": 0.3, "tension": 0.8}, updates=count))
        count += 1
        time.sleep(1.0 / rate)


@pytest.mark.parametrize("protocol", ["sacn", "artnet"])
def test_values_within_one_step_on_two_universes_and_frame_rate(protocol: str) -> None:
    with Olad() as olad:
        if protocol == "sacn":
            receiver = olad.receive(plugin="e131", universes=[7, 8])
            sink = _sink(protocol="sacn", universe_base=7)  # multicast 239.255.0.7 and .8
            universes = (7, 8)
        else:
            receiver = olad.receive(plugin="artnet", universes=[16, 17])  # OLA takes the port address's low 4 bits
            sink = _sink(protocol="artnet", host="127.0.0.1", universe_base=0)  # port addresses 0 and 1
            universes = (16, 17)
        try:
            for energy, valence, tension in ((0.6, 0.3, 0.8), (0.123, 0.777, 0.25)):
                for _ in range(3):
                    sink.process(reading=reading(emotion={"energy": energy, "valence": valence, "tension": tension}))
                    time.sleep(0.1)
                _check_values(receiver, universes=universes, energy=energy, valence=valence, tension=tension)
            # the frame rate while the values move (a ramp): every frame differs, so every frame is sent
            receiver.frames.clear()
            _feed(sink, seconds=3.0, ramp=True)
            times = np.array([f.time_s for f in receiver.frames if f.universe == universes[0]])
            assert len(times) > 10
            rate = (len(times) - 1) / (times[-1] - times[0])
            assert abs(rate - FPS) <= 0.1 * FPS, f"{rate:.1f} frames/s received for {FPS} set"
        finally:
            sink.close()


def test_sacn_stream_terminated_reaches_olad_on_close_and_cid_is_ours() -> None:
    with Olad() as olad:
        receiver = olad.receive(plugin="e131", universes=[1, 2])
        sink = _sink(protocol="sacn")
        _feed(sink, seconds=0.5)
        assert receiver.wait_for(lambda f: f.universe == 1) is not None
        cid = sink.frames.transport.cid
        sink.close()
        deadline = time.monotonic() + 5
        pattern = re.compile(rf"CID {cid} sent a termination for universe (\d+)")
        while time.monotonic() < deadline and len(set(pattern.findall(olad.log_tail(20000)))) < 2:
            time.sleep(0.1)
        assert set(pattern.findall(olad.log_tail(20000))) == {"1", "2"}, olad.log_tail()


def test_receiver_that_vanishes_and_returns_gets_frames_again() -> None:
    sink = _sink(protocol="artnet", host="127.0.0.1", universe_base=0)
    try:
        with Olad() as olad:
            receiver = olad.receive(plugin="artnet", universes=[16])
            _feed(sink, seconds=0.5)
            assert receiver.wait_for(lambda f: f.universe == 16) is not None
        _feed(sink, seconds=1.0)  # nobody listens on 6454: ICMP port unreachable, refused sends
        with Olad() as olad:
            receiver = olad.receive(plugin="artnet", universes=[16])
            _feed(sink, seconds=0.5)
            assert receiver.wait_for(lambda f: f.universe == 16 and f.data[0] == round(0.6 * 255)) is not None
        assert sink.delivered > 0
    finally:
        sink.close()
