"""The package installs like one: a wheel built from this tree, installed into a fresh virtual environment
(no system site packages, nothing from this checkout on the path), runs the demo through the whole live
pipeline with the model it carries, from a folder that has nothing of mer-live in it: with a built-in preset
(``--config maxmsp``), fast and paced in real time; lists its presets, copies its receiver patches out, prints
its config; and ``mer-live-train`` (no torch there) says how to install the train extra."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import time
import venv
import zipfile
from pathlib import Path

import pytest

from mer_live.core import labels

PROJECT_ROOT = Path(__file__).resolve().parent.parent
BUILD_TIMEOUT_S = 300
INSTALL_TIMEOUT_S = 600
RUN_TIMEOUT_S = 120
DEMO_SECONDS = 5
UPDATES_PER_S = 4
SHIPPED_MODEL = "mer_live/model/assets/a2mid2e_joint.onnx"
PACKAGE_DATA = ("mer_live/config/presets/maxmsp.toml", "mer_live/examples/puredata/mer-live.pd",
                "mer_live/examples/maxmsp/mer-live.maxpat", "mer_live/examples/supercollider/mer-live.scd",
                "mer_live/outputs/web/static/index.html", "mer_live/outputs/web/static/app.js",
                "mer_live/outputs/web/static/style.css")
DEMO_PIECE_S = 40  # the demo piece's length (two 20 s sections)
PRESET_UPDATES_PER_S = 10  # the maxmsp preset's rate
PACED_S = 2


def _clean_env(*, venv_dir: Path) -> dict[str, str]:
    """The environment of a user who only has the venv: no PYTHONPATH, no model override."""
    env = {key: value for key, value in os.environ.items() if key not in {"PYTHONPATH", "MER_MODEL", "VIRTUAL_ENV", "PYTHONHOME"}}
    env["PATH"] = f"{venv_dir / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env


@pytest.mark.slow
def test_a_wheel_runs_the_demo_in_a_fresh_venv(tmp_path: Path) -> None:
    source = tmp_path / "source"  # a copy of what a wheel is built from, so the build writes nothing here
    shutil.copytree(PROJECT_ROOT / "mer_live", source / "mer_live", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(PROJECT_ROOT / name, source / name)
    wheels = tmp_path / "wheels"
    build = subprocess.run(  # pip builds in an isolated environment with the build-system requirements
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "--disable-pip-version-check", "-w", str(wheels), str(source)],
        timeout=BUILD_TIMEOUT_S, capture_output=True, text=True,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    (wheel,) = wheels.glob("mer_live-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert SHIPPED_MODEL in names, sorted(n for n in names if not n.endswith(".py"))
    assert set(PACKAGE_DATA) <= names, sorted(n for n in names if not n.endswith(".py"))
    assert not any(name.startswith(("tests/", "models/", "benchmarks/")) for name in names)

    venv_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, system_site_packages=False, clear=True).create(venv_dir)
    python = venv_dir / "bin" / "python"
    env = _clean_env(venv_dir=venv_dir)
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(wheel)],
        timeout=INSTALL_TIMEOUT_S, capture_output=True, text=True, env=env, cwd=tmp_path,
    )
    assert install.returncode == 0, install.stderr[-3000:]

    where = subprocess.run(
        [str(python), "-c", "import mer_live.model.emotion_model as m; print(m.__file__); print(m.shipped_model_path())"],
        check=True, capture_output=True, text=True, env=env, cwd=tmp_path,
    ).stdout.split()
    assert all(Path(p).is_relative_to(venv_dir) for p in where), where

    out = tmp_path / "demo.csv"
    run = subprocess.run(
        [str(venv_dir / "bin" / "mer-live"), "--demo", "--fast", "--duration", str(DEMO_SECONDS),
         "--no-osc", "--no-control", "-q", "--csv", str(out)],
        timeout=RUN_TIMEOUT_S, capture_output=True, text=True, env=env, cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    with open(out, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == DEMO_SECONDS * UPDATES_PER_S
    assert float(rows[-1]["stream_time_s"]) == pytest.approx(DEMO_SECONDS)
    values = [[float(row[name]) for name in labels.EMOTIONS + labels.MID_LEVELS] for row in rows]
    assert all(0.0 <= v <= 1.0 for row in values for v in row)
    assert len({tuple(row) for row in values}) > 1  # the readings move with the music

    help_text = subprocess.run(
        [str(venv_dir / "bin" / "mer-live"), "--help"], capture_output=True, text=True, env=env, cwd=tmp_path, check=True
    ).stdout
    assert "--demo" in help_text
    assert "configs/" not in help_text and "mer-live presets" in help_text  # it names nothing the wheel lacks

    _presets_and_examples_from_the_wheel(venv_dir=venv_dir, env=env, elsewhere=tmp_path / "elsewhere")


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def _presets_and_examples_from_the_wheel(*, venv_dir: Path, env: dict[str, str], elsewhere: Path) -> None:
    """What the installed wheel does from a folder with no configs/ or examples/ in it."""
    elsewhere.mkdir()
    assert not any(elsewhere.iterdir())

    def mer_live(*args: str, command: str = "mer-live") -> subprocess.CompletedProcess:
        return subprocess.run([str(venv_dir / "bin" / command), *args], timeout=RUN_TIMEOUT_S, capture_output=True,
                              text=True, env=env, cwd=elsewhere)

    fast = mer_live("--config", "maxmsp", "--demo", "--fast", "--control", "127.0.0.1:0", "-q", "--csv", "fast.csv")
    assert fast.returncode == 0, fast.stderr
    rows = _rows(elsewhere / "fast.csv")
    assert len(rows) == DEMO_PIECE_S * PRESET_UPDATES_PER_S  # the whole piece, at the preset's rate
    assert float(rows[-1]["stream_time_s"]) == pytest.approx(DEMO_PIECE_S)

    started = time.monotonic()
    paced = mer_live("--config", "maxmsp", "--demo", "--duration", str(PACED_S), "--control", "127.0.0.1:0", "-q",
                     "--csv", "paced.csv")
    assert paced.returncode == 0, paced.stderr
    assert time.monotonic() - started >= PACED_S  # played in real time
    assert len(_rows(elsewhere / "paced.csv")) == PACED_S * PRESET_UPDATES_PER_S

    listing = mer_live("presets")
    assert listing.returncode == 0 and all(name in listing.stdout for name in ("maxmsp", "puredata", "supercollider", "stage"))
    printed = mer_live("--config", "stage", "--print-config")
    assert printed.returncode == 0, printed.stderr
    (elsewhere / "show.toml").write_text(printed.stdout)
    again = mer_live("--config", "show.toml", "--print-config")
    assert again.returncode == 0 and again.stdout == printed.stdout  # a printed config loads back to itself

    copied = mer_live("examples", "patches")
    assert copied.returncode == 0, copied.stderr
    for path in ("puredata/mer-live.pd", "maxmsp/mer-live.maxpat", "supercollider/mer-live.scd", "README.md"):
        assert (elsewhere / "patches" / path).stat().st_size > 0, path

    train = mer_live("cv2", command="mer-live-train")  # the runtime wheel has no torch
    assert train.returncode == 2
    assert train.stderr.strip().splitlines() == [train.stderr.strip()], train.stderr  # one line, no traceback
    assert "needs the train extra" in train.stderr and "pip install 'mer-live[train]'" in train.stderr
