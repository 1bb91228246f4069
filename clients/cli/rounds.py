"""What a run's round reports say, for a terminal and for a log: per factory, per round, and
whether the model that will be published is the best round's."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.table import Table
from rich.text import Text

from fedpark.experiments.protocol.reports import ALONE_PREFIX

if TYPE_CHECKING:
    from fedpark.experiments.protocol.plan import PublishRule
    from fedpark.experiments.protocol.reports import RoundReport


def factory_table(reports: list[RoundReport]) -> Table:
    """One row per factory: rounds its update entered, rows it trained on, its latest
    evaluation on its own held-out rows, and the latest round it refused or failed."""
    orgs = sorted(
        {f.org for r in reports for f in (*r.train_factories, *r.evaluate_factories)}
        | {f.org for r in reports for f in r.refused}
        | {f.org for r in reports for f in r.failures if f.org}
    )
    latest: dict[str, tuple[int, dict[str, float]]] = {}
    for report in reports:
        for result in report.evaluate_factories:
            own = {k: v for k, v in result.metrics.items() if not k.startswith(ALONE_PREFIX)}
            latest[result.org] = (result.examples, own)
    keys = sorted({k for _, metrics in latest.values() for k in metrics})
    table = Table(title="Metrics per factory: the latest evaluation on its own held-out rows")
    for col in ("factory", "rounds in", "rows trained", "held-out rows", *keys, "last problem"):
        table.add_column(col)
    for org in orgs:
        rows, metrics = latest.get(org, (0, {}))
        cells = (
            org,
            str(sum(org in r.contributors for r in reports if r.aggregated)),
            str(_last_trained(reports, org)),
            str(rows) if org in latest else "-",
            *(f"{metrics[k]:.4f}" if k in metrics else "-" for k in keys),
            _last_problem(reports, org),  # may name a contract column: never markup
        )
        table.add_row(*(Text(cell) for cell in cells))
    return table


def _last_trained(reports: list[RoundReport], org: str) -> int | str:
    for report in reversed(reports):
        for result in report.train_factories:
            if result.org == org:
                return result.examples
    return "-"


def _last_problem(reports: list[RoundReport], org: str) -> str:
    for report in reversed(reports):
        for refusal in report.refused:
            if refusal.org == org:
                return f"round {report.round}: refused, {refusal.reason}"
        for failure in report.failures:
            if failure.org == org:
                return f"round {report.round}: {failure.reason}"
    return "-"


def round_line(report: RoundReport, total: int) -> str:
    """One plain line for a log: round, losses, the headline metrics, the factories."""
    parts = []
    if "train_loss" in report.train:
        parts.append(f"train_loss {report.train['train_loss']:.4f}")
    for name in ("loss", "macro_f1", "accuracy", "rmse", "mae"):
        if name in report.evaluate:
            parts.append(f"{name} {report.evaluate[name]:.4f}")
    factories = f"factories {len(report.contributors)}"
    absent = len(report.refused) + len(report.failures)
    if absent:
        factories += f" ({absent} refused or failed)"
    if not report.aggregated:
        factories += ", not aggregated: below k"
    return f"round {report.round}/{total}: " + ", ".join([*parts, factories])


def publish_warning(reports: list[RoundReport], settings: dict[str, Any]) -> str | None:
    """The warning when the last round is not the best one (the model a run publishes by
    its ``publish`` rule is the one the manifest will name)."""
    from fedpark.experiments.protocol.manifest import choose_round

    if not any(r.aggregated for r in reports):
        return None
    task = str((settings.get("model") or {}).get("task", "classification"))
    rule: PublishRule = "best" if settings.get("publish") == "best" else "last"
    return choose_round(reports, task, rule).warning()
