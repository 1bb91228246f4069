"""Writing factory files the way FedPark reads them back safely."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


def write_parquet(table: pa.Table, path: Path) -> None:
    """Parquet with page checksums: FedPark's reader verifies them, so a damaged page is an
    error instead of other numbers (Parquet without checksums cannot tell)."""
    pq.write_table(table, path, write_page_checksum=True)
