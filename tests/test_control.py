"""The control port against a recording target, over real UDP sockets."""

from __future__ import annotations

import logging
import math
import socket
import struct
import threading
import time

import pytest
from control_helpers import (
    INITIAL_RATE_HZ,
    INITIAL_FOLLOW,
    INITIAL_SMOOTHING_S,
    INITIAL_CHANGE,
    INITIAL_STILL_SPEED,
    ControlClient,
    RecordingTarget,
    build_bundle,
    build_message,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mer_live.control.server import ControlServer, RateLimitedLog
from mer_live.config.settings import CHANGE_RANGE, FOLLOW_RANGE, RATE_RANGE_HZ, SMOOTHING_RANGE_S, STILL_SPEED_RANGE

LOOPBACK = "127.0.0.1"


def _serve_recording_target():
    """A running server over a fresh :class:`RecordingTarget`, and a client for it."""
    target = RecordingTarget()
    server = ControlServer(host=LOOPBACK, port=0, target=target)
    server.start()
    client = ControlClient(port=server.port)
    yield server, target, client
    client.close()
    server.close()


@pytest.fixture
def served():
    yield from _serve_recording_target()


def sync(client: ControlClient) -> None:
    """Wait until the server has handled everything sent before (it serves in order)."""
    client.ping(f"sync-{time.perf_counter_ns()}")


@pytest.mark.parametrize("ping_id", [7, 2.5, "hello"])
def test_ping_echoes_the_id_to_the_sender(served, ping_id) -> None:
    _, _, client = served
    client.send(build_message("/mer/ping", ping_id))
    (message,) = client.receive()
    assert message.address == "/mer/pong"
    assert message.params == [ping_id]


def test_ping_without_id(served) -> None:
    _, _, client = served
    client.send(build_message("/mer/ping"))
    (message,) = client.receive()
    assert (message.address, message.params) == ("/mer/pong", [])


def test_pong_comes_from_the_control_port(served) -> None:
    server, _, client = served
    client.send(build_message("/mer/ping", 1))
    _, sender = client.socket.recvfrom(65_535)
    assert sender == (LOOPBACK, server.port)


@pytest.mark.parametrize("value", [0.0, 0.25, 3, 60.0])
def test_smoothing_in_range_is_applied(served, value) -> None:
    _, target, client = served
    client.send(build_message("/mer/smoothing", value))
    sync(client)
    assert target.calls == [("set_smoothing", float(value))]
    assert isinstance(target.calls[0][1], float)


@pytest.mark.parametrize(("address", "call", "value"), [
    ("/mer/follow", "set_follow", 0), ("/mer/follow", "set_follow", 160.0), ("/mer/follow", "set_follow", FOLLOW_RANGE[1]),
    ("/mer/still_speed", "set_still_speed", 0.0), ("/mer/still_speed", "set_still_speed", 0.0625),
    ("/mer/still_speed", "set_still_speed", STILL_SPEED_RANGE[1]),
    ("/mer/change", "set_change", 0), ("/mer/change", "set_change", 0.25), ("/mer/change", "set_change", CHANGE_RANGE[1]),
])
def test_follow_still_speed_and_change_in_range_are_applied(served, address, call, value) -> None:
    _, target, client = served
    client.send(build_message(address, value))
    sync(client)
    assert target.calls == [(call, float(value))]


@pytest.mark.parametrize("value", [0.5, 10, 30.0])
def test_rate_in_range_is_applied(served, value) -> None:
    _, target, client = served
    client.send(build_message("/mer/rate", value))
    sync(client)
    assert target.calls == [("set_rate", float(value))]


@pytest.mark.parametrize(
    "datagram",
    [
        build_message("/mer/smoothing", -0.01),
        build_message("/mer/smoothing", 60.5),
        build_message("/mer/smoothing", math.nan),
        build_message("/mer/smoothing", math.inf),
        build_message("/mer/smoothing", "2"),
        build_message("/mer/smoothing", True),
        build_message("/mer/smoothing"),
        build_message("/mer/smoothing", 1.0, 2.0),
        build_message("/mer/follow", -1.0),
        build_message("/mer/follow", FOLLOW_RANGE[1] * 2),
        build_message("/mer/follow", math.nan),
        build_message("/mer/still_speed", -0.01),
        build_message("/mer/still_speed", math.inf),
        build_message("/mer/still_speed", "0.1"),
        build_message("/mer/change", -0.01),
        build_message("/mer/change", 1.5),
        build_message("/mer/change", math.nan),
        build_message("/mer/rate", 0.25),
        build_message("/mer/rate", 31),
        build_message("/mer/rate", b"\x01"),
        build_message("/mer/rate", None),
        build_message("/mer/mute", 2),
        build_message("/mer/mute", 0.5),
        build_message("/mer/mute", "on"),
        build_message("/mer/mute"),
        build_message("/mer/reset", 1),
        build_message("/mer/query", "all"),
        build_message("/mer/ping", 1, 2),
        build_message("/mer/ping", b"\x00"),
        build_message("/mer/volume", 1.0),
        build_message("/other/rate", 4.0),
        build_message("/mer/rate/extra", 4.0),
        b"",
        b"\x00\x01garbage",
        b"#bundle\x00\x00",
    ],
)
def test_bad_messages_are_ignored(served, datagram) -> None:
    server, target, client = served
    client.send(datagram)
    sync(client)
    assert target.calls == []
    assert server.packets_rejected == 1


@pytest.mark.parametrize("flag, expected", [(1, True), (1.0, True), (True, True), (0, False), (False, False)])
def test_mute_accepts_int_float_and_bool(served, flag, expected) -> None:
    _, target, client = served
    client.send(build_message("/mer/mute", flag))
    sync(client)
    assert target.calls == [("set_muted", expected)]


def test_reset_clears_smoothing(served) -> None:
    _, target, client = served
    client.send(build_message("/mer/reset"))
    sync(client)
    assert target.calls == [("reset_smoothing", None)]


def test_query_replies_with_the_config_in_one_bundle(served) -> None:
    _, target, client = served
    client.send(build_message("/mer/mute", 1))
    client.send(build_message("/mer/rate", 8.0))
    client.send(build_message("/mer/query"))
    messages = client.receive()
    config = {message.address: message.params for message in messages}
    assert config == {
        "/mer/config/muted": [1],
        "/mer/config/prefix": ["/mer"],
        "/mer/config/rate": [8.0],
        "/mer/config/resets": [0],
        "/mer/config/smoothing": [INITIAL_SMOOTHING_S],
        "/mer/config/follow": [INITIAL_FOLLOW],
        "/mer/config/still_speed": [INITIAL_STILL_SPEED],
        "/mer/config/change": [INITIAL_CHANGE],
    }
    assert target.muted is True


def test_a_bundle_is_applied_all_or_nothing(served) -> None:
    _, target, client = served
    client.send(build_bundle(build_message("/mer/smoothing", 5.0), build_message("/mer/rate", 999.0)))
    sync(client)
    assert target.calls == []
    client.send(build_bundle(build_message("/mer/smoothing", 5.0), build_message("/mer/rate", 10.0)))
    sync(client)
    assert target.calls == [("set_smoothing", 5.0), ("set_rate", 10.0)]


def test_custom_prefix() -> None:
    target = RecordingTarget()
    with ControlServer(host=LOOPBACK, port=0, target=target, prefix="/band/a") as server:
        server.start()
        client = ControlClient(port=server.port)
        try:
            client.send(build_message("/mer/rate", 10.0))
            client.send(build_message("/band/a/rate", 12.0))
            client.ping(3, prefix="/band/a")
            assert target.calls == [("set_rate", 12.0)]
        finally:
            client.close()


@pytest.mark.parametrize("prefix", ["", "/", "mer", "/mer/", "/m er", "/mer*", "/{a,b}"])
def test_bad_prefix_is_refused(prefix) -> None:
    with pytest.raises(ValueError, match="prefix"):
        ControlServer(host=LOOPBACK, port=0, target=RecordingTarget(), prefix=prefix)


def test_the_root_logger_filter_lives_only_while_a_server_runs() -> None:
    """The filter that silences python-osc's root-logger warnings on the control thread is added by
    start() and removed by the last close(), so it never outlives the servers."""
    import logging

    def filters() -> int:
        return sum(type(f).__name__ == "_ParserWarningFilter" for f in logging.getLogger().filters)

    assert filters() == 0
    first = ControlServer(host=LOOPBACK, port=0, target=RecordingTarget())
    second = ControlServer(host=LOOPBACK, port=0, target=RecordingTarget())
    first.start()
    second.start()
    assert filters() == 1
    first.close()
    first.close()  # a second close changes nothing
    assert filters() == 1
    second.close()
    assert filters() == 0
    never_started = ControlServer(host=LOOPBACK, port=0, target=RecordingTarget())
    never_started.close()
    assert filters() == 0


def test_busy_port_raises_oserror() -> None:
    with ControlServer(host=LOOPBACK, port=0, target=RecordingTarget()) as first:
        with pytest.raises(OSError):
            ControlServer(host=LOOPBACK, port=first.port, target=RecordingTarget())


def test_binds_loopback_by_the_given_host() -> None:
    with ControlServer(host=LOOPBACK, port=0, target=RecordingTarget()) as server:
        assert server.address[0] == LOOPBACK


def test_close_stops_the_thread_promptly_and_frees_the_port() -> None:
    server = ControlServer(host=LOOPBACK, port=0, target=RecordingTarget())
    port = server.port
    server.start()
    server.close()
    assert not any(thread.name == "mer-live-control" and thread.is_alive() for thread in threading.enumerate())
    server.close()  # idempotent
    with ControlServer(host=LOOPBACK, port=port, target=RecordingTarget()):
        pass


class ExplodingTarget(RecordingTarget):
    def set_setting(self, *, key: str, value: float) -> None:
        if key == "rate":
            raise RuntimeError("worker refused")
        super().set_setting(key=key, value=value)


def test_a_failing_target_does_not_stop_the_server(caplog) -> None:
    with ControlServer(host=LOOPBACK, port=0, target=ExplodingTarget()) as server:
        server.start()
        client = ControlClient(port=server.port)
        try:
            with caplog.at_level(logging.WARNING, logger="mer_live.control.server"):
                client.send(build_message("/mer/rate", 5.0))
                client.ping(1)
            assert "worker refused" in caplog.text
        finally:
            client.close()


def test_unknown_type_tags_are_rejected_without_flooding_the_log(served, caplog) -> None:
    server, target, client = served
    datagram = b"/mer/rate\x00\x00\x00" + b",xf\x00" + struct.pack(">f", 5.0)  # 'x' is no OSC type
    with caplog.at_level(logging.WARNING):
        for _ in range(20):
            client.send(datagram)
        sync(client)
    assert target.calls == []
    assert server.packets_rejected == 20
    assert not [record for record in caplog.records if record.name == "root"]  # python-osc's own warning
    assert len([record for record in caplog.records if record.name == "mer_live.control.server"]) <= 5
    assert "unsupported OSC type tag" in caplog.text


@pytest.mark.parametrize(
    "tail",
    [
        struct.pack(">i", 8) + b"garbage!",  # an element that is neither message nor bundle
        struct.pack(">i", 64) + b"/mer",  # an element longer than the datagram
        b"\x00\x00",  # a truncated size
    ],
)
def test_a_bundle_with_a_bad_element_is_rejected_whole(served, caplog, tail) -> None:
    server, target, client = served
    datagram = build_bundle(build_message("/mer/rate", 12.0)) + tail
    with caplog.at_level(logging.WARNING):
        client.send(datagram)
        sync(client)
    assert target.calls == []
    assert server.packets_rejected == 1
    assert not [record for record in caplog.records if record.name == "root"]


def test_rejections_are_logged_and_rate_limited(served, caplog) -> None:
    _, _, client = served
    with caplog.at_level(logging.WARNING, logger="mer_live.control.server"):
        for _ in range(50):
            client.send(build_message("/mer/rate", 1000.0))
        sync(client)
    records = [record for record in caplog.records if record.name == "mer_live.control.server"]
    assert 1 <= len(records) <= 5
    assert "out of range" in records[0].getMessage()


def test_rate_limited_log_summarises_suppressed_messages(caplog) -> None:
    now = [0.0]
    log = RateLimitedLog(
        logger=logging.getLogger("test.ratelimit"),
        burst=2,
        window_s=10.0,
        prefix="control: ",
        summary="{count} more rejected packet(s) not shown in the last {window:.0f} s",
        clock=lambda: now[0],
    )
    with caplog.at_level(logging.WARNING, logger="test.ratelimit"):
        assert [log.log(message=f"m{index}") for index in range(5)] == [True, True, False, False, False]
        assert log.suppressed() == 3
        now[0] = 10.0
        assert log.log(message="later") is True
    messages = [record.getMessage() for record in caplog.records]
    assert messages == ["control: m0", "control: m1", "control: 3 more rejected packet(s) not shown in the last 10 s", "control: later"]


# -- the fuzz test: random datagrams at a running server --------------------------------------

COMMAND_NAMES = ("ping", "smoothing", "follow", "still_speed", "change", "rate", "reset", "mute", "query")
OSC_ARGUMENTS = st.one_of(
    st.integers(min_value=-(2**31), max_value=2**31 - 1),
    st.integers(min_value=2**31, max_value=2**62),  # sent as int64 ('h')
    st.floats(width=32),
    st.floats(min_value=-1.0, max_value=70.0, width=32),
    st.text(alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=12),
    st.booleans(),
    st.none(),
    st.binary(min_size=1, max_size=8),
)
ADDRESSES = st.one_of(
    st.sampled_from([f"/mer/{name}" for name in COMMAND_NAMES]),
    st.from_regex(r"\A/mer/[a-z_/]{0,12}\Z"),
    st.from_regex(r"\A/[a-zA-Z0-9/*?\[\]{}]{0,16}\Z"),
)
VALID_MESSAGES = st.one_of(
    st.tuples(st.just("/mer/smoothing"), st.floats(*SMOOTHING_RANGE_S, width=32).map(lambda value: [value])),
    st.tuples(st.just("/mer/rate"), st.floats(*RATE_RANGE_HZ, width=32).map(lambda value: [value])),
    st.tuples(st.just("/mer/follow"), st.floats(*FOLLOW_RANGE, width=32).map(lambda value: [value])),
    st.tuples(st.just("/mer/still_speed"), st.floats(*STILL_SPEED_RANGE, width=32).map(lambda value: [value])),
    st.tuples(st.just("/mer/change"), st.floats(*CHANGE_RANGE, width=32).map(lambda value: [value])),
    st.tuples(st.just("/mer/mute"), st.sampled_from([0, 1, 0.0, 1.0, True, False]).map(lambda value: [value])),
    st.tuples(st.sampled_from(["/mer/reset", "/mer/query", "/mer/ping"]), st.just([])),
)
MESSAGES = st.one_of(VALID_MESSAGES, st.tuples(ADDRESSES, st.lists(OSC_ARGUMENTS, max_size=3)))


def as_float32(value: float) -> float:
    return struct.unpack(">f", struct.pack(">f", value))[0]


def is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def expected_effect(address: str, args: list[object]) -> tuple[str, object] | None | bool:
    """The oracle: the call one message should make, None for no call, False if it is invalid."""
    seen = [as_float32(arg) if isinstance(arg, float) else arg for arg in args]
    name = address[len("/mer/") :] if address.startswith("/mer/") else None
    if name == "query":
        return None if not seen else False
    if name == "ping":
        if not seen or len(seen) == 1 and isinstance(seen[0], (int, float, str)) and not isinstance(seen[0], bool):
            return None
        return False
    if name == "reset" and not seen:
        return ("reset_smoothing", None)
    if len(seen) != 1:
        return False
    (value,) = seen
    if name == "smoothing" and is_number(value) and SMOOTHING_RANGE_S[0] <= value <= SMOOTHING_RANGE_S[1]:
        return ("set_smoothing", float(value))
    if name == "rate" and is_number(value) and RATE_RANGE_HZ[0] <= value <= RATE_RANGE_HZ[1]:
        return ("set_rate", float(value))
    if name == "follow" and is_number(value) and FOLLOW_RANGE[0] <= value <= FOLLOW_RANGE[1]:
        return ("set_follow", float(value))
    if name == "still_speed" and is_number(value) and STILL_SPEED_RANGE[0] <= value <= STILL_SPEED_RANGE[1]:
        return ("set_still_speed", float(value))
    if name == "change" and is_number(value) and CHANGE_RANGE[0] <= value <= CHANGE_RANGE[1]:
        return ("set_change", float(value))
    if name == "mute" and (isinstance(value, bool) or is_number(value) and value in (0, 1)):
        return ("set_muted", bool(value))
    return False


@pytest.fixture(scope="module")
def fuzz_server():
    yield from _serve_recording_target()


def assert_valid_state(target: RecordingTarget) -> None:
    smoothing, rate, muted, _ = target.snapshot()
    assert SMOOTHING_RANGE_S[0] <= smoothing <= SMOOTHING_RANGE_S[1]
    assert RATE_RANGE_HZ[0] <= rate <= RATE_RANGE_HZ[1]
    assert isinstance(muted, bool)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    packet=st.one_of(
        st.binary(max_size=64),
        st.binary(max_size=64).map(lambda tail: b"#bundle\x00" + tail),
        st.binary(max_size=32).map(lambda tail: b"/mer/rate\x00\x00\x00,f\x00\x00" + tail),
        st.lists(MESSAGES, min_size=1, max_size=4),
    )
)
def test_fuzzed_datagrams_never_crash_or_half_configure(fuzz_server, packet) -> None:
    server, target, client = fuzz_server
    with target._lock:
        target.calls.clear()
    before = target.snapshot()
    if isinstance(packet, bytes):
        client.send(packet)
        sync(client)
        assert_valid_state(target)
        return
    datagrams = [build_message(address, *args) for address, args in packet]
    client.send(datagrams[0] if len(datagrams) == 1 else build_bundle(*datagrams))
    sync(client)  # answered after the packet: the server is alive and done with it
    effects = [expected_effect(address, args) for address, args in packet]
    with target._lock:
        calls = [call for call in target.calls]
    if any(effect is False for effect in effects):
        assert calls == [], "an invalid packet changed the target"
        assert target.snapshot() == before
    else:
        assert calls == [effect for effect in effects if effect is not None]
    assert_valid_state(target)


def test_server_still_serves_after_the_fuzz(fuzz_server) -> None:
    server, target, client = fuzz_server
    client.ping(42)  # returns only once the matching pong arrived
    client.send(build_message("/mer/rate", INITIAL_RATE_HZ))
    sync(client)
    assert target.rate == INITIAL_RATE_HZ


def test_deeply_nested_bundles_are_rejected_not_fatal(served) -> None:
    server, target, client = served
    datagram = build_message("/mer/rate", 10.0)
    for _ in range(3_000):
        header = b"#bundle\x00" + b"\x00" * 7 + b"\x01"
        datagram = header + struct.pack(">i", len(datagram)) + datagram
        if len(datagram) > 60_000:
            break
    client.send(datagram)
    sync(client)
    assert target.calls == []
    assert server.packets_rejected == 1


def test_large_random_datagrams_do_not_block(served) -> None:
    _, _, client = served
    client.send(bytes(range(256)) * 200)
    client.socket.settimeout(2.0)
    client.ping("after-big")  # returns only once the matching pong arrived
    with pytest.raises(socket.timeout):
        client.socket.settimeout(0.05)
        client.receive()
