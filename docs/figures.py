"""Make the documentation's figures again from real runs of mer-live.

    python3 docs/figures.py meter    # docs/meter.png: the live meter of a paced demo run, captured from tmux
    python3 docs/figures.py report   # docs/report.png: mer-live report of a log with a silent stretch and a gap
    python3 docs/figures.py          # both

Needs tmux and chromium (meter) and the ``report`` extra (matplotlib). Each run takes about a minute: the
daemon plays the demo piece in real time for the meter, and with ``--fast`` for the report.
"""

from __future__ import annotations

import argparse
import html
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
METER_PNG = DOCS / "meter.png"
REPORT_PNG = DOCS / "report.png"

TERMINAL = (120, 30)  # columns, rows of the tmux window the meter is drawn in
METER_AT_S = 28.0  # capture the meter this far after the start: the dark section has begun, so something moved
FONT_PX = 14
LINE_PX = 17
CHAR_PX = 8.4  # the width of one column in the monospace font below
TMUX_SOCKET = "mer-live-figures"

GAP_S = 6.0  # the pause between the report's two runs: a no-input band
SILENCE_S = 8.0  # the silent stretch inside the first run's file
REPRISE_S = 25.0  # how much of the demo piece follows the silence


def _mer_live(*args: str) -> list[str]:
    return [sys.executable, "-m", "mer_live", *args]


def _free_udp_port() -> tuple[socket.socket, int]:
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    return receiver, receiver.getsockname()[1]


def _tmux(*args: str) -> str:
    return subprocess.run(["tmux", "-L", TMUX_SOCKET, *args], check=True, capture_output=True, text=True).stdout


def _screen_to_png(*, ansi: str, out: Path) -> None:
    """Draw the captured screen (text with ANSI colours) as a PNG of the terminal's size, in headless Chromium."""
    from rich.console import Console
    from rich.terminal_theme import MONOKAI
    from rich.text import Text

    columns, rows = TERMINAL
    console = Console(record=True, width=columns, file=open(os.devnull, "w"), color_system="truecolor", force_terminal=True)
    for line in ansi.rstrip("\n").split("\n")[:rows]:
        console.print(Text.from_ansi(line), no_wrap=True, crop=True)
    body = console.export_html(theme=MONOKAI, inline_styles=True, code_format="<pre>{code}</pre>")
    page = (
        "<!doctype html><meta charset='utf-8'><style>"
        f"body{{margin:0;background:#0c0c0c;color:#d9d9d9}} pre{{margin:6px;font:{FONT_PX}px/{LINE_PX}px 'DejaVu Sans Mono',monospace}}"
        f"</style><title>{html.escape('mer-live meter')}</title>{body}"
    )
    width, height = int(columns * CHAR_PX) + 12, rows * LINE_PX + 12
    with tempfile.TemporaryDirectory() as scratch:
        page_path = Path(scratch) / "meter.html"
        page_path.write_text(page)
        browser = shutil.which("chromium") or shutil.which("chromium-browser")
        subprocess.run(
            [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--window-size={width},{height}",
             f"--screenshot={out}", page_path.as_uri()],
            check=True, capture_output=True, timeout=120,
        )


def meter() -> None:
    """The meter of ``mer-live --demo`` paced in real time, sending OSC to a local socket and writing CSV,
    captured METER_AT_S after the start."""
    receiver, port = _free_udp_port()
    with receiver, tempfile.TemporaryDirectory() as scratch:
        command = " ".join(
            _mer_live("--demo", "--no-control", "--osc", f"127.0.0.1:{port}", "--csv", f"{scratch}/demo.csv")
        ) + "; sleep 30"
        columns, rows = TERMINAL
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        subprocess.run(["tmux", "-L", TMUX_SOCKET, "new-session", "-d", "-x", str(columns), "-y", str(rows), "-s", "figure",
                        "-c", str(ROOT), f"env -u COLUMNS -u LINES {command}"], check=True, env=env)
        try:
            time.sleep(METER_AT_S)
            screen = _tmux("capture-pane", "-e", "-p", "-t", "figure")
        finally:
            subprocess.run(["tmux", "-L", TMUX_SOCKET, "kill-server"], capture_output=True)
    _screen_to_png(ansi=screen, out=METER_PNG)
    print(f"wrote {METER_PNG}")


def report() -> None:
    """Two daemon runs appended to one log, then ``mer-live report --png``: a file (the demo piece, SILENCE_S
    of silence, REPRISE_S of the piece again) and, GAP_S later, ``--demo``."""
    sys.path.insert(0, str(ROOT))
    from mer_live.live import demo
    from mer_live.features.spectrogram import SAMPLE_RATE

    piece = demo.synthesise()
    audio = np.concatenate([piece, np.zeros(int(SILENCE_S * SAMPLE_RATE), np.float32), piece[: int(REPRISE_S * SAMPLE_RATE)]])
    with tempfile.TemporaryDirectory() as scratch:
        take = Path(scratch) / "take.wav"
        soundfile.write(take, audio, SAMPLE_RATE)
        log = Path(scratch) / "rehearsal.csv"
        quiet = ("--fast", "--no-osc", "--no-control", "-q", "--csv", str(log))
        subprocess.run(_mer_live("--input", str(take), *quiet), check=True, cwd=ROOT)
        time.sleep(GAP_S)
        subprocess.run(_mer_live("--demo", *quiet), check=True, cwd=ROOT)
        subprocess.run(_mer_live("report", str(log), "--out", f"{scratch}/report.html", "--png", str(REPORT_PNG)),
                       check=True, cwd=ROOT)
    print(f"wrote {REPORT_PNG}")


FIGURES = {"meter": meter, "report": report}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("figures", nargs="*", metavar="FIGURE", help=f"any of {', '.join(FIGURES)} (default: all)")
    names = parser.parse_args().figures or list(FIGURES)
    unknown = sorted(set(names) - set(FIGURES))
    if unknown:
        parser.error(f"unknown figure(s) {', '.join(unknown)}; choose from {', '.join(FIGURES)}")
    for name in names:
        FIGURES[name]()


if __name__ == "__main__":
    main()
