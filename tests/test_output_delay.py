"""Per-output delay (``--osc-delay``, ``--midi-delay``, ``--dmx-delay``): a lane hands readings over
``delay_s`` after they arrived, in order, without holding back the other lanes, and sends what is still
held back at once when the stage closes."""

from __future__ import annotations

import socket
import time

from dmx_helpers import reading

from mer_live.config import options
from mer_live.outputs.base import Output
from mer_live.outputs.osc import OscSink


class Recorder:
    def __init__(self, *, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.times: list[float] = []
        self.updates: list[int] = []

    def process(self, *, reading) -> None:
        self.times.append(time.monotonic())
        self.updates.append(reading.updates)

    def close(self) -> None:
        pass


def test_a_delayed_lane_holds_readings_back_and_the_others_do_not_wait() -> None:
    late, prompt = Recorder(delay_s=0.4), Recorder()
    output = Output(sinks=[late, prompt])
    sent = []
    for index in range(5):
        sent.append(time.monotonic())
        output.process(reading=reading(updates=index))
        time.sleep(0.05)
    time.sleep(0.6)
    output.close()
    assert late.updates == prompt.updates == list(range(5))
    late_by = [t - s for t, s in zip(late.times, sent)]
    prompt_by = [t - s for t, s in zip(prompt.times, sent)]
    assert all(0.39 <= d <= 0.6 for d in late_by), late_by
    assert all(d < 0.1 for d in prompt_by), prompt_by


def test_close_sends_what_is_held_back_at_once() -> None:
    late = Recorder(delay_s=5.0)
    output = Output(sinks=[late])
    output.process(reading=reading(updates=7))
    start = time.monotonic()
    output.close()
    assert late.updates == [7] and time.monotonic() - start < 1.0


def test_osc_delay_from_the_settings_reaches_a_real_socket_late() -> None:
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(3.0)
    settings = options.resolve(toml_path=None, cli={"osc": {"targets": [f"127.0.0.1:{receiver.getsockname()[1]}"], "delay_ms": 300.0}})
    from mer_live.outputs.osc import make_sinks

    sinks = make_sinks(settings.osc, context=None)
    assert isinstance(sinks[0], OscSink) and sinks[0].delay_s == 0.3
    output = Output(sinks=sinks)
    start = time.monotonic()
    output.process(reading=reading())
    receiver.recv(65536)
    assert 0.29 <= time.monotonic() - start < 1.0
    output.close()
    receiver.close()
