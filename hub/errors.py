"""FedPark hub errors.

Every error the hub raises on purpose derives from :class:`FedparkError`; the API maps the
domain branch to HTTP problem details in one place (``fedpark.hub.api.problems``)::

    FedparkError
    ├── ConfigurationError            settings that cannot work (bad URL, missing key)
    ├── StorageError                  the object store
    │   ├── StorageUnavailableError   cannot reach it (refused, timed out, DNS)
    │   ├── StorageAuthError          it rejects our credentials
    │   ├── ObjectNotFoundError       no such object or version
    │   └── IntegrityError            bytes read back do not match the recorded sha256
    ├── CatalogError                  the SQL catalog cannot be reached or migrated
    ├── FlowerUnavailableError        the Flower SuperLink is not configured, cannot be
    │                                 reached, or failed a Control API call
    └── DomainError                   a request the hub refuses (carries an HTTP status)
        ├── AuthenticationError       401: no token, unknown, expired or revoked token
        ├── PermissionDeniedError     403: the caller's role may not do this
        ├── NotFoundError             404: unknown id, or another organization's private object
        ├── ConflictError             409: the object exists or is in the wrong state
        │   └── ChangedMeanwhileError  409: another request changed it since it was read
        ├── InvalidInputError         422: well-formed JSON with values that cannot be used
        └── TooManyRequestsError      429: too many failed sign-ins, or requests with a token

Storage, catalog and Flower errors are not the caller's fault: unavailability answers 503
with Retry-After (it passes), a missing or damaged object the catalog pins answers 500
``stored-data-damaged`` at once and is logged as an alert (it does not pass by waiting).
Contract errors (``fedpark.contracts.errors``) answer 422 with the field they name.

Messages are written for a person in FedPark's words: never a secret, never the text of a
driver's or a library's exception (that goes to the operator's log, where it helps).
"""

from __future__ import annotations


class FedparkError(Exception):
    """Base class of every error FedPark raises on purpose."""


class ConfigurationError(FedparkError):
    """The settings cannot work as given."""


class StorageError(FedparkError):
    """The object store failed."""


class StorageUnavailableError(StorageError):
    """The object store cannot be reached."""


class StorageAuthError(StorageError):
    """The object store rejects the configured credentials."""


class ObjectNotFoundError(StorageError):
    """The object (or the requested version of it) does not exist."""


class IntegrityError(StorageError):
    """An object's bytes do not match the sha256 recorded when it was written."""


class CatalogError(FedparkError):
    """The SQL catalog cannot be reached or brought to the current schema."""


class FlowerUnavailableError(FedparkError):
    """The Flower SuperLink is not configured, cannot be reached, or failed a call."""

    @classmethod
    def not_configured(cls) -> FlowerUnavailableError:
        return cls(
            "this hub has no Flower SuperLink, so experiments are off: its operator starts "
            "one with `fedpark hub serve --with-superlink`, or runs `fedpark superlink serve` "
            "and sets FEDPARK_SUPERLINK=host:port for the hub"
        )


class DomainError(FedparkError):
    """A request the hub refuses; ``status`` and ``code`` shape the HTTP answer."""

    status: int = 400
    code: str = "bad-request"
    title: str = "Bad request"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class AuthenticationError(DomainError):
    status = 401
    code = "unauthenticated"
    title = "Authentication required"


class PermissionDeniedError(DomainError):
    status = 403
    code = "forbidden"
    title = "Permission denied"


class NotFoundError(DomainError):
    status = 404
    code = "not-found"
    title = "Not found"


class ConflictError(DomainError):
    status = 409
    code = "conflict"
    title = "Conflict"


class ChangedMeanwhileError(ConflictError):
    """Another request changed the object between this request's read and its write."""

    code = "changed-meanwhile"


class InvalidInputError(DomainError):
    status = 422
    code = "invalid-input"
    title = "Invalid input"


class TooManyRequestsError(DomainError):
    status = 429
    code = "too-many-requests"
    title = "Too many requests"

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def unavailable_message(exc: FedparkError) -> str:
    """What an answer says about a component that is down: FedPark's words for what, never
    the driver's text (which names hosts, keys, SQL) that the log keeps for the operator."""
    if isinstance(exc, FlowerUnavailableError):
        return str(exc)  # built by the hub (hub.flower): what it tried, never Flower's text
    if isinstance(exc, StorageAuthError):
        return "the hub's object storage refuses the hub's credentials"
    if isinstance(exc, StorageError):
        return "the hub's object storage is unavailable; retry shortly"
    if isinstance(exc, CatalogError):
        return "the hub's catalog is unavailable; retry shortly"
    return "a service the hub needs is unavailable; retry shortly"
