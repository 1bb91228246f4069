"""``fedpark contract show``: what a steward approves from the command line is what the
console's contract page shows: columns with their rules, the table's rules, the policy."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from clirunner import CliRunner
from inprocess import InProcessHub, in_process_hub
from samples import contract_data

from fedpark.clients.cli import contracts as contract_cli
from fedpark.clients.cli.main import app
from fedpark.experiments.protocol.client import HubClient
from fedpark.experiments.protocol.resources.identity import (
    OrganizationCreate,
    OrgKind,
    Role,
    TokenCreate,
    UserCreate,
)
from fedpark.hub.storage.embedded import EmbeddedS3


@pytest.fixture
def hub(s3_server: EmbeddedS3, tmp_path: Path) -> Iterator[InProcessHub]:
    with in_process_hub(s3_server, tmp_path) as hub:
        yield hub


def test_show_lists_rules_and_policy(hub: InProcessHub, monkeypatch: pytest.MonkeyPatch) -> None:
    with HubClient(hub.url, hub.admin_token, transport=hub.transport) as admin:
        admin.create_organization(OrganizationCreate(id="acme", name="Acme", kind=OrgKind.FACTORY))
        user = admin.create_user(UserCreate(username="acme-s", org_id="acme", role=Role.STEWARD))
        token = admin.create_token(TokenCreate(name="t", user_id=user.id)).token
    data = contract_data()
    data["columns"][2]["description"] = "probe [bold]T1[/bold] at the die"  # not markup
    with HubClient(hub.url, token, transport=hub.transport) as steward:
        steward.create_contract(data)
    monkeypatch.setattr(
        contract_cli, "client", lambda _hub, t: HubClient(hub.url, t, transport=hub.transport)
    )
    shown = CliRunner().invoke(
        app,
        ["contract", "show", "press-sensors"],
        env={"COLUMNS": "250", "FEDPARK_TOKEN": token, "FEDPARK_HUB": hub.url},
    )
    assert shown.exit_code == 0, shown.output
    rows = {
        cells[0]: cells[1:]
        for line in shown.output.splitlines()
        if len(cells := [c.strip() for c in line.split("│")[1:-1]]) == 7
    }
    assert rows["temp"] == ["float32", "yes", "degC", "feature", "≥ 0; ≤ 120; finite",
                            "probe [bold]T1[/bold] at the die"]  # fmt: skip
    assert rows["ts"][1:] == ["no", "-", "time", "strictly increasing", ""]
    assert rows["machine"][4] == "one of press-1, press-2, press-3; matches press-[0-9]+"
    assert rows["pressure"][4] == "≥ 0; ≤ 10; ≤ 5.0 % null"
    assert rows["serial"][3:5] == ["id", "unique"]
    for line in (
        "rows: at least 100",
        "purposes: federated-training",
        "may launch experiments: acme and the owner",
        "may download models: acme",
        "smallest aggregate (k): 2 distinct factories in every round",
        "expires: never",
    ):
        assert f"  {line}\n" in shown.output, shown.output
