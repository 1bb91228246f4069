"""Flower's strategies by name, with FedPark's rules (at least k factories per aggregate).

FedPark does not aggregate by itself: every strategy here is Flower's own
(``flwr.serverapp.strategy``), configured from an experiment's settings, except SCAFFOLD,
which Flower 1.41 lacks: :class:`~fedpark.experiments.scaffold.Scaffold` extends Flower's
FedAvg with control variates.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from flwr.serverapp.strategy import (
    DifferentialPrivacyClientSideFixedClipping,
    FedAdam,
    FedAvg,
    FedAvgM,
    FedMedian,
    FedProx,
    FedTrimmedAvg,
    Krum,
    Strategy,
)

from fedpark.experiments.protocol.plan import (
    COUNT_PARAMS,
    DP_PARAMS,
    STRATEGY_PARAMS,
    StrategyName,
    check_strategy_params,
)
from fedpark.experiments.scaffold import Scaffold

# Flower's class for each strategy FedPark runs; the parameters each takes are the protocol's
# table (the hub checks a launch against the same one).
CLASSES: dict[StrategyName, Callable[..., Strategy]] = {
    StrategyName.FEDAVG: FedAvg,
    StrategyName.FEDPROX: FedProx,
    StrategyName.FEDAVGM: FedAvgM,
    StrategyName.FEDADAM: FedAdam,
    StrategyName.FEDMEDIAN: FedMedian,
    StrategyName.FEDTRIMMEDAVG: FedTrimmedAvg,
    StrategyName.KRUM: Krum,
    StrategyName.SCAFFOLD: Scaffold,  # FedPark's, extending Flower's FedAvg
}


def build_strategy(
    name: str,
    params: Mapping[str, Any],
    *,
    min_factories: int,
    fraction_train: float = 1.0,
    fraction_evaluate: float = 1.0,
) -> Strategy:
    """Flower's ``name`` strategy needing ``min_factories`` nodes in every round.

    Parameters
    ----------
    name
        fedavg, fedprox, fedavgm, fedadam, fedmedian, fedtrimmedavg, krum or scaffold.
    params
        The strategy's own parameters (e.g. ``proximal_mu``), plus optionally
        ``noise_multiplier`` and ``clipping_norm`` to wrap it in client-side DP with fixed
        clipping (the ClientApp then clips its updates).
    min_factories
        At least the contract's k: no aggregate of fewer factories is ever formed.
    """
    try:
        strategy_name = StrategyName(name)
    except ValueError:
        known = ", ".join(StrategyName)
        raise ValueError(f"unknown strategy {name!r}: use one of {known}") from None
    check_strategy_params(strategy_name, dict(params))
    if min_factories < 1:
        raise ValueError("min_factories must be at least 1")
    cls = CLASSES[strategy_name]
    own = {k: v for k, v in params.items() if k in STRATEGY_PARAMS[strategy_name]}
    for key in COUNT_PARAMS & set(own):  # JSON and the API carry numbers as floats
        own[key] = int(own[key])
    strategy = cls(
        fraction_train=fraction_train,
        fraction_evaluate=fraction_evaluate,
        min_train_nodes=min_factories,
        min_evaluate_nodes=min_factories,
        min_available_nodes=min_factories,
        **own,
    )
    dp = {k: params[k] for k in DP_PARAMS if k in params}
    if not dp:  # check_strategy_params saw both or neither
        return strategy
    return DifferentialPrivacyClientSideFixedClipping(
        strategy,
        noise_multiplier=float(dp["noise_multiplier"]),
        clipping_norm=float(dp["clipping_norm"]),
        num_sampled_clients=min_factories,
    )
