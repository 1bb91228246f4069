"""Is a new contract version backward compatible for data that met the old one?

Compatible: every value that was valid stays valid, and consumers see the same columns with the
same meaning (an added nullable column, a widened type, a relaxed rule, a new description).
Breaking: anything that can turn valid data invalid or change what a column means (a removed or
renamed column, a narrowed type, a tightened or new rule, a changed unit or role).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from fedpark.contracts.model import Column, ColumnRules, Contract, Monotonic
from fedpark.contracts.validate import is_widening

Kind = Literal["compatible", "breaking"]


@dataclass(frozen=True)
class Change:
    kind: Kind
    field: str
    message: str


@dataclass
class CompatibilityReport:
    previous_version: str
    changes: list[Change] = field(default_factory=list)

    @property
    def compatible(self) -> bool:
        return all(c.kind == "compatible" for c in self.changes)

    def add(self, kind: Kind, where: str, message: str) -> None:
        self.changes.append(Change(kind, where, message))


def _bound(report: CompatibilityReport, where: str, old: Any, new: Any, lower: bool) -> None:
    if old == new:
        return
    if new is None:
        report.add("compatible", where, "bound removed")
    elif old is None:
        report.add("breaking", where, f"new bound {new!r}")
    else:
        try:
            relaxed = new <= old if lower else new >= old
        except TypeError:
            relaxed = False
        report.add("compatible" if relaxed else "breaking", where, f"{old!r} → {new!r}")


def _flag(report: CompatibilityReport, where: str, old: bool, new: bool) -> None:
    if old != new:
        report.add("breaking" if new else "compatible", where, "added" if new else "removed")


def _monotonic(old: Monotonic | None, new: Monotonic | None) -> Kind:
    if new is None:
        return "compatible"
    relaxing = {
        Monotonic.STRICTLY_INCREASING: Monotonic.INCREASING,
        Monotonic.STRICTLY_DECREASING: Monotonic.DECREASING,
    }
    return "compatible" if old is not None and relaxing.get(old) == new else "breaking"


def _rules(report: CompatibilityReport, at: str, old: ColumnRules, new: ColumnRules) -> None:
    _bound(report, f"{at}.rules.min", old.min, new.min, lower=True)
    _bound(report, f"{at}.rules.max", old.max, new.max, lower=False)
    _bound(
        report,
        f"{at}.rules.max_null_fraction",
        old.max_null_fraction,
        new.max_null_fraction,
        lower=False,
    )
    if old.allowed_values != new.allowed_values:
        widened = new.allowed_values is None or (
            old.allowed_values is not None and set(old.allowed_values) <= set(new.allowed_values)
        )
        report.add(
            "compatible" if widened else "breaking",
            f"{at}.rules.allowed_values",
            "values added" if widened else "values removed or restricted",
        )
    if old.regex != new.regex:
        report.add(
            "compatible" if new.regex is None else "breaking",
            f"{at}.rules.regex",
            "removed" if new.regex is None else "changed",
        )
    _flag(report, f"{at}.rules.finite", old.finite, new.finite)
    _flag(report, f"{at}.rules.unique", old.unique, new.unique)
    if old.monotonic != new.monotonic:
        report.add(
            _monotonic(old.monotonic, new.monotonic),
            f"{at}.rules.monotonic",
            f"{old.monotonic} → {new.monotonic}",
        )


def _column(report: CompatibilityReport, old: Column, new: Column) -> None:
    at = f"columns.{new.name}"
    if old.type != new.type:
        widened = is_widening(old.arrow_type, new.arrow_type)
        report.add(
            "compatible" if widened else "breaking",
            f"{at}.type",
            f"{old.type} → {new.type}" + (" (widened)" if widened else ""),
        )
    if old.nullable != new.nullable:
        report.add(
            "compatible" if new.nullable else "breaking",
            f"{at}.nullable",
            f"{old.nullable} → {new.nullable}",
        )
    if old.unit != new.unit:
        report.add("breaking", f"{at}.unit", f"{old.unit} → {new.unit} (values change meaning)")
    if old.role != new.role:
        report.add("breaking", f"{at}.role", f"{old.role.value} → {new.role.value}")
    if old.description != new.description:
        report.add("compatible", f"{at}.description", "changed")
    _rules(report, at, old.rules, new.rules)


def compare(old: Contract, new: Contract) -> CompatibilityReport:
    """Every change from ``old`` to ``new`` with its kind."""
    report = CompatibilityReport(previous_version=old.version)
    old_columns = {c.name: c for c in old.columns}
    new_columns = {c.name: c for c in new.columns}
    for name in old_columns.keys() - new_columns.keys():
        report.add("breaking", f"columns.{name}", "column removed")
    for name, column in new_columns.items():
        if name not in old_columns:
            report.add(
                "compatible" if column.nullable else "breaking",
                f"columns.{name}",
                "nullable column added" if column.nullable else "required column added",
            )
        else:
            _column(report, old_columns[name], column)
    _bound(report, "rows.min_rows", old.rows.min_rows, new.rows.min_rows, lower=True)
    _bound(report, "rows.max_rows", old.rows.max_rows, new.rows.max_rows, lower=False)
    for name in ("title", "description", "domain", "policy"):
        if getattr(old, name) != getattr(new, name):
            report.add("compatible", name, "changed (does not affect data)")
    return report
