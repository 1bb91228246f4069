"""Package exports loaded on first use (PEP 562), for packages the command line imports.

``fedpark --help`` and every command that only talks to the hub must start without pyarrow
or cryptography; a package ``__init__`` that imported all of its modules would load them.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that imports ``exports[name]`` (a module path) on first use
    and keeps the value in the package, so later lookups are plain attribute reads."""

    def load(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(module), name)
        setattr(sys.modules[package], name, value)
        return value

    return load
