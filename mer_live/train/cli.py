"""``mer-live-train`` (also ``python -m mer_live.train``): cache, cross-validate, fit + export, render the card.

Subcommands:

* ``cache``: analyse every clip once and store its frames in ``$MER_CACHE_DIR``;
* ``cv``: k-fold cross-validation of one or more variants, JSON per fold and a summary per variant;
* ``fit``: train one variant on all clips (early stopping on a held-out validation split) and export ONNX;
* ``export``: re-export the weights saved by ``fit --save-torch`` (e.g. once the CV summary exists);
* ``card``: collect CV summaries, the shipped model's metadata and the benchmark into ``models/metrics.json``
  and render v1's card ``models/MODEL_CARD_v1.md`` from it;
* ``embed``, ``cv2``, ``fit2``, ``card2``: model v2 (musicnn patch embeddings, heads, both CV protocols, one
  merged ONNX file, ``models/MODEL_CARD.md``); see ``configs/train_v2.toml``.

Settings: command-line options > the TOML file given by ``--config`` > built-in defaults.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import shlex
import sys
from pathlib import Path

from mer_live.train import soundtracks
from mer_live.core.exit_codes import EXIT_USAGE
from mer_live.config.settings import load_toml
DESCRIPTION = "Train, cross-validate and export the mer-live emotion models."
DEFAULT_CV_DIR = Path("runs/cv")
DEFAULT_FOLDS = 5
DEFAULT_FOLD_SEED = 2019
DEFAULT_MODEL = Path("mer_live/model/assets/a2mid2e_joint.onnx")  # package data: the wheel carries it
DEFAULT_RECORDS = Path("models")  # card, metrics, benchmark, and the packaged model's training record
DEFAULT_METRICS = Path("models/metrics.json")
DEFAULT_CARD = Path("models/MODEL_CARD.md")  # the model card of the default model, v3 (card3)
DEFAULT_V2_CARD = Path("docs/model/v2_rounds.md")  # card2: v2's rounds and figures, part of the experiment log
DEFAULT_V1_CARD = Path("models/MODEL_CARD_v1.md")
DEFAULT_V2_CV_DIR = Path("runs/v2cv")
DEFAULT_V2_MODEL = Path("mer_live/model/assets/musicnn_joint.onnx")  # package data, beside v1
DEFAULT_V3_CV_DIR = Path("runs/v3cv")
DEFAULT_V3_MODEL = Path("mer_live/model/assets/musicnn_joint_v3.onnx")  # package data, beside v1 and v2
TRAIN_EXTRA = ("torch", "onnx", "librosa", "scipy")  # pyproject.toml's [train] extra, by import name
TRAIN_INSTALL_HINT = "install it: pip install 'mer-live[train]' (in a checkout: pip install -e '.[train]')"
TOML_SECTIONS = ("train", "cv", "fit", "export", "card", "v2", "v3")
SECTION_KEYS = {
    "cv": ("variants", "folds", "fold_seed", "out", "limit_clips"),
    "fit": ("out", "save_torch", "cv_dir", "validation_fraction", "limit_clips"),
    "export": ("weights", "out", "cv_dir", "cv_run"),
    "card": ("cv_dir", "model", "benchmark", "shipped_run", "metrics", "card"),
    "v2": ("protocols", "folds", "fold_seed", "out", "sets", "candidates", "limit_clips", "ship", "pooling",
           "model", "records", "validation_fraction", "fusions"),
    "v3": ("folds", "fold_seed", "fourq_seed", "out", "model", "records", "eligible", "pooling", "v1_fourq",
           "v2_head", "candidates", "limit_clips", "ship"),
}  # [train] is checked against TrainConfig's fields; [v2.candidates.*] against HeadConfig's
TRAIN_OVERRIDES = ("variant", "width", "max_epochs", "patience", "seed", "threads", "device", "learning_rate", "tag")


def _load_toml(*, path: str | None) -> dict:
    if not path:
        return {}
    values = load_toml(path=path)  # mer-live's one TOML reader; ConfigError (a ValueError) for a bad file
    unknown = sorted(set(values) - set(TOML_SECTIONS))
    if unknown:
        raise ValueError(f"{path}: unknown section(s) {', '.join(unknown)}")
    for section, allowed in SECTION_KEYS.items():
        extra = sorted(set(values.get(section, {})) - set(allowed))
        if extra:
            raise ValueError(f"{path}: unknown key(s) in [{section}]: {', '.join(extra)}")
    return values


def _record_path(*, model: Path, suffix: str) -> Path:
    """Where a model's training record (``suffix`` .training.json or .pt) goes: beside it, except for the
    packaged model (``mer_live/model/assets/``), whose records live in ``models/`` with its card (models/README.md)."""
    if model.resolve().parent == DEFAULT_MODEL.resolve().parent:
        return DEFAULT_RECORDS / model.with_suffix(suffix).name
    return model.with_suffix(suffix)


def _train_config(*, args: argparse.Namespace, toml: dict, variant: str | None = None):
    from .training import TrainConfig

    values = dict(toml.get("train", {}))
    for name in TRAIN_OVERRIDES:
        value = getattr(args, name, None)
        if value is not None:
            values[name] = value
    if variant is not None:
        values["variant"] = variant
    if getattr(args, "no_progress", False):
        values["progress"] = False
    return TrainConfig.from_dict(values=values)


def _dataset(*, section: dict, args: argparse.Namespace) -> soundtracks.Soundtracks:
    dataset = soundtracks.load()
    limit = args.limit_clips if getattr(args, "limit_clips", None) is not None else section.get("limit_clips")
    if limit:
        # a spread of clips over the whole list (the list is ordered by target category)
        step = max(1, len(dataset.clips) // int(limit))
        dataset = dataset.subset(indices=list(range(0, len(dataset.clips), step))[: int(limit)])
    return dataset


def _blocks(*, dataset: soundtracks.Soundtracks, progress: bool):
    from . import cache

    return cache.load_all(paths=[clip.path for clip in dataset.clips], progress=progress)


def command_cache(*, args: argparse.Namespace, toml: dict) -> int:
    dataset = soundtracks.load()
    blocks = _blocks(dataset=dataset, progress=not args.no_progress)
    print(f"cached {len(blocks)} clips, {sum(b.num_frames for b in blocks)} frames")
    return 0


def command_embed(*, args: argparse.Namespace, toml: dict) -> int:
    from . import embeddings

    dataset = soundtracks.load()
    context = args.context_frames or embeddings.PATCH_FRAMES
    for set_name in args.sets.split(","):
        clips = embeddings.load_set(paths=[clip.path for clip in dataset.clips], set_name=set_name,
                                    context_frames=context, backbone=args.backbone, progress=not args.no_progress)
        print(f"{embeddings.set_key(set_name=set_name, context_frames=context, backbone=args.backbone)}: {len(clips)} clips, "
              f"{sum(c.num_patches for c in clips)} patches", flush=True)
    return 0


def _candidates(*, section: dict, config_class: type, table: str) -> dict:
    """The ``[TABLE.candidates.NAME]`` tables of a training config as ``config_class`` objects, by name; an
    unknown key or no candidate at all is a ValueError naming the table."""
    known = {f.name for f in dataclasses.fields(config_class)}
    candidates = {}
    for name, values in section.get("candidates", {}).items():
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown setting(s) in [{table}.candidates.{name}]: {', '.join(unknown)}")
        candidates[name] = config_class(**values)
    if not candidates:
        raise ValueError(f"[{table}] needs at least one [{table}.candidates.NAME] table")
    return candidates


def _head_candidates(*, section: dict) -> dict:
    from .heads import HeadConfig

    return _candidates(section=section, config_class=HeadConfig, table="v2")


def _embedding_sets(*, dataset: soundtracks.Soundtracks, configs: list, progress: bool) -> dict:
    """Every embedding set that the head configs ``configs`` read, by :meth:`HeadConfig.set_key`."""
    from . import embeddings

    wanted = {c.set_key(name): (name, c.context_frames, c.backbone)
              for c in configs for name in ("clean", *c.augmented_sets)}
    return {key: embeddings.load_set(paths=[clip.path for clip in dataset.clips], set_name=name,
                                     context_frames=context, backbone=backbone, progress=progress)
            for key, (name, context, backbone) in sorted(wanted.items())}


def command_cv2(*, args: argparse.Namespace, toml: dict) -> int:
    from .embedding_cv import run
    from .heads import HeadConfig

    section = toml.get("v2", {})
    candidates = _head_candidates(section=section)
    declared = tuple(candidates)
    wanted = set(args.candidates.split(",")) if args.candidates else set(candidates)
    candidates = {name: config for name, config in candidates.items() if name in wanted}
    if args.max_epochs is not None:
        candidates = {name: dataclasses.replace(c, max_epochs=args.max_epochs) for name, c in candidates.items()}
    dataset = _dataset(section=section, args=args)
    # HeadConfig(): the whole-patch clean set, which the ridge baseline reads
    sets = _embedding_sets(dataset=dataset, configs=[HeadConfig(), *candidates.values()], progress=not args.no_progress)
    summary = run(
        dataset=dataset, sets=sets, candidates=candidates,
        protocols=tuple(args.protocols.split(",") if args.protocols else section.get("protocols", ["paper", "album"])),
        num_folds=int(args.folds or section.get("folds", DEFAULT_FOLDS)),
        fold_seed=int(section.get("fold_seed", DEFAULT_FOLD_SEED)),
        out_dir=Path(args.out or section.get("out", DEFAULT_V2_CV_DIR)), command=args.command_line,
        progress=not args.no_progress, order=declared,
    )
    for protocol, result in summary["protocols"].items():
        if "nested" in result:
            print(f"{protocol} nested: clip r {result['nested']['clip_r_avg']:.3f} picks {result['nested']['picks']}")
    return 0


V2_CV_KEYS = ("clip_r_avg", "clip_r_avg_fold_std", "clip_r_mean", "live_r_avg")


def _v2_cv_metrics(*, summary_path: Path, candidate: str, pooling_name: str) -> dict:
    """The candidate's headline CV numbers per protocol, for the ONNX metadata ({} if there is no summary)."""
    if not summary_path.is_file():
        return {}
    summary = json.loads(summary_path.read_text())
    metrics = {"candidate": candidate, "num_folds": summary["num_folds"], "pooling": pooling_name}
    for protocol, result in summary["protocols"].items():
        entry = result["candidates"].get(candidate)
        if entry is None:
            continue
        metrics[protocol] = {key: entry[key] for key in V2_CV_KEYS if key in entry}
        metrics[protocol]["live_r_avg"] = entry.get("live_r_avg", {}).get(pooling_name)
    return metrics


PARITY_CLIPS = 3


def onnx_parity(*, net, model_path: Path, clips: list[Path], backbone_path: Path) -> dict:
    """Largest |ONNX Runtime (merged file, from mel) - torch (head on the embeddings of the backbone file
    ``backbone_path``)| on real clips."""
    import numpy as np
    import onnxruntime
    import torch

    from .embeddings import Backbone, load_audio, log_mel, patches
    from .heads import head_input

    session = onnxruntime.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    backbone = Backbone(path=backbone_path)
    worst = {"mid": 0.0, "emotion": 0.0}
    count = 0
    net.eval()
    for path in clips:
        mel = patches(mel=log_mel(samples=load_audio(path=path)))
        mid, emotion = session.run(["mid", "emotion"], {"mel": mel})
        with torch.no_grad():
            torch_mid, torch_emotion = net(torch.from_numpy(head_input(clip=backbone.process(batch=mel), kind=net.kind)))
        worst["mid"] = max(worst["mid"], float(np.abs(mid - torch_mid.numpy()).max()))
        worst["emotion"] = max(worst["emotion"], float(np.abs(emotion - torch_emotion.numpy()).max()))
        count += len(mel)
    return {"max_abs": worst, "num_patches": count, "num_clips": len(clips)}


def command_fit2(*, args: argparse.Namespace, toml: dict) -> int:
    """Train the chosen v2 candidate on all clips (early stopping on a held-out split) and export it."""
    import numpy as np
    import torch

    from .embedding_cv import SUMMARY_FILE, pooling_name
    from .embeddings import CHECKPOINTS, FRONTEND_CONSTANTS, PATCH_HOP_FRAMES, backbone_path
    from .export import export_v2
    from .heads import train_head
    from .training import split_validation

    section = toml.get("v2", {})
    candidates = _head_candidates(section=section)
    name = args.candidate or section.get("ship")
    if name not in candidates:
        raise ValueError(f"no candidate {name!r} in [v2.candidates]; choose with --candidate or ship = NAME")
    config = candidates[name]
    if args.max_epochs is not None:
        config = dataclasses.replace(config, max_epochs=args.max_epochs)
    chosen_pooling = section.get("pooling", {"patches": 8, "halflife_s": 0.5})
    pooling = {"patch_hop_frames": PATCH_HOP_FRAMES, "patches": int(chosen_pooling["patches"]),
               "halflife_s": float(chosen_pooling["halflife_s"])}
    dataset = _dataset(section=section, args=args)
    sets = _embedding_sets(dataset=dataset, configs=[config], progress=not args.no_progress)
    fraction = float(section.get("validation_fraction", config.validation_fraction))
    train_indices, val_indices = split_validation(indices=np.arange(len(dataset.clips)), fraction=fraction,
                                                  seed=config.seed)
    result = train_head(config=config, sets=sets, ratings=dataset.ratings, train_indices=train_indices,
                        val_indices=val_indices, poster_weight=soundtracks.poster_weights(root=dataset.root),
                        mid_correlation=soundtracks.mid_emotion_correlation(root=dataset.root))
    cv_dir = Path(args.cv_dir or section.get("out", DEFAULT_V2_CV_DIR))
    cv_metrics = _v2_cv_metrics(summary_path=cv_dir / SUMMARY_FILE, candidate=name,
                                pooling_name=pooling_name(patches=pooling["patches"], halflife_s=pooling["halflife_s"]))
    out = Path(args.out or section.get("model", DEFAULT_V2_MODEL))
    data_hash = soundtracks.data_hash(data=dataset)
    backbone = backbone_path(context_frames=config.context_frames, backbone=config.backbone)
    export_v2(net=result.net, path=out, backbone_path=backbone, variant=f"musicnn_{name}",
              data_hash=data_hash, pooling=pooling, cv_metrics=cv_metrics, frontend=FRONTEND_CONSTANTS,
              checkpoint=CHECKPOINTS[config.backbone])
    parity = onnx_parity(net=result.net, model_path=out, clips=[dataset.clips[i].path for i in val_indices[:PARITY_CLIPS]],
                         backbone_path=backbone)
    record = {
        "candidate": name, "config": config.to_dict(), "pooling": pooling, "num_clips": len(dataset.clips),
        "onnx_vs_torch": parity,
        "num_train": int(len(train_indices)), "num_val": int(len(val_indices)), "best_epoch": result.best_epoch,
        "epochs_run": result.epochs_run, "seconds": result.seconds, "best_val_r": result.best_val_r,
        "pseudo_info": result.pseudo_info, "data_hash": data_hash, "command": args.command_line,
    }
    if config.seeds > 1:
        record["members"] = result.history  # per seed: best epoch, epochs run, validation r
    records = Path(args.records or section.get("records") or out.parent)
    records.mkdir(parents=True, exist_ok=True)
    (records / out.with_suffix(".training.json").name).write_text(json.dumps(record, indent=1))
    torch.save(result.net.state_dict(), records / out.with_suffix(".pt").name)
    print(f"exported {out} ({name}; best epoch {result.best_epoch} of {result.epochs_run}, {result.seconds:.0f} s)")
    return 0


def _v3_candidates(*, section: dict) -> dict:
    from .multidomain import JointConfig

    return _candidates(section=section, config_class=JointConfig, table="v3")


def _v3_data(*, section: dict, args: argparse.Namespace, backbones: set[str], context_frames: int):
    """Soundtracks and 4q-dev (both cut to ``limit_clips`` spread clips when set) and their embeddings per
    backbone: ``(dataset, fourq, st_sets, q_sets)``."""
    from . import crossgenre, embeddings

    dataset = _dataset(section=section, args=args)
    fourq = crossgenre.load()
    limit = args.limit_clips if getattr(args, "limit_clips", None) is not None else section.get("limit_clips")
    if limit:
        step = max(1, len(fourq.files) // int(limit))
        fourq = fourq.subset(indices=list(range(0, len(fourq.files), step))[: int(limit)])
    progress = not args.no_progress
    st_sets = {b: embeddings.load_set(paths=[c.path for c in dataset.clips], set_name=embeddings.SPARSE,
                                      context_frames=context_frames, backbone=b, progress=progress) for b in sorted(backbones)}
    q_sets = {b: embeddings.load_set(paths=fourq.paths, set_name=embeddings.SPARSE, context_frames=context_frames,
                                     backbone=b, progress=progress) for b in sorted(backbones)}
    return dataset, fourq, st_sets, q_sets


def _v3_references(*, section: dict, fourq, q_sets: dict) -> dict:
    """The shipped v1 and v2 on 4q-dev (held out: neither saw it) and their own album-grouped CV figures."""
    import numpy as np
    import torch

    from mer_live.core import labels
    from .heads import PatchHead

    references = {}
    metrics_path = DEFAULT_METRICS
    metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    v1_csv = Path(section.get("v1_fourq", ""))
    if section.get("v1_fourq") and v1_csv.is_file():
        import csv

        with v1_csv.open(newline="") as handle:
            by_file = {Path(row["file"]).name: row for row in csv.DictReader(handle)}
        if all(name in by_file for name in fourq.files):
            rows = [by_file[name] for name in fourq.files]
            references["v1"] = {
                "q_emotion": np.array([[float(r[e]) for e in labels.EMOTIONS] for r in rows]),
                "q_mid": np.array([[float(r[m]) for m in labels.MID_LEVELS] for r in rows]),
            }
            album = metrics.get("cv", {}).get("joint_ab_w0.25_full60_album")
            if album:
                references["v1"]["soundtracks"] = {"album_r": album["clip_r_avg"], "source": "models/metrics.json cv"}
    head_path = Path(section.get("v2_head", ""))
    if section.get("v2_head") and head_path.is_file() and "mtt" in q_sets:
        state = torch.load(head_path, weights_only=True)
        net = PatchHead(kind="frozen", hidden=state["mid_head.0.weight"].shape[0], dropout=0.0)
        net.load_state_dict(state)
        net.eval()
        mids, emotions = [], []
        with torch.no_grad():
            for clip in q_sets["mtt"]:
                mid, emotion = net(torch.from_numpy(clip.penultimate.astype(np.float32)))
                mids.append(mid.double().mean(dim=0).numpy())
                emotions.append(emotion.double().mean(dim=0).numpy())
        references["v2"] = {"q_emotion": np.stack(emotions), "q_mid": np.stack(mids)}
        album = (metrics.get("v2", {}).get("cv", {}).get("protocols", {}).get("album", {}).get("candidates", {})
                 .get("frozen_mlp_aug_s5_ctx94"))
        if album:
            references["v2"]["soundtracks"] = {"album_r": album["clip_r_avg"], "source": "models/metrics.json v2.cv"}
    return references


def command_cv3(*, args: argparse.Namespace, toml: dict) -> int:
    from .joint_cv import run

    section = toml.get("v3", {})
    out_dir = Path(args.out or section.get("out", DEFAULT_V3_CV_DIR))
    if args.validity_only:  # a finished run: add the descriptor validity of its out-of-fold mid-level outputs
        from .descriptors import clip_descriptors
        from .joint_cv import add_validity

        dataset = _dataset(section=section, args=args)
        _, descriptors = clip_descriptors(clip_ids=dataset.ids, root=dataset.root)
        add_validity(out_dir=out_dir, descriptors=descriptors)
        print(f"added the mid-level validity to {out_dir}")
        return 0
    candidates = _v3_candidates(section=section)
    eligible = set(section.get("eligible", list(candidates)))
    earlier = None
    if args.candidates:  # add these candidates to the finished run in --out (same folds), keeping its rows
        import numpy as np

        from .joint_cv import PREDICTIONS_FILE, SUMMARY_FILE

        wanted = args.candidates.split(",")
        unknown = sorted(set(wanted) - set(candidates))
        if unknown:
            raise ValueError(f"no candidate(s) {', '.join(unknown)} in [v3.candidates]")
        candidates = {name: candidates[name] for name in wanted}
        with np.load(out_dir / PREDICTIONS_FILE) as stored:
            earlier = {"summary": json.loads((out_dir / SUMMARY_FILE).read_text()),
                       "predictions": {key: stored[key] for key in stored.files}}
    contexts = {c.context_frames for c in candidates.values()}
    if len(contexts) != 1:
        raise ValueError("[v3] candidates must share one context_frames")
    backbones = {"mtt"} | {b for c in candidates.values() for b in c.backbones}
    dataset, fourq, st_sets, q_sets = _v3_data(section=section, args=args, backbones=backbones,
                                               context_frames=contexts.pop())
    descriptors = None
    if args.validity:
        from .descriptors import clip_descriptors

        _, descriptors = clip_descriptors(clip_ids=dataset.ids, root=dataset.root)
    run(dataset=dataset, fourq=fourq, st_sets=st_sets, q_sets=q_sets, candidates=candidates,
        num_folds=int(args.folds or section.get("folds", DEFAULT_FOLDS)),
        fold_seed=int(section.get("fold_seed", DEFAULT_FOLD_SEED)), fourq_seed=int(section.get("fourq_seed", 0)),
        out_dir=out_dir, command=args.command_line,
        references=None if earlier else _v3_references(section=section, fourq=fourq, q_sets=q_sets),
        descriptors=descriptors, eligible={name: True for name in eligible}, progress=not args.no_progress,
        jobs=args.jobs, baselines=earlier is None, earlier=earlier)
    return 0


V3_DATA = ("the Soundtracks data set (Eerola & Vuoskoski 2011) and the 4q-dev clips of the 4Q audio emotion data "
           "set (Panda, Malheiro & Paiva 2018; quadrant labels, research use)")


def head_of(*, head, backbone: str):
    """A :class:`~.heads.PatchHead` (frozen, linear) equal to the fitted :class:`~.multidomain.LinearJoint`
    ``head``: per patch, ``mid = W1 (x - mean) / std + b1``, ``emotion = W2 mid + b2``."""
    import torch

    from .heads import PatchHead

    net = PatchHead(kind="frozen", hidden=0, dropout=0.0, backbone=backbone)
    with torch.no_grad():
        net.feature_mean.copy_(torch.tensor(head.mean, dtype=torch.float32))
        net.feature_std.copy_(torch.tensor(head.std, dtype=torch.float32))
        net.mid_head.weight.copy_(torch.tensor(head.w1, dtype=torch.float32))
        net.mid_head.bias.copy_(torch.tensor(head.b1, dtype=torch.float32))
        net.emotion_head.weight.copy_(torch.tensor(head.w2, dtype=torch.float32))
        net.emotion_head.bias.copy_(torch.tensor(head.b2, dtype=torch.float32))
    return net.eval()


def _v3_cv_metrics(*, summary_path: Path, candidate: str) -> dict:
    """The candidate's headline out-of-fold figures for the ONNX metadata ({} if there is no summary)."""
    if not summary_path.is_file():
        return {}
    row = json.loads(summary_path.read_text())["rows"].get(candidate)
    if row is None:
        return {}
    fourq = {k: row["fourq"][k] for k in ("arousal_auc", "valence_auc", "quadrant_accuracy")}
    return {"candidate": candidate, "album": {"clip_r_avg": row["soundtracks"]["album_r"]}, "fourq": fourq,
            "score": row["score"]}


def command_fit3(*, args: argparse.Namespace, toml: dict) -> int:
    """Fit the chosen v3 candidate on all clips of both sets (settings by inner CV on them) and export it."""
    import numpy as np
    import torch

    from .embeddings import CHECKPOINTS, FRONTEND_CONSTANTS, PATCH_HOP_FRAMES, backbone_path
    from .export import export_v2
    from .folds import albums
    from .joint_cv import SUMMARY_FILE, clip_mean
    from .multidomain import Domains, fit_chosen

    section = toml.get("v3", {})
    candidates = _v3_candidates(section=section)
    cv_dir = Path(args.cv_dir or section.get("out", DEFAULT_V3_CV_DIR))
    name = args.candidate or section.get("ship")
    if not name and (cv_dir / SUMMARY_FILE).is_file():
        name = json.loads((cv_dir / SUMMARY_FILE).read_text())["declared_choice"]
    if name not in candidates:
        raise ValueError(f"no candidate {name!r} in [v3.candidates]; run cv3 first or pass --candidate")
    config = candidates[name]
    if len(config.backbones) != 1:
        raise ValueError(f"{name}: only one-backbone heads export (the live path runs one network)")
    backbone = config.backbones[0]
    dataset, fourq, st_sets, q_sets = _v3_data(section=section, args=args, backbones={backbone},
                                               context_frames=config.context_frames)
    domains = Domains(st_x=clip_mean(st_sets[backbone]), st_y=dataset.ratings, st_albums=albums(dataset=dataset),
                      q_x=clip_mean(q_sets[backbone]), q_data=fourq)
    if args.hold_out_fold is not None:  # a twin without outer fold k of both sets (benchmarks/band_steps.py)
        from .joint_cv import _paired_folds

        st_folds, q_folds = _paired_folds(dataset=dataset, fourq=fourq, num_folds=int(section.get("folds", DEFAULT_FOLDS)),
                                          fold_seed=int(section.get("fold_seed", DEFAULT_FOLD_SEED)),
                                          fourq_seed=int(section.get("fourq_seed", 0)))
        k = args.hold_out_fold
        domains = domains.take(st=np.setdiff1d(np.arange(len(dataset.clips)), st_folds[k]),
                               q=np.setdiff1d(np.arange(len(fourq.files)), q_folds[k]))
    head = fit_chosen(config=config, domains=domains, correlation=soundtracks.mid_emotion_correlation(root=dataset.root),
                      poster=soundtracks.poster_weights(root=dataset.root))
    net = head_of(head=head, backbone=backbone)
    chosen_pooling = section.get("pooling", {"patches": 4, "halflife_s": 0.25})
    pooling = {"patch_hop_frames": PATCH_HOP_FRAMES, "patches": int(chosen_pooling["patches"]),
               "halflife_s": float(chosen_pooling["halflife_s"])}
    out = Path(args.out or section.get("model", DEFAULT_V3_MODEL))
    data_hash = soundtracks.data_hash(data=dataset)
    network = backbone_path(context_frames=config.context_frames, backbone=backbone)
    export_v2(net=net, path=out, backbone_path=network, variant=f"musicnn_v3_{name}", data_hash=data_hash,
              pooling=pooling, cv_metrics=_v3_cv_metrics(summary_path=cv_dir / SUMMARY_FILE, candidate=name),
              frontend=FRONTEND_CONSTANTS, checkpoint=CHECKPOINTS[backbone], trained_on=V3_DATA)
    parity = onnx_parity(net=net, model_path=out, clips=[c.path for c in dataset.clips[:PARITY_CLIPS]],
                         backbone_path=network)
    mid, emotion = head.predict(domains.st_x[:PARITY_CLIPS])  # the float64 fit against the exported float32 head
    with torch.no_grad():
        torch_mid, torch_emotion = net(torch.tensor(domains.st_x[:PARITY_CLIPS], dtype=torch.float32))
    record = {
        "candidate": name, "config": config.to_dict(), "pooling": pooling, "num_clips": len(domains.st_y),
        "num_fourq_clips": len(domains.q_x), "held_out_fold": args.hold_out_fold, "settings": {k: v for k, v in head.settings.items() if k != "inner_grid"},
        "inner_grid": head.settings.get("inner_grid", []), "onnx_vs_torch": parity,
        "torch_vs_fit_max_abs": float(max(np.abs(torch_mid.numpy() - mid).max(), np.abs(torch_emotion.numpy() - emotion).max())),
        "data_hash": data_hash, "command": args.command_line,
    }
    records = Path(args.records or section.get("records") or out.parent)
    records.mkdir(parents=True, exist_ok=True)
    (records / out.with_suffix(".training.json").name).write_text(json.dumps(record, indent=1))
    torch.save(net.state_dict(), records / out.with_suffix(".pt").name)
    print(f"exported {out} ({name}: {head.settings['weight_decay']:g} weight decay, weak weight "
          f"{head.settings['weak_weight']:g}; ONNX vs torch {parity['max_abs']})")
    return 0


def command_cv(*, args: argparse.Namespace, toml: dict) -> int:
    from .evaluation import cross_validate

    section = toml.get("cv", {})
    variants = args.variant_list or section.get("variants") or [toml.get("train", {}).get("variant", "joint_ab")]
    folds = args.folds or section.get("folds", DEFAULT_FOLDS)
    fold_seed = args.fold_seed if args.fold_seed is not None else section.get("fold_seed", DEFAULT_FOLD_SEED)
    out_dir = Path(args.out or section.get("out", DEFAULT_CV_DIR))
    only = [int(x) for x in args.only_folds.split(",")] if args.only_folds else None
    dataset = _dataset(section=section, args=args)
    blocks = _blocks(dataset=dataset, progress=not args.no_progress)
    for variant in variants:
        config = _train_config(args=args, toml=toml, variant=variant)
        summary = cross_validate(
            config=config, dataset=dataset, blocks=blocks, num_folds=int(folds), fold_seed=int(fold_seed),
            out_dir=out_dir, only_folds=only, command=getattr(args, "command_line", ""), protocol=args.protocol,
        )
        print(f"{summary['name']}: folds {summary['folds_done']} clip r {summary['clip_r_avg']:.3f} "
              f"± {summary['clip_r_avg_fold_std']:.3f}, window r {summary['window_r_avg']:.3f}", flush=True)
    return 0


CV_METADATA_KEYS = ("name", "num_folds", "folds_done", "clip_r_mean", "clip_r_std", "clip_r_avg",
                    "clip_r_avg_fold_std", "window_r_avg")


def _cv_metrics(*, summary_path: Path) -> dict:
    """The CV summary's headline numbers for the ONNX metadata ({} if that run has no summary)."""
    if not summary_path.is_file():
        return {}
    summary = json.loads(summary_path.read_text())
    return {key: summary[key] for key in CV_METADATA_KEYS}


def command_export(*, args: argparse.Namespace, toml: dict) -> int:
    """Re-export saved weights (``fit --save-torch``) with the current CV summary in the metadata."""
    import shutil

    import torch

    from .evaluation import SUMMARY_FILE
    from .export import export_onnx
    from .networks import EmotionNet
    from .training import VARIANTS

    section = toml.get("export", {})
    if not (args.weights or section.get("weights")):
        raise ValueError("export needs --weights (or weights in the [export] section)")
    weights = Path(args.weights or section["weights"])
    record = json.loads(weights.with_suffix(".training.json").read_text())
    net = EmotionNet(variant=VARIANTS[record["variant"]][0], width=record["width"])
    net.load_state_dict(torch.load(weights, weights_only=True))
    from .evaluation import run_name
    from .training import TrainConfig

    name = run_name(config=TrainConfig.from_dict(values=record["config"]))
    cv_run = args.cv_run or section.get("cv_run") or name
    cv_dir = Path(args.cv_dir or section.get("cv_dir", DEFAULT_CV_DIR))
    out = Path(args.out or section.get("out", DEFAULT_MODEL))
    export_onnx(net=net, path=out, variant=name, data_hash=record["data_hash"],
                cv_metrics=_cv_metrics(summary_path=cv_dir / cv_run / SUMMARY_FILE))
    record_path = _record_path(model=out, suffix=".training.json")
    shutil.copyfile(weights.with_suffix(".training.json"), record_path)
    if weights.resolve() != record_path.with_suffix(".pt").resolve():
        shutil.copyfile(weights, record_path.with_suffix(".pt"))  # the torch weights travel with the model (parity test)
    print(f"exported {out} from {weights}")
    return 0


def command_fit(*, args: argparse.Namespace, toml: dict) -> int:
    import numpy as np
    import torch

    from .evaluation import SUMMARY_FILE, run_name
    from .export import export_onnx
    from .training import split_validation, train

    section = toml.get("fit", {})
    config = _train_config(args=args, toml=toml)
    dataset = _dataset(section=section, args=args)
    blocks = _blocks(dataset=dataset, progress=config.progress)
    fraction = section.get("validation_fraction", config.validation_fraction)
    config = dataclasses.replace(config, validation_fraction=fraction)  # the record says what was used
    train_indices, val_indices = split_validation(
        indices=np.arange(len(dataset.clips)), fraction=fraction, seed=config.seed
    )
    result = train(
        config=config, blocks=blocks, ratings=dataset.ratings, train_indices=train_indices,
        val_indices=val_indices, poster_weight=soundtracks.poster_weights(root=dataset.root),
        mid_correlation=soundtracks.mid_emotion_correlation(root=dataset.root), description=f"fit {config.variant}",
    )
    cv_dir = Path(args.cv_dir or section.get("cv_dir", DEFAULT_CV_DIR))
    cv_run = toml.get("export", {}).get("cv_run") or run_name(config=config)  # [fit] has no cv_run key
    cv_metrics = _cv_metrics(summary_path=cv_dir / cv_run / SUMMARY_FILE)
    out = Path(args.out or section.get("out", DEFAULT_MODEL))
    data_hash = soundtracks.data_hash(data=dataset)
    export_onnx(net=result.net, path=out, variant=run_name(config=config), data_hash=data_hash,
                cv_metrics=cv_metrics)
    training_record = {
        "variant": config.variant, "width": config.width, "config": config.to_dict(),
        "num_train": int(len(train_indices)), "num_val": int(len(val_indices)),
        "best_epoch": result.best_epoch, "epochs_run": result.epochs_run, "seconds": result.seconds,
        "history": result.history, "pseudo_info": result.pseudo_info, "data_hash": data_hash,
        "num_clips": len(dataset.clips),
    }
    _record_path(model=out, suffix=".training.json").write_text(json.dumps(training_record, indent=1))
    if args.save_torch or section.get("save_torch", False):
        torch.save(result.net.state_dict(), _record_path(model=out, suffix=".pt"))
    print(f"exported {out} (best epoch {result.best_epoch} of {result.epochs_run}, {result.seconds:.0f} s)")
    return 0


def command_card(*, args: argparse.Namespace, toml: dict) -> int:
    from .report import build_metrics, render_card

    section = toml.get("card", {})
    metrics = build_metrics(
        cv_dir=Path(args.cv_dir or section.get("cv_dir", DEFAULT_CV_DIR)),
        model_path=Path(args.model or section.get("model", DEFAULT_MODEL)),
        benchmark_path=Path(args.benchmark) if args.benchmark else (
            Path(section["benchmark"]) if "benchmark" in section else None),
        shipped_run=args.shipped_run or section.get("shipped_run"),
    )
    metrics_path = Path(args.metrics or section.get("metrics", DEFAULT_METRICS))
    if metrics_path.is_file():  # the v2 section (mer-live-train card2) is kept
        previous = json.loads(metrics_path.read_text())
        if "v2" in previous:
            metrics["v2"] = previous["v2"]
    metrics_path.write_text(json.dumps(metrics, indent=1))
    card_path = Path(args.card or section.get("card", DEFAULT_V1_CARD))
    card_path.write_text(render_card(metrics=metrics))
    print(f"wrote {metrics_path} and {card_path}")
    return 0


def command_card2(*, args: argparse.Namespace, toml: dict) -> int:
    from .report_v2 import build_v2_metrics, render_v2_card

    section = toml.get("v2", {})
    metrics_path = Path(args.metrics or DEFAULT_METRICS)
    metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    if "data" not in metrics:
        raise ValueError(f"{metrics_path}: no v1 metrics (data, paper rows) to extend; run `mer-live-train card` first")
    metrics = build_v2_metrics(
        metrics=metrics, cv_dir=Path(args.cv_dir or section.get("out", DEFAULT_V2_CV_DIR)),
        model_path=Path(args.model or section.get("model", DEFAULT_V2_MODEL)),
        records=Path(args.records) if args.records else (Path(section["records"]) if "records" in section else None),
        responsiveness=Path(args.responsiveness), daemon_cpu=Path(args.daemon_cpu),
        validity=Path(args.validity), command=args.command_line, v1_album_cv=Path(args.v1_album_cv),
        fusions=section.get("fusions", []),
    )
    metrics_path.write_text(json.dumps(metrics, indent=1))
    card_path = Path(args.card or DEFAULT_V2_CARD)
    card_path.write_text(render_v2_card(metrics=metrics))
    print(f"wrote {metrics_path} and {card_path}")
    return 0


def command_card3(*, args: argparse.Namespace, toml: dict) -> int:
    from .report_v3 import build_v3_metrics, render_card

    section = toml.get("v3", {})
    metrics_path = Path(args.metrics or DEFAULT_METRICS)
    metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    metrics = build_v3_metrics(
        metrics=metrics, cv_dir=Path(args.cv_dir or section.get("out", DEFAULT_V3_CV_DIR)),
        model_path=Path(args.model or section.get("model", DEFAULT_V3_MODEL)),
        records=Path(args.records or section.get("records", DEFAULT_RECORDS)),
        band_steps=Path(args.band_steps), daemon_cpu=Path(args.daemon_cpu), command=args.command_line)
    metrics_path.write_text(json.dumps(metrics, indent=1))
    card_path = Path(args.card or DEFAULT_CARD)
    card_path.write_text(render_card(metrics=metrics))
    print(f"wrote {metrics_path} and {card_path}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mer-live-train", description=DESCRIPTION)
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser, *, training: bool) -> None:
        p.add_argument("--config", help="TOML file ([train], [cv], [fit], [export], [card] sections)")
        p.add_argument("--no-progress", action="store_true", help="no tqdm bars")
        if training:
            p.add_argument("--width", type=float, help="width multiplier of the network")
            p.add_argument("--max-epochs", dest="max_epochs", type=int)
            p.add_argument("--patience", type=int, help="early-stopping patience in epochs")
            p.add_argument("--seed", type=int)
            p.add_argument("--threads", type=int, help="torch CPU threads")
            p.add_argument("--device", help="auto (CUDA when present), cpu or cuda")
            p.add_argument("--learning-rate", dest="learning_rate", type=float)
            p.add_argument("--limit-clips", dest="limit_clips", type=int, help="use only N clips (smoke tests)")
            p.add_argument("--tag", help="suffix of the CV run name (to compare recipes)")

    common(sub.add_parser("cache", help="build the spectrogram cache"), training=False)
    from .embeddings import BACKBONES, DEFAULT_BACKBONE  # no torch: the embed command's choices

    embed = sub.add_parser("embed", help="cache musicnn patch embeddings (clean and augmented sets)")
    common(embed, training=False)
    embed.add_argument("--sets", default="clean", help="comma-separated: clean, or names of augmented sets")
    embed.add_argument("--context-frames", dest="context_frames", type=int,
                       help="the backbone hears the last N frames of each 187-frame patch (default: all)")
    embed.add_argument("--backbone", default=DEFAULT_BACKBONE, choices=sorted(BACKBONES),
                       help="musicnn trained on MagnaTagATune (mtt, default) or the Million Song Dataset (msd)")
    cv = sub.add_parser("cv", help="k-fold cross-validation")
    common(cv, training=True)
    cv.add_argument("--variant", dest="variant_list", action="append", help="variant (repeatable)")
    cv.add_argument("--folds", type=int)
    cv.add_argument("--fold-seed", dest="fold_seed", type=int)
    cv.add_argument("--only-folds", dest="only_folds", help="comma-separated fold indices")
    cv.add_argument("--protocol", default="paper", choices=("paper", "album"),
                    help="folds stratified by target emotion (paper, default) or grouped by album")
    cv.add_argument("--out", help="output folder (default runs/cv)")
    cv2 = sub.add_parser("cv2", help="v2: CV of the musicnn heads under both protocols ([v2] section)")
    common(cv2, training=False)
    cv2.add_argument("--limit-clips", dest="limit_clips", type=int, help="use only N clips (smoke tests)")
    cv2.add_argument("--folds", type=int)
    cv2.add_argument("--max-epochs", dest="max_epochs", type=int)
    cv2.add_argument("--protocols", help="comma-separated: paper, album")
    cv2.add_argument("--candidates", help="comma-separated candidate names (default: all of [v2.candidates])")
    cv2.add_argument("--out", help="output folder (default runs/v2cv)")
    fit2 = sub.add_parser("fit2", help="v2: train the chosen head on all clips and export one ONNX file")
    common(fit2, training=False)
    fit2.add_argument("--candidate", help="candidate name (default: ship in [v2])")
    fit2.add_argument("--limit-clips", dest="limit_clips", type=int, help="use only N clips (smoke tests)")
    fit2.add_argument("--max-epochs", dest="max_epochs", type=int)
    fit2.add_argument("--cv-dir", dest="cv_dir", help="the cv2 run whose summary goes into the metadata")
    fit2.add_argument("--out", help="ONNX path (default mer_live/model/assets/musicnn_joint.onnx)")
    fit2.add_argument("--records", help="folder for the .pt weights and .training.json (default: the ONNX's)")
    cv3 = sub.add_parser("cv3", help="v3: CV of the multi-domain heads on Soundtracks and 4q-dev ([v3] section)")
    common(cv3, training=False)
    cv3.add_argument("--limit-clips", dest="limit_clips", type=int, help="use only N clips of each set (smoke tests)")
    cv3.add_argument("--folds", type=int)
    cv3.add_argument("--out", help="output folder (default runs/v3cv)")
    cv3.add_argument("--jobs", type=int, default=1, help="worker processes for the candidates' folds (default 1)")
    cv3.add_argument("--candidates", help="comma-separated: run only these and add them to the finished run in --out")
    cv3.add_argument("--validity", action="store_true",
                     help="also score the mid-level outputs against the Soundtracks descriptors (computes them once)")
    cv3.add_argument("--validity-only", dest="validity_only", action="store_true",
                     help="only add that score to the finished run in --out")
    fit3 = sub.add_parser("fit3", help="v3: fit the declared choice on both sets and export one ONNX file")
    common(fit3, training=False)
    fit3.add_argument("--candidate", help="candidate name (default: ship in [v3], else cv3's declared choice)")
    fit3.add_argument("--limit-clips", dest="limit_clips", type=int, help="use only N clips of each set (smoke tests)")
    fit3.add_argument("--cv-dir", dest="cv_dir", help="the cv3 run (its declared choice and figures)")
    fit3.add_argument("--out", help="ONNX path (default mer_live/model/assets/musicnn_joint_v3.onnx)")
    fit3.add_argument("--records", help="folder for the .pt weights and .training.json (default: [v3] records)")
    fit3.add_argument("--hold-out-fold", dest="hold_out_fold", type=int,
                      help="leave out outer fold K of both sets (a twin for benchmarks on those clips)")
    fit = sub.add_parser("fit", help="train on all clips and export ONNX")
    common(fit, training=True)
    fit.add_argument("--variant")
    fit.add_argument("--out", help="ONNX path (default mer_live/model/assets/a2mid2e_joint.onnx)")
    fit.add_argument("--cv-dir", dest="cv_dir", help="where the CV summaries are (for the metadata)")
    fit.add_argument("--save-torch", dest="save_torch", action="store_true", help="also save the state dict (.pt)")
    exporter = sub.add_parser("export", help="re-export weights saved by fit --save-torch (with CV metrics)")
    common(exporter, training=False)
    exporter.add_argument("--weights", help="the .pt file written by fit --save-torch")
    exporter.add_argument("--out", help="ONNX path (default mer_live/model/assets/a2mid2e_joint.onnx)")
    exporter.add_argument("--cv-dir", dest="cv_dir")
    exporter.add_argument("--cv-run", dest="cv_run", help="CV run whose summary goes into the metadata "
                          "(default: the run name of the recorded training config)")
    card2 = sub.add_parser("card2", help="v2: add the v2 section to models/metrics.json and render the card")
    common(card2, training=False)
    card2.add_argument("--cv-dir", dest="cv_dir", help="the cv2 run folder (default runs/v2cv)")
    card2.add_argument("--model", help="the v2 ONNX file (default mer_live/model/assets/musicnn_joint.onnx)")
    card2.add_argument("--records", help="folder of the v2 .training.json (default: the ONNX's)")
    card2.add_argument("--responsiveness", default="benchmarks/responsiveness.json")
    card2.add_argument("--daemon-cpu", dest="daemon_cpu", default="benchmarks/daemon_cpu.json")
    card2.add_argument("--v1-album-cv", dest="v1_album_cv", default="runs/cv/joint_ab_w0.25_full60_album",
                       help="v1's album-grouped CV run folder, added to the card when complete")
    card2.add_argument("--validity", default="models/mid_validity.json",
                       help="JSON of `python -m mer_live.train.descriptors --model V1 --cv RUN --out FILE`")
    card2.add_argument("--metrics")
    card2.add_argument("--card")
    card3 = sub.add_parser("card3", help="v3: add the v3 section to models/metrics.json and render the model card")
    common(card3, training=False)
    card3.add_argument("--cv-dir", dest="cv_dir", help="the cv3 run folder (default runs/v3cv)")
    card3.add_argument("--model", help="the v3 ONNX file (default mer_live/model/assets/musicnn_joint_v3.onnx)")
    card3.add_argument("--records", help="folder of the v3 .training.json (default models)")
    card3.add_argument("--band-steps", dest="band_steps", default="benchmarks/band_steps.json")
    card3.add_argument("--daemon-cpu", dest="daemon_cpu", default="benchmarks/daemon_cpu_v3.json")
    card3.add_argument("--metrics")
    card3.add_argument("--card")
    card = sub.add_parser("card", help="v1: write models/metrics.json and models/MODEL_CARD_v1.md")
    common(card, training=False)
    card.add_argument("--cv-dir", dest="cv_dir")
    card.add_argument("--model")
    card.add_argument("--benchmark", help="JSON written by benchmarks/inference.py")
    card.add_argument("--shipped-run", dest="shipped_run", help="CV run name of the shipped model")
    card.add_argument("--metrics")
    card.add_argument("--card")
    return parser


COMMANDS = {"cache": command_cache, "embed": command_embed, "cv2": command_cv2, "cv3": command_cv3, "fit3": command_fit3, "card3": command_card3, "fit2": command_fit2, "card2": command_card2, "cv": command_cv, "fit": command_fit, "export": command_export,
            "card": command_card}


def missing_train_packages() -> list[str]:
    """The packages of the ``train`` extra that are not installed (importable), in TRAIN_EXTRA's order."""
    return [name for name in TRAIN_EXTRA if importlib.util.find_spec(name) is None]


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    arguments = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(arguments)
    missing = missing_train_packages()
    if missing:  # a runtime install (pip install mer-live) has none of them: say how, instead of a traceback
        print(f"mer-live-train: error: needs the train extra (missing: {', '.join(missing)}); {TRAIN_INSTALL_HINT}",
              file=sys.stderr)
        return EXIT_USAGE
    args.command_line = shlex.join(["mer-live-train", *arguments])
    try:
        toml = _load_toml(path=args.config)
        return COMMANDS[args.command](args=args, toml=toml)
    except (OSError, ValueError, soundtracks.DataError) as error:
        print(f"mer-live-train: error: {error}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
