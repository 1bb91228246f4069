"""Fashion-MNIST from Debian's ``dataset-fashion-mnist`` package, read without downloading.

The package installs the original IDX files (gzip-compressed) under
``/usr/share/datasets/fashion-mnist``; another folder can be named by argument or by the
``FEDPARK_FASHION_MNIST`` environment variable. IDX is parsed with numpy, and every header
field is checked, so a truncated or foreign file fails with a message instead of with
garbage images.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

DEFAULT_FOLDER = Path("/usr/share/datasets/fashion-mnist")
ENV_VAR = "FEDPARK_FASHION_MNIST"
SIDE = 28
PIXELS = SIDE * SIDE
CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
Split = Literal["train", "test"]
_PREFIX = {"train": "train", "test": "t10k"}
_UBYTE = 0x08  # IDX type code of unsigned bytes, the only one Fashion-MNIST uses


class FashionMnistError(ValueError):
    """A Fashion-MNIST file that is not the IDX data it should be."""


class FashionMnistMissingError(FileNotFoundError):
    """The Fashion-MNIST files are not installed."""


def folder(path: Path | str | None = None) -> Path:
    """Where the IDX files are: ``path``, else ``$FEDPARK_FASHION_MNIST``, else Debian's."""
    if path is not None:
        return Path(path)
    return Path(os.environ.get(ENV_VAR) or DEFAULT_FOLDER)


def files(split: Split, path: Path | str | None = None) -> tuple[Path, Path]:
    """The (images, labels) files of ``split``."""
    if split not in _PREFIX:
        raise ValueError(f"unknown split {split!r}: use train or test")
    base = folder(path)
    prefix = _PREFIX[split]
    return (
        base / f"{prefix}-images-idx3-ubyte.gz",
        base / f"{prefix}-labels-idx1-ubyte.gz",
    )


def load(
    split: Split, path: Path | str | None = None
) -> tuple[NDArray[np.uint8], NDArray[np.uint8]]:
    """Images ``uint8 [n, 28, 28]`` and labels ``uint8 [n]`` (0..9, see :data:`CLASSES`).

    Raises
    ------
    FashionMnistMissingError
        The files are not there (install ``dataset-fashion-mnist`` or point to a folder).
    FashionMnistError
        A file is truncated, corrupted or not the IDX data expected.
    """
    image_file, label_file = files(split, path)
    missing = [p for p in (image_file, label_file) if not p.is_file()]
    if missing:
        raise FashionMnistMissingError(
            f"Fashion-MNIST not found: {', '.join(str(p) for p in missing)} missing. Install "
            f"it with `sudo apt-get install dataset-fashion-mnist`, or set {ENV_VAR} to a "
            "folder holding the four *-ubyte.gz files."
        )
    images = read_idx(image_file, dims=3)
    labels = read_idx(label_file, dims=1)
    if images.shape[1:] != (SIDE, SIDE):
        raise FashionMnistError(
            f"{image_file.name}: images are {images.shape[1]}x{images.shape[2]}, not 28x28"
        )
    if len(images) != len(labels):
        raise FashionMnistError(
            f"{image_file.name} holds {len(images)} images but {label_file.name} "
            f"{len(labels)} labels"
        )
    if len(labels) and int(labels.max()) >= len(CLASSES):
        raise FashionMnistError(f"{label_file.name}: label {int(labels.max())} is not 0..9")
    return images, labels


def read_idx(path: Path, dims: int) -> NDArray[np.uint8]:
    """An IDX file of unsigned bytes with ``dims`` dimensions (gzip-compressed if ``.gz``)."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError
        raise FashionMnistError(f"{path.name}: cannot decompress ({exc})") from None
    return parse_idx(raw, dims, name=path.name)


def parse_idx(raw: bytes, dims: int, name: str = "IDX data") -> NDArray[np.uint8]:
    """Parse IDX bytes: two zero bytes, type code, dimension count, big-endian sizes, data."""
    if len(raw) < 4:
        raise FashionMnistError(f"{name}: {len(raw)} bytes, too short for an IDX header")
    zero, code, ndim = int.from_bytes(raw[:2], "big"), raw[2], raw[3]
    if zero != 0 or code != _UBYTE:
        raise FashionMnistError(
            f"{name}: magic number 0x{raw[:4].hex()} is not that of unsigned-byte IDX data "
            f"(0x000008{dims:02x})"
        )
    if ndim != dims:
        raise FashionMnistError(f"{name}: {ndim} dimensions, expected {dims}")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise FashionMnistError(f"{name}: truncated inside the header")
    shape = tuple(int(s) for s in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(shape, dtype=np.int64))
    if len(raw) - header != expected:
        raise FashionMnistError(
            f"{name}: {len(raw) - header} data bytes, but the header announces "
            f"{'x'.join(map(str, shape))} = {expected} (truncated or corrupted file)"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape).copy()


def write_idx(path: Path, array: NDArray[np.uint8]) -> None:
    """Write ``array`` as unsigned-byte IDX (gzip-compressed if ``.gz``): for tests and tools."""
    data = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, _UBYTE, data.ndim]) + np.asarray(data.shape, dtype=">u4").tobytes()
    raw = header + data.tobytes()
    path.write_bytes(gzip.compress(raw, mtime=0) if path.suffix == ".gz" else raw)


def to_table(images: NDArray[np.uint8], labels: NDArray[np.integer[Any]]) -> pa.Table:
    """``image`` as ``fixed_size_list<uint8>[784]`` (row-major pixels) and ``label`` int8."""
    if images.ndim != 3 or images.shape[1:] != (SIDE, SIDE):
        raise ValueError(f"images must be [n, 28, 28], not {list(images.shape)}")
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    pixels = pa.array(np.ascontiguousarray(images, dtype=np.uint8).reshape(-1))
    return pa.table(
        {
            "image": pa.FixedSizeListArray.from_arrays(pixels, PIXELS),
            "label": pa.array(np.asarray(labels).astype(np.int8)),
        }
    )


def from_table(table: pa.Table) -> tuple[NDArray[np.uint8], NDArray[np.uint8]]:
    """The inverse of :func:`to_table`: images ``[n, 28, 28]`` and labels."""
    image = table["image"].combine_chunks()
    pixels = image.flatten().to_numpy(zero_copy_only=False).astype(np.uint8, copy=False)
    labels = table["label"].to_numpy(zero_copy_only=False).astype(np.uint8)
    return pixels.reshape(-1, SIDE, SIDE), labels


def contract_document(
    owner: str = "fedpark",
    *,
    contract_id: str = "fashion-mnist",
    version: str = "1.0.0",
    min_factories: int = 2,
) -> dict[str, Any]:
    """The dataset contract that :func:`to_table`'s tables meet (a document for the hub)."""
    return {
        "id": contract_id,
        "version": version,
        "title": "Fashion-MNIST images with class labels",
        "description": "28x28 grey-level images of Zalando articles (Xiao et al., 2017), "
        "one row per image, from Debian's dataset-fashion-mnist package. A stand-in for "
        "visual inspection images in federated-learning benchmarks (NIID-Bench).",
        "domain": "other",
        "owner": owner,
        "columns": [
            {
                "name": "image",
                "type": f"fixed_size_list<uint8>[{PIXELS}]",
                "nullable": False,
                "role": "feature",
                "unit": "grey level",
                "description": "Pixels row by row, 0 = background, 255 = darkest ink.",
                "rules": {"min": 0, "max": 255},
            },
            {
                "name": "label",
                "type": "int8",
                "nullable": False,
                "role": "label",
                "description": "; ".join(f"{i} {name}" for i, name in enumerate(CLASSES)),
                "rules": {"allowed_values": list(range(len(CLASSES)))},
            },
        ],
        "rows": {"min_rows": 1},
        "policy": {
            "purposes": ["federated-training", "evaluation"],
            "min_factories": min_factories,
        },
    }
