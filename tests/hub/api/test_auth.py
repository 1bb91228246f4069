"""Bearer tokens: missing, wrong, expired, revoked; stored hashed; bootstrap file."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from harness import HubProcess, Park

pytestmark = pytest.mark.integration


def test_missing_token_is_401_problem(hub: HubProcess) -> None:
    with hub.client() as anonymous:
        response = anonymous.get("/organizations")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == 401 and "Authorization: Bearer" in body["detail"]
    assert body["request_id"] == response.headers["x-request-id"]


@pytest.mark.parametrize("token", ["fpk_wrong", "Basic", "a" * 500])
def test_bad_token_is_401(hub: HubProcess, token: str) -> None:
    response = httpx.get(
        f"{hub.url}/api/v1/me", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert response.status_code == 401


def test_token_create_use_expire_revoke(park: Park) -> None:
    hub = park.hub
    with park.client("acme-researcher") as me:
        created = me.post("/tokens", json={"name": "laptop", "expires_in_days": 7}).json()
    secret, token_id = created["token"], created["id"]
    assert secret.startswith("fpk_")
    expires = datetime.fromisoformat(created["expires_at"])
    assert timedelta(days=6, hours=23) < expires - datetime.now(UTC) <= timedelta(days=7)

    with hub.client(secret) as laptop:
        assert laptop.get("/me").json()["user"]["username"] == "acme-researcher"
        listed = laptop.get("/tokens").json()
        assert token_id in {t["id"] for t in listed}
        assert all("token" not in t for t in listed)  # the secret is never shown again

    # Expire it in the catalog, as time would.
    past = (datetime.now(UTC) - timedelta(seconds=1)).replace(tzinfo=None)
    hub.execute("UPDATE api_tokens SET expires_at = :at WHERE id = :id", at=past, id=token_id)
    with hub.client(secret) as laptop:
        response = laptop.get("/me")
    assert response.status_code == 401 and "expired" in response.json()["detail"]

    with park.client("acme-researcher") as me:
        second = me.post("/tokens", json={"name": "ci"}).json()
        revoked = me.delete(f"/tokens/{second['id']}")
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    with hub.client(second["token"]) as ci:
        response = ci.get("/me")
    assert response.status_code == 401 and "revoked" in response.json()["detail"]


def test_tokens_are_stored_hashed(park: Park) -> None:
    with park.client("acme-steward") as me:
        secret = me.post("/tokens", json={"name": "probe"}).json()["token"]
    raw = b"".join(p.read_bytes() for p in park.hub.data_dir.glob("catalog.db*") if p.is_file())
    assert secret.encode() not in raw
    assert secret.encode() not in park.hub.log.read_bytes()


def test_token_lifetime_is_capped(park: Park) -> None:
    with park.client("acme-steward") as me:
        response = me.post("/tokens", json={"name": "forever", "expires_in_days": 3650})
    assert response.status_code == 422
    assert response.json()["field"] == "expires_in_days"


def test_deactivated_user_loses_access(park: Park) -> None:
    with park.client("operator") as admin:
        user = admin.post(
            "/users", json={"username": "leaver", "org_id": "acme", "role": "researcher"}
        ).json()
        token = admin.post("/tokens", json={"name": "t", "user_id": user["id"]}).json()
        assert admin.delete(f"/users/{user['id']}").json()["active"] is False
    with park.hub.client(token["token"]) as leaver:
        assert leaver.get("/me").status_code == 401


def test_bootstrap_token_file_is_private(hub: HubProcess) -> None:
    path = hub.data_dir / "bootstrap-admin-token"
    assert path.stat().st_mode & 0o777 == 0o600
    with hub.client(hub.admin_token) as admin:
        assert admin.get("/me").json()["user"]["role"] == "admin"
