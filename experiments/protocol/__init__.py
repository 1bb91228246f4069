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

from fedpark.experiments.protocol.manifest import (
    ModelManifest,
    contributors,
    sign_manifest,
    verify_model,
)
from fedpark.experiments.protocol.reports import (
    FAILURE_CODE,
    FLOWER_ERROR_KINDS,
    REFUSAL_CODE,
    FactoryProblem,
    FactoryRefusal,
    FactoryResult,
    FailureKind,
    NodeFailure,
    ProblemKind,
    RoundReport,
)
from fedpark.experiments.protocol.spec import (
    DP_PARAMS,
    SPEC_KEY,
    STRATEGY_PARAMS,
    DirectoryOutput,
    HubOutput,
    ModelSettings,
    Normalization,
    RunSpec,
    StrategyName,
    TrainingPlan,
    TrainSettings,
    pooled_normalization,
)

__all__ = [
    "DP_PARAMS",
    "FAILURE_CODE",
    "FLOWER_ERROR_KINDS",
    "REFUSAL_CODE",
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
