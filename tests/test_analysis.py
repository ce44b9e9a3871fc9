"""``mer-live analyze``: windows, per-file and per-window rows, padding flag, streaming equals offline,
batch size and job count do not change results, folders, bad files, resume, bounded memory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile
from hypothesis import given, settings
from hypothesis import strategies as st

from mer_live.audio import load_audio
from mer_live.offline import analysis
from mer_live.features import spectrogram
from mer_live.core import labels
from mer_live.offline.catalogue import analyse_file, find_files
from mer_live.model.emotion_model import MODEL_ENV, shipped_model_path
from mer_live.offline.recipe import RECIPES, SpectrogramWindows, WindowModel
from mer_live.offline.results import FILE_HEADER, JOURNAL_SUFFIX, WINDOW_HEADER

RATE_44K = 44100
VALUES = list(labels.EMOTIONS + labels.MID_LEVELS)
STDS = [name + "_std" for name in VALUES]


def _tone(seconds: float, rate: int, *, frequency: float = 220.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    tone = 0.3 * np.sin(2 * np.pi * frequency * t) * (1 + 0.5 * np.sin(2 * np.pi * 2 * t))
    return np.stack([tone, 0.1 * rng.standard_normal(len(t))], axis=1).astype(np.float32)


@pytest.fixture(scope="module")
def audio_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("audio")
    files = {"long": folder / "long song.flac", "short": folder / "short.wav", "bad": folder / "broken.wav"}
    soundfile.write(str(files["long"]), _tone(23.5, RATE_44K), RATE_44K)
    short_t = np.arange(int(4.2 * spectrogram.SAMPLE_RATE)) / spectrogram.SAMPLE_RATE
    soundfile.write(str(files["short"]), (0.2 * np.sin(2 * np.pi * 440 * short_t)).astype(np.float32),
                    spectrogram.SAMPLE_RATE)
    files["bad"].write_bytes(b"RIFF this is not a wave file")
    return files


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder tree of six good files of different lengths, rates and formats, and a non-audio file."""
    root = tmp_path_factory.mktemp("catalogue")
    (root / "a" / "b").mkdir(parents=True)
    specs = [("a/one.wav", 12.3, 44100), ("a/b/two.flac", 31.0, 48000), ("three.ogg", 9.0, 22050),
             ("a/b/four.WAV", 17.7, 16000), ("five.flac", 45.2, 44100), ("a/six.wav", 10.02, 32000)]
    for index, (name, seconds, rate) in enumerate(specs):
        soundfile.write(str(root / name), _tone(seconds, rate, frequency=110.0 * (index + 1), seed=index), rate)
    (root / "a" / "notes.txt").write_text("not audio")
    return root


@pytest.fixture(scope="module")
def shipped_model() -> Path:
    """v1, whose windows these tests count (v2's analyze: tests/test_inference_v2.py)."""
    path = shipped_model_path("v1")
    if not path.is_file():
        pytest.fail(f"the shipped model {path} is missing")
    return path


@pytest.fixture(autouse=True)
def _v1_by_default(shipped_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MODEL_ENV, str(shipped_model))


def test_good_files_give_per_file_and_per_window_rows(audio_files: dict[str, Path], shipped_model: Path,
                                                      tmp_path: Path) -> None:
    out, windows_out = tmp_path / "files.csv", tmp_path / "windows.csv"
    status = analysis.main([str(audio_files["long"]), str(audio_files["short"]), "--csv", str(out),
                            "--window-csv", str(windows_out), "--quiet"])
    assert status == 0
    per_file = pd.read_csv(out, keep_default_na=False)
    per_window = pd.read_csv(windows_out)
    assert tuple(per_file.columns) == FILE_HEADER and tuple(per_window.columns) == WINDOW_HEADER
    assert list(per_file["file"]) == [str(audio_files["long"]), str(audio_files["short"])]
    long_frames = spectrogram.frame_count(num_samples=int(round(23.5 * spectrogram.SAMPLE_RATE)))
    expected_windows = len(spectrogram.window_starts(total_frames=long_frames, hop_frames=31))
    assert expected_windows == 15  # 0, 1, ..., 13 s and one ending at the last frame
    assert list(per_file["num_windows"]) == [expected_windows, 1]
    assert list(per_file["padded"]) == [False, True]
    assert list(per_file["error"]) == ["", ""]
    assert per_file["duration_s"].iloc[0] == pytest.approx(23.5, abs=1e-3)
    assert set(per_file["model"]) == {"joint_ab_w0.25"} and set(per_window["model"]) == {"joint_ab_w0.25"}
    assert per_file["model_version"].iloc[0].startswith("0.1.0+sha256.")
    values = per_window[VALUES].to_numpy()
    assert np.all((values >= 0.0) & (values <= 1.0))
    long_rows = per_window[per_window["file"] == str(audio_files["long"])]
    assert list(long_rows["window"]) == list(range(expected_windows))
    np.testing.assert_allclose(np.diff(long_rows["start_s"].to_numpy()[:-1]), 31 / spectrogram.FPS, atol=1e-6)
    assert long_rows["end_s"].iloc[0] == pytest.approx(spectrogram.NUM_FRAMES / spectrogram.FPS, abs=1e-6)
    assert long_rows["end_s"].iloc[-1] == pytest.approx(23.5, abs=1e-6)  # the last window ends at the end
    np.testing.assert_allclose(per_file.iloc[0][VALUES].to_numpy(dtype=float),
                               long_rows[VALUES].mean().to_numpy(), atol=2e-6)
    np.testing.assert_allclose(per_file.iloc[0][STDS].to_numpy(dtype=float),
                               long_rows[VALUES].std(ddof=0).to_numpy(), atol=2e-6)
    assert np.all(per_file.iloc[1][STDS].to_numpy(dtype=float) == 0.0)  # one window: no spread


def test_values_are_the_model_outputs_on_the_whole_decoded_file(audio_files: dict[str, Path],
                                                                shipped_model: Path) -> None:
    """Block-wise decoding, resampling and streaming windows give exactly the offline values."""
    model = WindowModel(path=shipped_model)
    result = analyse_file(audio_files["long"], model=model, recipe=model.recipe, keep_windows=True)
    block = spectrogram.analyse(samples=load_audio(path=audio_files["long"]))
    starts = spectrogram.window_starts(total_frames=block.num_frames, hop_frames=31)
    windows = np.stack([spectrogram.window_at(block=block, start=s)[0] for s in starts])
    np.testing.assert_array_equal(result.windows.values, model.process(windows))
    np.testing.assert_array_equal(result.windows.starts_s, np.asarray(starts) / spectrogram.FPS)
    assert result.duration_s == len(load_audio(path=audio_files["long"])) / spectrogram.SAMPLE_RATE


@settings(max_examples=25, deadline=None)
@given(num_samples=st.integers(min_value=1, max_value=int(16.5 * spectrogram.SAMPLE_RATE)),
       chunk=st.integers(min_value=1, max_value=40000), batch=st.integers(min_value=1, max_value=9))
def test_streaming_windows_equal_offline_windows(num_samples: int, chunk: int, batch: int) -> None:
    samples = np.random.default_rng(num_samples).standard_normal(num_samples).astype(np.float32) * 0.1
    block = spectrogram.analyse(samples=samples)
    starts = spectrogram.window_starts(total_frames=block.num_frames, hop_frames=31)
    stream = SpectrogramWindows(batch_windows=batch)
    batches = [b for i in range(0, num_samples, chunk) for b in stream.process(samples[i:i + chunk])]
    batches += stream.flush()
    assert all(len(b) == batch for b in batches[:-1]) and 1 <= len(batches[-1]) <= batch
    np.testing.assert_array_equal(np.concatenate([b.starts_s for b in batches]), np.asarray(starts) / spectrogram.FPS)
    for got, start in zip(np.concatenate([b.inputs for b in batches]), starts):
        np.testing.assert_array_equal(got, spectrogram.window_at(block=block, start=start)[0])
    assert np.concatenate([b.padded for b in batches]).any() == (block.num_frames < spectrogram.NUM_FRAMES)


def test_results_do_not_depend_on_batch_size_or_job_count(catalogue: Path, shipped_model: Path,
                                                          tmp_path: Path) -> None:
    runs = {"b1j1": ["--batch", "1", "--jobs", "1"], "b7j2": ["--batch", "7", "--jobs", "2"]}
    texts = {}
    for name, options in runs.items():
        out, windows = tmp_path / f"{name}.csv", tmp_path / f"{name}.windows.csv"
        assert analysis.main([str(catalogue), "--csv", str(out), "--window-csv", str(windows), "-q", *options]) == 0
        texts[name] = (out.read_text(), windows.read_text())
    assert texts["b1j1"] == texts["b7j2"]
    assert len(texts["b1j1"][0].splitlines()) == 1 + 6


def test_folders_are_walked_with_extension_filters(catalogue: Path) -> None:
    everything = find_files([catalogue])
    assert [p.name for p in everything] == ["five.flac", "three.ogg", "one.wav", "six.wav", "four.WAV",
                                            "two.flac"]
    assert [p.name for p in find_files([catalogue], extensions=(".wav",))] == ["one.wav", "six.wav", "four.WAV"]
    named = find_files([catalogue / "a" / "notes.txt", catalogue / "a"], extensions=(".flac",))
    assert [p.name for p in named] == ["notes.txt", "two.flac"]  # a file named directly is always taken


def test_bad_files_get_an_error_row_and_the_rest_are_analysed(audio_files: dict[str, Path], shipped_model: Path,
                                                              tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "files.parquet"
    missing, empty, rate = tmp_path / "missing.mp3", tmp_path / "empty.mp3", tmp_path / "one_hertz.wav"
    empty.write_bytes(b"")
    soundfile.write(str(rate), np.zeros(3000, dtype=np.float32), 1)  # a header that claims 1 Hz
    status = analysis.main([str(audio_files["bad"]), str(audio_files["short"]), str(missing), str(empty), str(rate),
                            "--out", str(out), "-q"])
    assert status == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("mer-live analyze: error:")]
    for bad, reason in ((audio_files["bad"], "cannot decode"), (missing, "no such file"), (empty, "empty file"),
                        (rate, "sample rate 1 Hz")):
        assert sum(str(bad) in line and reason in line for line in errors) == 1, errors
    assert errors[-1] == "mer-live analyze: error: 4 of 5 file(s) could not be analysed"
    table = pd.read_parquet(out).set_index("file")
    assert len(table) == 5
    assert table.loc[str(audio_files["short"]), "error"] == "" and table.loc[str(audio_files["short"]), "num_windows"] == 1
    for bad in (audio_files["bad"], missing, empty, rate):
        assert table.loc[str(bad), "error"] and np.isnan(table.loc[str(bad), "valence"])


def test_bad_model_and_bad_output_folder_fail_cleanly(audio_files: dict[str, Path], tmp_path: Path,
                                                      capsys: pytest.CaptureFixture) -> None:
    assert analysis.main([str(audio_files["short"]), "--model", str(tmp_path / "none.onnx"), "-q"]) == 2
    assert "none.onnx" in capsys.readouterr().err
    assert analysis.main([str(audio_files["short"]), "--csv", str(tmp_path / "no" / "dir.csv"), "-q"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "does not exist" in err


def test_rerun_skips_done_files_and_redoes_changed_and_failed_ones(catalogue: Path, audio_files: dict[str, Path],
                                                                    shipped_model: Path, tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture) -> None:
    work = tmp_path / "work"
    work.mkdir()
    for source in sorted(catalogue.rglob("*.flac")):
        (work / source.name).write_bytes(source.read_bytes())
    flaky = work / "flaky.wav"
    flaky.write_bytes(b"RIFF not yet")
    out, windows = tmp_path / "r.parquet", tmp_path / "w.parquet"
    arguments = [str(work), "--out", str(out), "--window-out", str(windows), "-q", "--jobs", "1"]
    assert analysis.main(arguments) == 2
    first = pd.read_parquet(out)
    capsys.readouterr()
    os.utime(work / "two.flac", ns=(1, 1))  # "changed": a new mtime
    soundfile.write(str(flaky), _tone(11.0, RATE_44K), RATE_44K)  # now readable
    assert analysis.main(arguments) == 0
    assert "1 of 3 file(s) already done" in capsys.readouterr().err
    second = pd.read_parquet(out)
    assert sorted(second["file"]) == sorted(str(p) for p in work.iterdir())
    assert not second["file"].duplicated().any() and (second["error"] == "").all()
    journal = [json.loads(line) for line in Path(str(out) + JOURNAL_SUFFIX).read_text().splitlines()]
    assert len(journal) == 3 + 2  # five, two, flaky (failed), then two (changed) and flaky (fixed)
    kept = second.set_index("file").loc[str(work / "five.flac"), VALUES].to_numpy(dtype=float)
    np.testing.assert_array_equal(kept, first.set_index("file").loc[str(work / "five.flac"), VALUES].to_numpy(dtype=float))
    per_window = pd.read_parquet(windows)
    assert not per_window.duplicated(["file", "window"]).any()
    assert set(per_window["file"]) == set(second["file"])


def test_a_torn_journal_line_is_dropped_and_its_file_redone(audio_files: dict[str, Path], shipped_model: Path,
                                                             tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "r.csv"
    files = [str(audio_files["long"]), str(audio_files["short"])]
    assert analysis.main([*files, "--csv", str(out), "-q"]) == 0
    complete = out.read_text()
    journal = Path(str(out) + JOURNAL_SUFFIX)
    lines = journal.read_bytes().splitlines(keepends=True)
    journal.write_bytes(lines[0] + lines[1][: len(lines[1]) // 2])  # a kill in the middle of a write
    out.unlink()
    capsys.readouterr()
    assert analysis.main([*files, "--csv", str(out), "-q"]) == 0
    assert "1 of 2 file(s) already done" in capsys.readouterr().err
    assert out.read_text() == complete
    assert len(journal.read_text().splitlines()) == 2


def _peak_traced_bytes(path: Path, model: WindowModel) -> int:
    tracemalloc.start()
    try:
        analyse_file(path, model=model, recipe=RECIPES["spectrogram"])
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_does_not_grow_with_file_length(shipped_model: Path, tmp_path: Path) -> None:
    """Peak Python/NumPy allocation for a 3-minute file is that of a 1-minute file (both fill whole batches
    of windows); the 3-minute file decoded at once would be 64 MB of float32 stereo at 44.1 kHz."""
    model = WindowModel(path=shipped_model)
    short, long = tmp_path / "short.wav", tmp_path / "long.wav"
    soundfile.write(str(short), _tone(60.0, RATE_44K), RATE_44K, subtype="PCM_16")
    soundfile.write(str(long), _tone(180.0, RATE_44K), RATE_44K, subtype="PCM_16")
    short_peak, long_peak = _peak_traced_bytes(short, model), _peak_traced_bytes(long, model)
    assert long_peak < 1.1 * short_peak, (short_peak, long_peak)
    assert long_peak < 20_000_000


def test_cli_entry_point_writes_csv_to_stdout(audio_files: dict[str, Path], shipped_model: Path) -> None:
    completed = subprocess.run([sys.executable, "-m", "mer_live", "analyze", str(audio_files["short"])],
                               capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    header, row = completed.stdout.strip().splitlines()
    assert header.startswith("file,size_bytes,mtime_ns,duration_s,num_windows,padded,model,model_version,error,valence")
    assert row.startswith(str(audio_files["short"])) and ",True," in row
    assert "analysing" in completed.stderr and "loop-padded" in completed.stderr  # tqdm progress and the flag
    assert "audio-h/s" in completed.stderr
