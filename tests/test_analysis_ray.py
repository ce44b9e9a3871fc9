"""``mer-live analyze --ray`` on a real local Ray cluster (a head and a second node started with
``ray start``), and Ray staying out of the daemon."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile

from mer_live.offline.results import JOURNAL_SUFFIX

NUM_FILES = 20
RATE = 44100
RUN_TIMEOUT_S = 240
POLL_S = 0.05
KILL_AFTER_FILES = 2


def test_the_daemon_and_the_local_analyser_never_import_ray() -> None:
    code = ("import sys, mer_live.cli, mer_live.live.daemon, mer_live.offline.analysis, mer_live.offline.catalogue, mer_live.offline.results\n"
            "print(sorted(m for m in sys.modules if m == 'ray' or m.startswith('ray.')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]", result.stdout + result.stderr


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("library")
    rng = np.random.default_rng(2)
    for index in range(NUM_FILES):
        seconds = 9.0 + 4 * (index % 5)  # 9-25 s: enough work to kill a node in the middle of
        t = np.arange(int(seconds * RATE)) / RATE
        audio = 0.3 * np.sin(2 * np.pi * (150 + 30 * index) * t) + 0.05 * rng.standard_normal(len(t))
        soundfile.write(str(library_file(folder, index)), audio.astype(np.float32), RATE)
    (folder / "broken.wav").write_bytes(b"RIFF broken")
    return folder


def library_file(folder: Path, index: int) -> Path:
    return folder / f"song{index:02d}.flac"


@pytest.fixture(scope="module")
def single_machine(library: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, pd.DataFrame]:
    out = tmp_path_factory.mktemp("local") / "r.parquet"
    windows = out.with_name("w.parquet")
    completed = subprocess.run([sys.executable, "-m", "mer_live", "analyze", str(library), "--out", str(out),
                                "--window-out", str(windows), "--jobs", "2", "-q"],
                               capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    assert completed.returncode == 2, completed.stderr  # the broken file
    return pd.read_parquet(out), pd.read_parquet(windows)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    pytest.importorskip("ray")
    sys.path.insert(0, str(Path(__file__).parent))
    from ray_nodes import LocalRayCluster

    with LocalRayCluster(tmp_path_factory.mktemp("ray"), nodes=2) as running:
        yield running


@pytest.mark.slow
def test_two_node_cluster_gives_the_single_machine_results(cluster, library: Path, single_machine, tmp_path: Path) -> None:
    out, windows = tmp_path / "r.parquet", tmp_path / "w.parquet"
    completed = subprocess.run([sys.executable, "-m", "mer_live", "analyze", str(library), "--out", str(out),
                                "--window-out", str(windows), "--ray", cluster.address, "--ray-actors", "2", "-q",
                                "--batch", "3"],  # several batches per file: gathered in order
                               capture_output=True, text=True, timeout=RUN_TIMEOUT_S, env=cluster.env)
    assert completed.returncode == 2, completed.stderr
    assert sum("error:" in line and "broken.wav" in line for line in completed.stderr.splitlines()) == 1
    pd.testing.assert_frame_equal(pd.read_parquet(out), single_machine[0])
    pd.testing.assert_frame_equal(pd.read_parquet(windows), single_machine[1])


@pytest.mark.slow
def test_killing_a_worker_node_mid_run_still_gives_every_file_once(cluster, library: Path, single_machine,
                                                                    tmp_path: Path) -> None:
    out = tmp_path / "r.parquet"
    journal = Path(str(out) + JOURNAL_SUFFIX)
    process = subprocess.Popen([sys.executable, "-m", "mer_live", "analyze", str(library), "--out", str(out),
                                "--ray", cluster.address, "--ray-actors", "2", "-q", "--batch", "2"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=cluster.env)
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while not (journal.exists() and journal.read_bytes().count(b"\n") >= KILL_AFTER_FILES):
        assert process.poll() is None, "finished before the node could be killed: " + process.stderr.read()
        assert time.monotonic() < deadline
        time.sleep(POLL_S)
    cluster.kill_node(cluster.nodes[1])
    done_at_kill = journal.read_bytes().count(b"\n")
    _, stderr = process.communicate(timeout=RUN_TIMEOUT_S)
    assert process.returncode == 2, stderr  # the broken file only
    assert done_at_kill < NUM_FILES + 1
    files = [json.loads(line)["file"] for line in journal.read_text().splitlines()]
    assert len(files) == NUM_FILES + 1 and len(set(files)) == NUM_FILES + 1  # every file exactly once
    pd.testing.assert_frame_equal(pd.read_parquet(out), single_machine[0])
