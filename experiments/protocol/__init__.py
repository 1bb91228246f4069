"""FedPark's wire protocol between the hub and its Flower apps, defined once.

Torch-free and Flower-free: the hub, the ServerApp, the ClientApp and the CLI all import it
(``tests/test_layering.py`` says who may). Three parts:

- :mod:`~fedpark.experiments.protocol.spec`: the run spec the hub builds and both apps read
  (the researcher's training plan, the strategy table, normalization, where to report);
- :mod:`~fedpark.experiments.protocol.reports`: what a round tells the hub (contributors,
  metrics, refusals and failures built from FedPark's own words);
- :mod:`~fedpark.experiments.protocol.manifest`: the trained model's provenance manifest,
  built and signed by the hub, verified by partners.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fedpark.contracts.lazy import lazy_exports

if TYPE_CHECKING:
    from fedpark.experiments.protocol.manifest import (
        ModelManifest,
        contributors,
        sign_manifest,
        verify_model,
    )
    from fedpark.experiments.protocol.package import Normalization
    from fedpark.experiments.protocol.plan import (
        DP_PARAMS,
        STRATEGY_PARAMS,
        ModelSettings,
        StrategyName,
        TrainingPlan,
        TrainSettings,
    )
    from fedpark.experiments.protocol.reports import (
        ALONE_PREFIX,
        EVALUATE_FIRST,
        EVALUATION_RECORD,
        FAILURE_CODE,
        FLOWER_ERROR_KINDS,
        LOCAL_BASELINE,
        REFUSAL_CODE,
        SCAFFOLD_CLIENT,
        SCAFFOLD_CONTROL,
        FactoryProblem,
        FactoryRefusal,
        FactoryResult,
        FailureKind,
        NodeFailure,
        ProblemKind,
        RoundReport,
    )
    from fedpark.experiments.protocol.spec import (
        SPEC_KEY,
        DirectoryOutput,
        HubOutput,
        RunSpec,
        pooled_normalization,
    )

# Loaded on first use: the command line imports the light parts (resources, the client,
# the plan) and must not pay for pyarrow or cryptography at start.
_EXPORTS = {
    "ALONE_PREFIX": "fedpark.experiments.protocol.reports",
    "LOCAL_BASELINE": "fedpark.experiments.protocol.reports",
    "DP_PARAMS": "fedpark.experiments.protocol.plan",
    "DirectoryOutput": "fedpark.experiments.protocol.spec",
    "EVALUATE_FIRST": "fedpark.experiments.protocol.reports",
    "SCAFFOLD_CONTROL": "fedpark.experiments.protocol.reports",
    "SCAFFOLD_CLIENT": "fedpark.experiments.protocol.reports",
    "EVALUATION_RECORD": "fedpark.experiments.protocol.reports",
    "FAILURE_CODE": "fedpark.experiments.protocol.reports",
    "FLOWER_ERROR_KINDS": "fedpark.experiments.protocol.reports",
    "FactoryProblem": "fedpark.experiments.protocol.reports",
    "FactoryRefusal": "fedpark.experiments.protocol.reports",
    "FactoryResult": "fedpark.experiments.protocol.reports",
    "FailureKind": "fedpark.experiments.protocol.reports",
    "HubOutput": "fedpark.experiments.protocol.spec",
    "ModelManifest": "fedpark.experiments.protocol.manifest",
    "ModelSettings": "fedpark.experiments.protocol.plan",
    "NodeFailure": "fedpark.experiments.protocol.reports",
    "Normalization": "fedpark.experiments.protocol.package",
    "ProblemKind": "fedpark.experiments.protocol.reports",
    "REFUSAL_CODE": "fedpark.experiments.protocol.reports",
    "RoundReport": "fedpark.experiments.protocol.reports",
    "RunSpec": "fedpark.experiments.protocol.spec",
    "SPEC_KEY": "fedpark.experiments.protocol.spec",
    "STRATEGY_PARAMS": "fedpark.experiments.protocol.plan",
    "StrategyName": "fedpark.experiments.protocol.plan",
    "TrainSettings": "fedpark.experiments.protocol.plan",
    "TrainingPlan": "fedpark.experiments.protocol.plan",
    "contributors": "fedpark.experiments.protocol.manifest",
    "pooled_normalization": "fedpark.experiments.protocol.spec",
    "sign_manifest": "fedpark.experiments.protocol.manifest",
    "verify_model": "fedpark.experiments.protocol.manifest",
}


__getattr__ = lazy_exports(__name__, _EXPORTS)

__all__ = [
    "ALONE_PREFIX",
    "DP_PARAMS",
    "EVALUATE_FIRST",
    "EVALUATION_RECORD",
    "FAILURE_CODE",
    "FLOWER_ERROR_KINDS",
    "LOCAL_BASELINE",
    "REFUSAL_CODE",
    "SCAFFOLD_CLIENT",
    "SCAFFOLD_CONTROL",
    "SPEC_KEY",
    "STRATEGY_PARAMS",
    "DirectoryOutput",
    "FactoryProblem",
    "FactoryRefusal",
    "FactoryResult",
    "FailureKind",
    "HubOutput",
    "ModelManifest",
    "ModelSettings",
    "NodeFailure",
    "Normalization",
    "ProblemKind",
    "RoundReport",
    "RunSpec",
    "StrategyName",
    "TrainSettings",
    "TrainingPlan",
    "contributors",
    "pooled_normalization",
    "sign_manifest",
    "verify_model",
]
