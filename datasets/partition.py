"""Split one data set among federated clients, with NIID-Bench's definitions.

The schemes follow Li et al., "Federated Learning on Non-IID Data Silos: An Experimental
Study" (ICDE 2022), and their reference code (``partition_data`` in NIID-Bench's
``utils.py``), so that results can be compared with the paper's tables:

* :func:`iid` — "homo": a shuffled, equal split.
* :func:`dirichlet_label` — "noniid-labeldir": each class spread over the clients in
  proportions drawn from Dir(alpha).
* :func:`classes_per_client` — "noniid-#label{c}" (#C=c): each client holds c classes.
* :func:`quantity_skew` — "iid-diff-quantity": client sizes drawn from Dir(alpha), IID labels.
* :func:`natural` — one part per value of a key column (plant, operating mode, engine).

Every function is deterministic given its seed (a ``numpy`` ``Generator``; the draws differ
from NIID-Bench's global ``np.random`` state, the distributions do not). Each client's indices
come back sorted, so rows keep their source order (time series stay in time order); local
training shuffles anyway.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any, Literal, overload

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import ArrayLike, NDArray

Indices = NDArray[np.int64]
SCHEMES = ("iid", "dirichlet", "classes", "quantity", "natural")
# Rejection sampling gives up after this many draws: the request is then all but impossible
# (e.g. a tiny alpha with a min_size close to n / clients), and looping forever helps nobody.
MAX_DRAWS = 10_000


def iid(n: int, clients: int, seed: int) -> list[Indices]:
    """A shuffled, equal split of ``n`` samples (sizes differ by at most one).

    Raises
    ------
    ValueError
        ``clients < 1`` or fewer samples than clients.
    """
    _check_clients(clients)
    if n < clients:
        raise ValueError(f"cannot split {n} samples among {clients} clients")
    order = np.random.default_rng(seed).permutation(n)
    return [np.sort(part).astype(np.int64) for part in np.array_split(order, clients)]


def dirichlet_label(
    labels: ArrayLike, clients: int, alpha: float, seed: int, min_size: int = 10
) -> list[Indices]:
    """Label skew: class k's samples split among the clients in proportions p_k ~ Dir(alpha).

    As in NIID-Bench, a client that already holds ``n / clients`` samples gets no share of the
    next classes (its proportion is zeroed and the others renormalized), and the whole draw is
    repeated until every client has at least ``min_size`` samples. Small ``alpha`` gives each
    client few classes; large ``alpha`` approaches an IID split.

    Raises
    ------
    ValueError
        ``alpha <= 0``, fewer than ``clients * min_size`` samples, or no draw within
        :data:`MAX_DRAWS` attempts met ``min_size`` (lower it or raise ``alpha``).
    """
    y = _labels(labels)
    _check_clients(clients)
    if not alpha > 0:
        raise ValueError(f"alpha must be positive, not {alpha}")
    n = len(y)
    if n < clients * min_size:
        raise ValueError(
            f"{n} samples cannot give {clients} clients at least {min_size} each "
            f"(needs {clients * min_size})"
        )
    rng = np.random.default_rng(seed)
    by_class = [np.flatnonzero(y == k) for k in np.unique(y)]
    cap = n / clients
    for _ in range(MAX_DRAWS):
        parts: list[list[Indices]] = [[] for _ in range(clients)]
        sizes = np.zeros(clients, dtype=np.int64)
        for members in by_class:
            idx = rng.permutation(members)
            share = rng.dirichlet(np.full(clients, alpha))
            share = share * (sizes < cap)  # full clients take no more (NIID-Bench's balance)
            total = share.sum()
            if total <= 0:  # the draw's mass fell only on full clients (tiny alpha): redraw
                break
            cuts = (np.cumsum(share / total) * len(idx)).astype(np.int64)[:-1]
            for client, piece in enumerate(np.split(idx, cuts)):
                parts[client].append(piece)
                sizes[client] += len(piece)
        else:
            if sizes.min() >= min_size:
                return [_joined(p) for p in parts]
    raise ValueError(
        f"no Dir({alpha}) draw in {MAX_DRAWS} gave all {clients} clients {min_size} samples: "
        "lower min_size or raise alpha"
    )


def classes_per_client(labels: ArrayLike, clients: int, c: int, seed: int) -> list[Indices]:
    """#C=c: client i holds class ``i % K`` and ``c - 1`` further distinct random classes.

    Each class's samples are shuffled and split equally among the clients that hold it.
    With ``clients * c < K`` some classes go to nobody: their samples are left out, as in
    NIID-Bench (it cannot split a class among zero clients either).

    Raises
    ------
    ValueError
        ``c`` outside ``1..K`` (K: distinct labels), or a class holder would get no sample.
    """
    y = _labels(labels)
    _check_clients(clients)
    classes = np.unique(y)
    k = len(classes)
    if not 1 <= c <= k:
        raise ValueError(f"classes per client must be between 1 and {k} (the classes), not {c}")
    rng = np.random.default_rng(seed)
    held: list[list[int]] = []
    for i in range(clients):
        others = np.delete(np.arange(k), i % k)
        held.append([i % k, *rng.choice(others, size=c - 1, replace=False).tolist()])
    parts: list[list[Indices]] = [[] for _ in range(clients)]
    for label in range(k):
        holders = [i for i in range(clients) if label in held[i]]
        if not holders:
            continue
        members = rng.permutation(np.flatnonzero(y == classes[label]))
        if len(members) < len(holders):
            raise ValueError(
                f"class {classes[label]!r} has {len(members)} samples for {len(holders)} clients"
            )
        for client, piece in zip(holders, np.array_split(members, len(holders)), strict=True):
            parts[client].append(piece)
    return [_joined(p) for p in parts]


def quantity_skew(
    n: int, clients: int, alpha: float, seed: int, min_size: int = 10
) -> list[Indices]:
    """Quantity skew: client sizes in proportions q ~ Dir(alpha), samples drawn IID.

    q is redrawn until every client gets at least ``min_size`` samples (NIID-Bench checks
    ``q * n``; this checks the integer sizes actually cut, which is slightly stricter).

    Raises
    ------
    ValueError
        ``alpha <= 0``, fewer than ``clients * min_size`` samples, or no draw within
        :data:`MAX_DRAWS` attempts met ``min_size``.
    """
    _check_clients(clients)
    if not alpha > 0:
        raise ValueError(f"alpha must be positive, not {alpha}")
    if n < clients * min_size:
        raise ValueError(
            f"{n} samples cannot give {clients} clients at least {min_size} each "
            f"(needs {clients * min_size})"
        )
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    for _ in range(MAX_DRAWS):
        share = rng.dirichlet(np.full(clients, alpha))
        cuts = (np.cumsum(share) * n).astype(np.int64)[:-1]
        parts = np.split(order, cuts)
        if min(len(p) for p in parts) >= min_size:
            return [np.sort(p).astype(np.int64) for p in parts]
    raise ValueError(
        f"no Dir({alpha}) draw in {MAX_DRAWS} gave all {clients} clients {min_size} samples: "
        "lower min_size or raise alpha"
    )


def natural(keys: ArrayLike) -> dict[Hashable, Indices]:
    """One part per distinct key value (a plant, an operating mode, an engine), keys sorted.

    Raises
    ------
    ValueError
        Missing keys (None or NaN): a row that belongs to no client.
    """
    values = _labels(keys, what="key")
    distinct, inverse = np.unique(values, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    bounds = np.cumsum(np.bincount(inverse, minlength=len(distinct)))[:-1]
    return {
        _python(key): part.astype(np.int64)
        for key, part in zip(distinct, np.split(order, bounds), strict=True)
    }


# -- Arrow tables ----------------------------------------------------------------------------

Scheme = Literal["iid", "dirichlet", "classes", "quantity", "natural"]


@overload
def partition(
    table: pa.Table,
    scheme: Literal["iid", "dirichlet", "classes", "quantity"],
    *,
    clients: int = ...,
    label: str | None = ...,
    key: str | None = ...,
    alpha: float = ...,
    classes: int = ...,
    seed: int = ...,
    min_size: int = ...,
) -> list[pa.Table]: ...


@overload
def partition(
    table: pa.Table,
    scheme: Literal["natural"],
    *,
    clients: int = ...,
    label: str | None = ...,
    key: str | None = ...,
    alpha: float = ...,
    classes: int = ...,
    seed: int = ...,
    min_size: int = ...,
) -> dict[Hashable, pa.Table]: ...


@overload
def partition(
    table: pa.Table,
    scheme: str,
    *,
    clients: int = ...,
    label: str | None = ...,
    key: str | None = ...,
    alpha: float = ...,
    classes: int = ...,
    seed: int = ...,
    min_size: int = ...,
) -> list[pa.Table] | dict[Hashable, pa.Table]: ...


def partition(
    table: pa.Table,
    scheme: str,
    *,
    clients: int = 10,
    label: str | None = None,
    key: str | None = None,
    alpha: float = 0.5,
    classes: int = 2,
    seed: int = 0,
    min_size: int = 10,
) -> list[pa.Table] | dict[Hashable, pa.Table]:
    """Split an Arrow table's rows with one of the schemes.

    Parameters
    ----------
    table
        The rows to split.
    scheme
        ``iid``, ``dirichlet`` (needs ``label``, ``alpha``), ``classes`` (needs ``label``,
        ``classes``), ``quantity`` (``alpha``) or ``natural`` (needs ``key``).
    clients
        Number of parts (ignored by ``natural``: one part per key value).
    label
        The label column, for the label-skew schemes.
    key
        The column whose values name the parts, for ``natural``.
    alpha
        Dirichlet concentration (``dirichlet``, ``quantity``).
    classes
        Classes per client (``classes``).
    seed
        Seed of the random split.
    min_size
        Fewest rows a client may get (``dirichlet``, ``quantity``).

    Returns
    -------
    list or dict
        One table per client, or for ``natural`` a dict from key value to table.
    """
    if scheme == "natural":
        return {k: table.take(v) for k, v in natural(_column(table, key, "key")).items()}
    if scheme == "iid":
        parts = iid(table.num_rows, clients, seed)
    elif scheme == "dirichlet":
        y = _column(table, label, "label")
        parts = dirichlet_label(y, clients, alpha, seed, min_size=min_size)
    elif scheme == "classes":
        parts = classes_per_client(_column(table, label, "label"), clients, classes, seed)
    elif scheme == "quantity":
        parts = quantity_skew(table.num_rows, clients, alpha, seed, min_size=min_size)
    else:
        raise ValueError(f"unknown scheme {scheme!r}: use one of {', '.join(SCHEMES)}")
    return [table.take(p) for p in parts]


# -- helpers ---------------------------------------------------------------------------------


def _check_clients(clients: int) -> None:
    if clients < 1:
        raise ValueError(f"need at least one client, not {clients}")


def _labels(values: ArrayLike, what: str = "label") -> NDArray[Any]:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{what}s must be one-dimensional, not of shape {array.shape}")
    if array.dtype == object and any(v is None for v in array):
        raise ValueError(f"{what}s contain missing values (None)")
    if array.dtype.kind == "f" and np.isnan(array).any():
        raise ValueError(f"{what}s contain missing values (NaN)")
    return array


def _column(table: pa.Table, name: str | None, what: str) -> NDArray[Any]:
    if name is None:
        raise ValueError(f"this scheme needs a {what} column")
    if name not in table.column_names:
        raise ValueError(f"no column {name!r} (columns: {', '.join(table.column_names)})")
    column = table[name]
    if column.null_count:
        raise ValueError(f"{what} column {name!r} has {column.null_count} missing values")
    if pa.types.is_dictionary(column.type):
        column = pc.cast(column, column.type.value_type)
    return np.asarray(column.to_numpy(zero_copy_only=False))


def _joined(pieces: Sequence[Indices]) -> Indices:
    if not pieces:
        return np.empty(0, dtype=np.int64)
    return np.sort(np.concatenate(pieces)).astype(np.int64)


def _python(value: Any) -> Hashable:
    """A numpy scalar as the plain Python value (``int``, ``str``), for dict keys and paths."""
    item = value.item() if isinstance(value, np.generic) else value
    return item  # type: ignore[no-any-return]
