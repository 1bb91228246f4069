"""NIID-Bench's partitioners: each a disjoint cover, with the skew its definition promises."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

import fedpark.datasets.partition as partition_module
from fedpark.datasets.partition import (
    classes_per_client,
    dirichlet_label,
    iid,
    natural,
    partition,
    quantity_skew,
)

K = 10


def balanced_labels(per_class: int = 300, seed: int = 1) -> np.ndarray:
    """``per_class`` samples of each of K classes, in random order."""
    return np.random.default_rng(seed).permutation(np.repeat(np.arange(K), per_class))


def assert_disjoint_cover(parts: list[np.ndarray], n: int) -> None:
    joined = np.concatenate(parts)
    assert joined.dtype == np.int64
    assert len(joined) == len(np.unique(joined)) == n  # no index twice, none dropped
    assert joined.min() >= 0 and joined.max() == n - 1


def classes_held(labels: np.ndarray, parts: list[np.ndarray]) -> list[set[int]]:
    return [set(labels[p].tolist()) for p in parts]


def label_entropy(labels: np.ndarray, part: np.ndarray) -> float:
    counts = np.bincount(labels[part], minlength=K)
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


def test_iid_is_a_shuffled_equal_split() -> None:
    parts = iid(1003, 10, seed=0)
    assert_disjoint_cover(parts, 1003)
    sizes = [len(p) for p in parts]
    assert max(sizes) - min(sizes) <= 1
    assert all((np.diff(p) > 0).all() for p in parts)  # sorted: rows keep source order
    # Shuffled, not cut into consecutive blocks.
    assert any(p.max() - p.min() > 2 * len(p) for p in parts)


def test_dirichlet_covers_and_meets_min_size() -> None:
    labels = balanced_labels()
    for alpha in (0.1, 0.5, 5.0):
        parts = dirichlet_label(labels, 10, alpha, seed=3, min_size=20)
        assert_disjoint_cover(parts, len(labels))
        assert min(len(p) for p in parts) >= 20


def test_small_alpha_is_more_skewed_than_large_alpha() -> None:
    labels = balanced_labels()

    def mean_entropy(alpha: float) -> float:
        runs = [dirichlet_label(labels, 10, alpha, seed=s) for s in range(5)]
        return float(np.mean([label_entropy(labels, p) for parts in runs for p in parts]))

    skewed, mild, near_iid = mean_entropy(0.1), mean_entropy(1.0), mean_entropy(100.0)
    assert skewed < mild < near_iid
    assert near_iid > 0.95 * np.log(K)  # large alpha: close to uniform labels per client


def test_dirichlet_zeroes_the_share_of_full_clients() -> None:
    # NIID-Bench's balancing: once a client holds n / clients samples it gets no more, so no
    # client can end up with more than n / clients plus one class's samples.
    labels = balanced_labels(per_class=200)
    n, clients = len(labels), 5
    for seed in range(10):
        parts = dirichlet_label(labels, clients, 0.1, seed=seed)
        assert max(len(p) for p in parts) < n / clients + 200


def test_classes_per_client_holds_exactly_c_classes() -> None:
    labels = balanced_labels()
    for c in (1, 2, 3):
        parts = classes_per_client(labels, 10, c, seed=0)
        assert_disjoint_cover(parts, len(labels))  # clients >= K: every class is held
        held = classes_held(labels, parts)
        assert all(len(h) == c for h in held)
        assert all(i % K in h for i, h in enumerate(held))  # client i always has class i % K
        assert set().union(*held) == set(range(K))


def test_classes_per_client_splits_each_class_equally_among_holders() -> None:
    labels = balanced_labels()
    parts = classes_per_client(labels, 12, 2, seed=4)
    assert_disjoint_cover(parts, len(labels))
    for k in range(K):
        shares = [int((labels[p] == k).sum()) for p in parts if (labels[p] == k).any()]
        assert max(shares) - min(shares) <= 1


def test_classes_per_client_with_fewer_clients_than_classes_drops_unheld_classes() -> None:
    labels = balanced_labels()
    parts = classes_per_client(labels, 3, 1, seed=0)
    held = classes_held(labels, parts)
    assert held == [{0}, {1}, {2}]
    assert sum(len(p) for p in parts) == 3 * 300
    assert len(np.unique(np.concatenate(parts))) == 900


def test_classes_per_client_works_on_string_labels() -> None:
    labels = np.array(["bearing", "leak", "normal", "overheat"] * 50)
    parts = classes_per_client(labels, 4, 2, seed=0)
    assert_disjoint_cover(parts, len(labels))
    assert all(len(h) == 2 for h in classes_held(labels, parts))


def test_quantity_skew_has_iid_labels_and_skewed_sizes() -> None:
    labels = balanced_labels(per_class=1000)
    parts = quantity_skew(len(labels), 10, 0.5, seed=2, min_size=50)
    assert_disjoint_cover(parts, len(labels))
    sizes = np.array([len(p) for p in parts])
    assert sizes.min() >= 50
    assert sizes.max() > 2 * sizes.min()  # Dir(0.5) sizes are far from equal
    big = parts[int(sizes.argmax())]
    assert label_entropy(labels, big) > 0.98 * np.log(K)  # but labels stay IID


def test_quantity_skew_grows_more_uneven_with_smaller_alpha() -> None:
    def spread(alpha: float) -> float:
        sizes = [[len(p) for p in quantity_skew(10_000, 10, alpha, seed=s)] for s in range(10)]
        return float(np.mean([np.std(s) for s in sizes]))

    assert spread(0.3) > spread(3.0) > spread(300.0)


def test_natural_has_one_sorted_part_per_key() -> None:
    keys = np.array(["plant-2", "plant-1", "plant-2", "plant-3", "plant-1", "plant-2"])
    parts = natural(keys)
    assert list(parts) == ["plant-1", "plant-2", "plant-3"]
    assert all(isinstance(k, str) for k in parts)
    assert parts["plant-2"].tolist() == [0, 2, 5]
    assert_disjoint_cover(list(parts.values()), len(keys))
    engines = natural(np.array([3, 1, 3, 2]))
    assert list(engines) == [1, 2, 3] and all(type(k) is int for k in engines)


@pytest.mark.parametrize(
    "split",
    [
        lambda seed: iid(500, 7, seed),
        lambda seed: dirichlet_label(balanced_labels(50), 7, 0.3, seed),
        lambda seed: classes_per_client(balanced_labels(50), 7, 2, seed),
        lambda seed: quantity_skew(500, 7, 0.5, seed),
    ],
    ids=["iid", "dirichlet", "classes", "quantity"],
)
def test_deterministic_per_seed(split) -> None:  # type: ignore[no-untyped-def]
    first, again, other = split(11), split(11), split(12)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other, strict=True))


def test_impossible_requests_say_why(monkeypatch: pytest.MonkeyPatch) -> None:
    # The two hopeless draws below fail every time: 200 of them say so as 10 000 would.
    monkeypatch.setattr(partition_module, "MAX_DRAWS", 200)
    labels = balanced_labels(per_class=5)
    with pytest.raises(ValueError, match="at least one client"):
        iid(10, 0, seed=0)
    with pytest.raises(ValueError, match="cannot split 3 samples among 4 clients"):
        iid(3, 4, seed=0)
    with pytest.raises(ValueError, match="alpha must be positive"):
        dirichlet_label(labels, 2, 0.0, seed=0)
    with pytest.raises(ValueError, match="needs 100"):
        dirichlet_label(labels, 10, 0.5, seed=0, min_size=10)
    with pytest.raises(ValueError, match=r"draw in 200 gave .*: lower min_size or raise alpha"):
        # Two classes, alpha near 0: each class goes whole to one client, so three of the
        # five clients stay empty in every draw.
        dirichlet_label(np.repeat([0, 1], 25), 5, 0.001, seed=0, min_size=1)
    with pytest.raises(ValueError, match="between 1 and 10"):
        classes_per_client(labels, 4, 11, seed=0)
    with pytest.raises(ValueError, match="between 1 and 10"):
        classes_per_client(labels, 4, 0, seed=0)
    with pytest.raises(ValueError, match="has 5 samples for"):
        classes_per_client(labels, 60, 1, seed=0)
    with pytest.raises(ValueError, match="alpha must be positive"):
        quantity_skew(100, 2, -1.0, seed=0)
    with pytest.raises(ValueError, match="lower min_size or raise alpha"):
        quantity_skew(100, 10, 0.01, seed=0, min_size=10)
    with pytest.raises(ValueError, match="missing values"):
        natural(np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match="missing values"):
        natural(np.array(["a", None], dtype=object))


def test_partition_splits_arrow_tables() -> None:
    labels = balanced_labels(per_class=40)
    table = pa.table(
        {
            "row": pa.array(np.arange(len(labels))),
            "fault": pa.array(labels.astype(np.int8)),
            "plant": pa.array(
                [f"plant-{i % 3 + 1}" for i in range(len(labels))]
            ).dictionary_encode(),
        }
    )
    parts = partition(table, "classes", clients=10, label="fault", classes=2, seed=0)
    assert len(parts) == 10
    assert sum(p.num_rows for p in parts) == table.num_rows
    assert all(len(set(p["fault"].to_pylist())) == 2 for p in parts)
    rows = np.concatenate([p["row"].to_numpy() for p in parts])
    assert len(np.unique(rows)) == table.num_rows

    by_plant = partition(table, "natural", key="plant")
    assert list(by_plant) == ["plant-1", "plant-2", "plant-3"]
    assert all(set(t["plant"].to_pylist()) == {name} for name, t in by_plant.items())

    for scheme in ("iid", "dirichlet", "quantity"):
        split = partition(table, scheme, clients=4, label="fault", alpha=1.0, seed=1)
        assert sum(t.num_rows for t in split) == table.num_rows

    with pytest.raises(ValueError, match="needs a label column"):
        partition(table, "dirichlet", clients=4)
    with pytest.raises(ValueError, match="no column 'fualt'"):
        partition(table, "classes", clients=4, label="fualt")
    with pytest.raises(ValueError, match="unknown scheme"):
        partition(table, "shards", clients=4)
    with_null = table.set_column(1, "fault", pa.array([None, *labels[1:].tolist()], pa.int8()))
    with pytest.raises(ValueError, match="1 missing values"):
        partition(with_null, "dirichlet", clients=4, label="fault")
