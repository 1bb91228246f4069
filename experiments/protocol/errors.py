"""Errors of the hub client (:mod:`fedpark.experiments.protocol.client`)::

HubError
├── InvalidTokenError     the token is not shaped like one (a line ending, a space): not sent
├── InvalidHubUrlError    the hub's URL is not http(s) or carries credentials: not used
├── HubUnreachableError   no HTTP answer (refused, DNS, timeout)
└── HubApiError           the hub answered with a problem (4xx/5xx)
    └── HubAuthError      401/403: a missing, wrong or expired token, or a wrong role

No message quotes a token, a header or the text of a lower layer's exception.
"""

from __future__ import annotations


class HubError(Exception):
    """Base class of the client's errors; the message is meant for a person."""


class InvalidTokenError(HubError):
    pass


class InvalidHubUrlError(HubError):
    pass


class HubUnreachableError(HubError):
    pass


class HubApiError(HubError):
    def __init__(self, status: int, title: str, detail: str, request_id: str | None = None):
        self.status, self.title, self.detail, self.request_id = status, title, detail, request_id
        super().__init__(f"{title} ({status}): {detail}")


class HubAuthError(HubApiError):
    pass
