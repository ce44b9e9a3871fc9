"""The outputs registry: every output is found in mer_live/outputs/ by its ``OUTPUT`` spec, and its
settings, command-line options, sinks and log line come from there alone."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import sys
import textwrap
from pathlib import Path

import pytest

from mer_live.config import options
from mer_live.config.settings import CORE_SECTIONS, Settings, from_dict, sections, validate
from mer_live.core.fields import ConfigError
from mer_live.outputs import registry
from mer_live.outputs.base import SinkContext

DEFAULT_TOML = Path(__file__).resolve().parent.parent / "configs" / "default.toml"


def test_every_output_module_is_registered_and_gives_a_settings_section() -> None:
    found = registry.outputs()
    assert {"osc", "csv", "midi", "log"} <= set(found)
    assert list(sections()) == ["input", "analysis", "osc", "csv", "control", "midi", "log", *list(sections())[7:]]
    assert set(sections()) == set(CORE_SECTIONS) | set(found)
    for name, spec in found.items():
        assert sections()[name] is spec.settings
        assert all("help" in f.metadata for f in dataclasses.fields(spec.settings)), name  # declared with setting()


def test_the_command_line_options_of_all_outputs_are_distinct() -> None:
    flags = [
        flag for kind in sections().values() for f in dataclasses.fields(kind)
        for flag in (f.metadata["flag"], f.metadata["short"], f.metadata["negative_flag"]) if flag
    ]
    assert len(flags) == len(set(flags))


def test_outputs_off_by_default_make_no_sinks_and_no_log_line() -> None:
    settings = from_dict(values={"osc": {"enabled": False}, "log": {"quiet": True}})
    context = SinkContext(settings=settings, stderr=io.StringIO())
    with contextlib.ExitStack() as stack:
        assert registry.make_sinks(settings=settings, context=context, stack=stack) == []
    assert registry.describe(settings=settings) == []


def test_an_output_makes_its_sinks_and_describes_them(tmp_path: Path) -> None:
    path = tmp_path / "show.csv"
    settings = from_dict(values={"osc": {"targets": ["127.0.0.1:9", "127.0.0.1:10"]}, "csv": {"path": str(path)},
                                 "log": {"quiet": True}})
    context = SinkContext(settings=settings, stderr=io.StringIO())
    with contextlib.ExitStack() as stack:
        sinks = registry.make_sinks(settings=settings, context=context, stack=stack)
        assert [type(s).__name__ for s in sinks] == ["OscSink", "OscSink", "CsvSink"]  # one OSC lane per target
    assert path.read_text().startswith("time,")
    assert registry.describe(settings=settings) == ["OSC 127.0.0.1:9 127.0.0.1:10 /mer (bundle)", f"CSV {path}"]


def test_an_outputs_own_check_refuses_a_combination_in_one_line() -> None:
    with pytest.raises(ConfigError, match="osc.targets is empty"):
        validate(settings=from_dict(values={"osc": {"targets": []}}))
    with pytest.raises(ConfigError, match="midi.enabled is true but there is no port"):
        validate(settings=from_dict(values={"midi": {"enabled": True}}))


def test_a_new_output_is_one_module_and_nothing_else(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A package of outputs with one module holding a spec: the registry finds it, skips the plumbing."""
    package = tmp_path / "extra_outputs"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "base.py").write_text("OUTPUT = 'plumbing, not an output'\n")
    (package / "beep.py").write_text(textwrap.dedent('''
        from dataclasses import dataclass
        from mer_live.core.fields import setting
        from mer_live.outputs.registry import OutputSpec

        @dataclass(frozen=True)
        class BeepSettings:
            enabled: bool = setting(False, help="beep", flag="--beep")

        OUTPUT = OutputSpec(name="beep", settings=BeepSettings, make=lambda settings, *, context: [],
                            describe=lambda settings: ["beep"] if settings.enabled else [], order=5)
    '''))
    (package / "helpers.py").write_text("X = 1\n")  # no OUTPUT: not an output
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        found = registry.outputs("extra_outputs")
        assert list(found) == ["beep"] and found["beep"].settings.__name__ == "BeepSettings"
    finally:
        registry.outputs.cache_clear()
        for name in [m for m in sys.modules if m.startswith("extra_outputs")]:
            del sys.modules[name]


def test_the_default_config_lists_every_outputs_section() -> None:
    assert set(options.load_toml(path=DEFAULT_TOML)) == set(Settings().as_dict())


def test_the_live_handle_reaches_the_worker_once_bound() -> None:
    """An output gets the live settings through ``SinkContext.live`` before the worker exists."""
    from mer_live.config.settings import live_settings
    from mer_live.outputs.base import LiveHandle

    class Worker:
        def __init__(self) -> None:
            self.values = {"rate": 4.0}

        def current_config(self) -> dict:
            return dict(self.values)

        def set_setting(self, *, key: str, value: float) -> None:
            self.values[key] = value

    handle = LiveHandle(fields={key: field for key, (_, field) in live_settings().items()})
    assert handle.current_config() == {} and set(handle.fields) == set(live_settings())
    with pytest.raises(RuntimeError, match="not started"):
        handle.set_setting(key="rate", value=8.0)
    worker = Worker()
    handle.bind(worker)
    handle.set_setting(key="rate", value=8.0)
    assert handle.current_config() == {"rate": 8.0}


def test_an_output_resolves_what_the_command_line_gave_beyond_its_own_keys() -> None:
    """MIDI: a port named on the command line replaces the file's virtual port (one port, CLI > TOML);
    both on the command line is a one-line usage error; outputs without the hook are left as they are."""
    from mer_live.core.exit_codes import UsageError

    from_file = from_dict(values={"midi": {"enabled": True, "virtual": "show"}})
    resolved = registry.resolve(settings=from_file, cli={"midi": {"port": "synth", "enabled": True}})
    assert (resolved.midi.port, resolved.midi.virtual) == ("synth", "")
    assert resolved.osc == from_file.osc and registry.resolve(settings=from_file, cli={}) == from_file
    with pytest.raises(UsageError, match="--midi and --midi-virtual contradict"):
        registry.resolve(settings=from_file, cli={"midi": {"port": "a", "virtual": "b"}})
    both = from_dict(values={"midi": {"enabled": True, "port": "a", "virtual": "b"}})
    with pytest.raises(UsageError, match="midi.port and midi.virtual are both set"):
        registry.resolve(settings=both, cli={})
