"""The model card says what a plant manager asks: what it is for, what it learned from, what
each factory gained against training alone, and where it falls short."""

from __future__ import annotations

from pathlib import Path

from modelfolders import line_table, model_folder

from fedpark.experiments.protocol.card import gain_rows, model_card
from fedpark.experiments.protocol.manifest import FactoryGain
from fedpark.experiments.serving.folder import open_model


def test_the_card_shows_gains_and_limits(tmp_path: Path) -> None:
    manifest = open_model(model_folder(tmp_path / "m", epochs=1)).manifest
    gains = [
        FactoryGain(
            org="acme",
            examples=100,
            federated={"macro_f1": 0.9, "accuracy": 0.95},
            alone={"macro_f1": 0.7, "accuracy": 0.9},
        ),
        FactoryGain(
            org="bravo",
            examples=80,
            federated={"macro_f1": 0.6, "accuracy": 0.7},
            alone={"macro_f1": 0.8, "accuracy": 0.85},
        ),
    ]
    card = model_card(manifest.model_copy(update={"gains": gains, "unseen_classes": [3]}), "m/")
    assert "purposes the contract allows: equipment-diagnostics" in card.intended_use
    assert card.gains[0] == ("acme", "macro_f1", 0.7, 0.9, card.gains[0][4])
    assert round(card.gains[0][4], 6) == 0.2 and card.gains[2][4] < 0  # bravo did better alone
    limits = " ".join(card.limits)
    assert "fault 3" in limits and "did better for bravo" in limits
    assert card.usage[0] == "fedpark model predict m/ DATA -o predictions.parquet"


def test_a_factory_normalized_model_card_says_to_give_the_plants_history(tmp_path: Path) -> None:
    plants = [line_table(200, seed=1), line_table(200, seed=2, shift=20.0)]
    manifest = open_model(model_folder(tmp_path / "m", epochs=1, plants=plants)).manifest
    card = model_card(manifest, "m/")
    assert (
        card.usage[0] == "fedpark model predict m/ DATA --reference HISTORY -o predictions.parquet"
    )
    assert "--reference HISTORY" in card.usage[1]
    assert any("standardized with its own statistics" in limit for limit in card.limits)


def test_a_lower_error_is_a_gain_for_regression() -> None:
    gain = FactoryGain(org="acme", examples=5, federated={"rmse": 2.0}, alone={"rmse": 3.0})
    assert gain_rows([gain], "regression") == [("acme", "rmse", 3.0, 2.0, 1.0)]


def test_numeric_classes_are_in_numeric_order() -> None:
    from fedpark.contracts import Contract
    from fedpark.datasets.tep import contract_document
    from fedpark.experiments.features import plan_from_contract

    plan = plan_from_contract(Contract.model_validate(contract_document("op")), "classification")
    assert plan.classes is not None and list(plan.classes) == sorted(plan.classes)
