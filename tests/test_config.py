"""Settings: defaults, TOML, command line (CLI > TOML > defaults); unknown keys and bad values."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mer_live.config import options
from mer_live.core.addresses import parse_host_port_or_zero
from mer_live.config.options import ConfigError
from mer_live.config.settings import Settings, check_value, from_dict, sections

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TOML = PROJECT_ROOT / "configs" / "default.toml"
DEFAULTS = Settings().as_dict()


def test_default_toml_holds_exactly_the_defaults_and_documents_every_key() -> None:
    assert options.load_toml(path=DEFAULT_TOML) == DEFAULTS
    lines = DEFAULT_TOML.read_text().splitlines()
    for section, entries in DEFAULTS.items():
        for key in entries:
            line = next(line for line in lines if re.match(rf"^{key}\s*=", line))
            assert "#" in line and len(line.split("#", 1)[1].strip()) > 10, f"{section}.{key} is undocumented"


def test_precedence_cli_over_toml_over_defaults(tmp_path: Path) -> None:
    path = tmp_path / "show.toml"
    path.write_text('[analysis]\nrate = 8\nsmoothing = 5.0\n[osc]\ntargets = ["10.0.0.2:7000", "10.0.0.3:7000"]\n')
    resolved = options.resolve(toml_path=path, cli={"analysis": {"rate": 2.0}})
    assert resolved.analysis.rate == 2.0  # CLI
    assert resolved.analysis.smoothing == 5.0  # TOML
    assert resolved.analysis.silence_dbfs == -60.0  # default
    assert resolved.osc.targets == ("10.0.0.2:7000", "10.0.0.3:7000")
    replaced = options.resolve(toml_path=path, cli={"osc": {"targets": ["127.0.0.1:1234"]}})
    assert replaced.osc.targets == ("127.0.0.1:1234",)  # the CLI list replaces the TOML list
    assert isinstance(resolved.analysis.smoothing, float)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[analysis]\nsmoothnig = 1.0\n", "analysis.smoothnig"),
        ("[outputs]\nx = 1\n", "[outputs]"),
        ("verbose = true\n", "[verbose]"),
        ('[analysis]\nrate = "fast"\n', "analysis.rate must be a number"),
        ("[input]\nfast = 1\n", "input.fast must be a boolean"),
        ("[analysis]\nthreads = 1.5\n", "analysis.threads must be an integer"),
        ('[osc]\ntargets = "127.0.0.1:9000"\n', "osc.targets must be a list"),
        ("[analysis\n", "not valid TOML"),
        ("[analysis]\nrate = 100.0\n", "analysis.rate = 100.0 is out of range"),
        ("[analysis]\nsmoothing = -1\n", "analysis.smoothing"),
        ('[osc]\ntargets = ["nohostport"]\n', "nohostport"),
        ('[osc]\nformat = "json"\n', "osc.format"),
        ('[osc]\nprefix = "mer"\n', "osc.prefix"),
        ('[input]\ndemo = true\nfile = "x.wav"\n', "--demo or --input"),
        ("[input]\nchannel = -2\n", "input.channel"),
        ('[control]\nlisten = "localhost"\n', "control.listen"),
    ],
)
def test_bad_config_names_the_key(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as raised:
        options.resolve(toml_path=path, cli={})
    message = str(raised.value)
    assert needle in message and "\n" not in message


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        options.resolve(toml_path=tmp_path / "nope.toml", cli={})


def test_control_port_zero_is_allowed() -> None:
    assert parse_host_port_or_zero(spec="127.0.0.1:0") == ("127.0.0.1", 0)
    resolved = options.resolve(toml_path=None, cli={"control": {"listen": "127.0.0.1:0"}})
    assert resolved.control.listen == "127.0.0.1:0"


@settings(max_examples=100, deadline=None)
@given(
    rate=st.floats(min_value=0.5, max_value=30.0),
    smoothing=st.floats(min_value=0.0, max_value=60.0),
    follow=st.floats(min_value=0.0, max_value=10_000.0),
    still_speed=st.floats(min_value=0.0, max_value=10.0),
    change=st.floats(min_value=0.0, max_value=1.0),
    silence=st.floats(min_value=-120.0, max_value=0.0),
    threads=st.integers(min_value=1, max_value=64),
    quiet=st.booleans(),
)
def test_any_valid_toml_round_trips(tmp_path_factory: pytest.TempPathFactory, rate: float, smoothing: float, follow: float,
                                    still_speed: float, change: float, silence: float, threads: int, quiet: bool) -> None:
    path = tmp_path_factory.mktemp("cfg") / "c.toml"
    path.write_text(
        f"[analysis]\nrate = {rate!r}\nsmoothing = {smoothing!r}\nfollow = {follow!r}\nstill_speed = {still_speed!r}\nchange = {change!r}\n"
        f"silence_dbfs = {silence!r}\nthreads = {threads}\n[log]\nquiet = {str(quiet).lower()}\n"
    )
    resolved = options.resolve(toml_path=path, cli={})
    assert resolved.as_dict()["analysis"] == {"rate": rate, "smoothing": smoothing, "follow": follow, "still_speed": still_speed, "change": change,
                                              "silence_dbfs": silence, "threads": threads, "model": ""}
    assert resolved.log.quiet is quiet


@settings(max_examples=100, deadline=None)
@given(section=st.sampled_from(sorted(DEFAULTS)), key=st.from_regex(r"[a-z_]{1,12}", fullmatch=True))
def test_unknown_keys_are_always_refused(section: str, key: str) -> None:
    if key in DEFAULTS[section]:
        return
    with pytest.raises(ConfigError, match=re.escape(f"{section}.{key}")):
        from_dict(values={section: {key: 1}})


@settings(max_examples=200, deadline=None)
@given(value=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(min_value=-100, max_value=100)))
def test_one_range_check_for_the_toml_file_the_control_port_and_the_worker(value: float) -> None:
    """The TOML/CLI check, the control port and the worker accept exactly the same values (one checker)."""
    from mer_live.control import server
    from mer_live.live import worker

    for key in ("rate", "smoothing", "follow", "still_speed"):
        verdicts = []
        for check in (
            lambda v: check_value(section="analysis", key=key, value=v),
            lambda v: server._command(name=key, params=[v], address=f"/mer/{key}"),
            lambda v: worker._checked(key, v),
        ):
            try:
                check(value)
                verdicts.append(True)
            except ValueError:  # ConfigError and the control port's CommandError are ValueErrors
                verdicts.append(False)
        assert len(set(verdicts)) == 1, (key, value, verdicts)


def test_every_setting_has_help_and_a_typed_default() -> None:
    for section, kind in sections().items():
        for field in dataclasses.fields(kind):
            assert field.metadata["help"], f"{section}.{field.name}"
            default = DEFAULTS[section][field.name]
            assert isinstance(default, (bool, int, float, str, list)), f"{section}.{field.name}"


def test_settings_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Settings().analysis.rate = 8.0  # type: ignore[misc]


def test_the_control_ports_query_names_settings_by_their_field_names() -> None:
    """``/mer/query`` reports the live analysis settings under the same names as the TOML file and the CLI."""
    import numpy as np

    from mer_live.live.source import ArraySource
    from mer_live.live.worker import Worker

    class Model:
        variant = "test"
        weight = np.ones((8, 7))  # the Joint layer: change points are measured through it

    worker = Worker(source=ArraySource(samples=np.zeros(10, np.float32), samplerate=22050), model=Model(), sinks=[])
    reply = worker.current_config()
    for key in ("rate", "smoothing", "follow", "still_speed", "change", "silence_dbfs"):
        assert reply[key] == getattr(Settings().analysis, key)


def test_a_live_setting_is_declared_once_and_reaches_the_control_port_the_worker_and_the_query() -> None:
    """The fields declared ``live`` are the control port's setting commands, the worker's pending changes
    and the ``/mer/query`` values; each is checked against its field's limits everywhere."""
    import numpy as np

    from mer_live.config.settings import live_settings
    from mer_live.control import server
    from mer_live.live.source import ArraySource
    from mer_live.live.worker import LIVE_KEYS, Worker

    live = live_settings()
    assert list(live) == ["rate", "smoothing", "follow", "still_speed", "change"]
    assert all(section == "analysis" and field.metadata["flag"] for section, field in live.values())
    assert [c for c in server.COMMANDS if c in live] == list(live) == list(LIVE_KEYS)

    class Model:
        variant = "test"
        weight = np.ones((8, 7))

    worker = Worker(source=ArraySource(samples=np.zeros(10, np.float32), samplerate=22050), model=Model(), sinks=[])
    for key, (section, field) in live.items():
        low, high = field.metadata["bounds"]
        worker.set_setting(key=key, value=high)
        assert worker.current_config()[key] == high
        with pytest.raises(ConfigError, match=f"{section}.{key}"):
            worker.set_setting(key=key, value=high + 1)
        with pytest.raises(server.CommandError, match=f"/mer/{key}"):
            server._command(name=key, params=[high + 1], address=f"/mer/{key}")
    with pytest.raises(KeyError, match="not a live setting"):
        worker.set_setting(key="threads", value=2)
