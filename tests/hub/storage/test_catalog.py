"""The catalog: migrations build exactly the models' schema."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from fedpark.hub.errors import CatalogError, ConfigurationError
from fedpark.hub.storage import Catalog
from fedpark.hub.storage.models import Base


def test_migrations_match_the_models(tmp_path: Path) -> None:
    catalog = Catalog(f"sqlite:///{tmp_path / 'c.db'}")
    catalog.migrate()
    catalog.migrate()  # idempotent
    tables = set(inspect(catalog.engine).get_table_names())
    assert {"organizations", "users", "api_tokens", "audit_log", "audit_head"} <= tables
    with catalog.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert diff == [], f"models changed without a migration: {diff}"


def test_bad_url_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="database URL"):
        Catalog("not a url")


def test_unreachable_database_is_a_clear_error(tmp_path: Path) -> None:
    catalog = Catalog(f"sqlite:///{tmp_path / 'missing-dir' / 'c.db'}")
    with pytest.raises(CatalogError, match="cannot open the catalog"):
        catalog.migrate()


def test_migrations_go_up_and_down_on_both_backends(
    tmp_path: Path, database: dict[str, str]
) -> None:
    """Every revision's downgrade undoes its upgrade, on SQLite and on PostgreSQL."""
    from alembic import command
    from alembic.config import Config

    url = database.get("FEDPARK_DATABASE_URL") or f"sqlite:///{tmp_path / 'c.db'}"
    catalog = Catalog(url)
    catalog.migrate()
    with catalog.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert diff == [], f"models changed without a migration: {diff}"
    config = Config()
    config.set_main_option("script_location", "fedpark.hub.storage:migrations")
    with catalog.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "base")
    assert set(inspect(catalog.engine).get_table_names()) <= {"alembic_version"}
    catalog.migrate()
    assert "contract_versions" in inspect(catalog.engine).get_table_names()
    catalog.dispose()
