"""The catalog: migrations build exactly the models' schema, up and down, on SQLite and on
PostgreSQL; concurrent state changes have one winner."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from fedpark.experiments.protocol.resources.experiments import ExperimentCreate
from fedpark.hub.errors import CatalogError, ConfigurationError
from fedpark.hub.lifecycle import ExperimentStatus
from fedpark.hub.storage import Catalog
from fedpark.hub.storage.models import Base


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
    """The migrations build exactly the models' schema, idempotently, and every revision's
    downgrade undoes its upgrade, on SQLite and on PostgreSQL."""
    from alembic import command
    from alembic.config import Config

    url = database.get("FEDPARK_DATABASE_URL") or f"sqlite:///{tmp_path / 'c.db'}"
    catalog = Catalog(url)
    catalog.migrate()
    catalog.migrate()  # idempotent
    tables = set(inspect(catalog.engine).get_table_names())
    assert {"organizations", "users", "api_tokens", "audit_log", "audit_head"} <= tables
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


def test_of_concurrent_closes_of_an_experiment_exactly_one_wins(
    tmp_path: Path, database: dict[str, str]
) -> None:
    """finish, stop and fail racing on one running experiment: one UPDATE applies."""
    import threading

    from fedpark.hub.storage.models import Experiment, Organization

    url = database.get("FEDPARK_DATABASE_URL") or f"sqlite:///{tmp_path / 'c.db'}"
    catalog = Catalog(url)
    catalog.migrate()
    with catalog.unit_of_work() as uow:
        uow.session.add(Organization(id="tu", name="TU", kind="university"))
        uow.session.flush()
        for i in range(10):
            uow.experiments.add(
                Experiment(
                    id=f"exp-{i}",
                    name="race",
                    contract_id="c-1",
                    contract_version="1.0.0",
                    contract_sha256="0" * 64,
                    org_id="tu",
                    created_by="alice",
                    status="running",
                    settings=ExperimentCreate(
                        name="race",
                        contract_id="c-1",
                        contract_version="1.0.0",
                        participants=["tu"],
                        min_factories=1,
                    ),
                    participants=[],
                    run_token_hash=f"{i:064d}",
                )
            )
    for i in range(10):
        barrier = threading.Barrier(3)
        won: list[str] = []

        def close(to: str, experiment: str = f"exp-{i}", barrier=barrier, won=won) -> None:  # type: ignore[no-untyped-def]
            barrier.wait()
            with catalog.unit_of_work() as uow:
                if uow.experiments.move(experiment, ExperimentStatus(to), ended_at=None):
                    won.append(to)

        threads = [
            threading.Thread(target=close, args=(to,)) for to in ("finished", "stopped", "failed")
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        with catalog.unit_of_work() as uow:
            final = uow.experiments.get(f"exp-{i}")
        assert final is not None and len(won) == 1 and final.status == won[0], (won, final)
    catalog.dispose()


@pytest.mark.integration  # a fresh Python process
def test_migrating_logs_the_migrations_not_alembics_plugins(tmp_path: Path) -> None:
    """A fresh process, as ``hub serve`` is: alembic announces its plugins when imported."""
    script = (
        "import logging, sys\n"
        "logging.basicConfig(level=logging.INFO)\n"
        "from fedpark.hub.storage import Catalog\n"
        "Catalog(sys.argv[1]).migrate()\n"
    )
    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    run = subprocess.run(
        [sys.executable, "-c", script, url], capture_output=True, text=True, timeout=120, check=True
    )
    assert "Running upgrade" in run.stderr
    assert "plugin" not in run.stderr, run.stderr
