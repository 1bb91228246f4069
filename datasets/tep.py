"""Tennessee Eastman Process plants: the standard benchmark of industrial fault diagnosis.

Each plant is a run of the TEP simulator shipped in ``tep-studio`` (Downs & Vogel's process
with its decentralized control, closed loop): its own random seed, its own operating mode
(the six G/H product mixes and production rates of the TEP) and its own subset of the
disturbances IDV(1) to IDV(21), because a real plant has only ever seen some faults. Runs are
laid end to end in one timeline per plant, so the file reads like a plant historian export:
every 3 minutes the 41 measurements (XMEAS) and 11 manipulated variables (XMV), the
operating mode, and the fault in effect (0 while the plant runs normally, also before a
fault's onset).

A held-out test set contains every fault in every plant's mode, so a model is judged on
faults its own plant never saw. IDV(3), (9) and (15) are left out by default: the literature
finds them unobservable in these variables (no method beats chance on them).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fedpark.datasets.io import write_parquet

FAULTS: dict[int, str] = {
    1: "A/C feed ratio, B composition constant (stream 4), step",
    2: "B composition, A/C ratio constant (stream 4), step",
    3: "D feed temperature (stream 2), step",
    4: "reactor cooling water inlet temperature, step",
    5: "condenser cooling water inlet temperature, step",
    6: "A feed loss (stream 1), step",
    7: "C header pressure loss, reduced availability (stream 4), step",
    8: "A, B, C feed composition (stream 4), random variation",
    9: "D feed temperature (stream 2), random variation",
    10: "C feed temperature (stream 4), random variation",
    11: "reactor cooling water inlet temperature, random variation",
    12: "condenser cooling water inlet temperature, random variation",
    13: "reaction kinetics, slow drift",
    14: "reactor cooling water valve, sticking",
    15: "condenser cooling water valve, sticking",
    16: "unknown (16)",
    17: "unknown (17)",
    18: "unknown (18)",
    19: "unknown (19)",
    20: "unknown (20)",
    21: "stream 4 valve fixed at its steady-state position",
}
UNOBSERVABLE = (3, 9, 15)
OBSERVABLE_FAULTS = tuple(f for f in FAULTS if f not in UNOBSERVABLE)
MODES = ("mode1", "mode2", "mode3", "mode4", "mode5", "mode6")
SAMPLE_SECONDS = 180  # the TEP's 3-minute sampling interval
# The usual TEP convention (Downs & Vogel; Braatz's test sets): 48 h runs, the fault from hour
# 8, and a faulty run labelled normal before its onset.
STANDARD_HOURS, STANDARD_ONSET = 48.0, 8.0

# XMEAS(1)..XMEAS(41) in the simulator's order: (its column, our name, unit, bounds).
# Bounds are physical (valve positions in %, compositions in mol%) or a wide margin around
# what any mode or fault reaches before the plant's own shutdown limits (flows read slightly
# below zero when a feed is lost: sensor noise).
_FLOW, _PRESSURE, _TEMP = (-1.0, 1e5), (0.0, 4000.0), (0.0, 250.0)
_PCT, _LEVEL = (-5.0, 105.0), (-50.0, 200.0)  # level gauges run off scale before a shutdown
_XMEAS: tuple[tuple[str, str, str, tuple[float, float]], ...] = (
    ("feed_A_flow", "a_feed", "kscmh", _FLOW),
    ("feed_D_flow", "d_feed", "kg/h", _FLOW),
    ("feed_E_flow", "e_feed", "kg/h", _FLOW),
    ("feed_AC_flow", "ac_feed", "kscmh", _FLOW),
    ("recycle_flow", "recycle_flow", "kscmh", _FLOW),
    ("reactor_feed_flow", "reactor_feed_rate", "kscmh", _FLOW),
    ("reactor_pressure", "reactor_pressure", "kPa", _PRESSURE),
    ("reactor_level", "reactor_level", "%", _LEVEL),
    ("reactor_temperature", "reactor_temperature", "degC", _TEMP),
    ("purge_flow", "purge_rate", "kscmh", _FLOW),
    ("separator_temperature", "separator_temperature", "degC", _TEMP),
    ("separator_level", "separator_level", "%", _LEVEL),
    ("separator_pressure", "separator_pressure", "kPa", _PRESSURE),
    ("separator_underflow", "separator_underflow", "m3/h", _FLOW),
    ("stripper_level", "stripper_level", "%", _LEVEL),
    ("stripper_pressure", "stripper_pressure", "kPa", _PRESSURE),
    ("stripper_underflow", "stripper_underflow", "m3/h", _FLOW),
    ("stripper_temperature", "stripper_temperature", "degC", _TEMP),
    ("stripper_steam_flow", "stripper_steam_flow", "kg/h", _FLOW),
    ("compressor_work", "compressor_work", "kW", _FLOW),
    (
        "reactor_cooling_water_outlet_temperature_meas",
        "reactor_cooling_water_outlet_temperature",
        "degC",
        _TEMP,
    ),
    (
        "condenser_cooling_water_outlet_temperature",
        "separator_cooling_water_outlet_temperature",
        "degC",
        _TEMP,
    ),
    *(
        (f"reactor_feed_{c}_concentration", f"reactor_feed_{c.lower()}", "mol%", _PCT)
        for c in "ABCDEF"
    ),
    *((f"purge_{c}_concentration", f"purge_{c.lower()}", "mol%", _PCT) for c in "ABCDEFGH"),
    *(
        (f"stripper_underflow_{c}_concentration", f"product_{c.lower()}", "mol%", _PCT)
        for c in "DEFGH"
    ),
)
# XMV(1)..XMV(11); XMV(12), the agitator speed, is constant in the TEP and left out as usual.
_XMV = (
    "d_feed_valve",
    "e_feed_valve",
    "a_feed_valve",
    "ac_feed_valve",
    "compressor_recycle_valve",
    "purge_valve",
    "separator_underflow_valve",
    "stripper_underflow_valve",
    "stripper_steam_valve",
    "reactor_cooling_water_valve",
    "separator_cooling_water_valve",
)
FEATURES = (*(name for _, name, _, _ in _XMEAS), *(f"xmv_{v}" for v in _XMV))


@dataclass(frozen=True)
class Plant:
    """One factory's process: where its runs come from."""

    name: str
    seed: int
    mode: str
    faults: tuple[int, ...]  # the disturbances this plant has seen


@dataclass(frozen=True)
class RunPlan:
    """One simulator run: a mode, a seed, at most one fault and when it starts."""

    plant: str
    mode: str
    seed: int
    fault: int  # 0: normal operation throughout
    hours: float
    onset: float  # hours after the start at which the fault begins
    start: dt.datetime  # wall-clock time of the run's first sample


def plants(
    count: int,
    *,
    faults: Sequence[int] = OBSERVABLE_FAULTS,
    overlap: int | None = None,
    modes: Sequence[str] | None = None,
    seed: int = 0,
) -> list[Plant]:
    """``count`` plants, each with its own seed, mode and subset of ``faults``.

    Fault ``i`` (in ``faults`` order, after a seeded shuffle) is seen by ``overlap`` plants
    in turn (default: 1 for up to 3 plants, else 2), so every fault is seen somewhere and no
    plant sees them all. Modes cycle through ``modes`` (default: every plant in mode 1).
    """
    if count < 1:
        raise ValueError("at least one plant is needed")
    unknown = sorted(set(faults) - set(FAULTS))
    if unknown:
        raise ValueError(f"unknown TEP faults {unknown}: the TEP has IDV(1)..IDV(21)")
    chosen_modes = list(modes or ["mode1"])
    bad = [m for m in chosen_modes if m not in MODES]
    if bad:
        raise ValueError(f"unknown operating modes {bad}: use {', '.join(MODES)}")
    share = overlap if overlap is not None else (1 if count <= 3 else 2)
    share = max(1, min(share, count))
    order = list(faults)
    np.random.default_rng(seed).shuffle(order)
    seen: list[list[int]] = [[] for _ in range(count)]
    for i, fault in enumerate(order):
        for k in range(share):
            seen[(i + k) % count].append(fault)
    return [
        Plant(
            name=f"plant-{i + 1}",
            seed=seed * 1000 + 17 * (i + 1),
            mode=chosen_modes[i % len(chosen_modes)],
            faults=tuple(sorted(seen[i])),
        )
        for i in range(count)
    ]


_EPOCH = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def plant_runs(
    plant: Plant,
    *,
    hours: float = STANDARD_HOURS,
    onset: float = STANDARD_ONSET,
    normal_runs: int = 2,
    runs_per_fault: int = 1,
) -> list[RunPlan]:
    """The plant's history: ``normal_runs`` normal runs and ``runs_per_fault`` runs of each
    fault it has seen, in a seeded random order, one after another with an hour between."""
    faults = [0] * normal_runs + list(plant.faults) * runs_per_fault
    np.random.default_rng(plant.seed).shuffle(faults)
    step = dt.timedelta(hours=hours + 1)
    return [
        RunPlan(plant.name, plant.mode, plant.seed + 101 * k, f, hours, onset, _EPOCH + k * step)
        for k, f in enumerate(faults)
    ]


def test_runs(
    modes: Sequence[str],
    *,
    faults: Sequence[int] = OBSERVABLE_FAULTS,
    hours: float = STANDARD_HOURS,
    onset: float = STANDARD_ONSET,
    seed: int = 99991,
) -> list[RunPlan]:
    """Held-out runs: normal operation and every fault, in each of ``modes``."""
    step = dt.timedelta(hours=hours + 1)
    plans: list[RunPlan] = []
    for mode in dict.fromkeys(modes):  # each mode once, in order
        for fault in (0, *faults):
            k = len(plans)
            plans.append(
                RunPlan("test", mode, seed + 7919 * k, fault, hours, onset, _EPOCH + k * step)
            )
    return plans


def simulate_run(plan: RunPlan) -> pa.Table:
    """Run the simulator once; rows until the run's end or the plant's own shutdown."""
    from tep_studio.analysis import DisturbanceActivation, ScenarioConfig, run_scenario

    disturbances = (
        (DisturbanceActivation(idv=f"idv_{plan.fault:02d}", start_time=plan.onset),)
        if plan.fault
        else ()
    )
    config = ScenarioConfig(
        name=f"{plan.plant}-{plan.fault}",
        mode=plan.mode,
        horizon=plan.hours,
        seed=float(plan.seed),
        disturbances=disturbances,
    )
    frame = run_scenario(config).to_frame()
    hours = frame["time"].to_numpy(dtype=np.float64)
    active = frame[f"disturbance.idv_{plan.fault:02d}"].to_numpy() > 0 if plan.fault else None
    fault = np.where(active, plan.fault, 0) if active is not None else np.zeros(len(frame))
    millis = (np.round(hours * 3600).astype("int64") + int(plan.start.timestamp())) * 1000
    columns: dict[str, pa.Array] = {
        "time": pa.array(millis, pa.timestamp("ms", tz="UTC")),
        "plant": pa.array([plan.plant] * len(frame), pa.string()),
        "run": pa.array([f"{plan.plant}/{plan.start:%Y%m%dT%H}"] * len(frame), pa.string()),
        "operating_mode": pa.array([plan.mode] * len(frame), pa.string()),
    }
    for source, name, _, _ in _XMEAS:
        columns[name] = pa.array(frame[f"measurement.{source}"].to_numpy(np.float64))
    for valve in _XMV:
        columns[f"xmv_{valve}"] = pa.array(
            frame[f"implemented_action.{valve}"].to_numpy(np.float64)
        )
    columns["fault"] = pa.array(fault.astype(np.int8))
    return pa.table(columns)


def simulate(
    plans: Sequence[RunPlan],
    *,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> pa.Table:
    """Simulate ``plans`` on ``workers`` processes; one table in the plans' order."""
    workers = max(1, min(workers or os.cpu_count() or 1, len(plans)))
    if workers == 1:
        tables = []
        for plan in plans:
            tables.append(simulate_run(plan))
            if progress:
                progress(1)
        return pa.concat_tables(tables)
    # spawn, not fork: the caller may already run threads (the demo's supervisors).
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(simulate_run, plan) for plan in plans]
        tables = []
        for future in futures:
            tables.append(future.result())
            if progress:
                progress(1)
    return pa.concat_tables(tables)


def contract_document(
    owner: str,
    *,
    contract_id: str = "tep-process-faults",
    version: str = "1.0.0",
    faults: Sequence[int] = OBSERVABLE_FAULTS,
    experiment_orgs: list[str] | None = None,
    model_download_orgs: list[str] | None = None,
    min_factories: int = 2,
) -> dict[str, Any]:
    """The dataset contract that every plant's file meets (a document for the hub)."""
    columns: list[dict[str, Any]] = [
        {
            "name": "time",
            "type": "timestamp[ms, tz=UTC]",
            "nullable": False,
            "role": "time",
            "description": "Sample time (every 3 minutes)",
            "rules": {"monotonic": "strictly_increasing"},
        },
        {"name": "plant", "type": "string", "nullable": False, "role": "id"},
        {"name": "run", "type": "string", "nullable": False, "role": "id"},
        {
            "name": "operating_mode",
            "type": "string",
            "nullable": False,
            "description": "TEP operating mode (G/H mix and production rate)",
            "rules": {"allowed_values": list(MODES)},
        },
    ]
    for i, (_, name, unit, (low, high)) in enumerate(_XMEAS, start=1):
        columns.append(_sensor(name, unit, low, high, f"XMEAS({i})"))
    for i, valve in enumerate(_XMV, start=1):
        columns.append(_sensor(f"xmv_{valve}", "%", -5.0, 105.0, f"XMV({i}), valve position"))
    columns.append(
        {
            "name": "fault",
            "type": "int8",
            "nullable": False,
            "role": "label",
            "description": "0 normal; "
            + "; ".join(f"{f} IDV({f}) {FAULTS[f]}" for f in sorted(faults)),
            "rules": {"allowed_values": [0, *sorted(faults)]},
        }
    )
    return {
        "id": contract_id,
        "version": version,
        "title": "Tennessee Eastman process measurements with fault labels",
        "description": "Plant historian export of a Tennessee Eastman process unit: every "
        "3 minutes the 41 process measurements and 11 valve positions, the operating mode "
        "and the disturbance in effect, for fault diagnosis across plants.",
        "domain": "process-industry",
        "owner": owner,
        "columns": columns,
        "policy": {
            "purposes": ["federated-training", "fault-diagnosis"],
            "experiment_orgs": experiment_orgs or [],
            "model_download_orgs": model_download_orgs or [],
            "min_factories": min_factories,
        },
    }


def _sensor(name: str, unit: str, low: float, high: float, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "type": "float64",
        "nullable": False,
        "unit": unit,
        "description": description,
        "rules": {"min": low, "max": high, "finite": True},
    }


@dataclass(frozen=True)
class GeneratedSet:
    """Where ``generate`` wrote things."""

    plant_files: dict[str, Path]
    test_file: Path | None
    contract_file: Path
    plants: list[Plant]
    extra: pa.Table | None = None  # the ``extra`` runs, simulated in the same pool


def generate(
    out: Path,
    plant_list: Sequence[Plant],
    *,
    owner: str = "park-operator",
    hours: float = STANDARD_HOURS,
    onset: float = STANDARD_ONSET,
    normal_runs: int = 2,
    runs_per_fault: int = 1,
    test: bool = True,
    test_hours: float | None = None,
    test_onset: float | None = None,
    extra: Sequence[RunPlan] = (),
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> GeneratedSet:
    """Write ``out/<plant>/tep.parquet`` per plant, ``out/test/tep.parquet`` and
    ``out/contract.json`` (plus ``out/plants.json`` saying which plant saw which fault).

    The test runs are ``test_hours`` long with the fault from ``test_onset`` (default: the
    plants' ``hours`` and ``onset``). ``extra`` runs (their ``plant`` names none of the
    plants) are simulated in the same processes and returned, not written."""
    clash = {plan.plant for plan in extra} & {*(p.name for p in plant_list), "test"}
    if clash:
        raise ValueError(f"extra runs must not be named after a plant or the test set: {clash}")
    per_plant = {
        p.name: plant_runs(
            p, hours=hours, onset=onset, normal_runs=normal_runs, runs_per_fault=runs_per_fault
        )
        for p in plant_list
    }
    faults = sorted({f for p in plant_list for f in p.faults})
    tests = test_runs(
        [p.mode for p in plant_list],
        faults=faults,
        hours=hours if test_hours is None else test_hours,
        onset=onset if test_onset is None else test_onset,
    )
    plans = [plan for runs in per_plant.values() for plan in runs] + (tests if test else [])
    table = simulate([*plans, *extra], workers=workers, progress=progress)
    extra_table = None
    if extra:
        others = pa.array(sorted({plan.plant for plan in extra}))
        extra_table = table.filter(pc.is_in(table["plant"], value_set=others))
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    for name in [*per_plant, *(["test"] if test else [])]:
        part = table.filter(pc.equal(table["plant"], name))
        folder = out / name
        folder.mkdir(exist_ok=True)
        files[name] = folder / "tep.parquet"
        write_parquet(part, files[name])
    contract_file = out / "contract.json"
    contract_file.write_text(json.dumps(contract_document(owner, faults=faults), indent=2) + "\n")
    (out / "plants.json").write_text(json.dumps([asdict(p) for p in plant_list], indent=2) + "\n")
    test_file = files.pop("test", None)
    return GeneratedSet(files, test_file, contract_file, list(plant_list), extra_table)


def runs_needed(
    plant_list: Sequence[Plant],
    *,
    normal_runs: int = 2,
    runs_per_fault: int = 1,
    test: bool = True,
) -> int:
    """How many simulator runs ``generate`` will do (for a progress bar)."""
    count = sum(normal_runs + runs_per_fault * len(p.faults) for p in plant_list)
    if test:
        faults = {f for p in plant_list for f in p.faults}
        count += len({p.mode for p in plant_list}) * (len(faults) + 1)
    return count
