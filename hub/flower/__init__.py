"""The hub's side of Flower's deployment engine, in one place.

- :mod:`~fedpark.hub.flower.control`: starts, watches and stops runs through the SuperLink's
  Control API (never ``flwr run``), and lets factory SuperNodes' keys in;
- :mod:`~fedpark.hub.flower.pki`: the park's certificate authority (TLS for the Fleet API);
- :mod:`~fedpark.hub.flower.gate`: the Fleet gate factories connect to;
- :mod:`~fedpark.hub.flower.cli`: ``fedpark pki`` and ``fedpark hub gate``.

Only Flower's control-plane modules are imported here; no training code. The package
itself imports nothing, so ``fedpark --help`` stays quick (the CLI loads what it runs).
"""
