"""How FedPark names things: ids (slugs) and contract versions (semantic versions).

Kept apart from the contract model (and free of pyarrow) so that the wire protocol and the
command line can check a name without loading the Arrow stack.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

SLUG = r"^[a-z0-9][a-z0-9-]*[a-z0-9]$"
SEMVER = (
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?$"
)

Slug = Annotated[str, Field(min_length=2, max_length=63, pattern=SLUG)]
