"""Flower's strategies by name, with FedPark's rules (at least k factories per aggregate).

FedPark does not aggregate by itself: every strategy here is Flower's own
(``flwr.serverapp.strategy``), configured from an experiment's settings.
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

# name -> (class, parameters it accepts beyond the node counts)
STRATEGIES: dict[str, tuple[Callable[..., Strategy], frozenset[str]]] = {
    "fedavg": (FedAvg, frozenset()),
    "fedprox": (FedProx, frozenset({"proximal_mu"})),
    "fedavgm": (FedAvgM, frozenset({"server_learning_rate", "server_momentum"})),
    "fedadam": (FedAdam, frozenset({"eta", "eta_l", "beta_1", "beta_2", "tau"})),
    "fedmedian": (FedMedian, frozenset()),
    "fedtrimmedavg": (FedTrimmedAvg, frozenset({"beta"})),
    "krum": (Krum, frozenset({"num_malicious_nodes"})),
}
DP_PARAMETERS = frozenset({"noise_multiplier", "clipping_norm"})
# Parameters that count nodes: Flower slices with them, so they must be ints.
COUNTS = frozenset({"num_malicious_nodes"})


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
        fedavg, fedprox, fedavgm, fedadam, fedmedian, fedtrimmedavg or krum.
    params
        The strategy's own parameters (e.g. ``proximal_mu``), plus optionally
        ``noise_multiplier`` and ``clipping_norm`` to wrap it in client-side DP with fixed
        clipping (the ClientApp then clips its updates).
    min_factories
        At least the contract's k: no aggregate of fewer factories is ever formed.
    """
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}: use one of {', '.join(STRATEGIES)}")
    cls, accepted = STRATEGIES[name]
    unknown = set(params) - accepted - DP_PARAMETERS
    if unknown:
        raise ValueError(f"{name} does not take {', '.join(sorted(unknown))}")
    if min_factories < 1:
        raise ValueError("min_factories must be at least 1")
    own = {k: v for k, v in params.items() if k in accepted}
    for key in COUNTS & set(own):  # JSON and the API carry numbers as floats
        if float(own[key]) != int(own[key]) or int(own[key]) < 0:
            raise ValueError(f"{key} must be a whole number, not {own[key]}")
        own[key] = int(own[key])
    strategy = cls(
        fraction_train=fraction_train,
        fraction_evaluate=fraction_evaluate,
        min_train_nodes=min_factories,
        min_evaluate_nodes=min_factories,
        min_available_nodes=min_factories,
        **own,
    )
    dp = {k: params[k] for k in DP_PARAMETERS if k in params}
    if not dp:
        return strategy
    if set(dp) != DP_PARAMETERS:
        raise ValueError("differential privacy needs both noise_multiplier and clipping_norm")
    return DifferentialPrivacyClientSideFixedClipping(
        strategy,
        noise_multiplier=float(dp["noise_multiplier"]),
        clipping_norm=float(dp["clipping_norm"]),
        num_sampled_clients=min_factories,
    )
