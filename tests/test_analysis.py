"""``mer-live analyze``: windows, per-file and per-window CSV, padding flag, unreadable files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile

from mer_live import analysis, features, labels
from mer_live.model import default_model_path

RATE_44K = 44100


@pytest.fixture(scope="module")
def audio_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("audio")
    rng = np.random.default_rng(0)
    t = np.arange(int(23.5 * RATE_44K)) / RATE_44K
    long_audio = 0.3 * np.sin(2 * np.pi * 220 * t) * (1 + 0.5 * np.sin(2 * np.pi * 2 * t))
    stereo = np.stack([long_audio, 0.1 * rng.standard_normal(len(t))], axis=1).astype(np.float32)
    files = {"long": folder / "long song.flac", "short": folder / "short.wav", "bad": folder / "broken.wav"}
    soundfile.write(str(files["long"]), stereo, RATE_44K)
    short_t = np.arange(int(4.2 * features.SAMPLE_RATE)) / features.SAMPLE_RATE
    soundfile.write(str(files["short"]), (0.2 * np.sin(2 * np.pi * 440 * short_t)).astype(np.float32),
                    features.SAMPLE_RATE)
    files["bad"].write_bytes(b"RIFF this is not a wave file")
    return files


@pytest.fixture(scope="module")
def shipped_model() -> Path:
    path = default_model_path()
    if not path.is_file():
        pytest.fail(f"the shipped model {path} is missing")
    return path


def test_good_files_give_per_file_and_per_window_rows(audio_files: dict[str, Path], shipped_model: Path,
                                                      tmp_path: Path) -> None:
    out, windows_out = tmp_path / "files.csv", tmp_path / "windows.csv"
    status = analysis.main([str(audio_files["long"]), str(audio_files["short"]), "--csv", str(out),
                            "--window-csv", str(windows_out), "--quiet"])
    assert status == 0
    per_file = pd.read_csv(out)
    per_window = pd.read_csv(windows_out)
    assert list(per_file.columns) == ["file", "duration_s", "num_windows", "padded", *labels.EMOTIONS, *labels.MID_LEVELS]
    assert list(per_file["file"]) == [str(audio_files["long"]), str(audio_files["short"])]
    long_frames = features.frame_count(num_samples=int(round(23.5 * features.SAMPLE_RATE)))
    expected_windows = len(features.window_starts(total_frames=long_frames, hop_frames=31))
    assert expected_windows == 15  # 0, 1, ..., 13 s and one ending at the last frame
    assert list(per_file["num_windows"]) == [expected_windows, 1]
    assert list(per_file["padded"]) == [False, True]
    assert per_file["duration_s"].iloc[0] == pytest.approx(23.5, abs=1e-3)
    values = per_window[list(labels.EMOTIONS + labels.MID_LEVELS)].to_numpy()
    assert np.all((values >= 0.0) & (values <= 1.0))
    long_rows = per_window[per_window["file"] == str(audio_files["long"])]
    assert list(long_rows["window"]) == list(range(expected_windows))
    np.testing.assert_allclose(np.diff(long_rows["start_s"].to_numpy()[:-1]), 31 / features.FPS, atol=1e-6)
    assert long_rows["end_s"].iloc[0] == pytest.approx(features.NUM_FRAMES / features.FPS, abs=1e-6)
    assert long_rows["end_s"].iloc[-1] == pytest.approx(23.5, abs=1e-6)  # the last window ends at the end
    means = long_rows[list(labels.EMOTIONS + labels.MID_LEVELS)].mean().to_numpy()
    np.testing.assert_allclose(per_file.iloc[0][list(labels.EMOTIONS + labels.MID_LEVELS)].to_numpy(dtype=float),
                               means, atol=2e-6)


def test_values_are_the_model_outputs_in_sent_units(audio_files: dict[str, Path], shipped_model: Path) -> None:
    from mer_live.model import EmotionModel

    runtime = EmotionModel(path=shipped_model)
    result = analysis.analyse_file(model=runtime, path=audio_files["long"])
    block = features.analyse(samples=features.load_audio(path=audio_files["long"]))
    window, _ = features.window_at(block=block, start=31 * 3)
    direct = runtime.process(windows=window)
    np.testing.assert_allclose(result.emotion[3], np.clip(labels.emotion_to_unit(model_values=direct.emotion[0]), 0, 1),
                               atol=1e-9)
    np.testing.assert_allclose(result.mid[3], np.clip(labels.mid_to_unit(model_values=direct.mid[0]), 0, 1), atol=1e-9)


def test_unreadable_file_is_named_and_the_rest_analysed(audio_files: dict[str, Path], shipped_model: Path,
                                                        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "files.csv"
    missing = tmp_path / "missing.mp3"
    status = analysis.main([str(audio_files["bad"]), str(audio_files["short"]), str(missing), "--csv", str(out), "-q"])
    assert status != 0
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert any(str(audio_files["bad"]) in line for line in errors)
    assert any(str(missing) in line for line in errors)
    assert list(pd.read_csv(out)["file"]) == [str(audio_files["short"])]


def test_bad_model_and_bad_output_folder_fail_cleanly(audio_files: dict[str, Path], tmp_path: Path,
                                                      capsys: pytest.CaptureFixture) -> None:
    assert analysis.main([str(audio_files["short"]), "--model", str(tmp_path / "none.onnx"), "-q"]) == 2
    assert "none.onnx" in capsys.readouterr().err
    assert analysis.main([str(audio_files["short"]), "--csv", str(tmp_path / "no" / "dir.csv"), "-q"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "does not exist" in err


def test_cli_entry_point_writes_csv_to_stdout(audio_files: dict[str, Path], shipped_model: Path) -> None:
    completed = subprocess.run([sys.executable, "-m", "mer_live", "analyze", str(audio_files["short"])],
                               capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    header, row = completed.stdout.strip().splitlines()
    assert header.startswith("file,duration_s,num_windows,padded,valence")
    assert row.startswith(str(audio_files["short"])) and ",True," in row
    assert "analysing" in completed.stderr and "loop-padded" in completed.stderr  # tqdm progress and the flag
