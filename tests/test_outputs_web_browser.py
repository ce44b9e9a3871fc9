"""The dashboard for real: ``mer-live --demo`` (paced) with ``--web``, the CSV log and oscdump, and headless
Chromium on the page (tests/web_browser.py, the DevTools protocol). The meters must show what the CSV
records at the same stream time, the contributions must add up to each emotion, the history must grow, a
control set on the page must change the running daemon (its CSV and its control port agree), and the
screenshot must not be blank. The OSCQuery tree must list every address oscdump saw, with its type tags."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import re
import socket
import time
from pathlib import Path

import aiohttp
import numpy as np
import pytest
from osc_receivers import DaemonProcess, OscDump
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.osc_packet import OscPacket
from web_browser import Browser, chromium_path

from mer_live.core import labels

pytestmark = [pytest.mark.slow, pytest.mark.skipif(chromium_path() is None, reason="needs chromium (apt: chromium)")]

URL_LINE = re.compile(r"web dashboard and OSCQuery on (http://\S+?/)")
CONTROL_LINE = re.compile(r"control port listening on 127\.0\.0\.1:(\d+)")
START_TIMEOUT_S = 60.0
SAMPLES = 6
SAMPLE_INTERVAL_S = 0.7
VALUE_TOLERANCE = 1.5e-6  # both show the same float rounded to 6 decimals (CSV_VALUE_DECIMALS)
SUM_TOLERANCE = 1e-5  # 9 values each rounded to 6 decimals
NEW_RATE = 8.0
ARTEFACTS = Path(os.environ.get("MER_TEST_ARTEFACTS", "")) if os.environ.get("MER_TEST_ARTEFACTS") else None

SNAPSHOT_JS = """JSON.stringify({
  t: Number(document.getElementById('time').dataset.t),
  meters: Object.fromEntries([...document.querySelectorAll('.meter')].map(m => [m.dataset.key, Number(m.dataset.value)])),
  cards: Object.fromEntries([...document.querySelectorAll('.card')].map(c => [c.dataset.emotion, {
      sum: Number(c.querySelector('.sum').dataset.value),
      parts: Object.fromEntries([...c.querySelectorAll('.row')].map(r => [r.dataset.part, Number(r.dataset.value)]))}])),
  history: merLive.history.length,
  frames: merLive.frames,
})"""


def csv_rows(path: Path) -> dict[float, dict[str, float]]:
    with open(path, newline="") as handle:
        return {round(float(row["stream_time_s"]), 3): row for row in csv.DictReader(handle) if row["valence"]}


def query_config(*, port: int) -> dict:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.bind(("127.0.0.1", 0))
        sock.sendto(OscMessageBuilder(address="/mer/query").build().dgram, ("127.0.0.1", port))
        packet = OscPacket(sock.recvfrom(65536)[0])
    return {m.message.address.rsplit("/", 1)[1]: m.message.params[0] for m in packet.messages}


@pytest.fixture
def daemon(tmp_path):
    with OscDump() as dump:
        process = DaemonProcess(args=[
            "--demo", "--web", "127.0.0.1:0", "--control", "127.0.0.1:0", "--csv", str(tmp_path / "log.csv"),
            "--osc", f"127.0.0.1:{dump.port}", "-q",
        ])
        try:
            found = process.output.wait_for(
                predicate=lambda lines: any(URL_LINE.search(l) for l in lines) and any(CONTROL_LINE.search(l) for l in lines),
                timeout=START_TIMEOUT_S,
            )
            assert found, process.stderr_text()
            text = process.stderr_text()
            yield {"url": URL_LINE.search(text).group(1), "control": int(CONTROL_LINE.search(text).group(1)),
                   "csv": tmp_path / "log.csv", "dump": dump, "process": process, "tmp": tmp_path}
        finally:
            process.close()


def test_the_page_shows_what_the_csv_records_and_controls_the_daemon(daemon) -> None:
    async def drive():
        async with Browser() as browser:
            await browser.open(daemon["url"])
            await browser.wait_for("window.merLive && merLive.frame && merLive.frame.emotion && merLive.frames > 2", timeout=30)
            snapshots = []
            for _ in range(SAMPLES):
                snapshots.append(json.loads(await browser.evaluate(SNAPSHOT_JS)))
                await asyncio.sleep(SAMPLE_INTERVAL_S)
            await browser.evaluate(
                f"(() => {{ const n = document.querySelector('.control[data-control=rate] input[type=number]');"
                f" n.value = {NEW_RATE}; n.dispatchEvent(new Event('change')); }})()"
            )
            await browser.wait_for(f"merLive.frame.config && merLive.frame.config.rate === {NEW_RATE}", timeout=10)
            changed_at = await browser.evaluate("merLive.frame.t")
            result = await browser.wait_for("merLive.lastControl", timeout=5)
            await asyncio.sleep(2.0)
            screenshot = await browser.screenshot(daemon["tmp"] / "dashboard.png")
            return snapshots, changed_at, result, screenshot, browser.exceptions

    snapshots, changed_at, result, screenshot, exceptions = asyncio.run(asyncio.wait_for(drive(), 120))
    assert exceptions == []
    assert result["ok"] and result["command"] == "rate"
    config = query_config(port=daemon["control"])  # the daemon's control port sees the page's change
    assert config["rate"] == pytest.approx(NEW_RATE)
    daemon["process"].stop()
    rows = csv_rows(daemon["csv"])

    # the meters show the CSV's values at the same stream time
    for snap in snapshots:
        row = rows[round(snap["t"], 3)]
        for name in labels.EMOTIONS:
            assert snap["meters"][f"emotion.{name}"] == pytest.approx(float(row[name]), abs=VALUE_TOLERANCE)
        for name in labels.MID_LEVELS:
            assert snap["meters"][f"mid.{name}"] == pytest.approx(float(row[name]), abs=VALUE_TOLERANCE)
        # each emotion = bias + its 7 contributions (clipped to 0-1 on the meter)
        for name in labels.EMOTIONS:
            card = snap["cards"][name]
            total = card["parts"]["bias"] + sum(card["parts"][m] for m in labels.MID_LEVELS)
            assert total == pytest.approx(card["sum"], abs=SUM_TOLERANCE)
            assert np.clip(total, 0, 1) == pytest.approx(snap["meters"][f"emotion.{name}"], abs=SUM_TOLERANCE)
    assert len({snap["t"] for snap in snapshots}) > 1
    assert [s["history"] for s in snapshots] == sorted(s["history"] for s in snapshots)
    assert snapshots[-1]["history"] > snapshots[0]["history"]

    # the rate set on the page took effect: updates every 1/8 s from shortly after the change
    times = sorted(t for t in rows if t > changed_at + 1.0)
    assert len(times) > 4 and np.allclose(np.diff(times), 1.0 / NEW_RATE, atol=1e-3)

    # not blank: many colours, and most of the page is not the background
    from PIL import Image

    image = Image.open(io.BytesIO(screenshot)).convert("RGB")
    colours = image.getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 200
    background = max(colours)[0] / (image.width * image.height)
    assert background < 0.9
    if ARTEFACTS is not None:
        ARTEFACTS.mkdir(parents=True, exist_ok=True)
        (ARTEFACTS / "dashboard.png").write_bytes(screenshot)


def test_oscquery_lists_every_address_oscdump_sees_and_answers_host_info(daemon) -> None:
    base = daemon["url"].rstrip("/")

    async def fetch():
        async with aiohttp.ClientSession() as session:
            async with session.get(base + "/") as response:
                tree = await response.json()
            async with session.get(base + "/?HOST_INFO") as response:
                info = await response.json()
        return tree, info

    messages = []
    deadline = time.monotonic() + START_TIMEOUT_S
    while not any(m.address.startswith("/mer/explain") for m in messages):
        messages = daemon["dump"].messages(settle_s=0.5)
        assert time.monotonic() < deadline
    tree, info = asyncio.run(fetch())
    seen = {m.address: m.types for m in messages}
    assert len(seen) == 29

    def node(path: str) -> dict:
        current = tree
        for part in path.strip("/").split("/"):
            current = current["CONTENTS"][part]
        return current

    for address, types in seen.items():
        assert node(address)["TYPE"] == types, address
        assert node(address)["ACCESS"] == 1
    assert (info["OSC_IP"], info["OSC_PORT"], info["OSC_TRANSPORT"]) == ("127.0.0.1", daemon["control"], "UDP")
    for command in ("rate", "smoothing", "mute", "reset"):
        assert node(f"/mer/{command}")["ACCESS"] == 2


def test_a_taken_web_port_is_one_line_and_exit_2(tmp_path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        process = DaemonProcess(args=["--demo", "--web", f"127.0.0.1:{taken.getsockname()[1]}", "--no-osc", "--no-control", "-q"])
        try:
            assert process.wait(timeout=60) == 2
        finally:
            process.close()
    lines = [line for line in process.stderr_text().splitlines() if line.strip()]
    assert len(lines) == 1 and "cannot listen" in lines[0] and "--web" in lines[0], lines
