"""The hub API's resources, defined once for the hub and every client of it.

``*Create`` / ``*Update`` bodies go in, ``*Public`` bodies come out; the states and roles
they carry are enums here (the hub keeps their transition tables in ``fedpark.hub.lifecycle``).
The hub's routes answer with these classes, and
:class:`~fedpark.experiments.protocol.client.HubClient` parses its answers into them: a
field renamed on one side is renamed on both.

- :mod:`.identity`: organizations, users, tokens, the audit trail, health;
- :mod:`.contracts`: contract versions and declared datasets;
- :mod:`.experiments`: experiments, rounds, models, the federation.

Pydantic only (no pyarrow, no torch, no Flower): the command line loads them at start.
"""
