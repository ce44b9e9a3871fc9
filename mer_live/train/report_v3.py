"""The model card (v3, the default): collect the v3 figures into ``models/metrics.json`` (section ``v3``) and
render ``models/MODEL_CARD.md`` from that section alone.

``mer-live-train card3 --config configs/train_v3.toml`` reads the cv3 run (``runs/v3cv/summary.json``), the
shipped v3 file's metadata and training record, the live band-music benchmark (``benchmarks/band_steps.json``)
and the daemon CPU measurement (``benchmarks/daemon_cpu_v3.json``) when present. The v1 and v2 cards' numbers
stay in their sections; the rounds that led to each model are in ``docs/model/experiments.md``.
"""

from __future__ import annotations

import json
from pathlib import Path

from .. import __version__

CARD_COMMAND = "mer-live-train card3 --config configs/train_v3.toml"
V1_4Q_COMMAND = "mer-live analyze --model v1 --jobs 1 -q --out runs/v3/v1_4q.csv ../shared/data/4q-dev/audio"
EMBED_COMMAND = "mer-live-train cv3 --config configs/train_v3.toml --validity  # embeds both sets (cached) on first use"
BAND_COMMAND = ('python benchmarks/band_steps.py --model v1=v1 --model v2=v2 --model v3=v3 '
                '--model "v3 fold 0=runs/v3/v3_fold0.onnx" --out benchmarks/band_steps.json')
FOLD0_COMMAND = ("mer-live-train fit3 --config configs/train_v3.toml --hold-out-fold 0 --out runs/v3/v3_fold0.onnx "
                 "--records runs/v3")
VALIDITY_COMMAND = "mer-live-train cv3 --config configs/train_v3.toml --validity-only  # adds the descriptor validity"
CPU_COMMAND = ("python benchmarks/daemon_cpu.py --v1 mer_live/model/assets/a2mid2e_joint.onnx "
               "--v2 mer_live/model/assets/musicnn_joint_v3.onnx --seconds 20 --out benchmarks/daemon_cpu_v3.json"
               "  # the run named v2 is the v3 file")
GOALS = {"arousal_auc": 0.97, "valence_auc": 0.90, "quadrant_accuracy": 0.78, "album_r": 0.78, "table_r": 0.80,
         "table_signs": 48, "energy_step": 0.15, "t50_s": 2.5, "cpu": 0.10}
BACKBONE_TEXT = {"mtt": "MTT_musicnn", "msd": "MSD_musicnn"}
ISSUE_FLOOR = {"arousal_auc": (0.962, 0.969), "valence_auc": (0.848, 0.902), "quadrant_accuracy": (0.700, 0.760)}
ROW_TEXT = {
    "ridge": "ridge on MTT penultimate mean + std (Soundtracks only; the issue's baseline)",
    "logistic_mtt": "logistic per sign on MTT penultimate mean + std (4q-dev only; the issue's floor)",
    "logistic_both": "logistic per sign on MTT + MSD penultimate mean + std (4q-dev only; the issue's floor)",
    "v1": "v1, shipped (spectrogram CNN; Soundtracks only)",
    "v2": "v2, shipped (MTT MLP head; Soundtracks only)",
    "mtt_st": "MTT, linear Joint head, Soundtracks only (control)",
    "mtt_md": "MTT, linear Joint head, Soundtracks + 4q-dev signs",
    "msd_md": "MSD, linear Joint head, Soundtracks + 4q-dev signs",
    "both_md": "MTT + MSD, linear Joint head, Soundtracks + 4q-dev signs (two networks live)",
    "mtt_st_r2": "round 2: mtt_st, weight decay grid 0.1 - 10",
    "mtt_md_r2": "round 2: mtt_md, weight decay grid 0.1 - 10, weak weights 0.25 / 0.5",
    "mtt_md_r3": "round 3: mtt_md, weight decay grid 10 - 1000, weak weights 0.25 / 0.5",
}


def _read(path: Path | None) -> dict:
    return json.loads(Path(path).read_text()) if path and Path(path).is_file() else {}


def build_v3_metrics(*, metrics: dict, cv_dir: Path, model_path: Path, records: Path, band_steps: Path | None,
                     daemon_cpu: Path | None, command: str) -> dict:
    """``metrics`` with the ``v3`` section filled in."""
    import onnx

    summary = _read(Path(cv_dir) / "summary.json")
    if not summary:
        raise ValueError(f"{cv_dir}/summary.json: no cv3 run; run `mer-live-train cv3` first")
    proto = onnx.load(str(model_path), load_external_data=False)
    meta = {p.key: p.value for p in proto.metadata_props}
    training = _read(Path(records) / Path(model_path).with_suffix(".training.json").name)
    metrics = dict(metrics)
    metrics["v3"] = {
        "generated_by": command, "mer_live_version": __version__,
        "cv": summary,
        "shipped": {"path": str(model_path), "size_bytes": Path(model_path).stat().st_size,
                    "variant": meta.get("mer_live.variant"), "pooling": json.loads(meta.get("mer_live.pooling", "{}")),
                    "licence": meta.get("mer_live.licence"), "data_hash": meta.get("mer_live.data_hash"),
                    "training": training},
        "band_steps": _read(band_steps),
        "daemon_cpu": _read(daemon_cpu),
    }
    return metrics


def _f(value, spec: str = ".3f") -> str:
    return "—" if value is None else format(value, spec)


def _row_values(row: dict) -> dict:
    st, q = row.get("soundtracks", {}), row.get("fourq", {})
    table_st, table_q = st.get("table_match", {}), q.get("table_match", {})
    return {
        "arousal_auc": q.get("arousal_auc"), "valence_auc": q.get("valence_auc"),
        "quadrant_accuracy": q.get("quadrant_accuracy"), "album_r": st.get("album_r"),
        "table_r_st": table_st.get("r"), "table_signs_st": table_st.get("signs_agree"),
        "table_r_q": table_q.get("r"), "table_signs_q": table_q.get("signs_agree"),
        "discrete": st.get("classification", {}).get("discrete"), "poles": st.get("classification", {}).get("poles"),
        "validity": st.get("validity", {}).get("passing"), "score": row.get("score"),
    }


def _cpu(daemon: dict, model: str = "v2") -> float | None:
    """A CPU share at 10/s from daemon_cpu.py's JSON: ``v2`` is the run of the file given as --v2 (v3's file),
    ``v1`` v1's in the same run; None when absent."""
    for run in daemon.get("results", []):
        if run.get("model") == model and float(run.get("rate_hz", 0)) == 10.0 and run.get("patch_reuse") in (None, True):
            return run.get("cpu_share_of_one_core")
    return None


def _band(band: dict, run: str, file: str, output: str, key: str):
    return band.get("runs", {}).get(run, {}).get(file, {}).get(output, {}).get(key)


def _validity(metrics: dict, key: str) -> str:
    """v1's or v2's out-of-fold validity count from the v2 section (``models/mid_validity.json``)."""
    table = metrics.get("v2", {}).get("mid_validity", {}).get(key, {}).get("table")
    return f"{table['passing']} of 7" if table else "—"


def _ratio_cells(band: dict, run: str) -> list[bool]:
    """Per (file, output): whether ``run``'s step ÷ spread is at least v1's."""
    cells = []
    for file, outputs in band.get("runs", {}).get("v1", {}).items():
        for output in outputs:
            mine, base = _band(band, run, file, output, "step_over_spread"), _band(band, "v1", file, output, "step_over_spread")
            cells.append(mine is not None and base is not None and mine >= base)
    return cells


def _ratio_count(band: dict, run: str) -> str:
    cells = _ratio_cells(band, run)
    return f"{sum(cells)} of {len(cells)}" if cells and run in band.get("runs", {}) else "—"


def _ratio_verdict(band: dict, run: str) -> str:
    cells = _ratio_cells(band, run)
    if not cells or run not in band.get("runs", {}):
        return "not measured"
    return "met" if all(cells) else "**unmet**"


def render_card(*, metrics: dict) -> str:
    """``models/MODEL_CARD.md`` from ``metrics["v3"]`` (and the v1/v2 sections it compares with)."""
    v3 = metrics["v3"]
    cv, shipped, band = v3["cv"], v3["shipped"], v3["band_steps"]
    rows = cv["rows"]
    chosen = cv["declared_choice"]
    training = shipped.get("training", {})
    values = {name: _row_values(row) for name, row in rows.items()}
    mine = values[chosen]
    cpu = _cpu(v3.get("daemon_cpu", {}))
    band_runs = list(band.get("runs", {}))
    honest_run = "v3 fold 0" if "v3 fold 0" in band_runs else "v3"

    def met(value, goal, *, lower_is_better: bool = False) -> str:
        if value is None:
            return "not measured"
        return "met" if (value <= goal if lower_is_better else value >= goal) else "**unmet**"

    def ref(name: str, key: str) -> str:
        return _f(values.get(name, {}).get(key))

    energy_step = {run: _band(band, run, "arousal", "energy", "median_step") for run in band_runs}
    t50 = {run: (_band(band, run, "arousal", "energy", "t50_mean_s"), _band(band, run, "arousal", "tension", "t50_mean_s"))
           for run in band_runs}
    settings = training.get("settings", {})
    lines = [
        "# Model card: mer-live v3 (the default model)",
        "",
        f"**What ships.** `{shipped['path']}` ({shipped['size_bytes']:,} bytes), variant `{shipped['variant']}`: the "
        f"{' + '.join(BACKBONE_TEXT[b] for b in training.get('config', {}).get('backbones', []))} backbone (frozen, "
        "hearing the last 1.5 s of each 3 s patch) -> ONE linear layer "
        "-> 7 mid-level features -> the Joint linear layer -> 8 emotions, per patch, pooled live over the last "
        f"{shipped['pooling'].get('patches')} patches (half-life {shipped['pooling'].get('halflife_s')} s) as v2. "
        "Every emotion is exactly its bias plus 7 mid-level contributions (`/mer/explain`, CSV). v1 (`--model v1`, "
        "card `models/MODEL_CARD_v1.md`) and v2 (`--model v2`) stay selectable; the rounds that led to each are in "
        "`docs/model/experiments.md`.",
        "",
        f"**Trained on** the 360 Soundtracks clips' 8 mean ratings (Eerola & Vuoskoski 2011) and the quadrant signs "
        f"of the 600 4q-dev clips (4Q, Panda et al. 2018: pop, rock, electronic, jazz, ...) as weak labels for "
        f"valence and energy (logistic loss), with pseudo mid-level targets from the human mid-level/emotion "
        f"table. Candidate `{chosen}`; weight decay {settings.get('weight_decay')} and weak-label weight "
        f"{settings.get('weak_weight')}, chosen by 3-fold inner CV on all clips; training record "
        "`models/musicnn_joint_v3.training.json` (with the ONNX-vs-torch check).",
        "",
        "## Goals (issue 25), out of fold or held out",
        "",
        "4q-dev figures: v1 and v2 never saw 4q-dev (held out by construction); every other row is out of fold "
        "(5 outer folds pairing Soundtracks album-grouped fold k with 4q-dev fold k stratified by quadrant, seed 0; "
        "settings by inner CV inside the training folds only). Soundtracks r: album-grouped 5-fold CV, mean over "
        "the folds of the mean r over the 8 emotions (v1 and v2: their own CV runs, `models/metrics.json`).",
        "",
        f"| measure | v1 | v2 | floor (logistic: MTT / both) | ridge | v3 (`{chosen}`) | goal | v3 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for key, title in (("arousal_auc", "4q-dev arousal AUC (energy)"), ("valence_auc", "4q-dev valence AUC (valence)"),
                       ("quadrant_accuracy", "4q-dev quadrant accuracy (chance 0.25)")):
        lines.append(f"| {title} | {ref('v1', key)} | {ref('v2', key)} | {ref('logistic_mtt', key)} / "
                     f"{ref('logistic_both', key)} (issue: {ISSUE_FLOOR[key][0]:.3f} / {ISSUE_FLOOR[key][1]:.3f}) | "
                     f"{ref('ridge', key)} | {_f(mine[key])} | ≥ {GOALS[key]:.2f} | {met(mine[key], GOALS[key])} |")
    lines += [
        f"| Soundtracks album-grouped CV mean r | {ref('v1', 'album_r')} | {ref('v2', 'album_r')} | — | "
        f"{ref('ridge', 'album_r')} | {_f(mine['album_r'])} | ≥ 0.78 | {met(mine['album_r'], GOALS['album_r'])} |",
        f"| model vs human mid-level↔emotion table, r over 56 cells (Soundtracks / 4q-dev) | "
        f"{ref('v1', 'table_r_q')} (4q) | {ref('v2', 'table_r_q')} (4q) | — | — | {_f(mine['table_r_st'])} / "
        f"{_f(mine['table_r_q'])} | ≥ 0.80 | {met(mine['table_r_q'], GOALS['table_r'])} (4q-dev) |",
        f"| the same, signs agreeing of 56 | {values.get('v1', {}).get('table_signs_q', '—')} (4q) | "
        f"{values.get('v2', {}).get('table_signs_q', '—')} (4q) | — | — | {mine['table_signs_st']} / {mine['table_signs_q']} "
        f"| ≥ 48 | {met(mine['table_signs_q'], GOALS['table_signs'])} (4q-dev) |",
        f"| mid-level validity on Soundtracks (features with r ≥ 0.3 against their descriptor, out of fold; "
        f"beside the table check) | {_validity(metrics, 'v1 held out')} | {_validity(metrics, 'v2')} | — | — | "
        f"{mine['validity'] if mine['validity'] is not None else '—'} of 7 | (v2's goal: 5) | — |",
        f"| live energy step, equal-loudness 4q-dev sections (median, 0–1) | {_f(energy_step.get('v1'))} | "
        f"{_f(energy_step.get('v2'))} | — | — | {_f(energy_step.get(honest_run))} ({honest_run}) | ≥ 0.15 | "
        f"{met(energy_step.get(honest_run), GOALS['energy_step'])} |",
        f"| live energy / tension t50 (s) | {_f(t50.get('v1', (None, None))[0], '.1f')} / {_f(t50.get('v1', (None, None))[1], '.1f')} | "
        f"{_f(t50.get('v2', (None, None))[0], '.1f')} / {_f(t50.get('v2', (None, None))[1], '.1f')} | — | — | "
        f"{_f(t50.get(honest_run, (None, None))[0], '.1f')} / {_f(t50.get(honest_run, (None, None))[1], '.1f')} | ≤ 2.5 s | "
        f"{met(max([t for t in t50.get(honest_run, (None, None)) if t is not None], default=None), GOALS['t50_s'], lower_is_better=True)} |",
        f"| step ÷ steady-section spread, per output (outputs x files where {honest_run} ≥ v1) | — | "
        f"{_ratio_count(band, 'v2')} | — | — | {_ratio_count(band, honest_run)} | all ≥ v1's | "
        f"{_ratio_verdict(band, honest_run)} |",
        f"| daemon CPU at `--rate 10` (share of one core) | {_f(_cpu(v3.get('daemon_cpu', {}), 'v1'))} (same run) | "
        f"0.067 (v2 card) | — | — | {_f(cpu)} | ≤ 0.10 | "
        f"{met(cpu, GOALS['cpu'], lower_is_better=True)} |",
        f"| Soundtracks target classification, out of fold: 5 discrete targets by argmax (150 clips) / 6 poles by "
        f"median split (180 clips) | — | — | — | {ref('ridge', 'discrete')} / {ref('ridge', 'poles')} | "
        f"{_f(mine['discrete'])} / {_f(mine['poles'])} | the ratings' own: 0.707 / 0.961 | — |",
        "",
        "The last row answers the \"close to 80 % classification accuracy\" that the project started from: the mean "
        "human ratings themselves pick a clip's target emotion by argmax for only 71 % of the 150 discrete-target "
        "clips (and put 96 % of the 180 pole clips on the right side of the median), so a model's figure there "
        "measures agreement with the set's design labels, bounded by how well the ratings agree with them, not "
        "an accuracy against the listeners.",
        "",
        "## Every candidate and baseline (same folds; rounds 1 and 2 of the declared rule)",
        "",
        "| row | 4q arousal AUC | 4q valence AUC | 4q quadrants | Soundtracks album r | classification (5 / 6) | "
        "table r (ST / 4q) | signs (ST / 4q) | validity (of 7) | score |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in rows:
        v = values[name]
        mark = " **(shipped)**" if name == chosen else ""
        lines.append(
            f"| `{name}`{mark}: {ROW_TEXT.get(name, name)} | {_f(v['arousal_auc'])} | {_f(v['valence_auc'])} | "
            f"{_f(v['quadrant_accuracy'])} | {_f(v['album_r'])} | {_f(v['discrete'])} / {_f(v['poles'])} | "
            f"{_f(v['table_r_st'])} / {_f(v['table_r_q'])} | {v['table_signs_st'] if v['table_signs_st'] is not None else '—'} / "
            f"{v['table_signs_q'] if v['table_signs_q'] is not None else '—'} | "
            f"{v['validity'] if v['validity'] is not None else '—'} | {_f(v['score'], '.4f')} |")
    confusion = rows[chosen]["fourq"]["confusion"]
    lines += [
        "",
        f"Declared rule (`configs/train_v3.toml`, committed before the first cv3 run; rounds 2 and 3 were each declared "
        f"there after the previous round's results and before their own, `docs/model/experiments.md`): score = ½ · "
        f"mean of the two 4q-dev AUCs + ½ · Soundtracks album r, over the candidates of all rounds; the best eligible "
        f"candidate, ties within 0.002 to fewer backbones. "
        f"Eligible: {', '.join(f'`{n}`' for n, ok in cv['eligible'].items() if ok)} (one network live). It picked "
        f"`{chosen}`.",
        "",
        f"4q-dev confusion of `{chosen}` (out of fold; rows: true quadrant, columns: predicted by median splits):",
        "",
        "| | Q1 | Q2 | Q3 | Q4 |",
        "|---|---|---|---|---|",
        *(f"| {q} | " + " | ".join(str(c) for c in confusion[i]) + " |" for i, q in enumerate(("Q1", "Q2", "Q3", "Q4"))),
        "",
        "The human table is `../shared/data/reference/midlevel_emotion_annotation_correlation.csv`. On Soundtracks it is "
        "not an independent check for the Joint heads: their pseudo mid-level targets are built from that same table. "
        "On 4q-dev (no mid-level targets there) it is. Validity: the out-of-fold mid-level outputs against their "
        "signal descriptors (`mer_live/train/descriptors.py`), features with r ≥ 0.3 in the expected direction.",
        "",
    ]
    if band_runs:
        lines += [
            "## Live behaviour on band music (real daemon, `--rate 10`, default smoothing)",
            "",
            f"Two files of 8 sections of 20 s from 4q-dev outer fold 0, each section at {band.get('level_dbfs')} dBFS RMS "
            "(equal loudness): `arousal` alternates low- and high-arousal clips, `valence` positive and negative valence "
            "at equal arousal. Step: median over the 7 changes, signed by the expected direction. Spread: std inside "
            "the last 8 s of each section. `v3` was fitted on all 4q-dev clips (it saw these clips' signs); "
            "`v3 fold 0` is the same recipe without outer fold 0, on which these clips are held out.",
            "",
            "| run | energy step | energy t50 (s) | energy step/spread | tension t50 (s) | valence step | valence step/spread |",
            "|---|---|---|---|---|---|---|",
        ]
        for run in band_runs:
            lines.append(
                f"| {run} | {_f(_band(band, run, 'arousal', 'energy', 'median_step'))} | "
                f"{_f(_band(band, run, 'arousal', 'energy', 't50_mean_s'), '.1f')} | "
                f"{_f(_band(band, run, 'arousal', 'energy', 'step_over_spread'), '.2f')} | "
                f"{_f(_band(band, run, 'arousal', 'tension', 't50_mean_s'), '.1f')} | "
                f"{_f(_band(band, run, 'valence', 'valence', 'median_step'))} | "
                f"{_f(_band(band, run, 'valence', 'valence', 'step_over_spread'), '.2f')} |")
        outputs = list(band["runs"][band_runs[0]]["arousal"])
        lines += ["", "Step ÷ spread of every output (arousal file / valence file; energy and valence signed by the "
                  "expected direction, the others unsigned):", "",
                  "| run | " + " | ".join(outputs) + " |", "|---|" + "---|" * len(outputs)]
        for run in band_runs:
            cells = [f"{_f(_band(band, run, 'arousal', o, 'step_over_spread'), '.1f')} / "
                     f"{_f(_band(band, run, 'valence', o, 'step_over_spread'), '.1f')}" for o in outputs]
            lines.append(f"| {run} | " + " | ".join(cells) + " |")
        lines += ["", f"All in `benchmarks/band_steps.json` (load average at its start: "
                  f"{', '.join(f'{x:.1f}' for x in band.get('load_average', []))}).", ""]
    lines += [
        "## Limits",
        "",
        "- 4q-dev labels are quadrants only: the head learns the sign of valence and energy there, not their size; its "
        "other six emotions are learnt from film music alone.",
        "- The goals marked unmet above are unmet; the model shipped is the declared rule's pick regardless.",
        "- 4q-dev is published for research use; the head's weights were fitted on it (its licence notice says so).",
        "- Pooled clip-level figures; the live output pools 4 patches (about 3 s) and is smoothed, so it is noisier.",
        "",
        "## Reproduce",
        "",
        "```sh",
        V1_4Q_COMMAND,
        *(cv.get("commands") or [c for c in [cv.get("command")] if c]),
        VALIDITY_COMMAND,
        training.get("command") or "mer-live-train fit3 --config configs/train_v3.toml",
        FOLD0_COMMAND,
        BAND_COMMAND,
        CPU_COMMAND,
        CARD_COMMAND,
        "```",
        "",
        f"Every number here is in `models/metrics.json` (section `v3`), written with this card by `{v3['generated_by']}`.",
        "",
        "## Licence",
        "",
        shipped.get("licence") or "",
        "",
        "The notice travels inside the ONNX file (`mer_live.licence` metadata and doc string) and beside it "
        "(`LICENSE-musicnn.md`).",
        "",
    ]
    return "\n".join(lines)

