"""The demo's last step: what each plant gained by federating, where federation pays.

Two views per plant, each the federated model beside one trained on that plant's rows alone:

- its own held-out rows (the last 20 % of every run it has): the manifest's gain table,
  measured by each factory's ClientApp, so only metrics ever left the plant;
- a short run of each fault the plant has **never seen**, in its own operating mode: what a
  plant alone cannot name. Here the demo plays the plant: it runs the alone model that the
  plant's ClientApp trained for the gain table and kept in its work dir (it never left).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch
from rich.table import Table

from fedpark.datasets import tep
from fedpark.experiments.features import FeaturePlan, model_arrays
from fedpark.experiments.serving.folder import ModelFolder
from fedpark.experiments.serving.network import forward, load_network, network

UNSEEN_HOURS, UNSEEN_ONSET = 3.0, 0.5  # a short run: the fault from half an hour in


@dataclass(frozen=True)
class UnseenFaults:
    """How often each model named a plant's never-seen faults (windows after the onset)."""

    plant: str
    faults: tuple[int, ...]
    windows: int
    alone: float
    federated: float


def unseen_runs(plants: Sequence[tep.Plant], faults: Sequence[int]) -> list[tep.RunPlan]:
    """One short run per plant of every fault in ``faults`` that it has not seen."""
    start = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    step = dt.timedelta(hours=UNSEEN_HOURS + 1)
    plans: list[tep.RunPlan] = []
    for plant in plants:
        for fault in (f for f in faults if f not in plant.faults):
            k = len(plans)
            plans.append(
                tep.RunPlan(
                    f"unseen-{plant.name}",
                    plant.mode,
                    424_242 + 7 * k,
                    fault,
                    UNSEEN_HOURS,
                    UNSEEN_ONSET,
                    start + k * step,
                )
            )
    return plans


def compare_on_unseen(
    model: ModelFolder,
    plants: Sequence[tep.Plant],
    alone: dict[str, Path],
    runs: pa.Table,
) -> list[UnseenFaults]:
    """Per plant: the federated model and the plant's alone model (the weights its
    ClientApp trained for the gain table and kept) on its ``runs`` of faults it never saw
    (:func:`unseen_runs`)."""
    package = model.package
    plan = FeaturePlan.of(package.features)
    if package.needs_reference:  # the demo trains with pooled statistics; say so if not
        raise ValueError("a factory-normalized model needs its plant's statistics")
    norm = package.features.normalization
    faults = [int(c) for c in package.features.classes or () if int(c)]
    federated = load_network(model)
    results = []
    for plant in plants:
        if plant.name not in alone:
            continue
        part = runs.filter(pc.equal(runs["plant"], f"unseen-{plant.name}"))
        x, y, _ = model_arrays(part, plan, norm, package.window)
        faulty = y != 0  # class 0 is normal operation (the label's first class)
        own = network(package, alone[plant.name].read_bytes())
        results.append(
            UnseenFaults(
                plant=plant.name,
                faults=tuple(f for f in faults if f not in plant.faults),
                windows=int(faulty.sum()),
                alone=_named(own, x[faulty], y[faulty]),
                federated=_named(federated, x[faulty], y[faulty]),
            )
        )
    return results


def _named(network: torch.nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    if not len(x):
        return float("nan")
    return float((forward(network, x, True).argmax(axis=1) == y).mean())


GAINS_NOTE = (
    "Own held-out rows: the last fifth of each of the plant's runs, faults it has seen; a "
    "model of its own rows fits those best (`fedpark model finetune` adapts the federated "
    "one to them). Faults it never saw: the share of windows after the fault's onset named "
    "as that fault. Figures vary a little from run to run (training on several threads is "
    "not bit-for-bit repeatable)."
)


def gains_table(
    held_out: dict[str, tuple[float, float]], unseen: list[UnseenFaults], modes: dict[str, str]
) -> Table:
    """One row per plant: macro-F1 on its held-out rows and faults named it never saw."""
    table = Table(title="What each plant gained by federating (alone → federated)")
    for column in ("plant", "mode", "its held-out rows, macro-F1", "faults it never saw, named"):
        table.add_column(column)
    for row in unseen:
        alone, federated = held_out.get(row.plant, (float("nan"), float("nan")))
        table.add_row(
            row.plant,
            modes[row.plant],
            f"{alone:.2f} → {federated:.2f}",
            f"{100 * row.alone:.0f} % → {100 * row.federated:.0f} % "
            f"({len(row.faults)} faults, {row.windows} windows)",
        )
    return table
