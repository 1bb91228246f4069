"""The one client of the hub's API: the command line, the ClientApp and the ServerApp's
reporter reach the hub only through it.

One method per resource and action, each answering with the protocol's own bodies
(:mod:`fedpark.experiments.protocol.resources`); lists are read page by page to the end. An
optional :class:`RetryPolicy` keeps trying through network failures, 429 and 5xx answers
(the ServerApp's reports: every run endpoint is idempotent at the hub).

No message it makes quotes a token, a header or an exception's text: httpx's errors can
carry the request's headers (an illegal header value is quoted whole), so errors here are
built from what FedPark checked itself.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
from pydantic import BaseModel, TypeAdapter

from fedpark.contracts.ref import ContractRef
from fedpark.experiments.protocol.address import DEFAULT_HUB as DEFAULT_HUB
from fedpark.experiments.protocol.address import HubAddress
from fedpark.experiments.protocol.address import check_url as check_url
from fedpark.experiments.protocol.errors import (
    HubApiError,
    HubAuthError,
    HubError,
    HubUnreachableError,
    InvalidTokenError,
)
from fedpark.experiments.protocol.resources.contracts import (
    ContractVersionPublic,
    DatasetPublic,
    RejectionCreate,
)
from fedpark.experiments.protocol.resources.experiments import (
    ExperimentCreate,
    ExperimentPublic,
    FederationPublic,
    ModelPublic,
    ModelSummaryPublic,
    NodeCreate,
    NodePublic,
    RoundPublic,
    RunFailureCreate,
    RunFinishCreate,
)
from fedpark.experiments.protocol.resources.identity import (
    AuditRecordPublic,
    ChainReportPublic,
    HealthPublic,
    MePublic,
    OrganizationCreate,
    OrganizationPublic,
    TokenCreate,
    TokenCreated,
    TokenPublic,
    UserCreate,
    UserPublic,
)

if TYPE_CHECKING:  # pyarrow-free at run time: the command line imports this module at start
    from fedpark.contracts.report import Declaration
    from fedpark.experiments.protocol.reports import RoundReport

log = logging.getLogger(__name__)
PAGE = 500  # the hub's largest page
Model = TypeVar("Model", bound=BaseModel)
# What an API token may hold: FedPark's tokens are `fpk_` + URL-safe base64.
_TOKEN = re.compile(r"^[A-Za-z0-9_\-.~+/=]{8,512}$")


def check_token(token: str) -> str:
    """``token`` if it has a token's shape; else :class:`InvalidTokenError` saying what is
    wrong with it, never quoting it."""
    if token != token.rstrip("\r\n") or "\n" in token or "\r" in token:
        raise InvalidTokenError(
            "the API token ends with a line ending (read from a file saved with one, or "
            "with Windows CRLF line endings?): remove it"
        )
    if token != token.strip():
        raise InvalidTokenError("the API token has a leading or trailing space: remove it")
    if not _TOKEN.match(token):
        if not token.isascii() or not token.isprintable():
            raise InvalidTokenError("the API token holds characters a token never has")
        if not 8 <= len(token) <= 512:
            raise InvalidTokenError(f"the API token is {len(token)} characters long: not a token")
        raise InvalidTokenError("the API token holds characters a token never has")
    return token


def describe_transport_error(exc: httpx.TransportError) -> str:
    """What went wrong on the way to the hub, by the error's kind (its text may quote the
    request's headers)."""
    if isinstance(exc, httpx.ConnectTimeout | httpx.ReadTimeout | httpx.WriteTimeout):
        return "timed out"
    if isinstance(exc, httpx.TimeoutException):
        return "timed out waiting for a connection"
    if isinstance(exc, httpx.ConnectError):
        return "connection failed (refused, unknown host, or TLS not trusted)"
    if isinstance(exc, httpx.LocalProtocolError):
        return "the request could not be sent (a header FedPark cannot send)"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "the server did not answer as an HTTP server"
    if isinstance(exc, httpx.UnsupportedProtocol):
        return "the URL's scheme is not http or https"
    return f"network error ({type(exc).__name__})"


@dataclass(frozen=True)
class RetryPolicy:
    """Keep sending through network failures, 429 and 5xx answers, with growing pauses.

    Parameters
    ----------
    patience
        Seconds a request keeps trying (a hub restart, an outage) before its error is raised.
    first_delay, max_delay
        The first pause between tries, and the most it doubles to.
    """

    patience: float = 600.0
    first_delay: float = 0.5
    max_delay: float = 15.0

    def pauses(self) -> Iterator[float]:
        """The pauses to take, one per retry, until ``patience`` is spent."""
        deadline = time.monotonic() + self.patience
        delay = self.first_delay
        while time.monotonic() + delay <= deadline:
            yield delay
            delay = min(self.max_delay, delay * 2)


def _retryable(status: int) -> bool:
    return status == 429 or status >= 500


class HubClient:
    """Calls ``/api/v1`` with a bearer token and turns problem details into exceptions.

    Parameters
    ----------
    base_url
        The hub, e.g. ``https://hub.park.example``; ``FEDPARK_HUB`` or localhost when None.
    token
        An API token (or a run's token); ``FEDPARK_TOKEN`` when None.
    timeout
        Seconds per request.
    retry
        Keep trying on failures a later try may not meet; None: fail at once.
    transport
        httpx's transport (tests run the hub in their own process through one); None: HTTP.

    Raises
    ------
    HubError
        Every method raises one of the client's errors (:mod:`.errors`), never httpx's.
    """

    def __init__(
        self,
        base_url: str | None = None,
        token: str | None = None,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.address = HubAddress.resolve(base_url)
        self.base_url = self.address.url
        token = token or os.environ.get("FEDPARK_TOKEN")
        headers = {"Authorization": f"Bearer {check_token(token)}"} if token else {}
        self._http = httpx.Client(
            base_url=self.base_url, headers=headers, timeout=timeout, transport=transport
        )
        self.retry = retry
        self.page_size = PAGE

    def __enter__(self) -> HubClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- transport ---------------------------------------------------------------------

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        url = path if path.startswith("/health") else f"/api/v1{path}"
        pauses = self.retry.pauses() if self.retry else iter(())
        while True:
            try:
                response = self._http.request(method, url, **kwargs)
            except httpx.TransportError as exc:
                failure: HubError = self._unreachable(exc)
            else:
                self._check_answer(response)
                if not response.is_error:
                    return response
                failure = _problem(response)
                if not _retryable(response.status_code):
                    raise failure
            pause = next(pauses, None)
            if pause is None:
                raise failure from None
            log.warning("the hub did not take %s %s: retrying in %.1fs", method, path, pause)
            time.sleep(pause)

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._send(method, path, **kwargs)
        try:
            return response.json() if response.content else None
        except ValueError:  # a proxy's page, say: never quoted (it may hold anything)
            raise _unexpected(response.status_code) from None

    def _one(self, model: type[Model], method: str, path: str, **kwargs: Any) -> Model:
        return _parsed(TypeAdapter(model), self._json(method, path, **kwargs))

    def _all(self, model: type[Model], path: str, **params: Any) -> list[Model]:
        """Every item of a paged listing, page by page to a short one."""
        params = {k: v for k, v in params.items() if v is not None}
        adapter = TypeAdapter(list[model])  # type: ignore[valid-type]
        items: list[Model] = []
        while True:
            page = _parsed(
                adapter,
                self._json(
                    "GET", path, params={**params, "offset": len(items), "limit": self.page_size}
                ),
            )
            items.extend(page)
            if len(page) < self.page_size:
                return items

    def _bytes(self, path: str) -> bytes:
        return self._send("GET", path).content

    @staticmethod
    def _body(model: BaseModel) -> dict[str, Any]:
        return model.model_dump(mode="json")

    def _check_answer(self, response: httpx.Response) -> None:
        """A web page or a redirect for an answer: the URL is not the hub's (see HubAddress)."""
        self.address.check_answer(response.status_code, response.headers.get("content-type", ""))

    def _unreachable(self, exc: httpx.TransportError) -> HubUnreachableError:
        return HubUnreachableError(self.address.unreachable(describe_transport_error(exc)))

    # -- health and identity -----------------------------------------------------------

    def health(self) -> HealthPublic:
        """The hub's health (no token needed); a 503 still answers with the body."""
        try:
            response = self._http.get("/health")
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from None
        self._check_answer(response)
        try:
            return HealthPublic.model_validate_json(response.content)
        except ValueError:
            raise _problem(response) from None

    def me(self) -> MePublic:
        return self._one(MePublic, "GET", "/me")

    def create_organization(self, body: OrganizationCreate) -> OrganizationPublic:
        return self._one(OrganizationPublic, "POST", "/organizations", json=self._body(body))

    def organizations(self) -> list[OrganizationPublic]:
        return self._all(OrganizationPublic, "/organizations")

    def create_user(self, body: UserCreate) -> UserPublic:
        return self._one(UserPublic, "POST", "/users", json=self._body(body))

    def users(self, org_id: str | None = None) -> list[UserPublic]:
        return self._all(UserPublic, "/users", org_id=org_id)

    def create_token(self, body: TokenCreate) -> TokenCreated:
        return self._one(TokenCreated, "POST", "/tokens", json=self._body(body))

    def tokens(self, user_id: str | None = None) -> list[TokenPublic]:
        return self._all(TokenPublic, "/tokens", user_id=user_id)

    def revoke_token(self, token_id: str) -> TokenPublic:
        return self._one(TokenPublic, "DELETE", f"/tokens/{_segment(token_id)}")

    def audit(self, after_seq: int = 0, limit: int = 100) -> list[AuditRecordPublic]:
        """Up to ``limit`` audit records after ``after_seq``, oldest first."""
        rows = self._json("GET", "/audit", params={"after_seq": after_seq, "limit": limit})
        return _parsed(TypeAdapter(list[AuditRecordPublic]), rows)

    def verify_audit(self) -> ChainReportPublic:
        return self._one(ChainReportPublic, "GET", "/audit/verify")

    def hub_key(self) -> bytes:
        """The hub's public key (PEM), to pin and verify signatures with."""
        return self._bytes("/keys/hub")

    # -- contracts and datasets --------------------------------------------------------

    def create_contract(self, document: dict[str, Any]) -> ContractVersionPublic:
        """Register a draft (the document is checked by the hub, with field-level errors)."""
        return self._one(ContractVersionPublic, "POST", "/contracts", json=document)

    def update_contract(self, ref: ContractRef, document: dict[str, Any]) -> ContractVersionPublic:
        return self._one(ContractVersionPublic, "PUT", ref.api_path, json=document)

    def submit_contract(self, ref: ContractRef) -> ContractVersionPublic:
        return self._one(ContractVersionPublic, "POST", f"{ref.api_path}/submit", json={})

    def approve_contract(self, ref: ContractRef) -> ContractVersionPublic:
        return self._one(ContractVersionPublic, "POST", f"{ref.api_path}/approve", json={})

    def reject_contract(self, ref: ContractRef, body: RejectionCreate) -> ContractVersionPublic:
        return self._one(
            ContractVersionPublic, "POST", f"{ref.api_path}/reject", json=self._body(body)
        )

    def deprecate_contract(self, ref: ContractRef) -> ContractVersionPublic:
        return self._one(ContractVersionPublic, "POST", f"{ref.api_path}/deprecate", json={})

    def retire_contract(self, ref: ContractRef) -> ContractVersionPublic:
        return self._one(ContractVersionPublic, "POST", f"{ref.api_path}/retire", json={})

    def contracts(
        self,
        status: str | None = None,
        domain: str | None = None,
        owner: str | None = None,
        column: str | None = None,
        text: str | None = None,
    ) -> list[ContractVersionPublic]:
        """The contract versions you may see, filtered."""
        return self._all(
            ContractVersionPublic,
            "/contracts",
            status=status,
            domain=domain,
            owner=owner,
            column=column,
            q=text,
        )

    def contract_versions(self, contract_id: str) -> list[ContractVersionPublic]:
        """Every version of a contract you may see (one answer: the route is not paged)."""
        rows = self._json("GET", f"/contracts/{_segment(contract_id)}/versions")
        return _parsed(TypeAdapter(list[ContractVersionPublic]), rows)

    def contract(self, ref: ContractRef) -> ContractVersionPublic:
        """A version with its state, compatibility and the contract document."""
        return self._one(ContractVersionPublic, "GET", ref.api_path)

    def contract_part(self, ref: ContractRef, part: str) -> bytes:
        """A stored part of a version, as the hub keeps it: document, schema, signature."""
        return self._bytes(f"{ref.api_path}/{_segment(part)}")

    def declare_dataset(self, ref: ContractRef, declaration: Declaration) -> DatasetPublic:
        return self._one(
            DatasetPublic,
            "POST",
            f"{ref.api_path}/datasets",
            json=declaration.model_dump(mode="json"),
        )

    def datasets(self, ref: ContractRef) -> list[DatasetPublic]:
        """The datasets declared under one contract version (that you may see)."""
        return self._all(DatasetPublic, f"{ref.api_path}/datasets")

    def own_datasets(self) -> list[DatasetPublic]:
        """Your organization's declared datasets, under every contract."""
        return self._all(DatasetPublic, "/datasets")

    # -- experiments, models, federation -----------------------------------------------

    def launch(self, body: ExperimentCreate) -> ExperimentPublic:
        return self._one(ExperimentPublic, "POST", "/experiments", json=self._body(body))

    def experiments(self) -> list[ExperimentPublic]:
        return self._all(ExperimentPublic, "/experiments")

    def experiment(self, experiment_id: str) -> ExperimentPublic:
        return self._one(ExperimentPublic, "GET", f"/experiments/{_segment(experiment_id)}")

    def rounds(self, experiment_id: str) -> list[RoundPublic]:
        path = f"/experiments/{_segment(experiment_id)}/rounds"
        return _parsed(TypeAdapter(list[RoundPublic]), self._json("GET", path))

    def stop(self, experiment_id: str) -> ExperimentPublic:
        path = f"/experiments/{_segment(experiment_id)}/stop"
        return self._one(ExperimentPublic, "POST", path, json={})

    def models(self) -> list[ModelSummaryPublic]:
        return self._all(ModelSummaryPublic, "/models")

    def model(self, experiment_id: str) -> ModelPublic:
        return self._one(ModelPublic, "GET", f"/models/{_segment(experiment_id)}")

    def model_part(self, experiment_id: str, part: str) -> bytes:
        """A trained model's part: weights, manifest or signature."""
        return self._bytes(f"/models/{_segment(experiment_id)}/{_segment(part)}")

    def federation(self) -> FederationPublic:
        return self._one(FederationPublic, "GET", "/federation")

    def register_node(self, body: NodeCreate) -> NodePublic:
        return self._one(NodePublic, "POST", "/federation/nodes", json=self._body(body))

    # -- a run's reports (with the run's token) ----------------------------------------

    def put_checkpoint(self, experiment_id: str, number: int, weights: bytes) -> None:
        path = f"/runs/{_segment(experiment_id)}/rounds/{int(number)}/checkpoint"
        self._send("PUT", path, content=weights, headers=_OCTETS)

    def checkpoint(self, experiment_id: str, number: int) -> bytes:
        return self._bytes(f"/runs/{_segment(experiment_id)}/rounds/{int(number)}/checkpoint")

    def report_round(self, experiment_id: str, report: RoundReport) -> None:
        path = f"/runs/{_segment(experiment_id)}/rounds"
        self._send("POST", path, json=report.model_dump(mode="json"))

    def put_model(self, experiment_id: str, weights: bytes) -> None:
        self._send(
            "PUT", f"/runs/{_segment(experiment_id)}/model", content=weights, headers=_OCTETS
        )

    def finish(self, experiment_id: str, body: RunFinishCreate) -> None:
        self._send("POST", f"/runs/{_segment(experiment_id)}/finish", json=self._body(body))

    def fail(self, experiment_id: str, body: RunFailureCreate) -> None:
        self._send("POST", f"/runs/{_segment(experiment_id)}/fail", json=self._body(body))


_OCTETS = {"Content-Type": "application/octet-stream"}
Parsed = TypeVar("Parsed")


def _parsed(adapter: TypeAdapter[Parsed], data: Any) -> Parsed:
    """The hub's answer as the protocol's body; an answer that is not one is the hub's (or a
    proxy's) problem, said without quoting it (pydantic's errors quote the input)."""
    try:
        return adapter.validate_python(data)
    except ValueError:
        raise _unexpected(200) from None


def _unexpected(status: int) -> HubApiError:
    return HubApiError(
        status,
        "Unexpected answer",
        "the hub's answer is not what this FedPark version expects (another version of the "
        "hub, or a proxy in between?)",
    )


_SEGMENT = re.compile(r"^[A-Za-z0-9._~-]{1,200}$")


def _segment(value: str) -> str:
    """``value`` as one path segment: an id never carries a slash, a dot-dot or a query."""
    if not _SEGMENT.fullmatch(value) or value in (".", ".."):
        raise HubApiError(400, "Bad Request", "not an id: use the id the hub gave")
    return value


def _problem(response: httpx.Response) -> HubApiError:
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    status = response.status_code
    error = HubAuthError if status in (401, 403) else HubApiError
    return error(
        status,
        str(body.get("title") or response.reason_phrase),
        # The hub's problem detail; a body that is not one (a proxy's page) is never quoted.
        str(body.get("detail") or "the answer carried no problem detail"),
        body.get("request_id"),
    )
