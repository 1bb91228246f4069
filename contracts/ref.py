"""One name for "contract id + version", with every spelling FedPark uses derived from it.

A contract version is named in six places: people read ``press-sensors 1.0.0``; the CLI and
the console take ``press-sensors@1.0.0``; the audit trail records ``contract:press-sensors@1.0.0``;
the API's path is ``/contracts/press-sensors/versions/1.0.0``; objects live under
``press-sensors/1.0.0/``; and documents carry ``id`` and ``version`` fields. Each spelling is
a property of :class:`ContractRef` so none is written by hand twice.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Self

from fedpark.contracts.names import SEMVER, SLUG


@dataclass(frozen=True, order=True)
class ContractRef:
    """A contract version: its id (a slug) and its semantic version.

    Built from parts already checked (a validated document, a catalog row, a path the API
    matched), or from a person's text with :meth:`parse`, which checks them.
    """

    id: str
    version: str

    @classmethod
    def parse(cls, text: str) -> Self:
        """``ID@VERSION`` (also ``ID VERSION`` and ``contract:ID@VERSION``) → a reference.

        Raises
        ------
        ValueError
            The text names no contract version; the message says what was expected.
        """
        body = text.strip().removeprefix("contract:")
        contract_id, sep, version = body.partition("@")
        if not sep:
            contract_id, _, version = body.partition(" ")
        contract_id, version = contract_id.strip(), version.strip()
        if not re.fullmatch(SLUG, contract_id) or not 2 <= len(contract_id) <= 63:
            raise ValueError(
                "expected ID@VERSION (e.g. press-sensors@1.0.0): the id is lowercase letters, "
                "digits and dashes"
            )
        if not re.fullmatch(SEMVER, version) or len(version) > 64:
            raise ValueError(
                "expected ID@VERSION (e.g. press-sensors@1.0.0): the version is semantic "
                "(MAJOR.MINOR.PATCH)"
            )
        return cls(id=contract_id, version=version)

    def __str__(self) -> str:
        return f"{self.id}@{self.version}"

    @property
    def display(self) -> str:
        """As people read it: ``press-sensors 1.0.0``."""
        return f"{self.id} {self.version}"

    @property
    def audit_object(self) -> str:
        """The audit trail's name for it: ``contract:press-sensors@1.0.0``."""
        return f"contract:{self}"

    @property
    def api_path(self) -> str:
        """Its path under the API's root: ``/contracts/press-sensors/versions/1.0.0``."""
        return f"/contracts/{self.id}/versions/{self.version}"

    @property
    def object_prefix(self) -> str:
        """Where its objects live in a bucket: ``press-sensors/1.0.0``."""
        return f"{self.id}/{self.version}"
