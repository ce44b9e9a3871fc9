"""The model cards are rendered from models/metrics.json alone: rendering the committed metrics gives exactly
the committed cards (v1's is written by ``mer-live-train card``, v2's by ``mer-live-train card2``)."""

from __future__ import annotations

import json
from pathlib import Path

from mer_live.train.report import _fill, render_card
from mer_live.train.report_v2 import render_v2_card

MODELS = Path(__file__).resolve().parent.parent / "models"


def test_the_committed_card_is_the_template_filled_from_the_committed_metrics() -> None:
    metrics = json.loads((MODELS / "metrics.json").read_text())
    assert render_card(metrics=metrics) == (MODELS / "MODEL_CARD_v1.md").read_text()


def test_the_committed_v2_card_is_rendered_from_the_committed_metrics() -> None:
    metrics = json.loads((MODELS / "metrics.json").read_text())
    assert render_v2_card(metrics=metrics) == (MODELS / "MODEL_CARD.md").read_text()


def test_a_field_alone_on_its_line_takes_a_list_of_lines() -> None:
    template = "# ${title}\n${rows}\nend ${n}\n${none}\n"
    text = _fill(template=template, values={"title": "T", "rows": ["a", "b"], "n": 3, "none": []})
    assert text == "# T\na\nb\nend 3"
