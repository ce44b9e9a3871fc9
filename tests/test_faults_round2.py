"""Reliability round 2 (issue 23): each fault of the second fault run, with real processes and real signals.

Black-box through the command line (``python -m mer_live ...`` subprocesses): a CSV log deleted or
replaced mid-run, ``analyze`` pointed at an audio file for its output, closed stdout/stderr, unusable
output paths at start, a stalled process (SIGSTOP/SIGCONT), files that stop decoding early, ``analyze``
killed or terminated, unreadable and symlinked folders, a full disk (a small tmpfs), a JACK server that
restarts under a ``--midi-virtual`` port, and the lower ones (signals, messages, ``--jobs``, stale
results). docs/development/reliability.md has the rules and the fault table that names these tests.

Root is needed for the tmpfs cases (skipped with the reason otherwise); where a test needs a file that
root cannot read, the program runs under ``setpriv`` without the two capabilities that let root read
anything (``CAP_DAC_OVERRIDE``, ``CAP_DAC_READ_SEARCH``).
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile
from control_helpers import build_message
from osc_receivers import OscReceiver, free_udp_port
from pythonosc.osc_packet import OscPacket
from test_faults import LOOPBACK, RUN_TIMEOUT_S, _csv_rows, _env, _write_wav

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CSV_CELLS = 19
WAIT_S = 60.0  # generous: a busy 2-core machine
POLL_S = 0.05
ANALYZE_TIMEOUT_S = 240.0
FILE_RATE = 44100


# ------------------------------------------------------------------------------------------ helpers


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "mer_live", *args]


def _run(*args: str, prefix: tuple[str, ...] = (), timeout: float = ANALYZE_TIMEOUT_S) -> subprocess.CompletedProcess:
    return subprocess.run([*prefix, *_command(*args)], env=_env(), capture_output=True, text=True, timeout=timeout)


def _spawn(*args: str, err: Path, new_session: bool = False) -> subprocess.Popen:
    """The daemon (or a subcommand) with stderr into the file ``err`` (read while it runs)."""
    with err.open("w") as handle:
        return subprocess.Popen(_command(*args), env=_env(), stdout=subprocess.DEVNULL, stderr=handle,
                                stdin=subprocess.DEVNULL, start_new_session=new_session)


def _wait_for(condition, *, timeout: float = WAIT_S, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(POLL_S)


def _wait_exit(process: subprocess.Popen, *, timeout: float = WAIT_S) -> int:
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise


def _lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def _one_line_error(done: subprocess.CompletedProcess, *needles: str, code: int = 2) -> str:
    lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
    assert done.returncode == code, done.stderr[-3000:]
    # analyze ends a run with failed files with a count ("N of M file(s) could not be analysed")
    errors = [line for line in lines if ": error: " in line and "could not be analysed" not in line]
    assert len(errors) == 1, done.stderr[-3000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    for needle in needles:
        assert needle.lower() in errors[0].lower(), errors[0]
    return errors[0]


def _library(folder: Path, *, count: int, seconds: float = 12.0) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * FILE_RATE)) / FILE_RATE
    paths = []
    for index in range(count):
        audio = (0.3 * np.sin(2 * np.pi * (110 + 30 * index) * t)).astype(np.float32)
        paths.append(folder / f"take{index}.wav")
        soundfile.write(str(paths[-1]), audio, FILE_RATE, subtype="PCM_16")
    return paths


def _children(pid: int) -> list[int]:
    """The pids of ``pid``'s child processes (Linux /proc)."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(child) for child in text.split()]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _without_root_override() -> tuple[str, ...]:
    """A command prefix under which root cannot read a chmod-000 file or folder (nothing for other users)."""
    if os.geteuid() != 0:
        return ()
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) is not installed: root reads every file")
    return (setpriv, "--bounding-set=-dac_override,-dac_read_search")


@contextlib.contextmanager
def _tmpfs(path: Path, *, size: str, options: str = ""):
    """A small tmpfs mounted at ``path`` (root only), unmounted afterwards."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root")
    flags = f"size={size}" + (f",{options}" if options else "")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", flags, "tmpfs", str(path)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def _fill(folder: Path, *, leave_bytes: int) -> None:
    """Fill the file system of ``folder`` until about ``leave_bytes`` are free."""
    free = os.statvfs(folder).f_bavail * os.statvfs(folder).f_frsize
    with (folder / "filler").open("wb") as handle:
        handle.write(b"\0" * max(0, free - leave_bytes))


# -------------------------------------------------------------- 1: a CSV log deleted or replaced mid-run


FOREIGN_TEXT = "my notes for the show\n"


@pytest.mark.slow
@pytest.mark.parametrize("how", ["delete", "rotate", "replace-empty", "replace-foreign"])
def test_a_csv_log_deleted_or_replaced_mid_run_is_reopened_with_a_header(tmp_path: Path, how: str) -> None:
    """The log at ``--csv`` is deleted, rotated (renamed away), replaced by an empty file, or replaced by
    someone else's file while the daemon writes it. Every row goes somewhere: the rows before the change
    are in the old file (read here through a descriptor kept open), the rest in a new file at the path,
    which starts with the header; nothing is lost in the gap and the log says what happened. A foreign
    file put at the path is never written to: its rows are dropped and counted."""
    csv = tmp_path / "show.csv"
    err = tmp_path / "err.txt"
    rate, seconds = 10, 8
    process = _spawn("--demo", "--rate", str(rate), "--duration", str(seconds), "--no-osc", "--no-control",
                     "--csv", str(csv), "-q", err=err)
    try:
        _wait_for(lambda: _lines(csv) >= 21, what="20 rows")  # 2 s into the run
        old = csv.open("rb")
        if how == "delete":
            csv.unlink()
        elif how == "rotate":
            csv.rename(tmp_path / "show.csv.1")
        else:
            fresh = tmp_path / "fresh.csv"
            fresh.write_text("" if how == "replace-empty" else FOREIGN_TEXT)
            os.replace(fresh, csv)
        code = _wait_exit(process)
    finally:
        if process.poll() is None:
            process.kill()
    log = err.read_text()
    old_text = old.read().decode()
    old.close()
    assert code == 0, log
    old_rows = _csv_rows_text(old_text)
    if how == "replace-foreign":
        assert csv.read_text() == FOREIGN_TEXT, "a file that is not mer-live's was written to"
        assert "show.csv" in log and "header" in log and "dropped" in log, log
        return
    new_rows = _csv_rows(csv)
    times = [float(row[1]) for row in old_rows + new_rows]
    expected = [round((k + 1) / rate, 3) for k in range(seconds * rate)]
    assert times == expected, f"rows lost or repeated around the change: {len(old_rows)} old, {len(new_rows)} new"
    assert old_rows and new_rows
    assert "show.csv" in log and "reopen" in log.lower(), log


def _csv_rows_text(text: str) -> list[list[str]]:
    lines = text.splitlines()
    assert lines and lines[0].startswith("time,stream_time_s,state"), lines[:1]
    rows = [line.split(",") for line in lines[1:]]
    assert all(len(row) == CSV_CELLS for row in rows)
    return rows


# ------------------------------------------------- 2: analyze never overwrites a file that is not its own


@pytest.mark.parametrize("option, target", [
    ("--out", "input"), ("--csv", "input"), ("--csv", "other-audio"), ("--out", "foreign-csv"),
    ("--window-csv", "input"),
])
def test_analyze_refuses_to_overwrite_an_input_or_audio_file(tmp_path: Path, option: str, target: str) -> None:
    library = tmp_path / "lib"
    (take,) = _library(library, count=1, seconds=3.0)
    other = _write_wav(tmp_path / "other.wav", seconds=1.0)
    foreign = tmp_path / "inventory.csv"
    foreign.write_text("shelf,box\n1,2\n")
    path = {"input": take, "other-audio": other, "foreign-csv": foreign}[target]
    before = path.read_bytes()
    done = _run("analyze", str(library), option, str(path), "-q")
    _one_line_error(done, str(path), "not")
    assert path.read_bytes() == before, "the file was overwritten"
    assert not list(path.parent.glob("*.tmp")) and not list(path.parent.glob("*.journal")), list(path.parent.iterdir())


def test_an_output_whose_journal_is_gone_is_replaced_with_a_word(tmp_path: Path) -> None:
    """A results file of an earlier run whose journal was deleted: replaced, and the log says so."""
    library = tmp_path / "lib"
    _library(library, count=1, seconds=3.0)
    out = tmp_path / "means.csv"
    first = _run("analyze", str(library), "--csv", str(out), "-q")
    assert first.returncode == 0, first.stderr
    Path(str(out) + ".journal").unlink()
    again = _run("analyze", str(library), "--csv", str(out), "-q")
    assert again.returncode == 0, again.stderr
    assert str(out) in again.stderr and "journal" in again.stderr and "replac" in again.stderr, again.stderr


# --------------------------------------------------------------------- 3: closed stdout / stderr / stdin


@pytest.mark.parametrize("closed", [">&-", ">&- 2>&-", "<&- >&- 2>&-"])
def test_closed_standard_streams_at_start_up_still_give_a_whole_run(tmp_path: Path, closed: str) -> None:
    """Started from a service or a script with stdout (and stderr, stdin) closed: the run is whole and
    the CSV holds only rows (nothing else lands on a descriptor the CSV got)."""
    csv = tmp_path / "c.csv"
    command = " ".join(_command("--demo", "--fast", "--duration", "3", "--rate", "10", "--no-osc", "--no-control", "--csv", str(csv)))
    done = subprocess.run(["bash", "-c", f"exec {command} {closed}"], env=_env(), capture_output=True, text=True,
                          timeout=RUN_TIMEOUT_S)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = _csv_rows(csv)
    assert len(rows) == 30 and all(len(row) == CSV_CELLS for row in rows), csv.read_text()[-2000:]


# --------------------------------------------------- 4: an unusable output at start is exit 2, with its cause


@pytest.mark.parametrize("kind", ["no-folder", "a-folder", "dev-full", "read-only"])
def test_an_unusable_csv_path_is_a_one_line_error_with_its_cause(tmp_path: Path, kind: str) -> None:
    with contextlib.ExitStack() as stack:
        if kind == "no-folder":
            path, cause = tmp_path / "nodir" / "x.csv", "no such file"
        elif kind == "a-folder":
            path, cause = tmp_path, "is a directory"
        elif kind == "dev-full":
            path, cause = Path("/dev/full"), "no space left"
        else:
            folder = stack.enter_context(_tmpfs(tmp_path / "ro", size="64k", options="ro"))
            path, cause = folder / "x.csv", "read-only file system"
        done = _run("--demo", "--fast", "--duration", "2", "--no-osc", "--no-control", "--csv", str(path), "-q",
                    timeout=RUN_TIMEOUT_S)
    _one_line_error(done, "--csv", str(path), cause)


def test_an_osc_host_that_does_not_exist_is_a_one_line_error_with_its_cause() -> None:
    done = _run("--demo", "--fast", "--duration", "2", "--no-control", "--osc", "no-such-host.invalid:9000", "-q",
                timeout=RUN_TIMEOUT_S)
    line = _one_line_error(done, "no-such-host.invalid")
    assert "cannot keep up" not in done.stderr and ("not known" in line or "resolve" in line), line


# ------------------------------------------------------------------------- 5: a stall, then the present


@pytest.mark.slow
def test_after_a_stall_the_run_jumps_to_the_present_without_a_burst(tmp_path: Path) -> None:
    """SIGSTOP for 8 s (a VM pause, a laptop swapped out), then SIGCONT: no burst of stale updates, the
    stream time jumps by the lost time (so it keeps pace with the wall clock), and the log says how much
    was lost."""
    csv = tmp_path / "rows.csv"
    err = tmp_path / "err.txt"
    rate, stall_s = 4, 8.0
    process = _spawn("--demo", "--rate", str(rate), "--duration", "30", "--no-osc", "--no-control",
                     "--csv", str(csv), "-q", err=err)
    try:
        _wait_for(lambda: _lines(csv) >= 1 + 3 * rate, what="3 s of rows")
        process.send_signal(signal.SIGSTOP)
        time.sleep(stall_s)
        process.send_signal(signal.SIGCONT)
        resumed = time.time()
        code = _wait_exit(process)
    finally:
        if process.poll() is None:
            process.kill()
    log = err.read_text()
    assert code == 0, log
    rows = _csv_rows(csv)
    walls = np.array([_epoch(row[0]) for row in rows])
    streams = np.array([float(row[1]) for row in rows])
    after = walls >= resumed
    assert after.sum() >= 5 * rate, "too few rows after the stall"
    burst = max(np.sum((walls >= t) & (walls < t + 1.0)) for t in walls[after])
    assert burst <= rate + 3, f"{burst} updates within one second after the stall: a burst"
    lag_before = np.median((walls - streams)[~after])
    lag_after = np.median((walls - streams)[after][2 * rate:])  # once the analysis has warmed up again
    assert abs(lag_after - lag_before) < 1.5, f"stream time is {lag_after - lag_before:.1f} s behind the wall clock"
    stalled = [line for line in log.splitlines() if "stall" in line]
    assert stalled, log
    lost = float(re.search(r"([\d.]+) s of audio skipped", stalled[0]).group(1))
    assert stall_s - 1.5 <= lost <= stall_s + 3.0, stalled[0]


def _epoch(stamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(stamp).timestamp()


# ---------------------------------------------------------------------- 6: files that stop decoding early


def _truncated_mp3(path: Path) -> Path:
    """An MP3 whose Xing header gives 15 s, cut after about 0.4 s of audio."""
    full = path.with_name("full.mp3")
    t = np.arange(15 * FILE_RATE) / FILE_RATE
    soundfile.write(str(full), (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), FILE_RATE)
    data = full.read_bytes()
    path.write_bytes(data[: int(len(data) * 0.4 / 15)])
    return path


def _truncated_wav(path: Path) -> Path:
    """A 15 s WAV whose data stops after a third."""
    full = _write_wav(path.with_name("full.wav"), seconds=15.0, rate=FILE_RATE)
    data = full.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    return path


@pytest.mark.parametrize("make", [_truncated_mp3, _truncated_wav], ids=["mp3", "wav"])
def test_a_file_that_stops_decoding_early_is_an_error(tmp_path: Path, make) -> None:
    path = make(tmp_path / f"cut{make.__name__[-4:].replace('_', '.')}")
    done = _run("analyze", str(path), "--csv", str(tmp_path / "out.csv"), "-q")
    _one_line_error(done, str(path), "stops")
    live = _run("--input", str(path), "--fast", "--no-osc", "--no-control", "-q", timeout=RUN_TIMEOUT_S)
    _one_line_error(live, str(path), "stops")


# ------------------------------------------------------------------------ 7: killing analyze ends its workers


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_killing_analyze_ends_its_worker_processes(tmp_path: Path, sig: int) -> None:
    library = tmp_path / "lib"
    _library(library, count=12, seconds=20.0)
    out = tmp_path / "means.parquet"
    journal = Path(str(out) + ".journal")
    err = tmp_path / "err.txt"
    process = _spawn("analyze", str(library), "--out", str(out), "--jobs", "2", "-q", err=err, new_session=True)
    try:
        _wait_for(lambda: _lines(journal) >= 1, timeout=ANALYZE_TIMEOUT_S, what="the first file")
        workers = [pid for pid in _children(process.pid)
                   if b"resource_tracker" not in Path(f"/proc/{pid}/cmdline").read_bytes()]
        assert workers, "no pool workers found"
        os.kill(process.pid, sig)
        code = _wait_exit(process)
        _wait_for(lambda: not any(_alive(pid) for pid in workers), timeout=20.0, what="the workers to end")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    if sig == signal.SIGTERM:
        log = err.read_text()
        assert code == 128 + signal.SIGTERM, log
        assert "terminated" in log and "run the same command" in log and "Traceback" not in log, log


# ---------------------------------------------------------------- 8: unreadable and symlinked folders


def test_unreadable_and_symlinked_folders_are_reported_or_followed(tmp_path: Path) -> None:
    library = tmp_path / "lib"
    _library(library / "a", count=1, seconds=3.0)
    _library(tmp_path / "elsewhere", count=1, seconds=3.0)
    (library / "linked").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    (library / "loop").symlink_to(library, target_is_directory=True)
    locked = library / "locked"
    _library(locked, count=1, seconds=3.0)
    locked.chmod(0)
    out = tmp_path / "means.csv"
    try:
        done = _run("analyze", str(library), "--csv", str(out), "-q", prefix=_without_root_override())
    finally:
        locked.chmod(0o755)
    assert done.returncode == 2, done.stderr
    assert "locked" in done.stderr and "permission denied" in done.stderr.lower(), done.stderr
    files = sorted(Path(line.split(",")[0]).relative_to(library).as_posix() for line in out.read_text().splitlines()[1:])
    assert files == ["a/take0.wav", "linked/take0.wav"], files  # the link followed once, the loop not again


# ------------------------------------------------------------------------------ 9: a full disk, --out a folder


@pytest.mark.slow
@pytest.mark.parametrize("leave_kib", [2, 24])
def test_a_full_disk_is_one_line_and_leaves_no_temporary_files(tmp_path: Path, leave_kib: int) -> None:
    """The output folder is a small tmpfs, filled up to ``leave_kib``: 2 KiB runs out while the journal
    is appended, 24 KiB while the outputs are written. Either way: one error line naming the cause,
    exit 1, no ``.tmp`` files left, and the journal (what fitted) kept for the rerun."""
    library = tmp_path / "lib"
    _library(library, count=6, seconds=11.0)
    with _tmpfs(tmp_path / "disk", size="256k") as disk:
        _fill(disk, leave_bytes=leave_kib * 1024)
        out = disk / "means.parquet"
        done = _run("analyze", str(library), "--out", str(out), "--window-out", str(disk / "windows.parquet"),
                    "--jobs", "1", "-q")
        left = sorted(p.name for p in disk.iterdir())
    _one_line_error(done, "no space left", code=1)
    assert not [name for name in left if name.endswith(".tmp")], left


def test_out_naming_a_folder_fails_at_start(tmp_path: Path) -> None:
    library = tmp_path / "lib"
    _library(library, count=1, seconds=3.0)
    done = _run("analyze", str(library), "--out", str(tmp_path), "-q")
    _one_line_error(done, str(tmp_path), "folder")
    assert not Path(str(tmp_path) + ".journal").exists(), "refused only after analysing"


# -------------------------------------------------------- 10: a --midi-virtual port on a JACK that restarts


@pytest.mark.slow
def test_a_virtual_midi_port_comes_back_after_the_jack_server_restarts(tmp_path: Path) -> None:
    if shutil.which("jackd") is None or shutil.which("jack_midi_dump") is None:
        pytest.skip("jackd2 is not installed")
    pytest.importorskip("rtmidi")
    from test_midi import JackMidi, dump_messages

    err = tmp_path / "err.txt"
    server = JackMidi()
    process = None
    try:
        with err.open("w") as handle:
            process = subprocess.Popen(
                _command("--demo", "--rate", "10", "--duration", "40", "--midi-virtual", "show", "--midi-api", "jack",
                         "--no-osc", "--no-control", "-q"),
                env=dict(server.env, PYTHONPATH=str(PROJECT_ROOT)), stdout=subprocess.DEVNULL, stderr=handle,
            )
        _wait_for(lambda: "mer-live:show" in server.ports(), what="the virtual port")
        server.stop()
        time.sleep(3.0)
        server = JackMidi()  # the same server name: what a restart of the JACK server gives
        _wait_for(lambda: "mer-live:show" in server.ports(), what="the virtual port after the restart")
        receiver = server.dump()
        subprocess.run(["jack_connect", "mer-live:show", "dumper:input"], env=server.env, check=True)
        time.sleep(2.0)
        messages = dump_messages(receiver)
        process.send_signal(signal.SIGTERM)
        code = _wait_exit(process)
    finally:
        if process is not None and process.poll() is None:
            process.kill()
        server.stop()
    log = err.read_text()
    assert code == 0, log
    assert messages, "nothing reached the receiver after the restart"
    assert "gone" in log and "back" in log, log
    final = [line for line in log.splitlines() if "MIDI" in line and "dropped" in line]
    assert final and int(final[-1].split(" dropped")[0].split()[-1]) > 0, log


# -------------------------------------------------------------------------------------- 11: the lower ones


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGINT, signal.SIGTERM])
def test_int_term_and_hup_end_the_run_with_its_final_status(tmp_path: Path, sig: int) -> None:
    rx = OscReceiver()
    err = tmp_path / "err.txt"
    try:
        process = _spawn("--demo", "--rate", "10", "--osc", f"{LOOPBACK}:{rx.port}", "--no-control", "-q", err=err)
        assert rx.wait_for(lambda r: len(r.update_times()) >= 5, timeout=WAIT_S), err.read_text()
        process.send_signal(sig)
        code = _wait_exit(process)
        rx.wait_for(lambda r: any(args[0] == "no-input" for _, args in r.statuses()), timeout=5.0)
        finals = [args for _, args in rx.statuses() if args[0] == "no-input"]
    finally:
        rx.close()
    assert code == 0, err.read_text()
    assert finals, "no final status"


def _maps(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return ""


@pytest.mark.slow
@pytest.mark.parametrize("delay_s", [0.0, 0.05, 0.1, 0.2, 0.4, 0.8])
def test_sigint_early_in_start_up_is_a_clean_exit(tmp_path: Path, delay_s: float) -> None:
    """Ctrl-C while mer-live is still importing and loading (``delay_s`` after numpy, its first big
    import, is in; before that it is Python's own start-up, whose interrupt mer-live cannot catch):
    no traceback, exit 0 (the run ended cleanly) or 130."""
    process = subprocess.Popen(_command("--demo", "--no-osc", "--no-control", "-q"), env=_env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(lambda: "_multiarray_umath" in _maps(process.pid) or process.poll() is not None, what="numpy")
        time.sleep(delay_s)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=WAIT_S)
    finally:
        if process.poll() is None:
            process.kill()
    assert "Traceback" not in err, err
    # -SIGINT: the signal came while Python was finalising, which restores the default handler (rare)
    assert process.returncode in (0, 128 + signal.SIGINT, -signal.SIGINT), (process.returncode, err)


def test_a_garbage_mp3_says_it_is_not_audio(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.mp3"
    garbage.write_bytes(np.random.default_rng(3).integers(0, 256, 20000, dtype=np.uint8).tobytes())
    for done in (_run("--input", str(garbage), "--no-osc", "--no-control", "-q", timeout=RUN_TIMEOUT_S),
                 _run("analyze", str(garbage), "--csv", str(tmp_path / "out.csv"), "-q")):
        line = _one_line_error(done, str(garbage), "not")
        assert "does not exist" not in line and "pipe" not in line, line


def test_an_unreadable_file_says_permission_denied(tmp_path: Path) -> None:
    locked = _write_wav(tmp_path / "locked.wav", seconds=1.0)
    locked.chmod(0)
    prefix = _without_root_override()
    for done in (_run("--input", str(locked), "--no-osc", "--no-control", "-q", prefix=prefix, timeout=RUN_TIMEOUT_S),
                 _run("analyze", str(locked), "--csv", str(tmp_path / "out.csv"), "-q", prefix=prefix)):
        line = _one_line_error(done, str(locked), "permission denied")
        assert "System error" not in line, line


def test_an_ipv6_osc_target_without_a_port_asks_for_the_port() -> None:
    done = _run("--demo", "--fast", "--duration", "1", "--no-control", "--osc", "[::1]", "-q", timeout=RUN_TIMEOUT_S)
    line = _one_line_error(done, "[::1]", "port")
    assert "brackets" not in line, line


def test_a_negative_zero_change_threshold_is_stored_as_zero(tmp_path: Path) -> None:
    port = free_udp_port()
    err = tmp_path / "err.txt"
    process = _spawn("--demo", "--rate", "10", "--no-osc", "--control", f"{LOOPBACK}:{port}", "-q", err=err)
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.settimeout(1.0)
    try:
        _wait_for(lambda: "control port" in err.read_text(), what="the control port")
        client.sendto(build_message("/mer/change", -0.0), (LOOPBACK, port))
        deadline = time.monotonic() + WAIT_S
        change = None
        while change != 0.0:  # the default is 0.2: wait until the new value is applied (-0.0 == 0.0 too)
            assert time.monotonic() < deadline, err.read_text()
            client.sendto(build_message("/mer/query"), (LOOPBACK, port))
            with contextlib.suppress(socket.timeout):
                for item in OscPacket(client.recv(65536)).messages:
                    if item.message.address == "/mer/config/change":
                        change = item.message.params[0]
    finally:
        client.close()
        process.send_signal(signal.SIGTERM)
        _wait_exit(process)
    assert change == 0.0 and math.copysign(1.0, change) > 0, change


def test_more_jobs_than_cores_are_capped_with_a_word(tmp_path: Path) -> None:
    library = tmp_path / "lib"
    _library(library, count=1, seconds=3.0)
    cores = len(os.sched_getaffinity(0))
    done = _run("analyze", str(library), "--csv", str(tmp_path / "out.csv"), "--jobs", str(8 * cores), "-q")
    assert done.returncode == 0, done.stderr
    assert f"--jobs {8 * cores}" in done.stderr and f"{cores} core" in done.stderr, done.stderr


def test_a_file_restored_to_the_same_size_and_mtime_is_analysed_again(tmp_path: Path) -> None:
    library = tmp_path / "lib"
    (take,) = _library(library, count=1, seconds=3.0)
    out = tmp_path / "means.csv"
    first = _run("analyze", str(library), "--csv", str(out), "-q")
    assert first.returncode == 0, first.stderr
    before = out.read_text().splitlines()[1]
    stat = take.stat()
    t = np.arange(3 * FILE_RATE) / FILE_RATE
    noise = (0.3 * np.random.default_rng(5).standard_normal(len(t))).astype(np.float32)
    soundfile.write(str(take), np.clip(noise, -1, 1), FILE_RATE, subtype="PCM_16")  # same size: same frames
    os.utime(take, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert take.stat().st_size == stat.st_size and take.stat().st_mtime_ns == stat.st_mtime_ns
    again = _run("analyze", str(library), "--csv", str(out), "-q")
    assert again.returncode == 0, again.stderr
    assert "already done" not in again.stderr, again.stderr
    assert out.read_text().splitlines()[1] != before, "a stale result was kept"


class _DroppingSink:
    """A sink that drops the updates numbered in ``drops`` (and says why), delivering the others."""

    name = "flaky"

    def __init__(self, *, drops: set[int]) -> None:
        self.drops, self.seen, self.delivered, self.dropped, self.problem = drops, 0, 0, 0, ""

    def process(self, *, reading) -> None:
        self.seen += 1
        if self.seen in self.drops:
            self.dropped += 1
            self.problem = "the receiver refused it"
        else:
            self.delivered += 1

    def close(self) -> None:
        pass


def test_drop_log_lines_count_drops_not_updates(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """Two drops among 60 updates over more than one log window: the lines say 2 drops in all and the
    sink's reason, never a count of the updates that went by."""
    import logging

    from mer_live.core.reading import Reading
    from mer_live.outputs import base as output

    monkeypatch.setattr(output, "LOG_INTERVAL_S", 0.2)
    sink = _DroppingSink(drops={3, 30})
    stage = output.Output(sinks=[sink])
    with caplog.at_level(logging.WARNING, logger="mer_live"):
        for index in range(60):
            stage.process(reading=Reading(stream_time_s=index / 10, wall_time=0.0, state="running", level_dbfs=-20.0,
                                          overflows=0, updates=index + 1))
            _wait_for(lambda: sink.seen == index + 1, what="the lane")
            time.sleep(0.01)
        stage.close()
    lines = [r.getMessage() for r in caplog.records if "flaky" in r.getMessage() and "dropped" in r.getMessage()]
    assert lines, caplog.text
    assert not any("more like this" in line for line in caplog.text.splitlines()), caplog.text
    counted = [int(re.search(r"flaky: (\d+) update\(s\) dropped", line).group(1)) for line in lines
               if re.search(r"flaky: (\d+) update\(s\) dropped", line)]
    assert sum(counted) == 2 and all("refused" in line for line in lines if "update(s) dropped" in line), lines
    assert "58 update(s) delivered, 2 dropped" in caplog.text, caplog.text
