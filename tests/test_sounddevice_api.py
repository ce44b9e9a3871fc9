"""mer-live uses a few private sounddevice names (to re-scan devices, and to let go of a wedged stream at
exit), guarded by a version range. These tests tie the range to what is installed: if a sounddevice
upgrade leaves the range, they fail, and the private names must be checked again before widening it."""

from __future__ import annotations

import types

import pytest

from mer_live import source


def test_the_installed_sounddevice_is_in_the_tested_range_and_has_the_names() -> None:
    sd = pytest.importorskip("sounddevice")
    low, high = source.SOUNDDEVICE_PRIVATE_API_VERSIONS
    assert low <= source._version(text=sd.__version__) < high, sd.__version__
    for name in source.SOUNDDEVICE_PRIVATE_NAMES:
        assert hasattr(sd, name), name
    assert source.private_api_supported(sd=sd)
    assert isinstance(sd._initialized, int) and callable(sd._initialize) and callable(sd._terminate)


@pytest.mark.parametrize("version", ["0.4.5", "0.6.0", "1.0", "", "dev"])
def test_a_version_outside_the_range_is_refused(version: str) -> None:
    fake = types.SimpleNamespace(__version__=version, _initialized=1, _initialize=print, _terminate=print, _exit_handler=print)
    assert not source.private_api_supported(sd=fake)


def test_missing_private_names_are_refused() -> None:
    fake = types.SimpleNamespace(__version__="0.5.0", _initialized=1, _initialize=print, _terminate=print)
    assert not source.private_api_supported(sd=fake)


def test_rescan_with_an_untested_sounddevice_is_a_one_line_source_error(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    fake = types.SimpleNamespace(
        __version__="0.6.1", _initialized=1, _initialize=lambda: calls.append("init"), _terminate=lambda: calls.append("term"),
        _exit_handler=print,
    )
    monkeypatch.setattr(source, "_sounddevice", lambda: fake)
    with pytest.raises(source.SourceError, match="sounddevice 0.6.1 is not a version") as raised:
        source.rescan_devices()
    assert "\n" not in str(raised.value) and calls == []
