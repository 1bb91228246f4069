"""Model weights as safetensors (never pickle), with a sha256 to sign."""

from __future__ import annotations

import hashlib

import numpy as np
import torch
from safetensors.numpy import save as save_numpy
from safetensors.torch import load as load_bytes
from safetensors.torch import save as save_bytes


def to_safetensors(state: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> bytes:
    """Serialize a state dict; tensors are made contiguous CPU copies first."""
    tensors = {name: t.detach().to("cpu").contiguous() for name, t in state.items()}
    return save_bytes(tensors, metadata=metadata)


def from_safetensors(data: bytes) -> dict[str, torch.Tensor]:
    """Load weights; safetensors holds only tensors and strings, so loading runs no code."""
    return load_bytes(data)


def weights_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def numpy_to_safetensors(
    arrays: dict[str, np.ndarray], metadata: dict[str, str] | None = None
) -> bytes:
    """Serialize numpy arrays (e.g. an ArrayRecord's) without a round trip through torch."""
    return save_numpy(
        {name: np.ascontiguousarray(a) for name, a in arrays.items()}, metadata=metadata
    )
