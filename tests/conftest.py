"""Shared fixtures: where the Soundtracks data lives, and the shipped model."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    """``$MER_DATA_DIR``, defaulting to ``../shared/data`` beside the project root."""
    return Path(os.environ.get("MER_DATA_DIR", PROJECT_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The data directory. Under CI a missing data set fails the run instead of skipping."""
    root = data_dir()
    if not (root / "soundtracks" / "mean_ratings_set1.csv").is_file():
        message = f"Soundtracks data not found under {root} (set MER_DATA_DIR)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return root


@pytest.fixture(autouse=True)
def _restore_mer_live_logging():
    """Tests that run the daemon in-process reconfigure the ``mer_live`` logger; undo that after each."""
    loggers = [logging.getLogger(name) for name in ("mer_live", "mer_live.control.server")]
    saved = [(log.handlers[:], log.propagate, log.level) for log in loggers]
    yield
    for log, (handlers, propagate, level) in zip(loggers, saved):
        log.handlers[:] = handlers
        log.propagate = propagate
        log.setLevel(level)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under CI every dependency (pd, sclang, jackd, ALSA, the data) is installed by ``.ci/run``, so a
    skipped test means a missing install step: report it as a failure instead of letting CI pass."""
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("CI") and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.longrepr = f"skipped under CI, which must install everything the tests need: {reason}"
