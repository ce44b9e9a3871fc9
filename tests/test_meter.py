"""The live meter: bars, the explained move and the outputs' counts (fast), the redraw limit, and the
real daemon on a real terminal, tmux, whose screen is read back with ``capture-pane`` (slow)."""

from __future__ import annotations

import io
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from mer_live.core import labels
from mer_live.model.explanation import explain
from mer_live.outputs.meter import MAX_REDRAWS_PER_S, Meter, Screen, bar, describe_move, moved_most, plain, render
from mer_live.model.emotion_model import default_model_path
from mer_live.core.reading import Reading
from mer_live.outputs.base import SinkCounts

pytest.importorskip("rich")

PROJECT_ROOT = Path(__file__).resolve().parent.parent
HAPPY = labels.EMOTIONS.index("happy")
MINORNESS = labels.MID_LEVELS.index("minorness")
RNG = np.random.default_rng(7)
WEIGHT = RNG.normal(0.0, 0.3, size=(labels.NUM_EMOTIONS, labels.NUM_MID_LEVELS))
WEIGHT[:, MINORNESS] = 0.0
WEIGHT[HAPPY, MINORNESS] = -1.0  # happy falls as minorness rises, and nothing else moves with minorness
BIAS = np.full(labels.NUM_EMOTIONS, 0.4)


def _reading(*, t: float, minorness: float, updates: int = 1, state: str = "running") -> Reading:
    mid = np.full(labels.NUM_MID_LEVELS, 0.5)
    mid[MINORNESS] = minorness
    explanation = explain(mid=mid, weight=WEIGHT, bias=BIAS)
    return Reading(
        stream_time_s=t, wall_time=0.0, state=state, level_dbfs=-18.0, overflows=2, updates=updates,
        emotion=np.clip(explanation.emotion, 0, 1), emotion_unclipped=explanation.emotion,
        mid=labels.mid_to_unit(model_values=mid), contributions=explanation.contributions, bias=explanation.bias,
    )


def _text(lines) -> str:
    return plain(lines=lines)


def test_bar_has_eighth_cell_resolution_and_fixed_width() -> None:
    assert bar(value=0.0, width=10) == " " * 10
    assert bar(value=1.0, width=10) == "█" * 10
    assert bar(value=0.5, width=10) == "█" * 5 + " " * 5
    assert bar(value=1 / 80, width=10) == "▏" + " " * 9
    assert bar(value=7.0, width=4) == "█" * 4 and bar(value=float("nan"), width=4) == " " * 4


def test_the_move_names_the_feature_behind_it() -> None:
    history = [_reading(t=0.25 * k, minorness=0.2 + 0.6 * min(1.0, k / 20)) for k in range(40)]
    move = moved_most(history=history)
    assert move.emotion == HAPPY and move.delta < 0 and move.seconds == pytest.approx(5.0)
    assert move.drivers[0][0] == MINORNESS and move.drivers[0][1] < 0 and move.drivers[0][2] > 0
    # the change of the emotion is exactly the sum of the changes of its contributions
    then = next(r for r in history if r.stream_time_s >= history[-1].stream_time_s - 5.0)
    assert move.delta == pytest.approx(float(np.sum(history[-1].contributions[HAPPY] - then.contributions[HAPPY])))
    assert describe_move(move=move).startswith("happy ↓") and "because minorness ↑ −" in describe_move(move=move)
    steady = [_reading(t=0.25 * k, minorness=0.5) for k in range(10)]
    assert describe_move(move=moved_most(history=steady)).startswith("all emotions steady")
    assert moved_most(history=steady[:1]) is None


def test_the_screen_shows_every_value_the_state_and_the_outputs() -> None:
    history = [_reading(t=0.25 * k, minorness=0.2 + 0.03 * k, updates=k) for k in range(30)]
    outputs = [
        SinkCounts(name="OSC 127.0.0.1:9000", delivered=30, dropped=0),
        SinkCounts(name="OSC nowhere.invalid:9000", delivered=0, dropped=30),
    ]
    text = _text(render(reading=history[-1], history=history, outputs=outputs, log_lines=["mer-live: hello"], width=120))
    for name in (*labels.EMOTIONS, *labels.MID_LEVELS):
        assert re.search(rf"{name}\s+[█▏▎▍▌▋▊▉ ]+ \d\.\d\d", text), name
    assert "RUNNING" in text and "updates 29" in text and "overflows 2" in text and "-18.0 dBFS" in text
    assert "OSC 127.0.0.1:9000  delivered 30  dropped 0" in text
    assert "OSC nowhere.invalid:9000  delivered 0  dropped 30" in text
    assert "happy ↓" in text and "mer-live: hello" in text
    heartbeat = Reading(stream_time_s=1.0, wall_time=0.0, state="no-input", level_dbfs=-120.0, overflows=0, updates=0, is_update=False)
    assert "NO-INPUT" in _text(render(reading=heartbeat, history=[], outputs=[], log_lines=[], width=80))


def test_the_screen_rewrites_only_changed_lines_and_crops_to_the_width() -> None:
    stream = io.StringIO()
    screen = Screen(stream=stream)
    first = screen.draw(lines=[[("a" * 500, "")], [("same", "")]])
    assert stream.getvalue().startswith(Screen.ENTER) and "a" * 500 not in stream.getvalue()  # cropped
    second = screen.draw(lines=[[("b", "")], [("same", "")]])
    assert 0 < second < first and "same" not in stream.getvalue()[-second:]
    assert screen.draw(lines=[[("b", "")], [("same", "")]]) == 0  # nothing changed, nothing written
    screen.close()
    assert stream.getvalue().endswith(Screen.LEAVE)


def test_redraws_are_limited_and_process_never_waits_for_the_terminal() -> None:
    meter = Meter(stream=io.StringIO(), max_redraws_per_s=MAX_REDRAWS_PER_S)
    started = time.monotonic()
    calls = 0
    while time.monotonic() - started < 1.0:
        meter.process(reading=_reading(t=calls * 0.01, minorness=0.5, updates=calls))
        calls += 1
        time.sleep(0.002)
    elapsed = time.monotonic() - started
    meter.close()
    assert calls > 100
    assert 1 <= meter.redraws <= MAX_REDRAWS_PER_S * elapsed + 1


# ------------------------------------------------------------------------------------------ tmux

TMUX_SOCKET = "merlive-meter-test"
SCREEN = (120, 40)
START_TIMEOUT_S = 60.0


def _tmux(*args: str) -> str:
    return subprocess.run(["tmux", "-L", TMUX_SOCKET, *args], capture_output=True, text=True, check=True, timeout=30).stdout


def _screen() -> str:
    return _tmux("capture-pane", "-p", "-t", "meter")


def _wait_for_screen(pattern: str, timeout_s: float = START_TIMEOUT_S) -> str:
    deadline = time.monotonic() + timeout_s
    while True:
        screen = _screen()
        if re.search(pattern, screen):
            return screen
        assert time.monotonic() < deadline, f"{pattern!r} never appeared; the screen:\n{screen}"
        time.sleep(0.2)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
@pytest.mark.skipif(not default_model_path().is_file(), reason="no model file yet")
def test_the_real_daemon_draws_the_meter_in_a_terminal_and_restores_it(tmp_path: Path) -> None:
    fifo = tmp_path / "run.fifo"  # a CSV FIFO that nobody reads: an output that drops every update, on this machine
    os.mkfifo(fifo)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver:
        receiver.bind(("127.0.0.1", 0))
        port = receiver.getsockname()[1]
        command = (
            f"env -u COLUMNS -u LINES {sys.executable} -m mer_live --demo --no-control --osc 127.0.0.1:{port} "
            f"--csv {fifo}; echo EXIT=$?; sleep 60"
        )
        width, height = SCREEN
        _tmux("new-session", "-d", "-x", str(width), "-y", str(height), "-s", "meter", "-c", str(PROJECT_ROOT), command)
        try:
            screen = _wait_for_screen(r"RUNNING")  # 10 s of warming up first
            for name in (*labels.EMOTIONS, *labels.MID_LEVELS):
                assert re.search(rf"{name}\s+[█▏▎▍▌▋▊▉ ]+ \d\.\d\d", screen), (name, screen)
            assert re.search(r"input level\s+█+.* -\d+\.\d dBFS", screen), screen
            assert re.search(r"updates (\d+)\s+overflows 0", screen), screen
            assert re.search(rf"OSC 127\.0\.0\.1:{port}  delivered [1-9]\d*  dropped 0", screen), screen
            assert re.search(rf"CSV {re.escape(str(fifo))}  delivered 0  dropped [1-9]\d*", screen), screen
            assert "meter  delivered" not in screen  # the meter does not list itself
            assert re.search(r"moved most\s+(\w+ [↑↓] \d\.\d\d in \d+\.\d s because \w+ [↑↓]|all emotions steady)", screen), screen
            assert re.search(r"\nlog\n  mer-live: \S", screen), screen  # log lines, shown in the meter instead of over it
            assert len(screen.splitlines()) <= height
            first = int(re.search(r"updates (\d+)", screen).group(1))
            time.sleep(1.5)
            assert int(re.search(r"updates (\d+)", _screen()).group(1)) > first  # it redraws as updates come
            _tmux("send-keys", "-t", "meter", "C-c")
            after = _wait_for_screen(r"EXIT=\d+", timeout_s=20)
        finally:
            subprocess.run(["tmux", "-L", TMUX_SOCKET, "kill-server"], capture_output=True)
    assert "EXIT=0" in after, after
    assert "emotions" not in after and "mer-live: stopped:" in after, after  # back on the normal screen, log lines kept
    assert "mer-live: version" in after and "no reader on the FIFO yet" in after
