"""mer_live.core.osc, the one OSC encoder (outputs and control-port replies): byte for byte python-osc's."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
from pythonosc.osc_message_builder import OscMessageBuilder

from mer_live.core import osc

ADDRESSES = st.from_regex(r"\A/[a-z_]{1,12}(/[a-z_0-9]{1,12}){0,3}\Z")
ARGUMENTS = st.lists(
    st.one_of(
        st.integers(min_value=-(2**63), max_value=2**63 - 1),
        st.floats(width=32, allow_nan=False),
        st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=20),
    ),
    max_size=8,
)


def _python_osc(address: str, arguments: list) -> bytes:
    builder = OscMessageBuilder(address=address)
    for argument in arguments:
        builder.add_arg(argument)
    return builder.build().dgram


@given(address=ADDRESSES, arguments=ARGUMENTS)
def test_a_message_is_python_oscs(address: str, arguments: list) -> None:
    assert osc.message(address=address, arguments=arguments) == _python_osc(address, arguments)


@given(contents=st.lists(st.tuples(ADDRESSES, ARGUMENTS), min_size=1, max_size=5))
def test_a_bundle_is_python_oscs(contents: list) -> None:
    builder = OscBundleBuilder(IMMEDIATELY)
    for address, arguments in contents:
        builder.add_content(OscMessageBuilder(address=address).build() if not arguments else _built(address, arguments))
    expected = builder.build().dgram
    assert osc.bundle(messages=[osc.message(address=a, arguments=args) for a, args in contents]) == expected


def _built(address: str, arguments: list):
    builder = OscMessageBuilder(address=address)
    for argument in arguments:
        builder.add_arg(argument)
    return builder.build()


def test_float32_lists_take_the_fast_path_unchanged() -> None:
    values = [float(v) for v in np.linspace(0.0, 1.0, 8, dtype=np.float32)]
    assert osc.message(address="/mer/emotion", arguments=values) == _python_osc("/mer/emotion", values)
