"""The one hub client, against the hub's real routes (in process: ``create_app`` behind
Starlette's transport, real SQLite, the session's real S3).

Each method family once through the real API, answers parsed into the protocol's bodies;
lists read to the end page by page; errors in the client's tree with the hub's words; the
retry policy on exactly the failures a later try may not meet.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import httpx
import pytest
from harness import running_experiment
from inprocess import InProcessHub, in_process_hub
from samples import contract_data, package_for, sensor_table

from fedpark.contracts import Contract, validate_table
from fedpark.contracts.ref import ContractRef
from fedpark.contracts.signing import load_public_key, verify_contract
from fedpark.experiments.protocol import FactoryResult, RoundReport
from fedpark.experiments.protocol.client import HubClient, RetryPolicy
from fedpark.experiments.protocol.errors import HubApiError, HubAuthError, HubUnreachableError
from fedpark.experiments.protocol.manifest import ModelManifest
from fedpark.experiments.protocol.resources.contracts import ContractStatus, RejectionCreate
from fedpark.experiments.protocol.resources.experiments import (
    ExperimentStatus,
    RunFailureCreate,
    RunFinishCreate,
)
from fedpark.experiments.protocol.resources.identity import (
    OrganizationCreate,
    OrgKind,
    Role,
    TokenCreate,
    UserCreate,
)
from fedpark.hub.storage.embedded import EmbeddedS3
from fedpark.hub.storage.models import ModelPart

Connect = Callable[..., HubClient]


@pytest.fixture(scope="module")
def hub(s3_server: EmbeddedS3, tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessHub]:
    with in_process_hub(s3_server, tmp_path_factory.mktemp("hub")) as hub:
        yield hub


@pytest.fixture
def connect(hub: InProcessHub) -> Iterator[Connect]:
    """``connect(token)``: a HubClient that reaches the in-process hub."""
    opened: list[HubClient] = []

    def make(token: str | None = None, retry: RetryPolicy | None = None) -> HubClient:
        client = HubClient(hub.url, token, retry=retry, transport=hub.transport)
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.close()


def _member(admin: HubClient, org: str, role: Role) -> str:
    user = admin.create_user(UserCreate(username=f"{org}-{role}", org_id=org, role=role))
    return admin.create_token(TokenCreate(name="test", user_id=user.id)).token


def test_a_contract_goes_from_draft_to_declared_data(hub: InProcessHub, connect: Connect) -> None:
    admin = connect(hub.admin_token)
    org = admin.create_organization(
        OrganizationCreate(id="acme", name="Acme", kind=OrgKind.FACTORY)
    )
    assert (org.id, org.kind) == ("acme", OrgKind.FACTORY)
    author = connect(_member(admin, "acme", Role.FACTORY))
    steward = connect(_member(admin, "acme", Role.STEWARD))
    assert author.me().organization.id == "acme" and author.me().user.role is Role.FACTORY

    data = contract_data()
    ref = ContractRef(data["id"], data["version"])
    assert author.create_contract(data).status is ContractStatus.DRAFT
    assert author.submit_contract(ref).status is ContractStatus.SUBMITTED
    rejected = steward.reject_contract(ref, RejectionCreate(reason="units missing"))
    assert (rejected.status, rejected.reason) == (ContractStatus.REJECTED, "units missing")
    assert author.update_contract(ref, data).status is ContractStatus.DRAFT
    author.submit_contract(ref)
    approved = steward.approve_contract(ref)
    assert approved.status is ContractStatus.APPROVED and approved.signed

    # The parts download as the hub stores them, and the signature verifies with its key.
    contract = Contract.model_validate_json(author.contract_part(ref, "document"))
    signature = author.contract_part(ref, "signature")
    verify_contract(contract, json.loads(signature), load_public_key(author.hub_key()))
    assert author.contract(ref).document == contract.model_dump(mode="json")
    assert [v.version for v in author.contract_versions(ref.id)] == [ref.version]

    result = validate_table(contract, sensor_table())
    assert result.report.passed
    declared = author.declare_dataset(ref, result.declaration("line-1"))
    assert (declared.name, declared.compliant, declared.rows) == (
        "line-1",
        True,
        result.report.rows,
    )
    assert [d.id for d in author.datasets(ref)] == [declared.id]
    assert [d.id for d in author.own_datasets()] == [declared.id]
    assert steward.deprecate_contract(ref).status is ContractStatus.DEPRECATED
    assert steward.retire_contract(ref).status is ContractStatus.RETIRED


def test_lists_are_read_to_the_end_page_by_page(hub: InProcessHub, connect: Connect) -> None:
    admin = connect(hub.admin_token)
    for n in range(7):
        admin.create_organization(OrganizationCreate(id=f"org-{n}", name=f"{n}", kind="factory"))
    whole = [o.id for o in admin.organizations()]  # one page of up to 500
    assert {f"org-{n}" for n in range(7)} <= set(whole)
    admin.page_size = 2  # the same list in pages of two: every one read, none twice
    assert [o.id for o in admin.organizations()] == whole


def test_errors_carry_the_hubs_words_and_status(hub: InProcessHub, connect: Connect) -> None:
    with pytest.raises(HubAuthError) as anonymous:
        connect().me()
    assert anonymous.value.status == 401
    admin = connect(hub.admin_token)
    with pytest.raises(HubApiError) as missing:
        admin.experiment("exp-000000000000")
    assert missing.value.status == 404 and "exp-000000000000" not in missing.value.title
    with pytest.raises(HubApiError) as clash:
        for _ in range(2):
            admin.create_organization(OrganizationCreate(id="twice", name="T", kind="factory"))
    assert clash.value.status == 409
    # An id is one path segment: a slash or a dot-dot never reaches the hub.
    for bad in ("../tokens", "a/b", "x?limit=1", ".."):
        with pytest.raises(HubApiError) as refused:
            admin.revoke_token(bad)
        assert refused.value.status == 400 and bad not in str(refused.value)


def test_a_run_reports_through_the_client(hub: InProcessHub, connect: Connect) -> None:
    admin = connect(hub.admin_token)
    admin.create_organization(OrganizationCreate(id="bravo", name="Bravo", kind="factory"))
    experiment_id, run_token = running_experiment(
        hub.runtime.storage.catalog, contract_data(), "bravo", ["bravo"]
    )
    run = connect(run_token, retry=RetryPolicy(patience=5))
    run.put_checkpoint(experiment_id, 1, b"weights-1")
    report = RoundReport(
        round=1,
        contributors=["bravo"],
        min_factories=1,
        train_factories=[FactoryResult(org="bravo", node_id=1, examples=10)],
    )
    run.report_round(experiment_id, report)
    run.report_round(experiment_id, report)  # a retry whose answer was lost: accepted once
    assert run.checkpoint(experiment_id, 1) == b"weights-1"
    run.fail(experiment_id, RunFailureCreate(reason="no round could be aggregated"))
    researcher = connect(_member(admin, "bravo", Role.RESEARCHER))
    state = researcher.experiment(experiment_id)
    assert state.status is ExperimentStatus.FAILED
    assert [r.report for r in researcher.rounds(experiment_id)] == [report]
    with pytest.raises(HubApiError) as refused:  # a finished run takes no more reports
        run.report_round(experiment_id, report.model_copy(update={"round": 2}))
    assert refused.value.status in (401, 409)


def _flaky(answers: list[int]) -> tuple[httpx.MockTransport, list[str]]:
    """A transport answering with ``answers`` in turn (then 200), recording each request."""
    seen: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request.method)
        status = answers.pop(0) if answers else 200
        if status == 0:
            raise httpx.ConnectError("refused")
        body = {"title": "Busy", "detail": "try later"} if status >= 400 else {}
        return httpx.Response(status, json=body)

    return httpx.MockTransport(handle), seen


def test_the_retry_policy_keeps_trying_on_what_may_pass() -> None:
    transport, seen = _flaky([0, 503, 429])
    fast = RetryPolicy(patience=5, first_delay=0.01, max_delay=0.02)
    with HubClient("http://hub", "fpk_" + "a" * 20, retry=fast, transport=transport) as api:
        api.put_checkpoint("exp-1", 1, b"w")
    assert seen == ["PUT"] * 4


@pytest.mark.parametrize("status", [400, 401, 404, 409, 422])
def test_a_refusal_is_never_retried(status: int) -> None:
    transport, seen = _flaky([status])
    fast = RetryPolicy(patience=5, first_delay=0.01)
    api = HubClient("http://hub", "fpk_" + "a" * 20, retry=fast, transport=transport)
    with api, pytest.raises(HubApiError) as refused:
        api.put_checkpoint("exp-1", 1, b"w")
    assert refused.value.status == status and seen == ["PUT"]


def test_patience_ends_and_without_a_policy_nothing_is_retried() -> None:
    transport, seen = _flaky([0] * 1000)
    brief = RetryPolicy(patience=0.1, first_delay=0.02, max_delay=0.02)
    api = HubClient("http://hub", "fpk_" + "a" * 20, retry=brief, transport=transport)
    with api, pytest.raises(HubUnreachableError):
        api.me()
    assert 2 <= len(seen) <= 7
    transport, seen = _flaky([503])
    api = HubClient("http://hub", "fpk_" + "a" * 20, transport=transport)
    with api, pytest.raises(HubApiError):
        api.me()
    assert seen == ["GET"]


def test_an_answer_that_is_not_the_hubs_is_said_without_quoting_it() -> None:
    page = "<html>proxy login for secret-portal.example</html>"
    transport = httpx.MockTransport(lambda _: httpx.Response(200, text=page))
    api = HubClient("http://hub", "fpk_" + "a" * 20, transport=transport)
    with api, pytest.raises(HubApiError) as unexpected:
        api.me()
    assert "not what this FedPark version expects" in str(unexpected.value)
    assert "secret-portal" not in str(unexpected.value)
    json_not_a_body = httpx.MockTransport(lambda _: httpx.Response(200, json={"user": "x"}))
    api = HubClient("http://hub", "fpk_" + "a" * 20, transport=json_not_a_body)
    with api, pytest.raises(HubApiError):
        api.me()


def test_an_id_is_one_path_segment_line_endings_included() -> None:
    transport, seen = _flaky([])
    api = HubClient("http://hub", "fpk_" + "a" * 20, transport=transport)
    with api, pytest.raises(HubApiError):
        api.experiment("exp-1\n")
    assert seen == []  # never sent


def test_a_run_seals_its_model_with_the_package_of_its_own_contract(
    hub: InProcessHub, connect: Connect
) -> None:
    admin = connect(hub.admin_token)
    admin.create_organization(OrganizationCreate(id="delta", name="Delta", kind="factory"))
    contract = contract_data()
    experiment_id, run_token = running_experiment(
        hub.runtime.storage.catalog, contract, "delta", ["delta"]
    )
    run = connect(run_token, retry=RetryPolicy(patience=5))
    run.put_checkpoint(experiment_id, 1, b"weights-1")
    run.report_round(
        experiment_id,
        RoundReport(
            round=1,
            contributors=["delta"],
            min_factories=1,
            train_factories=[FactoryResult(org="delta", node_id=1, examples=10)],
        ),
    )
    run.put_model(experiment_id, b"final weights")
    other = contract | {"id": "other-contract"}
    with pytest.raises(HubApiError) as refused:  # a package of another contract is not sealed
        run.finish(experiment_id, RunFinishCreate(package=package_for(other)))
    assert refused.value.status == 422 and "another contract" in str(refused.value)
    run.finish(experiment_id, RunFinishCreate(package=package_for(contract)))
    run.finish(experiment_id, RunFinishCreate(package=package_for(contract)))  # a retry: once
    storage = hub.runtime.storage
    with storage.unit_of_work() as uow:
        sealed = uow.experiments.model(experiment_id)
    assert sealed is not None
    manifest = ModelManifest.model_validate_json(
        storage.objects.read(storage.buckets["models"], sealed.ref(ModelPart.MANIFEST))
    )
    assert manifest.package == package_for(contract)
    # delta declared no data under the contract: no fault code is known to be learned
    assert manifest.unseen_classes == [0, 1, 2, 3]
