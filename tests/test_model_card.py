"""The model cards are rendered from models/metrics.json alone: rendering the committed metrics gives exactly
the committed cards (v1's is written by ``mer-live-train card``, v2's record by ``mer-live-train card2``, the
card of the default model, v3, by ``mer-live-train card3``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mer_live.train.report import _fill, render_card
from mer_live.train.report_v2 import late_fusion, render_v2_card

MODELS = Path(__file__).resolve().parent.parent / "models"
V2_ROUNDS = Path(__file__).resolve().parent.parent / "docs" / "model" / "v2_rounds.md"


def test_the_committed_card_is_the_template_filled_from_the_committed_metrics() -> None:
    metrics = json.loads((MODELS / "metrics.json").read_text())
    assert render_card(metrics=metrics) == (MODELS / "MODEL_CARD_v1.md").read_text()


def test_the_committed_v2_record_is_rendered_from_the_committed_metrics() -> None:
    metrics = json.loads((MODELS / "metrics.json").read_text())
    assert render_v2_card(metrics=metrics) == V2_ROUNDS.read_text()


def test_the_committed_v3_card_is_rendered_from_the_committed_metrics() -> None:
    from mer_live.train.report_v3 import render_card as render_v3_card

    metrics = json.loads((MODELS / "metrics.json").read_text())
    assert render_v3_card(metrics=metrics) == (MODELS / "MODEL_CARD.md").read_text()


def test_a_field_alone_on_its_line_takes_a_list_of_lines() -> None:
    template = "# ${title}\n${rows}\nend ${n}\n${none}\n"
    text = _fill(template=template, values={"title": "T", "rows": ["a", "b"], "n": 3, "none": []})
    assert text == "# T\na\nb\nend 3"


def test_a_late_fusion_scores_the_mean_of_the_members_out_of_fold_outputs(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    ids = [f"{i:03d}" for i in range(1, 41)]
    ratings = rng.normal(size=(40, 8))
    v1, a, b = (ratings + rng.normal(size=(40, 8)) for _ in range(3))
    folds = [list(range(k, 40, 4)) for k in range(4)]
    (tmp_path / "candidates").mkdir()
    (tmp_path / "candidates" / "album_a.json").write_text(json.dumps({"fold_ids": [[ids[i] for i in f] for f in folds]}))
    np.savez(tmp_path / "predictions.npz", ids=np.array(ids), ratings=ratings,
             **{"album/a/emotion": a, "album/b/emotion": b})
    (tmp_path / "v1").mkdir()
    for k, fold in enumerate(folds):  # v1's CV run: one file per fold
        (tmp_path / "v1" / f"fold{k}.json").write_text(json.dumps(
            {"test_ids": [ids[i] for i in fold], "clip_emotion": v1[fold].tolist()}))

    def fused(members: list[str]) -> dict | None:
        return late_fusion(members=members, cv_dir=tmp_path, v1_cv=tmp_path / "v1", protocol="album")

    for members, outputs in ((["a", "b"], (a, b)), (["v1", "a"], (v1, a))):
        mean = sum(outputs) / len(outputs)
        expected = [[np.corrcoef(mean[f, e], ratings[f, e])[0, 1] for e in range(8)] for f in folds]
        result = fused(members)
        assert result["clip_r_avg"] == pytest.approx(float(np.mean(expected)))
        assert result["clip_r_avg_per_fold"] == pytest.approx(np.mean(expected, axis=1).tolist())
        # the fused outputs beat a member alone here (independent errors): the row measures something
        alone = np.mean([[np.corrcoef(a[f, e], ratings[f, e])[0, 1] for e in range(8)] for f in folds])
        assert result["clip_r_avg"] > alone
    assert fused(["a", "missing"]) is None
    assert late_fusion(members=["a", "b"], cv_dir=tmp_path, v1_cv=None, protocol="paper") is None  # no such run
    (tmp_path / "v1" / "fold3.json").unlink()  # v1 on other folds (one missing) is not scored
    assert fused(["v1", "a"]) is None
