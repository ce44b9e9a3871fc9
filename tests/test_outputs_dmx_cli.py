"""``mer-live dmx check|test``, ``mer-live calibrate`` and the daemon's ``--dmx`` / ``--triggers`` end to end:
one-line errors with exit 2, the patch sweep and the daemon's DMX received by OLA's olad."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from ola_fixture import Olad, ola_available

needs_ola = pytest.mark.skipif(ola_available() is not None, reason=str(ola_available()))


def _mer_live(*args: str, timeout: float = 120.0) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mer_live", *args], capture_output=True, text=True, timeout=timeout)


def test_check_prints_the_patch_and_the_triggers() -> None:
    done = _mer_live("dmx", "check", "rgb-wash", "--triggers", "eos")
    assert done.returncode == 0, done.stderr
    assert "rgb-wash: 2 channel rule(s), 1 fixture(s)" in done.stdout and "   1    1-2       16  dimmer" in done.stdout
    assert "tension peak: emotion.tension > 0.7 for 2 s" in done.stdout and "/eos/sub/1" in done.stdout


def test_check_lists_the_sources() -> None:
    done = _mer_live("dmx", "check", "--sources")
    assert done.returncode == 0 and "contribution.tension.dissonance" in done.stdout.split()


def test_calibrate_needs_a_log(tmp_path) -> None:
    done = _mer_live("calibrate", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "v.toml"))
    assert done.returncode == 2 and "missing.csv" in done.stderr and len(done.stderr.strip().splitlines()) == 1


@pytest.mark.slow
@needs_ola
def test_dmx_test_sweeps_each_slot_in_turn_to_olad() -> None:
    with Olad() as olad:
        receiver = olad.receive(plugin="artnet", universes=[16])
        done = _mer_live("dmx", "test", "rgb-wash", "--protocol", "artnet", "--host", "127.0.0.1", "--step", "0.4")
        assert done.returncode == 0, done.stderr
        assert "slot   3: wash +0" in done.stdout and "0 failed" in done.stdout
        peaks = {}
        for frame in receiver.frames:
            for slot in range(6):
                if frame.data[slot] > 200:
                    peaks.setdefault(slot, frame.time_s)
                    assert sum(1 for v in frame.data[:6] if v) == 1  # one slot at a time
        assert sorted(peaks) == list(range(6)) and sorted(peaks, key=peaks.get) == list(range(6))
