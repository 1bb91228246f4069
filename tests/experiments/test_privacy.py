"""Proof that no row leaves a factory: sentinels planted in every factory's data, every byte
each factory sends during a full experiment captured on loopback, and none of them found.

Both factories reach the Flower Fleet API and the hub only through recording proxies (the hub
advertises the proxy as the Fleet address; the factories join through the proxy's URL). Planted:
a unique string in the pii column of every row, a unique id in the id column of every row, and
every row's float64 `pressure` reading, each searched as raw bytes (little-endian, as Arrow,
NumPy and protobuf carry them) and as text (as JSON or CSV would). Controls show the search
would find them if rows travelled, and that the capture did see the factories' traffic.
"""

from __future__ import annotations

import struct

import numpy as np
import pyarrow as pa
import pytest
from federation import run_experiment, start_park

from fedpark.hub.storage.embedded import EmbeddedS3

pytestmark = pytest.mark.integration

ROWS = 600
ID_BASE = {"acme": 7_301_000_000_000, "bravo": 7_302_000_000_000}


def plant(org: str, table: pa.Table) -> pa.Table:
    """Sentinels in every row: pii strings and ids nobody could guess."""
    names = pa.array([f"SENTINEL-{org}-{i:05d}-q7Zx" for i in range(table.num_rows)])
    ids = pa.array(ID_BASE[org] + np.arange(table.num_rows, dtype=np.int64))
    table = table.set_column(table.schema.get_field_index("operator"), "operator", names)
    return table.set_column(table.schema.get_field_index("serial"), "serial", ids)


def needles(org: str, table: pa.Table) -> dict[str, list[bytes]]:
    """What a leaked row would look like on the wire, by kind."""
    pressures = [v for v in table["pressure"].to_pylist() if v is not None]
    ids = table["serial"].to_pylist()
    return {
        "pii text": [v.encode() for v in table["operator"].to_pylist()] + [b"SENTINEL-"],
        "id bytes": [struct.pack("<q", v) for v in ids],
        "id text": [str(v).encode() for v in ids],
        "reading bytes": [struct.pack("<d", v) for v in pressures],
        "reading text": [repr(v).encode() for v in pressures],
    }


def found(haystack: bytes, patterns: dict[str, list[bytes]]) -> dict[str, int]:
    return {kind: sum(p in haystack for p in group) for kind, group in patterns.items()}


def test_no_sentinel_and_no_raw_row_leaves_a_factory(s3_server: EmbeddedS3, tmp_path) -> None:
    tables: dict[str, pa.Table] = {}

    def keep(org: str, table: pa.Table) -> pa.Table:
        tables[org] = plant(org, table)
        return tables[org]

    park = start_park(tmp_path, s3_server, rows=ROWS, prepare=keep, record=True)
    try:
        state = run_experiment(park, "privacy proof")
        assert state["status"] == "finished", state
    finally:
        park.stop()
    assert park.fleet_proxy is not None and park.hub_proxy is not None
    fleet, hub = bytes(park.fleet_proxy.sent), bytes(park.hub_proxy.sent)

    # Controls: the capture saw the factories' traffic (model updates are kilobytes; the
    # factories name themselves in their replies), and the search finds rows where rows are.
    assert park.fleet_proxy.connections >= 2 and len(fleet) > 20_000, len(fleet)
    assert b"acme" in fleet and b"bravo" in fleet
    assert park.hub_proxy.connections >= 2 and b"GET /api/v1/contracts/" in hub
    for org, table in tables.items():
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        as_arrow = sink.getvalue().to_pybytes()
        as_text = table.to_pandas().to_csv().encode()
        patterns = needles(org, table)
        in_rows = found(as_arrow + as_text, patterns)
        assert all(in_rows[k] == len(patterns[k]) for k in patterns), in_rows

        # The proof: not one of them in anything the factories sent.
        planted = {k: len(v) for k, v in patterns.items()}
        print(f"{org}: planted {planted}; fleet {len(fleet)} B, hub {len(hub)} B")
        assert found(fleet, patterns) == dict.fromkeys(patterns, 0), org
        assert found(hub, patterns) == dict.fromkeys(patterns, 0), org
