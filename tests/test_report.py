"""``mer-live report``: reading logs and analyze windows, the timeline across gaps and restarts, section
means, one-line errors (fast); a real daemon run and a real ``mer-live analyze`` run drawn, and the
HTML opened in headless Chromium, which must load every image (slow)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from mer_live import cli
from mer_live.core import labels
from mer_live.offline import report
from mer_live.offline.results import FILE_HEADER, WINDOW_HEADER
from mer_live.model.emotion_model import default_model_path
from mer_live.core.reading import Reading
from mer_live.outputs.csv import CSV_HEADER, csv_row

pytest.importorskip("matplotlib")

PROJECT_ROOT = Path(__file__).resolve().parent.parent
RUN_TIMEOUT_S = 180
START = datetime(2026, 5, 1, 19, 30, tzinfo=timezone.utc).timestamp()
needs_model = pytest.mark.skipif(not default_model_path().is_file(), reason="no model file yet")


def _reading(*, stream: float, wall: float, state: str = "running", level: float | None = 0.5) -> Reading:
    reading = Reading(stream_time_s=stream, wall_time=START + wall, state=state, level_dbfs=-20.0, overflows=0, updates=1)
    if level is not None:
        reading.emotion = np.full(labels.NUM_EMOTIONS, level)
        reading.mid = np.linspace(0.1, 0.9, labels.NUM_MID_LEVELS)
    return reading


def _write_log(path: Path, readings: list[Reading]) -> Path:
    path.write_text(CSV_HEADER + "".join(csv_row(reading=r) for r in readings))
    return path


def _run(*args: str) -> tuple[int, str]:
    done = subprocess.run([sys.executable, "-m", "mer_live", "report", *args], capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    return done.returncode, done.stderr


# ------------------------------------------------------------------------------------------ reading


def test_a_log_across_a_gap_and_a_restart_keeps_one_increasing_timeline(tmp_path: Path) -> None:
    first = [_reading(stream=0.25 * k, wall=0.25 * k, state="warming" if k < 4 else "running", level=None if k == 1 else 0.5)
             for k in range(1, 41)]  # 10 s
    # the device vanished at 10 s; the restarted daemon's stream time starts again 6 s later
    second = [_reading(stream=0.25 * k, wall=16.0 + 0.25 * k) for k in range(1, 21)]
    session = report.load_session(path=_write_log(tmp_path / "log.csv", first + second))
    assert session.kind == report.KIND_LOG and len(session.time_s) == 60
    assert np.all(np.diff(session.time_s) > 0)
    assert session.time_s[0] == pytest.approx(0.25) and session.time_s[-1] == pytest.approx(21.0)
    assert len(session.gaps) == 1 and session.gaps[0] == pytest.approx((10.0, 16.25))
    assert not session.has_values[0] and session.has_values[1]
    spans = report._state_spans(session=session)
    assert ("warming", 0.25, 0.75) in [(s, round(a, 2), round(b, 2)) for s, a, b in spans]
    assert any(state == "no-input" for state, _, _ in spans)


def test_a_fast_run_uses_stream_time_not_the_compressed_wall_clock(tmp_path: Path) -> None:
    readings = [_reading(stream=0.25 * k, wall=0.001 * k) for k in range(1, 101)]
    session = report.load_session(path=_write_log(tmp_path / "fast.csv", readings))
    assert session.duration_s == pytest.approx(25.0) and session.gaps == ()


def test_analyze_window_csv_is_read_and_a_file_chosen(tmp_path: Path) -> None:
    lines = [",".join(WINDOW_HEADER)]
    for k in (1, 2):
        for window in range(11):
            values = [f"{0.1 * k:.6f}"] * labels.NUM_EMOTIONS + ["0.200000"] * labels.NUM_MID_LEVELS
            lines.append(",".join([f"/music/take{k}.wav", str(window), f"{window:.6f}", f"{window + 10.016:.6f}", "False",
                                   "joint", "0.1.0+abc", *values]))
    path = tmp_path / "windows.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(report.ReportError, match="choose one with --file"):
        report.load_session(path=path)
    session = report.load_session(path=path, file="take2.wav")
    assert session.kind == report.KIND_WINDOWS and len(session.time_s) == 11
    assert np.allclose(session.emotion, 0.2) and set(session.states) == {"running"}


def test_sections_parse_and_average(tmp_path: Path) -> None:
    assert report.parse_sections(text="0:00,1:30,1:02:03,4000") == (0.0, 90.0, 3723.0, 4000.0)
    readings = [_reading(stream=0.25 * k, wall=0.25 * k, level=0.2 if k <= 40 else 0.8, state="running" if k <= 40 else "silent")
                for k in range(1, 81)]
    session = report.load_session(path=_write_log(tmp_path / "log.csv", readings))
    first, second = report.section_means(session=session, starts=report.parse_sections(text="0:00,0:10.1"))
    assert first.rows == 40 and np.allclose(first.emotion, 0.2) and first.silent_share == 0.0
    assert second.rows == 40 and np.allclose(second.emotion, 0.8) and second.silent_share == 1.0
    with pytest.raises(report.ReportError, match="not before the end"):
        report.section_means(session=session, starts=(0.0, 30.0))


@pytest.mark.parametrize("text", ["1:75", "a", "1,,2", "2:00,1:00", "-1", "1:2:3:4"])
def test_bad_sections_are_refused(text: str) -> None:
    with pytest.raises(report.ReportError, match="--sections"):
        report.parse_sections(text=text)


def test_contributions_add_up_to_the_emotion() -> None:
    rng = np.random.default_rng(0)
    weight, bias = rng.normal(size=(8, 7)), rng.uniform(0.2, 0.6, size=8)
    mid = rng.uniform(0, 1, size=(5, 7))
    parts, base = report.contributions(mid=mid, weight=weight, bias=bias, emotion=3)
    model_mid = mid * labels.MID_MODEL_SPAN + labels.MID_MODEL_MIN
    expected = labels.emotion_to_unit(model_values=model_mid @ weight.T + bias)[:, 3]
    assert np.allclose(base + parts.sum(axis=1), expected)


# ------------------------------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("content", "args", "needle"),
    [
        (None, (), "no such file"),
        ("", (), "empty file"),
        ("a,b,c\n1,2,3\n", (), "not a mer-live CSV"),
        (CSV_HEADER, (), "no rows yet"),
        (CSV_HEADER + "2026-05-01T19:30:00+00:00,0.250,dancing,-20.00" + "," * 15 + "\n", (), "unknown state 'dancing'"),
        (CSV_HEADER + "2026-05-01T19:30:00+00:00,0.250,warming,-20.00" + "," * 15 + "\n", (), "no row carries values"),
        (",".join(FILE_HEADER) + "\n", (), "per-file summary"),
        ("LOG", ("--sections", "0:00,x"), "--sections"),
        ("LOG", ("--emotion", "joy"), "invalid choice"),
        ("LOG", ("--out", "/nonexistent/dir/r.html"), "does not exist"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, content: str | None, args: tuple[str, ...], needle: str, capsys) -> None:
    path = tmp_path / "session.csv"
    if content == "LOG":
        _write_log(path, [_reading(stream=0.25 * k, wall=0.25 * k) for k in range(1, 9)])
    elif content is not None:
        path.write_text(content)
    code = cli.main(["report", str(path), *args])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("mer-live report: error: ") and needle in lines[0], lines


@needs_model
def test_html_is_self_contained_with_a_section_table(tmp_path: Path) -> None:
    path = _write_log(tmp_path / "log.csv", [_reading(stream=0.25 * k, wall=0.25 * k, level=0.3 + 0.001 * k) for k in range(1, 81)])
    png = tmp_path / "r.png"
    assert cli.main(["report", str(path), "--png", str(png), "--sections", "0:00,0:10", "--emotion", "sad"]) == 0
    page = (tmp_path / "log.html").read_text()
    images = re.findall(r'<img alt="([^"]+)" src="data:image/png;base64,', page)
    assert images == ["emotions", "mid-level features", "sad: contributions"]
    assert "src=\"http" not in page and "<link" not in page  # nothing fetched from elsewhere
    assert "<th>0:00&ndash;0:10</th>" in page and "<th>minorness</th>" in page
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ------------------------------------------------------------------------------------------ real runs


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PROBE = """<pre id="probe">pending</pre><script>window.addEventListener("load", function () {
  document.getElementById("probe").textContent = JSON.stringify(Array.from(document.images).map(
    function (image) { return [image.complete, image.naturalWidth, image.naturalHeight]; }));
});</script></body>"""


def _images_in_chromium(page: Path, tmp_path: Path) -> list[list]:
    """Open ``page`` (with a probe script added) in headless Chromium: each image's (complete, width, height)."""
    probe = tmp_path / "probe.html"
    probe.write_text(page.read_text().replace("</body>", PROBE))
    done = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", probe.as_uri()],
        capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
    )
    match = re.search(r'<pre id="probe">([^<]*)</pre>', done.stdout)
    assert match, done.stderr[-2000:]
    return json.loads(match.group(1))


@pytest.mark.slow
@needs_model
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_report_of_a_real_daemon_run_opens_in_chromium_with_every_image(tmp_path: Path) -> None:
    log = tmp_path / "rehearsal.csv"
    subprocess.run(
        [sys.executable, "-m", "mer_live", "--demo", "--fast", "--csv", str(log), "--no-osc", "--no-control", "-q"],
        check=True, timeout=RUN_TIMEOUT_S,
    )
    png = tmp_path / "rehearsal.png"
    code, stderr = _run(str(log), "--png", str(png), "--sections", "0:00,0:20")
    assert code == 0, stderr
    images = _images_in_chromium(tmp_path / "rehearsal.html", tmp_path)
    assert len(images) == 3 and all(complete and width > 500 and height > 200 for complete, width, height in images), images
    import matplotlib.image

    pixels = matplotlib.image.imread(png)  # the PNG draws lines and bands: far from a blank page
    assert pixels.shape[0] > 600 and np.mean(np.all(pixels[..., :3] > 0.98, axis=-1)) < 0.9
    session = report.load_session(path=log)
    assert set(session.states) >= {"warming", "running"} and session.duration_s == pytest.approx(40.0, abs=0.5)


@pytest.mark.slow
@needs_model
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_report_of_real_analyze_windows(tmp_path: Path) -> None:
    import soundfile

    from mer_live.live import demo
    from mer_live.features.spectrogram import SAMPLE_RATE

    audio = tmp_path / "take.wav"
    soundfile.write(str(audio), demo.synthesise(), SAMPLE_RATE)
    windows = tmp_path / "windows.csv"
    subprocess.run(
        [sys.executable, "-m", "mer_live", "analyze", str(audio), "--csv", str(tmp_path / "means.csv"), "--window-csv", str(windows), "-q"],
        check=True, timeout=RUN_TIMEOUT_S,
    )
    code, stderr = _run(str(windows), "--out", str(tmp_path / "take.html"))
    assert code == 0, stderr
    images = _images_in_chromium(tmp_path / "take.html", tmp_path)
    assert len(images) == 3 and all(complete and width > 500 for complete, width, _ in images), images
