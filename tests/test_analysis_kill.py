"""``mer-live analyze`` killed with SIGKILL mid-run resumes with nothing lost and nothing duplicated."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile

from mer_live.offline.results import JOURNAL_SUFFIX

NUM_FILES = 40
RATE = 44100
POLL_S = 0.01
KILL_AFTER_FILES = 3
RUN_TIMEOUT_S = 240


def _analyze(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mer_live", "analyze", *arguments], capture_output=True,
                          text=True, timeout=RUN_TIMEOUT_S)


@pytest.mark.slow
def test_sigkill_then_rerun_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    library = tmp_path / "library"
    library.mkdir()
    rng = np.random.default_rng(1)
    for index in range(NUM_FILES):
        seconds = 11.0 + index % 7
        t = np.arange(int(seconds * RATE)) / RATE
        audio = 0.3 * np.sin(2 * np.pi * (100 + 20 * index) * t) + 0.05 * rng.standard_normal(len(t))
        soundfile.write(str(library / f"track{index:03d}.flac"), audio.astype(np.float32), RATE)
    reference = tmp_path / "reference.parquet"
    completed = _analyze(str(library), "--out", str(reference), "--jobs", "2", "-q")
    assert completed.returncode == 0, completed.stderr

    out = tmp_path / "results.parquet"
    journal = Path(str(out) + JOURNAL_SUFFIX)
    process = subprocess.Popen([sys.executable, "-m", "mer_live", "analyze", str(library), "--out", str(out),
                                "--jobs", "2", "-q"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               start_new_session=True)
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while not (journal.exists() and journal.read_bytes().count(b"\n") >= KILL_AFTER_FILES):
        assert process.poll() is None, "finished before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(POLL_S)
    os.kill(process.pid, signal.SIGKILL)  # the real kill -9 of the mer-live process
    assert process.wait(timeout=30) == -signal.SIGKILL
    os.killpg(process.pid, signal.SIGKILL)  # and its pool workers, which it can no longer stop
    process.stderr.close()
    done_at_kill = [json.loads(line)["file"] for line in journal.read_text().splitlines() if line.endswith("}")]
    assert KILL_AFTER_FILES <= len(done_at_kill) < NUM_FILES
    assert not out.exists()  # outputs are only rendered at the end

    completed = _analyze(str(library), "--out", str(out), "--jobs", "2", "-q")
    assert completed.returncode == 0, completed.stderr
    skipped = [line for line in completed.stderr.splitlines() if "already done" in line]
    assert len(skipped) == 1 and skipped[0].split()[2] == str(len(set(done_at_kill))), completed.stderr
    result = pd.read_parquet(out)
    assert len(result) == NUM_FILES and not result["file"].duplicated().any()
    assert len(journal.read_text().splitlines()) == NUM_FILES  # each file analysed exactly once
    expected = pd.read_parquet(reference)
    pd.testing.assert_frame_equal(result, expected)


@pytest.mark.slow
def test_a_killed_worker_is_one_line_and_the_rerun_completes(tmp_path: Path) -> None:
    """SIGKILL one pool worker (as the OOM killer would): a one-line error, exit 1, the journal kept; the
    same command then finishes with every file once."""
    library = tmp_path / "library"
    library.mkdir()
    t = np.arange(int(14.0 * RATE)) / RATE
    for index in range(NUM_FILES):
        audio = 0.3 * np.sin(2 * np.pi * (90 + 15 * index) * t)
        soundfile.write(str(library / f"song{index:03d}.flac"), audio.astype(np.float32), RATE)
    out = tmp_path / "results.parquet"
    journal = Path(str(out) + JOURNAL_SUFFIX)
    process = subprocess.Popen([sys.executable, "-m", "mer_live", "analyze", str(library), "--out", str(out),
                                "--jobs", "2", "-q"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while not (journal.exists() and journal.read_bytes().count(b"\n") >= KILL_AFTER_FILES):
        assert process.poll() is None, "finished before a worker could be killed"
        assert time.monotonic() < deadline
        time.sleep(POLL_S)
    children = [int(p) for p in Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()]
    workers = [pid for pid in children if b"resource_tracker" not in Path(f"/proc/{pid}/cmdline").read_bytes()]
    assert workers, "no pool workers found"
    os.kill(workers[-1], signal.SIGKILL)
    _, stderr = process.communicate(timeout=RUN_TIMEOUT_S)
    errors = [line for line in stderr.splitlines() if "error" in line]
    assert process.returncode == 1 and len(errors) == 1, stderr
    assert "worker process died" in errors[0] and "run the same command" in errors[0]
    completed = _analyze(str(library), "--out", str(out), "--jobs", "2", "-q")
    assert completed.returncode == 0, completed.stderr
    result = pd.read_parquet(out)
    assert len(result) == NUM_FILES and not result["file"].duplicated().any() and (result["error"] == "").all()
