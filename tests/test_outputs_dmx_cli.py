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


def test_check_prints_a_shipped_map_to_start_from(tmp_path) -> None:
    done = _mer_live("dmx", "check", "level-bar", "--print")
    mine = tmp_path / "mine.toml"
    mine.write_text(done.stdout)
    assert done.returncode == 0 and _mer_live("dmx", "check", str(mine)).returncode == 0


def test_check_lists_the_sources() -> None:
    done = _mer_live("dmx", "check", "--sources")
    assert done.returncode == 0 and "contribution.tension.dissonance" in done.stdout.split()


def test_a_bad_map_is_one_line_with_file_and_line_and_exit_2(tmp_path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n[[channel]]\naddress = 0\nsource = "level"\n')
    for args in (["dmx", "check", str(bad)], ["--demo", "--dmx", str(bad), "--no-osc", "--no-control"]):
        done = _mer_live(*args)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2 and len(lines) == 1, done.stderr
        assert f"{bad}:3: channel 1: address 0 is out of range; use 1 to 512" in lines[0]


def test_a_bad_trigger_file_and_a_missing_map_exit_2(tmp_path) -> None:
    bad = tmp_path / "cues.toml"
    bad.write_text('[[trigger]]\nsource = "emotion.tension"\non = 2\n')
    done = _mer_live("dmx", "check", "rgb-wash", "--triggers", str(bad))
    assert done.returncode == 2 and f"{bad}:1: trigger 1: off is missing" in done.stderr
    done = _mer_live("--demo", "--dmx", "no-such-map", "--no-osc", "--no-control")
    assert done.returncode == 2 and "no-such-map" in done.stderr and "rgb-wash" in done.stderr


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


@pytest.mark.slow
@needs_ola
def test_daemon_sends_the_demo_over_sacn_to_olad_and_terminates_the_stream(tmp_path) -> None:
    config = tmp_path / "dmx.toml"
    config.write_text(f'[dmx]\nttl = 0\ncid_file = "{tmp_path / "cid"}"\n')
    with Olad() as olad:
        receiver = olad.receive(plugin="e131", universes=[1])
        done = _mer_live("--demo", "--duration", "12", "--dmx", "rgb-wash", "--config", str(config), "--no-osc", "--no-control",
                         "--triggers", "eos", timeout=180)
        assert done.returncode == 0, done.stderr
        cid = (tmp_path / "cid").read_text().strip()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and f"CID {cid} sent a termination for universe 1" not in olad.log_tail(50000):
            time.sleep(0.1)
        assert f"CID {cid} sent a termination for universe 1" in olad.log_tail(50000)
    frames = receiver.frames
    dimmer = {f.data[0] * 256 + f.data[1] for f in frames}
    assert len(frames) > 100 and len(dimmer) > 20  # the dimmer moved with the music, smoothly (many distinct levels)
    assert "frame(s) sent, 0 failed" in done.stderr
