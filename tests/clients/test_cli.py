"""The ``fedpark`` CLI through a real hub over HTTP."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from harness import HubProcess, Park, clean_env, fedpark_argv

pytestmark = pytest.mark.integration


def fedpark(hub: HubProcess, token: str | None, *args: str) -> subprocess.CompletedProcess[str]:
    env = clean_env(FEDPARK_HUB=hub.url, **({"FEDPARK_TOKEN": token} if token else {}))
    return subprocess.run(
        fedpark_argv(*args), env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_admin_workflow_through_the_cli(park: Park) -> None:
    hub, admin = park.hub, park.operator.token
    made = fedpark(hub, admin, "org", "create", "cli-works", "--name", "CLI Works", "--json")
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["kind"] == "factory"

    user = fedpark(
        hub, admin, "user", "create", "cli-op", "--org", "cli-works", "--role", "factory", "--json"
    )
    assert user.returncode == 0, user.stderr
    user_id = json.loads(user.stdout)["id"]

    token = fedpark(hub, admin, "token", "create", "--name", "edge", "--user", user_id, "--json")
    created = json.loads(token.stdout)
    who = fedpark(hub, created["token"], "whoami", "--json")
    assert json.loads(who.stdout)["username"] == "cli-op"

    revoked = fedpark(hub, admin, "token", "revoke", created["id"])
    assert revoked.returncode == 0
    denied = fedpark(hub, created["token"], "whoami")
    assert denied.returncode == 1
    assert "error:" in denied.stderr and "revoked" in denied.stderr

    listing = fedpark(hub, admin, "org", "list")
    assert "cli-works" in listing.stdout


def test_token_create_by_user_name_into_a_file(park: Park, tmp_path: Path) -> None:
    """Admins think in user names; a secret written to a file never reaches the screen."""
    hub, admin = park.hub, park.operator.token
    made = fedpark(hub, admin, "user", "create", "name-op", "--org", "acme", "--role", "factory")
    assert made.returncode == 0, made.stderr
    secret = tmp_path / "name-op.token"
    token = fedpark(
        hub, admin, "token", "create", "--name", "edge", "--user", "name-op", "-o", str(secret)
    )
    assert token.returncode == 0, token.stderr
    assert f"Token written to {secret} (mode 0600)." in token.stdout
    assert secret.stat().st_mode & 0o777 == 0o600
    value = secret.read_text().strip()
    assert value not in token.stdout + token.stderr
    who = fedpark(hub, value, "whoami", "--json")
    assert json.loads(who.stdout)["username"] == "name-op"
    again = fedpark(
        hub, admin, "token", "create", "--name", "x", "--user", "name-op", "-o", str(secret)
    )
    assert again.returncode == 2 and "exists; choose a new file" in again.stderr
    nobody = fedpark(hub, admin, "token", "create", "--name", "x", "--user", "no-such-person")
    assert nobody.returncode == 2
    flat = " ".join(re.sub(r"[│╭╮╰╯─]", " ", nobody.stderr).split())  # the usage box, unwrapped
    assert "no user named 'no-such-person' among the members you manage" in flat


def test_clear_errors(park: Park, tmp_path: Path) -> None:
    no_token = fedpark(park.hub, None, "org", "list")
    assert no_token.returncode == 1 and "Authorization: Bearer" in no_token.stderr
    role = fedpark(
        park.hub, park.members["acme-factory"].token, "org", "create", "x1", "--name", "x"
    )
    assert role.returncode == 1 and "Permission denied (403)" in role.stderr
    bad_choice = fedpark(
        park.hub, park.operator.token, "user", "create", "u1", "--org", "acme", "--role", "king"
    )
    assert bad_choice.returncode == 2 and "role must be one of" in bad_choice.stderr
    scope = fedpark(
        park.hub,
        park.members["acme-researcher"].token,
        *("experiment", "launch", "--contract", "press-sensors@1.0.0", "--participants", "acme"),
        *("--normalization", "global"),
    )
    assert scope.returncode == 2
    said = " ".join(re.sub(r"[│╭╮╰╯─]", " ", scope.stderr).split())  # the usage box, unwrapped
    assert "model.normalization: must be one of: pooled, factory" in said
    token = "fpk_" + "x" * 43  # well-formed, but nobody listens

    def unreachable(token: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            fedpark_argv("org", "list"),
            capture_output=True,
            text=True,
            env=clean_env(FEDPARK_HUB="http://127.0.0.1:9", FEDPARK_TOKEN=token),
            check=False,
        )

    down = unreachable(token)
    assert down.returncode == 1 and "cannot reach the hub" in down.stderr
    malformed = unreachable("x")  # checked before it is sent anywhere
    assert malformed.returncode == 1 and "the API token is 1 characters long" in malformed.stderr
    outputs = down.stderr + malformed.stderr + role.stderr + no_token.stderr
    assert "Traceback" not in outputs and token not in outputs


GROUPS = (
    "whoami",
    "demo",
    "org",
    "user",
    "token",
    "audit",
    "contract",
    "experiment",
    "model",
    "factory",
    "data",
    "hub",
    "storage",
    "pki",
    "superlink",
    "health",
)


def test_help_tells_everything() -> None:
    """Every command group is listed, with a line saying what it is for, in the Commands
    table (not merely somewhere in the text); and each group's own help lists its commands."""
    env = clean_env(COLUMNS="200")
    result = subprocess.run(
        fedpark_argv("--help"), capture_output=True, text=True, check=True, env=env
    )
    table = result.stdout.split("Commands")[1]
    listed = {
        cells[0]: cells[1]
        for line in table.splitlines()
        if len(cells := line.strip("│ ").split(None, 1)) == 2
    }
    assert set(GROUPS) <= set(listed), sorted(listed)
    assert all(len(listed[g]) > 10 for g in GROUPS), listed
    for group, command in (("contract", "declare"), ("experiment", "launch"), ("factory", "join")):
        sub = subprocess.run(
            fedpark_argv(group, "--help"), capture_output=True, text=True, check=True, env=env
        )
        assert f"│ {command} " in sub.stdout.split("Commands")[1], sub.stdout
