"""The web output on its own (fast): OSCQuery over real HTTP, the dashboard's WebSocket with real
aiohttp clients, the OSCQuery LISTEN stream decoded with python-osc, mDNS found with zeroconf's own
browser, and the security rules (Host, Origin, token, client limit, path traversal, a taken port).
The daemon-level tests (headless Chromium against ``mer-live --demo``, oscdump) are in
tests/test_outputs_web_browser.py."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time

import numpy as np
import pytest
from pythonosc.osc_message import OscMessage

aiohttp = pytest.importorskip("aiohttp")  # the web extra

from mer_live.config.settings import check_value, live_settings
from mer_live.core import labels
from mer_live.outputs.base import LiveHandle
from mer_live.core.osc_addresses import ADDRESSES, messages
from mer_live.outputs.web import oscquery
from mer_live.outputs.web.server import WebError
from mer_live.outputs.web.sink import WebSink
from mer_live.core.reading import Reading

PREFIX = "/mer"
WAIT_S = 10.0


def reading(index: int, *, muted: bool = False) -> Reading:
    emotion = (np.sin(np.arange(labels.NUM_EMOTIONS) + index / 7.0) + 1.0) / 2.0
    contributions = np.outer(np.linspace(-0.2, 0.3, labels.NUM_EMOTIONS), np.linspace(0.1, 0.7, labels.NUM_MID_LEVELS))
    bias = emotion - contributions.sum(axis=1)
    return Reading(
        stream_time_s=index / 4.0, wall_time=time.time(), state="running", level_dbfs=-23.5, overflows=0, updates=index,
        muted=muted, emotion=emotion, emotion_unclipped=emotion, mid=np.linspace(0.1, 0.9, labels.NUM_MID_LEVELS),
        raw_emotion=emotion, raw_mid=np.linspace(0.2, 0.8, labels.NUM_MID_LEVELS), contributions=contributions, bias=bias,
    )


class Target:
    """The worker as the live handle sees it: checks like the worker, records what it was asked."""

    def __init__(self) -> None:
        self.applied: list[tuple] = []

    def set_setting(self, *, key: str, value: float) -> None:
        section, _ = live_settings()[key]
        check_value(section=section, key=key, value=value)
        self.applied.append((key, value))

    def reset_smoothing(self) -> None:
        self.applied.append(("reset",))

    def set_muted(self, *, muted: bool) -> None:
        self.applied.append(("mute", muted))

    def current_config(self) -> dict:
        return {"rate": 4.0, "model": "v2", "version": "test", "muted": False}


def live_handle(*, control_address=("127.0.0.1", 9001)) -> LiveHandle:
    live = LiveHandle(fields={key: field for key, (_, field) in live_settings().items()})
    live.bind(Target(), control_address=control_address)
    return live


def attached(web: WebSink) -> WebSink:
    """Send the first reading (with the analysis running, it attaches the controls and the control port's
    address) and wait until the web process has taken it: HOST_INFO names the control port."""
    web.process(reading=reading(0))
    deadline = time.monotonic() + WAIT_S
    while "OSC_PORT" not in run(get_json(f"http://127.0.0.1:{web.port}/?HOST_INFO"))[1]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return web


@pytest.fixture(scope="module")
def sink():
    web = attached(WebSink(host="127.0.0.1", port=0, mdns=False, live=live_handle(), source="test"))
    yield web
    web.close()


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, 60))


async def get_json(url: str, **headers):
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as response:
        return response.status, (await response.json() if response.content_type == "application/json" else await response.text())


def all_methods(node: dict) -> dict[str, dict]:
    found = {node["FULL_PATH"]: node} if "TYPE" in node or node.get("ACCESS") else {}
    for child in node.get("CONTENTS", {}).values():
        found.update(all_methods(child))
    return found


# ---------------------------------------------------------------------------------------- OSCQuery


def test_oscquery_tree_has_every_sent_address_with_its_type_range_and_access(sink) -> None:
    status, root = run(get_json(f"http://127.0.0.1:{sink.port}/"))
    assert status == 200 and root["FULL_PATH"] == "/"
    methods = all_methods(root)
    sent = {address: args for address, args in messages(reading=reading(3), prefix=PREFIX)}
    assert len(sent) == len(ADDRESSES) == 29
    for address, arguments in sent.items():
        node = methods[address]
        assert node["ACCESS"] == oscquery.ACCESS_READ
        assert len(node["TYPE"]) == len(arguments) == len(node["RANGE"])
        assert node["DESCRIPTION"]
        for tag, value, bounds in zip(node["TYPE"], arguments, node["RANGE"]):
            assert tag == ("s" if isinstance(value, str) else "i" if isinstance(value, int) else "f")
            if "VALS" in bounds:
                assert value in bounds["VALS"]
            if "MIN" in bounds:
                assert bounds["MIN"] <= value <= bounds["MAX"] if "MAX" in bounds else bounds["MIN"] <= value
    writable = {path for path, node in methods.items() if node["ACCESS"] == oscquery.ACCESS_WRITE}
    assert writable == {f"{PREFIX}/{name}" for name in ("smoothing", "follow", "still_speed", "change", "rate", "reset", "mute")}
    assert methods[f"{PREFIX}/rate"]["RANGE"] == [{"MIN": 0.5, "MAX": 30.0}]


def test_oscquery_host_info_attributes_and_unknown_paths(sink) -> None:
    base = f"http://127.0.0.1:{sink.port}"
    status, info = run(get_json(base + "/?HOST_INFO"))
    assert status == 200
    assert (info["OSC_IP"], info["OSC_PORT"], info["OSC_TRANSPORT"]) == ("127.0.0.1", 9001, "UDP")
    assert info["EXTENSIONS"]["LISTEN"] and info["EXTENSIONS"]["RANGE"]
    assert run(get_json(base + f"{PREFIX}/emotion/valence?TYPE")) == (200, {"TYPE": "f"})
    status, node = run(get_json(base + f"{PREFIX}/explain"))
    assert status == 200 and set(node["CONTENTS"]) == {*labels.EMOTIONS, "bias"}
    assert run(get_json(base + f"{PREFIX}/nothing"))[0] == 404
    assert run(get_json(base + f"{PREFIX}/emotion?BOGUS"))[0] == 400


def test_oscquery_listen_streams_the_sent_datagrams(sink) -> None:
    async def listen():
        async with aiohttp.ClientSession() as session, session.ws_connect(f"ws://127.0.0.1:{sink.port}/") as ws:
            await ws.send_str(json.dumps({"COMMAND": "LISTEN", "DATA": f"{PREFIX}/emotion/happy"}))
            await ws.send_str(json.dumps({"COMMAND": "LISTEN", "DATA": f"{PREFIX}/status"}))
            seen = {}
            deadline = time.monotonic() + WAIT_S
            while len(seen) < 2 and time.monotonic() < deadline:
                sink.process(reading=reading(10))
                try:
                    message = await ws.receive(timeout=0.5)
                except asyncio.TimeoutError:
                    continue
                if message.type == aiohttp.WSMsgType.BINARY:
                    osc = OscMessage(message.data)
                    seen[osc.address] = osc.params
            return seen

    seen = run(listen())
    assert set(seen) == {f"{PREFIX}/emotion/happy", f"{PREFIX}/status"}  # only what was listened to
    assert seen[f"{PREFIX}/emotion/happy"][0] == pytest.approx(reading(10).emotion[labels.EMOTIONS.index("happy")], abs=1e-6)
    assert seen[f"{PREFIX}/status"] == ["running", -23.5, 0, 10, 0]


# ------------------------------------------------------------------------------------- dashboard


async def dashboard(port: int, *, frames: int, feed=None, **headers) -> list[dict]:
    out = []
    async with aiohttp.ClientSession() as session, session.ws_connect(f"ws://127.0.0.1:{port}/ws", headers=headers) as ws:
        deadline = time.monotonic() + WAIT_S
        while len([m for m in out if m["type"] == "frame"]) < frames and time.monotonic() < deadline:
            if feed is not None:
                feed()
            try:
                out.append(json.loads((await ws.receive(timeout=0.5)).data))
            except asyncio.TimeoutError:
                continue
    return out


def test_dashboard_gets_hello_history_and_frames_whose_explanation_adds_up(sink) -> None:
    for index in range(20):
        sink.process(reading=reading(index))
    counter = iter(range(20, 10_000))
    deadline = time.monotonic() + WAIT_S
    while True:  # the readings reach the web process through a pipe: a page opened at once may be early
        received = run(dashboard(sink.port, frames=3, feed=lambda: sink.process(reading=reading(next(counter)))))
        if len(received[1]["entries"]) >= 20 or time.monotonic() > deadline:
            break
    hello, history = received[0], received[1]
    assert hello["type"] == "hello" and hello["emotions"] == list(labels.EMOTIONS) and hello["mids"] == list(labels.MID_LEVELS)
    assert hello["control_needs_token"] is False and hello["can_control"] is True
    assert hello["info"] == {"source": "test", "model": "v2", "version": "test"}
    assert {c["name"] for c in hello["controls"]} == {"smoothing", "follow", "still_speed", "change", "rate", "reset", "mute"}
    assert history["type"] == "history" and len(history["entries"]) >= 20
    frames = [m for m in received if m["type"] == "frame"]
    for frame in frames:
        total = np.asarray(frame["bias"]) + np.asarray(frame["contributions"]).sum(axis=1)
        np.testing.assert_allclose(total, frame["emotion_unclipped"], atol=1e-5)
        assert frame["config"]["rate"] == 4.0


def test_muted_frames_carry_status_only(sink) -> None:
    received = run(dashboard(sink.port, frames=3, feed=lambda: sink.process(reading=reading(5, muted=True))))
    frames = [m for m in received if m["type"] == "frame"][1:]  # the first is the latest before: not necessarily muted
    assert frames and all(f["muted"] and "emotion" not in f for f in frames)


def test_a_client_that_never_reads_delays_neither_the_sink_nor_the_other_clients(sink) -> None:
    stuck = socket.create_connection(("127.0.0.1", sink.port))
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stuck.sendall(
        f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{sink.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    try:
        time.sleep(1.0)  # the handshake is local: the web process has registered the client by now
        started = time.perf_counter()
        for index in range(2000):  # ~3 MB of frames for a client that reads nothing
            sink.process(reading=reading(index))
        per_frame_s = (time.perf_counter() - started) / 2000
        assert per_frame_s < 0.005  # a pipe write; never a wait on the stuck socket
        received = run(dashboard(sink.port, frames=3, feed=lambda: sink.process(reading=reading(1))))
        frames = [m for m in received if m["type"] == "frame"]
        assert len(frames) >= 3
        assert frames[-1]["clients"] == 2  # the stuck one is still connected ...
        assert frames[-1]["skipped"] > 0  # ... and its frames were replaced, not queued
    finally:
        stuck.close()


# -------------------------------------------------------------------------------------- security


def test_loopback_server_refuses_other_host_names_and_foreign_origins(sink) -> None:
    base = f"http://127.0.0.1:{sink.port}"
    status, text = run(get_json(base + "/", Host="attacker.example"))
    assert status == 403
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        run(dashboard(sink.port, frames=1, Origin="http://attacker.example"))
    assert refused.value.status == 403
    received = run(dashboard(sink.port, frames=1, feed=lambda: sink.process(reading=reading(1)), Origin=f"http://127.0.0.1:{sink.port}"))
    assert received[0]["type"] == "hello" and received[-1]["type"] == "frame"


@pytest.mark.parametrize("path", ["/static/../../../etc/passwd", "/static/..%2F..%2Fsink.py", "/static/%2e%2e/server.py", "/static/sink.py", "/static/"])
def test_no_path_reaches_beyond_the_page_files(sink, path: str) -> None:
    async def fetch():
        async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{sink.port}{path}") as response:
            return response.status, await response.read()

    status, body = run(fetch())
    assert status == 404 or (status == 200 and body.startswith(b"{\"FULL_PATH\""))  # the namespace root at most
    assert b"root:" not in body and b"import" not in body


def test_control_needs_the_token_and_goes_through_the_live_settings() -> None:
    live = live_handle()
    web = attached(WebSink(host="127.0.0.1", port=0, mdns=False, token="s3cret", live=live))

    async def control(token: str | None, command: str = "rate", value=8):
        async with aiohttp.ClientSession() as session, session.ws_connect(f"ws://127.0.0.1:{web.port}/ws") as ws:
            await ws.send_str(json.dumps({"type": "control", "command": command, "value": value, "token": token, "id": 1}))
            while True:
                message = json.loads((await ws.receive(timeout=WAIT_S)).data)
                if message["type"] == "control_result":
                    return message

    try:
        applied = live._target.applied  # noqa: SLF001 - the recording target behind the handle
        refused = run(control(None))
        assert not refused["ok"] and "token" in refused["message"] and applied == []
        assert not run(control("wrong"))["ok"]
        assert run(control("s3cret"))["ok"] and applied == [("rate", 8.0)]
        out_of_range = run(control("s3cret", value=99))
        assert not out_of_range["ok"] and "rate" in out_of_range["message"] and applied == [("rate", 8.0)]
        assert not run(control("s3cret", value="8"))["ok"]
        assert run(control("s3cret", command="mute", value=1))["ok"] and applied[-1] == ("mute", True)
        assert run(control("s3cret", command="reset", value=None))["ok"] and applied[-1] == ("reset",)
        assert not run(control("s3cret", command="quit", value=None))["ok"]
    finally:
        web.close()


def test_a_view_without_live_settings_cannot_control() -> None:
    web = WebSink(host="127.0.0.1", port=0, mdns=False)
    try:
        received = run(dashboard(web.port, frames=1, feed=lambda: web.process(reading=reading(1))))
        assert received[0]["can_control"] is False and received[0]["controls"] == []
    finally:
        web.close()


def test_client_limit() -> None:
    web = WebSink(host="127.0.0.1", port=0, mdns=False, max_clients=2)

    async def crowd():
        async with aiohttp.ClientSession() as session:
            first = await session.ws_connect(f"ws://127.0.0.1:{web.port}/ws")
            second = await session.ws_connect(f"ws://127.0.0.1:{web.port}/ws")
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await session.ws_connect(f"ws://127.0.0.1:{web.port}/ws")
            await first.close()
            await second.close()
            return refused.value.status

    try:
        assert run(crowd()) == 503
    finally:
        web.close()


def test_a_taken_port_is_one_line() -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        with pytest.raises(WebError) as error:
            WebSink(host="127.0.0.1", port=taken.getsockname()[1], mdns=False)
        message = str(error.value)
        assert "\n" not in message and "cannot listen" in message and "--web" in message
    finally:
        taken.close()


# ------------------------------------------------------------------------------------- discovery


def test_mdns_browse_finds_both_services_with_their_ports() -> None:
    zeroconf = pytest.importorskip("zeroconf")
    from zeroconf import ServiceBrowser, Zeroconf

    control_port = 47123
    name = f"mer-live test {time.time_ns()}"
    web = WebSink(host="127.0.0.1", port=0, mdns=True, name=name, live=live_handle(control_address=("127.0.0.1", control_port)))
    web.process(reading=reading(0))  # attaches: the announcement starts
    found: dict[str, set[int]] = {"_oscjson._tcp.local.": set(), "_osc._udp.local.": set()}
    lock = threading.Lock()

    class Listener:
        def add_service(self, zc, kind, service):
            info = zc.get_service_info(kind, service, timeout=3000)
            if info is not None and service.startswith(name):
                with lock:
                    found[kind].add(info.port)

        update_service = add_service

        def remove_service(self, zc, kind, name):
            pass

    browser_zc = Zeroconf(interfaces=["127.0.0.1"])
    try:
        browsers = [ServiceBrowser(browser_zc, kind, Listener()) for kind in found]
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not (web.port in found["_oscjson._tcp.local."] and control_port in found["_osc._udp.local."]):
            time.sleep(0.1)
        assert web.port in found["_oscjson._tcp.local."]
        assert control_port in found["_osc._udp.local."]
        for browser in browsers:
            browser.cancel()
    finally:
        browser_zc.close()
        web.close()
    assert zeroconf.__version__


def test_the_page_rounds_values_as_the_csv_log_does() -> None:
    from mer_live.outputs.csv import CSV_VALUE_DECIMALS
    from mer_live.outputs.web import frames

    assert frames.VALUE_DECIMALS == CSV_VALUE_DECIMALS
