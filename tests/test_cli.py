"""One command line: ``mer-live`` is the daemon, ``mer-live analyze`` a real subcommand; every usage error is
one line ``PROG: error: ...`` and exit status 2, and the options come from the settings' fields."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from mer_live import cli
from mer_live.live import daemon
from mer_live.core.exit_codes import EXIT_OK, EXIT_USAGE
from mer_live.config.settings import Settings, sections


def _run(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_help_lists_the_subcommands_and_every_setting_with_its_default(capsys) -> None:
    code, out, _ = _run(capsys, "--help")
    assert code == EXIT_OK
    for name in cli.SUBCOMMANDS:
        assert name in out
    defaults = Settings()
    for section, kind in sections().items():
        for field in dataclasses.fields(kind):
            meta = field.metadata
            for flag in (meta["flag"], meta["negative_flag"]):
                if flag:
                    assert flag in out, flag
    assert "(default: 4)" in out and f"(default: {defaults.osc.prefix})" in out and "(default: 127.0.0.1:9001)" in out


def test_the_installed_entry_point_lists_the_subcommands() -> None:
    result = subprocess.run([sys.executable, "-m", "mer_live", "--help"], capture_output=True, text=True, check=True)
    assert "analyze" in result.stdout and "subcommands" in result.stdout


@pytest.mark.parametrize(
    ("argv", "prog", "needle"),
    [
        (["bogus"], "mer-live", "invalid choice: 'bogus'"),
        (["analyze"], "mer-live analyze", "required: FILE"),
        (["analyze", "x.wav", "--threads", "many"], "mer-live analyze", "invalid int value"),
        (["--demo", "analyze", "x.wav"], "mer-live", "daemon options do not apply to mer-live analyze"),
        (["--rate", "99", "analyze", "x.wav"], "mer-live", "daemon options do not apply"),
        (["--rate", "99"], "mer-live", "analysis.rate = 99.0 is out of range"),
        (["--osc", "127.0.0.1:9000", "--no-osc"], "mer-live", "--osc and --no-osc contradict each other"),
        (["--rate", "fast"], "mer-live", "argument --rate: invalid float value"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(capsys, argv: list[str], prog: str, needle: str) -> None:
    code, out, err = _run(capsys, *argv)
    assert code == EXIT_USAGE
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{prog}: error: ") and needle in lines[0], err
    assert out == ""


def test_analyze_runs_as_a_subcommand(capsys, tmp_path) -> None:
    """The same exit status and one-line error style through ``mer-live analyze`` as through the module."""
    code, _, err = _run(capsys, "analyze", str(tmp_path / "missing.wav"), "-q", "--model", str(tmp_path / "none.onnx"))
    assert code == EXIT_USAGE
    assert err.strip().startswith("mer-live analyze: error: ") and "model file not found" in err


def test_daemon_main_and_cli_main_share_the_daemon_parser(capsys) -> None:
    assert daemon.main(["--version"]) == EXIT_OK
    version = capsys.readouterr().out
    assert cli.main(["--version"]) == EXIT_OK
    assert capsys.readouterr().out == version and version.startswith("mer-live ")
