"""The torch network a model package describes, with its weights loaded strictly."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from fedpark.experiments.models import ModelSpec, build_model
from fedpark.experiments.protocol.package import ModelPackage
from fedpark.experiments.serving.folder import ModelFolder, ModelFolderError
from fedpark.experiments.weights import from_safetensors

# Examples per forward pass: bounds activation memory (a window of a temporal model is
# window x features values) whatever the batch read from the file.
FORWARD_BATCH = 8192


def network(package: ModelPackage, weights: bytes) -> nn.Module:
    """The network in eval mode; weights whose names or shapes differ are an error."""
    n_classes = package.n_outputs if package.task == "classification" else None
    model = build_model(ModelSpec.of(package.architecture), package.features.n_features, n_classes)
    try:
        state = from_safetensors(weights)
        model.load_state_dict(state, strict=True)
    except Exception:  # safetensors' and torch's texts name tensors, not data: still ours
        raise ModelFolderError("the weights do not fit the model the manifest describes") from None
    return model.eval()


def load_network(folder: ModelFolder) -> nn.Module:
    return network(folder.package, folder.weights)


@torch.inference_mode()
def forward(model: nn.Module, x: np.ndarray, classification: bool) -> np.ndarray:
    """Class probabilities ``(n, classes)`` or values ``(n,)`` in the label's units."""
    outputs = []
    for start in range(0, max(len(x), 1), FORWARD_BATCH):  # no rows: one empty pass, (0, k)
        out = model(torch.from_numpy(np.ascontiguousarray(x[start : start + FORWARD_BATCH])))
        outputs.append(torch.softmax(out, dim=1) if classification else out.squeeze(-1))
    return torch.cat(outputs).numpy()
