"""Export a trained Joint network to ONNX with the metadata contract of :mod:`mer_live.model.emotion_model`."""

from __future__ import annotations

import io
import json
from pathlib import Path

import onnx
import torch

from mer_live import __version__
from mer_live.features import spectrogram
from mer_live.core import labels
from mer_live.model import emotion_model
from .networks import EmotionNet

OPSET = 17
BATCH_AXIS = "batch"


def metadata_for(
    *, net: EmotionNet, variant: str, data_hash: str, cv_metrics: dict | None
) -> dict[str, str]:
    """The ``metadata_props`` of an exported model (all values are strings, JSON where structured)."""
    if not net.is_joint:
        raise ValueError("only Joint models carry the mid-level layer the runtime needs")
    return _contract_metadata(frontend=spectrogram.FRONTEND_CONSTANTS, emotion_head=net.emotion_head, variant=variant,
                              data_hash=data_hash, cv_metrics=cv_metrics)


def _contract_metadata(*, frontend: dict, emotion_head: torch.nn.Linear, variant: str, data_hash: str,
                       cv_metrics: dict | None) -> dict[str, str]:
    """The metadata every mer-live model carries: front-end, label orders, units, the Joint 7->8 layer
    (``emotion_head``: weight ``(8, 7)``, bias ``(8,)``), variant, data hash, CV metrics and version."""
    weight = emotion_head.weight.detach().cpu().double()
    bias = emotion_head.bias.detach().cpu().double()
    return {
        emotion_model.META_FRONTEND: json.dumps(frontend),
        emotion_model.META_EMOTIONS: json.dumps(list(labels.EMOTIONS)),
        emotion_model.META_MID_LEVELS: json.dumps(list(labels.MID_LEVELS)),
        emotion_model.META_UNITS: json.dumps(emotion_model.UNITS),
        emotion_model.META_JOINT_WEIGHT: json.dumps(weight.tolist()),
        emotion_model.META_JOINT_BIAS: json.dumps(bias.tolist()),
        emotion_model.META_VARIANT: variant,
        emotion_model.META_DATA_HASH: data_hash,
        emotion_model.META_CV_METRICS: json.dumps(cv_metrics if cv_metrics is not None else {}),
        emotion_model.META_VERSION: __version__,
    }


class _Exportable(torch.nn.Module):
    """Wraps the net so the graph has exactly the outputs ``mid`` and ``emotion``."""

    def __init__(self, *, net: EmotionNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, spectrogram: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.net(spectrogram)


def export_onnx(
    *, net: EmotionNet, path: Path, variant: str, data_hash: str, cv_metrics: dict | None = None
) -> Path:
    """Write ``net`` (in eval mode, on the CPU) to ``path`` as ONNX opset ``OPSET`` with metadata."""
    net = net.cpu().eval()
    metadata = metadata_for(net=net, variant=variant, data_hash=data_hash, cv_metrics=cv_metrics)
    example = torch.zeros(1, spectrogram.NUM_FRAMES, spectrogram.NUM_BANDS)
    buffer = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(
            _Exportable(net=net),
            (example,),
            buffer,
            input_names=[emotion_model.INPUT_NAME],
            output_names=[emotion_model.OUTPUT_MID, emotion_model.OUTPUT_EMOTION],
            dynamic_axes={
                emotion_model.INPUT_NAME: {0: BATCH_AXIS},
                emotion_model.OUTPUT_MID: {0: BATCH_AXIS},
                emotion_model.OUTPUT_EMOTION: {0: BATCH_AXIS},
            },
            opset_version=OPSET,
            dynamo=False,
        )
    return _save(onnx.load_from_string(buffer.getvalue()), path=path, metadata=metadata)


def _save(proto: onnx.ModelProto, *, path: str | Path, metadata: dict[str, str], doc_string: str = "") -> Path:
    """Stamp ``metadata`` (replacing any) and mer-live as producer on ``proto``, check it, and write it to
    ``path`` atomically (a temporary file renamed into place)."""
    del proto.metadata_props[:]
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.producer_name = "mer-live"
    proto.producer_version = __version__
    if doc_string:
        proto.doc_string = doc_string
    onnx.checker.check_model(proto)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(path.suffix + ".tmp")
    onnx.save(proto, str(temporary))
    temporary.replace(path)
    return path


# ------------------------------------------------------------------------------------------------------ v2

V2_INPUT = "mel"
META_LICENCE = "mer_live.licence"
V2_LICENCE = ("Contains {checkpoint} from musicnn 0.1.0, (c) Music Technology Group, Universitat Pompeu Fabra "
              "2019 (Jordi Pons, Xavier Serra), ISC licence: permission to use, copy, modify and/or distribute "
              "for any purpose with or without fee, provided the copyright notice and this permission notice "
              "appear in all copies; provided AS IS without warranty. Heads trained by mer-live (MIT) on {data}.")
# {checkpoint}: the backbone's musicnn model; {data}: what the head was trained on
V2_DATA = "the Soundtracks data set (Eerola & Vuoskoski 2011)"


class _HeadExportable(torch.nn.Module):
    """The v2 head with the backbone's outputs as inputs (named as in the backbone graph)."""

    def __init__(self, *, net) -> None:
        super().__init__()
        self.net = net

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if len(inputs) == 2:  # max_pool, mean_pool -> musicnn's interleaved back-end input
            inputs = (torch.stack(inputs, dim=-1).flatten(start_dim=1),)
        return self.net(inputs[0])


def export_v2(
    *, net, path: Path, backbone_path: Path, variant: str, data_hash: str, pooling: dict, cv_metrics: dict,
    frontend: dict, checkpoint: str, trained_on: str = V2_DATA,
) -> Path:
    """One ONNX file: the musicnn backbone graph joined to the torch head (``onnx.compose``).

    Input ``mel`` ``(batch, 187, 96)``; outputs ``mid`` ``(batch, 7)`` and ``emotion`` ``(batch, 8)`` per patch.
    ``checkpoint`` names the musicnn model inside ``backbone_path`` in the licence notice (a value of
    ``embeddings.CHECKPOINTS``); ``trained_on`` names the head's training data in it.
    """
    from .embeddings import PENULTIMATE_SIZE, POOL_SIZE
    from .heads import input_names

    net = net.cpu().eval()
    backbone = onnx.load(str(backbone_path))
    names = input_names(kind=net.kind)
    sizes = {"max_pool": POOL_SIZE, "mean_pool": POOL_SIZE, "penultimate": PENULTIMATE_SIZE}
    examples = tuple(torch.zeros(1, sizes[name]) for name in names)
    buffer = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(
            _HeadExportable(net=net).eval(), examples, buffer, input_names=names,
            output_names=[emotion_model.OUTPUT_MID, emotion_model.OUTPUT_EMOTION],
            dynamic_axes={**{name: {0: BATCH_AXIS} for name in names},
                          emotion_model.OUTPUT_MID: {0: BATCH_AXIS}, emotion_model.OUTPUT_EMOTION: {0: BATCH_AXIS}},
            opset_version=OPSET, dynamo=False,
        )
    head = onnx.load_from_string(buffer.getvalue())
    head = onnx.compose.add_prefix(head, prefix="head/", rename_inputs=False, rename_outputs=False)
    head.ir_version = backbone.ir_version
    merged = onnx.compose.merge_models(
        backbone, head, io_map=[(name, name) for name in names],
        outputs=[emotion_model.OUTPUT_MID, emotion_model.OUTPUT_EMOTION],
    )
    metadata = _contract_metadata(frontend=frontend, emotion_head=net.emotion_head, variant=variant,
                                  data_hash=data_hash, cv_metrics=cv_metrics)
    metadata[emotion_model.META_POOLING] = json.dumps(pooling)
    licence = V2_LICENCE.format(checkpoint=checkpoint, data=trained_on)
    metadata[META_LICENCE] = licence
    return _save(merged, path=path, metadata=metadata, doc_string=licence)
