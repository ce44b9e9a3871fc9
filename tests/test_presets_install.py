"""Presets that install: ``--config NAME`` resolves a built-in preset (a path still works), ``mer-live presets``
lists and prints them, ``mer-live --print-config`` writes every setting as TOML that reads back to the same
settings, ``mer-live examples DIR`` copies the receiver patches out, ``--help`` names no file that a wheel
lacks, and ``mer-live-train`` without its extra says how to install it (one line, exit 2)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from mer_live import cli
from mer_live.config import options, presets, toml_text
from mer_live.config.settings import ConfigError, Settings, from_dict
from mer_live.core.exit_codes import EXIT_OK, EXIT_USAGE

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

PROJECT_ROOT = Path(__file__).resolve().parent.parent
BUILT_IN = ("maxmsp", "midi", "puredata", "rehearsal", "stage", "supercollider")
PATCHES = (Path("puredata/mer-live.pd"), Path("maxmsp/mer-live.maxpat"), Path("supercollider/mer-live.scd"), Path("README.md"))


def _run(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _one_line_error(err: str, *needles: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mer-live"), err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def test_the_built_in_presets_are_package_data_not_files_of_the_checkout() -> None:
    assert presets.names() == sorted(BUILT_IN)
    for name in BUILT_IN:
        assert presets.preset_path(name).is_relative_to(PROJECT_ROOT / "mer_live")
        assert presets.summary(name), name  # its first comment line says what it is for
    assert not any((PROJECT_ROOT / "configs").glob("maxmsp*")), "one copy of each preset, in the package"


@pytest.mark.parametrize("value", ["maxmsp", "maxmsp.toml"])
def test_a_preset_is_found_by_name(value: str) -> None:
    assert presets.locate(value) == presets.preset_path("maxmsp")
    assert options.resolve(toml_path=value, cli={}).osc.targets == ("127.0.0.1:9000",)


def test_a_path_still_works_and_beats_a_preset_of_the_same_name(tmp_path: Path, monkeypatch) -> None:
    mine = tmp_path / "maxmsp"
    mine.write_text("[analysis]\nrate = 7.0\n")
    monkeypatch.chdir(tmp_path)
    assert presets.locate("maxmsp") == Path("maxmsp")
    assert options.resolve(toml_path="maxmsp", cli={}).analysis.rate == 7.0
    assert options.resolve(toml_path=str(mine), cli={}).osc.targets == Settings().osc.targets


def test_a_folder_path_is_not_taken_for_a_preset(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file, and no built-in preset"):
        presets.locate(tmp_path / "maxmsp")  # a path, even though its last part names a preset
    with pytest.raises(ConfigError, match="not a file"):
        presets.locate(tmp_path)


def test_an_unknown_config_is_one_line_naming_the_presets(capsys, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = _run(capsys, "--config", "maxmps", "--demo", "--fast")
    assert code == EXIT_USAGE
    _one_line_error(err, "config maxmps: no such file", "maxmsp, midi, puredata", "mer-live presets")


def test_presets_lists_every_preset_with_what_it_is_for(capsys) -> None:
    code, out, _ = _run(capsys, "presets")
    assert code == EXIT_OK
    lines = out.splitlines()
    for name in BUILT_IN:
        (line,) = [line for line in lines if line.split(" ", 1)[0] == name]
        assert presets.summary(name) in line
    assert "--config NAME" in out and "mer-live examples DIR" in out


def test_presets_name_prints_the_preset_which_loads_as_a_config(capsys, tmp_path: Path) -> None:
    code, out, _ = _run(capsys, "presets", "stage")
    assert code == EXIT_OK
    assert out == presets.preset_path("stage").read_text()
    copy = tmp_path / "show.toml"
    copy.write_text(out)
    assert options.resolve(toml_path=copy, cli={}) == options.resolve(toml_path="stage", cli={})
    code, _, err = _run(capsys, "presets", "nope")
    assert code == EXIT_USAGE
    _one_line_error(err, "no preset 'nope'", "maxmsp")


def _printed(capsys, *argv: str) -> Settings:
    code, out, err = _run(capsys, *argv, "--print-config")
    assert code == EXIT_OK, err
    return from_dict(values=tomllib.loads(out))


def test_print_config_writes_every_default_and_reads_back_to_them(capsys) -> None:
    code, out, _ = _run(capsys, "--print-config")
    assert code == EXIT_OK
    document = tomllib.loads(out)
    assert document == Settings().as_dict()  # every section and key, nothing else
    assert from_dict(values=document) == Settings()
    assert "# --rate HZ: updates per second (0.5 to 30)" in out


@pytest.mark.parametrize("name", BUILT_IN)
def test_print_config_of_a_preset_reads_back_to_the_same_settings(capsys, name: str) -> None:
    assert _printed(capsys, "--config", name) == options.resolve(toml_path=name, cli={})


def test_print_config_includes_the_command_line(capsys) -> None:
    printed = _printed(capsys, "--config", "midi", "--rate", "12", "--osc", "10.0.0.7:7000", "--csv", 'a "quoted" name.csv')
    assert printed.analysis.rate == 12.0 and printed.osc.targets == ("10.0.0.7:7000",)
    assert printed.csv.path == 'a "quoted" name.csv'
    assert printed.midi.cc == options.resolve(toml_path="midi", cli={}).midi.cc and printed.midi.cc  # [[midi.cc]] tables


def test_print_config_does_not_apply_to_a_subcommand(capsys) -> None:
    code, _, err = _run(capsys, "--print-config", "presets")
    assert code == EXIT_USAGE
    _one_line_error(err, "daemon options do not apply to mer-live presets")


def test_render_refuses_what_toml_cannot_hold() -> None:
    with pytest.raises(ValueError):
        toml_text._value(float("nan"))


def test_examples_copies_the_patches_out_and_never_overwrites_by_accident(capsys, tmp_path: Path) -> None:
    folder = tmp_path / "patches"
    code, out, _ = _run(capsys, "examples", str(folder))
    assert code == EXIT_OK
    for path in PATCHES:
        assert (folder / path).read_bytes() == (presets.examples_folder() / path).read_bytes()
        assert f"wrote {folder / path}" in out
    assert "mer-live --config puredata --demo" in out
    (folder / "puredata" / "mer-live.pd").write_text("my edits")
    code, _, err = _run(capsys, "examples", str(folder))
    assert code == EXIT_USAGE
    _one_line_error(err, "exists already", "--force")
    assert (folder / "puredata" / "mer-live.pd").read_text() == "my edits"  # nothing was written
    assert _run(capsys, "examples", str(folder), "--force")[0] == EXIT_OK
    assert (folder / "puredata" / "mer-live.pd").read_bytes() == (presets.examples_folder() / PATCHES[0]).read_bytes()


def test_examples_into_a_file_is_one_line(capsys, tmp_path: Path) -> None:
    target = tmp_path / "file.txt"
    target.write_text("")
    code, _, err = _run(capsys, "examples", str(target))
    assert code == EXIT_USAGE
    _one_line_error(err, "is a file")


def test_help_names_no_file_that_a_wheel_lacks(capsys) -> None:
    code, out, _ = _run(capsys, "--help")
    assert code == EXIT_OK
    assert "configs/" not in out and "examples/" not in out
    assert "mer-live presets" in out and "--print-config" in out


def test_train_without_its_extra_says_how_to_install_it(capsys, monkeypatch) -> None:
    from mer_live.train import cli as train_cli

    monkeypatch.setattr(train_cli, "TRAIN_EXTRA", (*train_cli.TRAIN_EXTRA, "mer_live_no_such_package"))
    assert train_cli.main(["card2"]) == EXIT_USAGE
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("mer-live-train: error: needs the train extra (missing: mer_live_no_such_package)")
    assert "pip install 'mer-live[train]'" in lines[0]
