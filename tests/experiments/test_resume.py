"""A resumed run starts from the recorded weights of its last round, or says why it cannot."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from flwr.app import ArrayRecord

from fedpark.experiments.contract_strategy import ContractStrategy
from fedpark.experiments.models import ModelSpec, build_model
from fedpark.experiments.protocol import RoundReport
from fedpark.experiments.reporting import DirectoryReporter
from fedpark.experiments.server_app import resume_from
from fedpark.experiments.strategies import build_strategy
from fedpark.experiments.weights import numpy_to_safetensors


def _model(hidden: tuple[int, ...] = (8,)) -> torch.nn.Module:
    return build_model(ModelSpec(hidden=hidden), n_features=4, n_classes=3)


def _record(reporter: DirectoryReporter, number: int, model: torch.nn.Module) -> None:
    """A round's checkpoint exactly as the ServerApp writes it (from Flower's ArrayRecord)."""
    arrays = ArrayRecord(model.state_dict())
    checkpoint = numpy_to_safetensors({k: v.numpy() for k, v in arrays.items()})
    reporter.round(RoundReport(round=number), checkpoint)


def test_a_resumed_model_holds_the_recorded_rounds_weights(tmp_path: Path) -> None:
    reporter = DirectoryReporter(tmp_path)
    torch.manual_seed(1)
    trained = _model()
    _record(reporter, 2, trained)
    torch.manual_seed(2)
    fresh = _model()
    pairs = zip(fresh.parameters(), trained.parameters(), strict=True)
    assert any(not torch.equal(a, b) for a, b in pairs)

    resume_from(fresh, reporter, 2)

    for name, value in trained.state_dict().items():
        assert torch.equal(fresh.state_dict()[name], value), name


def test_a_checkpoint_of_another_model_is_refused_clearly(tmp_path: Path) -> None:
    reporter = DirectoryReporter(tmp_path)
    _record(reporter, 1, _model(hidden=(16,)))
    with pytest.raises(RuntimeError, match="round 1's checkpoint does not fit the model"):
        resume_from(_model(hidden=(8,)), reporter, 1)


def test_a_resumed_run_reports_its_rounds_under_their_real_numbers(tmp_path: Path) -> None:
    reporter = DirectoryReporter(tmp_path)
    model = _model()
    recorder = ContractStrategy(
        build_strategy("fedavg", {}, min_factories=1),
        reporter,
        min_factories=1,
        columns=set(),
        offset=3,
    )
    arrays = ArrayRecord(model.state_dict())
    assert recorder.end_of_round(0, arrays) is None  # Flower's call before round 1: no report
    recorder.end_of_round(1, arrays)  # the continuation's first round is the experiment's 4th
    assert [r.round for r in recorder.history] == [4]
    assert (tmp_path / "round-0004.json").exists()
    assert (tmp_path / "checkpoint-0004.safetensors").exists()
    assert not (tmp_path / "round-0001.json").exists()
