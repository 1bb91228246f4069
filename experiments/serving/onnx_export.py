"""Export a model package to ONNX that runs with no FedPark: one named input per contract
feature, the standardization, one-hot encoding and softmax inside the graph, the label
names and the provenance in the model's metadata.

Inputs (``batch`` is dynamic; a temporal model takes ``[batch, window]`` per feature, rows
in time order, the last row the one predicted):

- a numeric feature: ``float32`` in the contract's unit; NaN counts as missing (the pooled
  mean, as in training);
- a categorical feature: ``string``, one of the contract's allowed values (another value
  encodes as all-zero, as in training).

Outputs: a classifier gives ``probabilities [batch, classes]``, ``class_index [batch]`` and
``label [batch]`` (the class name); a regression gives ``value [batch]`` in the label's unit.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from fedpark.experiments.serving.folder import ModelFolder
from fedpark.experiments.serving.network import load_network
from fedpark.experiments.serving.predict import NEEDS_REFERENCE, PredictionError

OPSET = 20  # string Equal needs 19
NUMERIC, ONEHOT = "fedpark__numeric", "fedpark__onehot"


class _Pipeline(nn.Module):
    """Standardize, join the one-hot part, run the network, then softmax."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, net: nn.Module, mean: np.ndarray, std: np.ndarray, softmax: bool) -> None:
        super().__init__()
        self.net, self.softmax = net, softmax
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32))

    def forward(self, first: torch.Tensor, second: torch.Tensor | None = None) -> torch.Tensor:
        # first: the numeric features if there are any (else the one-hot part); second: the
        # one-hot part after numeric ones
        inputs = [first] if second is None else [first, second]
        if len(self.mean):
            z = (inputs[0] - self.mean) / self.std
            inputs[0] = torch.where(torch.isfinite(z), z, torch.zeros_like(z))
        out = self.net(torch.cat(inputs, dim=-1) if len(inputs) > 1 else inputs[0])
        return torch.softmax(out, dim=-1) if self.softmax else out.squeeze(-1)


def export_onnx(model: ModelFolder, output: Path) -> None:
    """Write the ONNX model to ``output`` (through a temporary file, renamed when whole)."""
    import onnx

    proto = build_onnx(model)
    temporary = output.with_name(f".{output.name}.partial")
    try:
        onnx.save(proto, temporary)
        temporary.replace(output)
    finally:
        temporary.unlink(missing_ok=True)


def build_onnx(model: ModelFolder) -> Any:
    """The ONNX ``ModelProto``, checked by ``onnx.checker``."""
    import onnx

    package, features = model.package, model.package.features
    if package.needs_reference:
        raise PredictionError(NEEDS_REFERENCE)
    norm = features.normalization
    mean = np.array([norm.mean[c] for c in features.numeric], np.float32)
    std = np.array([norm.std[c] or 1.0 for c in features.numeric], np.float32)
    classification = package.task == "classification"
    pipeline = _Pipeline(load_network(model), mean, std, classification).eval()
    lead = (4, package.window) if package.window else (4,)
    widths = {
        NUMERIC: len(features.numeric),
        ONEHOT: sum(len(c.values) for c in features.categorical),
    }
    names = [name for name, width in widths.items() if width]
    examples = tuple(torch.zeros((*lead, widths[name])) for name in names)
    batch = torch.export.Dim("batch")
    program = torch.onnx.export(
        pipeline,
        examples,
        input_names=names,
        output_names=["probabilities" if classification else "value"],
        dynamic_shapes=tuple({0: batch} for _ in names),
        opset_version=OPSET,
        dynamo=True,
        verbose=False,
    )
    if program is None:
        raise RuntimeError("torch.onnx.export returned no program")
    proto = program.model_proto
    _named_inputs(proto, model, len(lead))
    _metadata(proto, model)
    onnx.checker.check_model(proto, full_check=True)
    return proto


def _named_inputs(proto: Any, model: ModelFolder, rank: int) -> None:
    """Replace the pipeline's two tensors with one input per contract feature."""
    from onnx import TensorProto, helper, numpy_helper

    features = model.package.features
    graph = proto.graph
    window = model.package.window
    shape: list[int | str] = ["batch", window] if window else ["batch"]
    units = {c["name"]: c.get("unit") for c in model.package.contract["columns"]}
    inputs, nodes, initializers = [], [], [numpy_helper.from_array(np.array([-1]), "fedpark__last")]
    numeric_parts = []
    for name in features.numeric:
        info = helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)
        info.doc_string = f"{name} in {units.get(name) or 'its unit'} (NaN: missing)"
        inputs.append(info)
        nodes.append(helper.make_node("Unsqueeze", [name, "fedpark__last"], [f"{name}__col"]))
        numeric_parts.append(f"{name}__col")
    onehot_parts = []
    for feature in features.categorical:
        name = feature.column
        info = helper.make_tensor_value_info(name, TensorProto.STRING, shape)
        info.doc_string = f"{name}: one of {', '.join(feature.values)}"
        inputs.append(info)
        values = numpy_helper.from_array(np.array(feature.values, dtype=object), f"{name}__values")
        initializers.append(values)
        nodes += [
            helper.make_node("Unsqueeze", [name, "fedpark__last"], [f"{name}__col"]),
            helper.make_node("Equal", [f"{name}__col", f"{name}__values"], [f"{name}__eq"]),
            helper.make_node("Cast", [f"{name}__eq"], [f"{name}__hot"], to=TensorProto.FLOAT),
        ]
        onehot_parts.append(f"{name}__hot")
    for target, parts in ((NUMERIC, numeric_parts), (ONEHOT, onehot_parts)):
        if parts:
            nodes.append(helper.make_node("Concat", parts, [target], axis=rank))
    kept = [i for i in graph.input if i.name not in (NUMERIC, ONEHOT)]
    del graph.input[:]
    graph.input.extend([*inputs, *kept])
    graph.initializer.extend(initializers)
    old = list(graph.node)
    del graph.node[:]
    graph.node.extend([*nodes, *old])
    if model.package.task == "classification":
        _label_outputs(graph, features.classes or [])


def _label_outputs(graph: Any, classes: Sequence[object]) -> None:
    from onnx import TensorProto, helper, numpy_helper

    strings = any(isinstance(c, str) for c in classes)
    values = np.array(classes, dtype=object if strings else np.int64)
    if not strings and any(isinstance(c, float) for c in classes):
        values = np.array(classes, dtype=np.float64)
    graph.initializer.append(numpy_helper.from_array(values, "fedpark__classes"))
    graph.node.extend(
        [
            helper.make_node("ArgMax", ["probabilities"], ["class_index"], axis=1, keepdims=0),
            helper.make_node("Gather", ["fedpark__classes", "class_index"], ["label"], axis=0),
        ]
    )
    kind = helper.np_dtype_to_tensor_dtype(values.dtype) if not strings else TensorProto.STRING
    graph.output.extend(
        [
            helper.make_tensor_value_info("class_index", TensorProto.INT64, ["batch"]),
            helper.make_tensor_value_info("label", kind, ["batch"]),
        ]
    )


def _metadata(proto: Any, model: ModelFolder) -> None:
    from onnx import helper

    package, manifest = model.package, model.manifest
    features = package.features
    facts = {
        "fedpark.experiment": manifest.experiment.id,
        "fedpark.contract": str(manifest.contract.ref),
        "fedpark.contract_sha256": manifest.contract.sha256,
        "fedpark.manifest_sha256": model.manifest_sha256,  # the hub-signed manifest file
        "fedpark.weights_sha256": model.weights_sha256,
        "fedpark.fine_tuned": "yes" if model.local else "no",
        "fedpark.task": package.task,
        "fedpark.label": features.label,
        "fedpark.label_unit": features.label_unit or "",
        "fedpark.labels": json.dumps(features.classes),
        "fedpark.inputs": json.dumps(features.inputs),
        "fedpark.window": str(package.window or 1),
        # a factory-normalized model's standardization is one plant's: which file it came from
        "fedpark.normalization": package.architecture.normalization,
        "fedpark.reference": features.reference or "",
    }
    helper.set_model_props(proto, facts)
    proto.producer_name = "fedpark"
    proto.doc_string = (
        f"FedPark model of experiment {manifest.experiment.id} on contract "
        f"{manifest.contract.ref}: inputs are the contract's "
        "feature columns by name (numbers as float32 in their unit, categories as strings)"
    )
