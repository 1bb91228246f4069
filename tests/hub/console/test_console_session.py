"""Console sign-in, session cookie, CSRF, and what each role may reach (plain HTTP).

The browser tests drive the pages; these pin the security properties a browser hides.
"""

from __future__ import annotations

import re
import uuid

import httpx
import pytest
from console import console_client, csrf_of, sign_in
from harness import CALLERS, Park, contract_in_state

pytestmark = pytest.mark.integration


def _cookie_header(answer: httpx.Response) -> str:
    return "; ".join(v for k, v in answer.headers.multi_items() if k == "set-cookie")


def test_sign_in_sets_a_strict_httponly_session_and_lands_on_the_role_page(park: Park) -> None:
    member = park.members["acme-steward"]
    client, answer = sign_in(park.hub.url, member.token)
    assert answer.status_code == 303 and answer.headers["location"] == "/console/review"
    cookie = _cookie_header(answer)
    assert "fedpark_session=" in cookie
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/console" in cookie
    assert member.token not in cookie  # the cookie is a session secret, not the API token
    page = client.get("/console/review")
    assert page.status_code == 200 and "Review queue" in page.text
    assert "acme-steward" in page.text  # who is signed in is shown
    assert page.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    client.close()


def test_a_wrong_token_is_refused_with_a_message_and_no_session(park: Park) -> None:
    client, answer = sign_in(park.hub.url, "fpk_not-a-real-token")
    assert answer.status_code == 401
    assert "Sign-in refused: unknown API token" in answer.text
    assert "fedpark_session" not in client.cookies
    client.close()


def test_sign_in_needs_the_form_nonce(park: Park) -> None:
    """Login CSRF: another site cannot sign a browser into someone else's account."""
    with console_client(park.hub.url) as client:
        answer = client.post(
            "/console/sign-in", data={"token": park.members["acme-factory"].token, "nonce": "x"}
        )
        assert answer.status_code == 401 and "expired" in answer.text
        assert "fedpark_session" not in client.cookies


def test_anonymous_pages_redirect_to_sign_in_and_back(park: Park) -> None:
    with console_client(park.hub.url) as client:
        answer = client.get("/console/contracts")
        assert answer.status_code == 303
        assert answer.headers["location"] == "/console/sign-in?next=/console/contracts"
        assert client.post("/console/sign-out").status_code == 303  # no session: sign in


def test_forms_without_the_csrf_token_or_from_another_origin_are_refused(park: Park) -> None:
    data = contract_in_state(park, "submitted")
    page = f"/console/contracts/{data['id']}/versions/{data['version']}"
    client, _ = sign_in(park.hub.url, park.members["acme-steward"].token)
    token = csrf_of(client, page)
    missing = client.post(f"{page}/approve")
    assert missing.status_code == 403 and "reload the page" in missing.text
    forged = client.post(
        f"{page}/approve", data={"csrf": token}, headers={"Origin": "https://evil.example"}
    )
    assert forged.status_code == 403
    with park.client("acme-steward") as api:
        assert (
            api.get(f"/contracts/{data['id']}/versions/{data['version']}").json()["status"]
            == "submitted"
        )
    done = client.post(f"{page}/approve", data={"csrf": token}, headers={"Origin": park.hub.url})
    assert done.status_code == 303 and done.headers["location"].endswith("?done=approved")
    client.close()


@pytest.mark.parametrize(
    "page",
    [
        "/console/review",
        "/console/admin",
        "/console/admin/users",
        "/console/admin/audit",
        "/console/experiments/new",
    ],
)
def test_a_factory_user_cannot_reach_steward_researcher_or_admin_pages(
    park: Park, page: str
) -> None:
    client, _ = sign_in(park.hub.url, park.members["acme-factory"].token)
    answer = client.get(page)
    assert answer.status_code == 403, page
    assert "this page is for the roles" in answer.text
    client.close()


def test_another_organizations_draft_is_not_found(park: Park) -> None:
    data = contract_in_state(park, "draft", owner="acme")
    client, _ = sign_in(park.hub.url, park.members["bravo-factory"].token)
    answer = client.get(f"/console/contracts/{data['id']}/versions/{data['version']}")
    assert answer.status_code == 404 and data["title"] not in answer.text
    client.close()
    own, _ = sign_in(park.hub.url, park.members["acme-factory"].token)
    page = own.get(f"/console/contracts/{data['id']}/versions/{data['version']}")
    assert page.status_code == 200
    assert "<td>≥ 0; ≤ 120; finite</td>" in page.text  # the rules, in the CLI's words
    own.close()


def test_revoking_the_token_or_signing_out_ends_the_session(park: Park) -> None:
    with park.client("operator") as admin:
        user = park.members["bravo-researcher"].user_id
        issued = admin.post("/tokens", json={"name": "browser", "user_id": user}).json()
    client, _ = sign_in(park.hub.url, issued["token"])
    assert client.get("/console/experiments").status_code == 200
    with park.client("operator") as admin:
        assert admin.delete(f"/tokens/{issued['id']}").status_code == 200
    assert client.get("/console/experiments").status_code == 303  # back to sign-in
    client.close()

    client, _ = sign_in(park.hub.url, park.members["bravo-researcher"].token)
    cookie = client.cookies["fedpark_session"]
    token = csrf_of(client, "/console/experiments")
    out = client.post("/console/sign-out", data={"csrf": token}, headers={"Origin": park.hub.url})
    assert out.status_code == 303
    with console_client(park.hub.url) as replay:  # the old cookie no longer opens anything
        replay.cookies.set("fedpark_session", cookie, path="/console")
        assert replay.get("/console/experiments").status_code == 303
    client.close()


# Console pages x roles: the same rules as the API (403 for a role, 404 for another
# organization's object), checked page by page.
EVERYONE = frozenset(CALLERS)
ADMINS = frozenset({"operator", "acme-admin"})
PAGES: dict[str, frozenset[str]] = {  # page -> who gets 200 (everyone else 403)
    "/console/review": frozenset({"acme-steward"}),
    "/console/contracts": EVERYONE,
    "/console/experiments": EVERYONE,
    "/console/experiments/new": frozenset({"acme-researcher"}),
    "/console/models": EVERYONE,
    "/console/hub-key.pem": EVERYONE,
    "/console/factory": frozenset({"acme-factory"}),
    "/console/admin": ADMINS,
    "/console/admin/users": ADMINS,
    "/console/admin/audit": ADMINS,
}


def test_every_console_page_by_role(park: Park) -> None:
    clients = {}
    for who in CALLERS:
        member = park.operator if who == "operator" else park.members[who]
        clients[who], _ = sign_in(park.hub.url, member.token)
    got = {page: {who: clients[who].get(page).status_code for who in CALLERS} for page in PAGES}
    expected = {
        page: {who: 200 if who in allowed else 403 for who in CALLERS}
        for page, allowed in PAGES.items()
    }
    assert got == expected
    for client in clients.values():
        client.close()
    with console_client(park.hub.url) as anonymous:  # and nobody signed in: sign in first
        assert {anonymous.get(page).status_code for page in PAGES} == {303}


def test_admin_forms_create_an_organization_and_a_member_or_say_why_not(park: Park) -> None:
    client, _ = sign_in(park.hub.url, park.operator.token)
    token = csrf_of(client, "/console/admin")
    origin = {"Origin": park.hub.url}
    org = f"org-{uuid.uuid4().hex[:6]}"
    made = client.post(
        "/console/admin/orgs",
        data={"csrf": token, "org_id": org, "name": "Weld Shop", "kind": "factory"},
        headers=origin,
    )
    assert made.status_code == 303
    assert "Weld Shop" in client.get("/console/admin").text
    bad = client.post(
        "/console/admin/users",
        data={"csrf": token, "username": "a b", "org_id": org, "role": "factory"},
        headers=origin,
    )
    assert bad.status_code == 422 and "username" in bad.text
    user = f"op-{uuid.uuid4().hex[:6]}"
    added = client.post(
        "/console/admin/users",
        data={"csrf": token, "username": user, "org_id": org, "role": "factory"},
        headers=origin,
    )
    assert added.status_code == 303 and user in client.get("/console/admin/users").text
    with park.client("operator") as api:
        users = api.get("/users", params={"limit": 500}).json()
    member = next(u for u in users if u["username"] == user)
    ask = client.get(f"/console/admin/users/{member['id']}/deactivate")  # asks first
    assert ask.status_code == 200 and "all of their API tokens are revoked" in ask.text
    gone = client.post(
        f"/console/admin/users/{member['id']}/deactivate", data={"csrf": token}, headers=origin
    )
    assert gone.status_code == 303
    with park.client("operator") as api:
        assert api.get(f"/users/{member['id']}").json()["active"] is False
    client.close()


def test_the_launch_form_offers_which_model_to_publish(park: Park) -> None:
    data = contract_in_state(park, "approved")
    page = f"/console/experiments/new?contract={data['id']}@{data['version']}"
    client, _ = sign_in(park.hub.url, park.members["acme-researcher"].token)
    form = client.get(page)
    assert '<select id="publish" name="publish">' in form.text
    assert '<option value="last" selected>' in form.text  # the default: the last round's
    token = csrf_of(client, page)
    fields = {"csrf": token, "contract": f"{data['id']}@{data['version']}", "name": "x"}
    refused = client.post(
        "/console/experiments/new",
        data={**fields, "participants": "acme", "publish": "greatest"},
        headers={"Origin": park.hub.url},
    )
    assert refused.status_code == 422  # checked by the launch schema, the API's own
    assert 'id="publish" name="publish" aria-invalid="true"' in refused.text
    # and how the factories standardize their readings: pooled unless asked
    assert '<option value="pooled" selected>pooled over all factories' in form.text
    odd = client.post(
        "/console/experiments/new",
        data={**fields, "participants": "acme", "model.normalization": "global"},
        headers={"Origin": park.hub.url},
    )
    assert odd.status_code == 422
    assert 'name="model.normalization" aria-invalid="true"' in odd.text
    client.close()


def test_model_pages_count_the_factories_that_contributed_not_those_invited(park: Park) -> None:
    """Two factories invited, one contributed (k = 1): the list says 1, the page names it
    and the invitees apart."""
    from harness import finish_body, open_run
    from samples import contract_data

    from fedpark.experiments.protocol import FactoryResult, RoundReport

    policy = contract_data()["policy"] | {"experiment_orgs": ["acme"], "min_factories": 1}
    contract = contract_in_state(park, "approved", policy=policy)
    experiment_id, token = open_run(park, contract, "acme", ["acme", "bravo"])
    report = RoundReport(
        round=1,
        contributors=["acme"],
        min_factories=1,
        train_factories=[FactoryResult(org="acme", node_id=1, examples=100, metrics={})],
    )
    octets = {"Content-Type": "application/octet-stream"}
    base = f"{park.hub.url}/api/v1/runs/{experiment_id}"
    with park.hub.client(token) as run:
        assert run.post(f"{base}/rounds", json=report.model_dump(mode="json")).is_success
        assert run.put(f"{base}/model", content=b"weights", headers=octets).is_success
        assert run.post(f"{base}/finish", json=finish_body(contract)).is_success
    client, _ = sign_in(park.hub.url, park.members["acme-researcher"].token)
    try:
        listing = client.get("/console/models")
        page = client.get(f"/console/models/{experiment_id}")
    finally:
        client.close()
    row = re.search(rf"{experiment_id}</a></td>.*?</tr>", listing.text, re.S)
    assert row is not None, listing.text
    cells = re.findall(r"<td>([^<]*)</td>", row.group(0))
    assert cells[-2] == "1", cells  # contributing factories, before "Finished"
    assert page.status_code == 200
    assert "<dd>acme <span" in page.text and "(invited: acme, bravo)" in page.text


def test_the_factory_page_gives_instructions_that_work(park: Park) -> None:
    """FedPark is installed from the park's source (it is not on PyPI), and the long-running
    join reads its token from a file, never from its command line; the options it names are
    the CLI's own."""
    from typer.main import get_command

    from fedpark.clients.cli.main import app

    client, _ = sign_in(park.hub.url, park.members["acme-factory"].token)
    try:
        page = client.get("/console/factory").text
    finally:
        client.close()
    assert "pip install fedpark" not in page
    assert ".venv/bin/pip install -e ." in page
    join = re.search(r'<pre id="join-command">([^<]*)</pre>', page)
    assert join is not None, page
    words = join.group(1).split()
    assert words[:3] == ["fedpark", "factory", "join"]
    assert "--token" not in words and "--token-file" in words
    factory = get_command(app).commands["factory"].commands["join"]  # type: ignore[attr-defined]
    options = {name for param in factory.params for name in param.opts}
    assert {w for w in words if w.startswith("--")} <= options
