"""Make docs/guide/web.png again: the dashboard in headless Chromium, 28 s into the demo piece (the bright
section has passed, the dark one has begun, so the history shows the change).

    python docs/web_figure.py

Needs the web extra and ``chromium``; drives the browser with tests/web_browser.py (the DevTools protocol).
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import time
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS.parent / "tests"))

from web_browser import Browser  # noqa: E402 - after the path above

OUT = DOCS / "guide" / "web.png"
STREAM_TIME_S = 28.0
URL_LINE = re.compile(r"web dashboard and OSCQuery on (http://\S+?/)")
WIDTH, HEIGHT = 1440, 1000


async def capture(url: str) -> bytes:
    async with Browser(width=WIDTH, height=HEIGHT) as browser:
        await browser.open(url)
        await browser.wait_for(f"window.merLive && merLive.frame && merLive.frame.t >= {STREAM_TIME_S}", timeout=STREAM_TIME_S + 30)
        await asyncio.sleep(0.5)
        return await browser.screenshot(OUT)


def main() -> int:
    daemon = subprocess.Popen(
        [sys.executable, "-m", "mer_live", "--demo", "--web", "127.0.0.1:0", "--no-osc", "--control", "127.0.0.1:0", "-q"],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
    )
    try:
        deadline = time.monotonic() + 60
        url = None
        while url is None and time.monotonic() < deadline:
            match = URL_LINE.search(daemon.stderr.readline())
            url = match.group(1) if match else None
        if url is None:
            raise SystemExit("the daemon did not print its web address")
        asyncio.run(capture(url))
    finally:
        daemon.terminate()
        daemon.wait(timeout=10)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
