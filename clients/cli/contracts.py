"""``fedpark contract``: author, validate and verify contracts offline, and work with the hub."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from fedpark.clients.cli.common import (
    HubOpt,
    JsonOpt,
    TokenOpt,
    body,
    cannot_read,
    client,
    fail,
    literal,
    out,
    show,
)
from fedpark.clients.cli.csv_dialect import (
    DecimalOpt,
    DelimiterOpt,
    EncodingOpt,
    csv_options,
    read_as,
    read_hint,
)
from fedpark.contracts.ref import ContractRef
from fedpark.experiments.protocol.client import HubClient
from fedpark.experiments.protocol.resources.contracts import (
    ContractVersionPublic,
    RejectionCreate,
)

# fedpark.contracts (pyarrow, pydantic models) is imported inside the commands that use it,
# so that `fedpark --help` and the other commands start fast.
if TYPE_CHECKING:
    from fedpark.contracts import Contract, ValidationResult
    from fedpark.contracts.odcs_import import Imported

app = typer.Typer(
    help="Dataset contracts: infer, validate and verify offline; draft, review and declare "
    "through the hub.",
    no_args_is_help=True,
)

COLUMNS = ("contract_id", "version", "status", "owner_org", "domain", "title", "signed")
ContractArg = Annotated[Path, typer.Argument(help="Contract file (YAML or JSON).")]
DataArg = Annotated[Path, typer.Argument(help="Data file: Parquet, Arrow IPC/Feather or CSV.")]
IdArg = Annotated[str, typer.Argument(help="Contract id.")]
VersionArg = Annotated[str, typer.Argument(help="Contract version (semver).")]


_fail = fail


def _load(path: Path) -> Contract:
    from fedpark.contracts import ContractError, load_contract

    try:
        return load_contract(path)
    except ContractError as exc:
        raise _fail(str(exc)) from None


def _ref(contract_id: str, version: str) -> ContractRef:
    """The version the arguments name, checked before anything is sent."""
    try:
        return ContractRef.parse(f"{contract_id}@{version}")
    except ValueError as exc:
        # ContractRef.parse says what is expected in fixed words; it never quotes the input.
        raise typer.BadParameter(str(exc).removeprefix("expected ID@VERSION ")) from None


# -- offline --------------------------------------------------------------------------------


@app.command("infer")
def infer(
    data: Annotated[
        list[Path],
        typer.Argument(
            help="Data files (Parquet, Arrow IPC/Feather or CSV), or folders of them: every "
            "plant's file, so that the draft fits them all."
        ),
    ],
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write the draft.")],
    contract_id: Annotated[str, typer.Option("--id", help="Contract id (a slug).")],
    owner: Annotated[str, typer.Option(help="Owning organization's id.")],
    title: Annotated[str | None, typer.Option(help="Title (default: the file name).")] = None,
    ranges: Annotated[
        bool,
        typer.Option(
            "--ranges/--no-ranges",
            help="Suggest min/max from the data (with a margin), or leave ranges to the steward.",
        ),
    ] = True,
    delimiter: DelimiterOpt = None,
    decimal: DecimalOpt = None,
    encoding: EncodingOpt = None,
) -> None:
    """Draft a contract from data files: types from the files, rules from their statistics.

    Give every plant's file (or a folder): allowed values and ranges then cover them all, and
    columns that tell the files apart (plant, run) become id columns. The YAML says what was
    guessed and why in comments.
    """
    from fedpark.contracts import ContractError, save_contract
    from fedpark.contracts.draft import render_yaml
    from fedpark.contracts.infer import infer_draft

    forced = csv_options(delimiter, decimal, encoding)
    try:
        draft = infer_draft(
            data, contract_id=contract_id, owner=owner, title=title, ranges=ranges,
            csv_options=forced,
        )  # fmt: skip
    except ContractError as exc:
        one = data[0] if len(data) == 1 and data[0].is_file() else None
        raise _fail(f"{exc}{read_hint(one, forced) if one else ''}") from None
    if output.suffix.lower() in (".yaml", ".yml"):
        output.write_text(render_yaml(draft))
    else:
        save_contract(draft.contract, output)  # JSON has no comments: the notes are in YAML
    contract = draft.contract
    roles: dict[str, int] = {}
    for column in contract.columns:
        roles[column.role.value] = roles.get(column.role.value, 0) + 1
    counted = ", ".join(f"{n} {role}" for role, n in sorted(roles.items()))
    rows = sum(f.rows for f in draft.files)
    files = f"{len(draft.files)} files" if len(draft.files) > 1 else draft.files[0].name
    out.print(
        f"wrote {output} from {files} ({rows} rows): {len(contract.columns)} columns ({counted})",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )
    for inferred in draft.files:
        if inferred.dialect is not None:
            line = f"{inferred.name}: {read_as(inferred.dialect)}"
            out.print(line, highlight=False, markup=False, soft_wrap=True)
    out.print(
        "Review it: roles (id and pii never reach a model), units (unknown) and rules; "
        "the comments in the YAML say what was guessed and why.",
        highlight=False,
    )


def print_report(result: ValidationResult, show_profile: bool) -> None:
    report = result.report
    verdict = "[green]PASSED[/green]" if report.passed else "[red]FAILED[/red]"
    stopped = report.unreadable_cell()
    counted = f"{report.format}, {report.rows} rows" if stopped is None else report.format
    what = f"{report.rules_checked} rules checked" if stopped is None else stopped
    out.print(
        f"{verdict} {literal(report.source)} ({counted}) "
        f"against {literal(report.contract_id)} {report.contract_version}: {literal(what)}",
        highlight=False,
    )
    if result.dialect is not None:
        out.print(read_as(result.dialect), highlight=False, markup=False, soft_wrap=True)
    if report.schema_differences:
        table = Table(title="Schema differences")
        for col in ("column", "difference", "contract", "file"):
            table.add_column(col)
        for d in report.schema_differences:
            label = {
                "missing": "[red]missing[/red]",
                "type": "[red]wrong type[/red]",
                "widened": "widened (ok)",
                "extra": "extra (not read)",
            }[d.kind]
            # types are bracketed (timestamp[us, tz=UTC]): Text, never markup
            cells = (d.column, d.expected or "-", d.found or "-")
            table.add_row(Text(cells[0]), Text.from_markup(label), Text(cells[1]), Text(cells[2]))
        out.print(table)
    if report.violations:
        table = Table(title="Rule violations (row numbers start at 0; values are never shown)")
        for col in ("column", "rule", "count", "first rows", "what"):
            table.add_column(col)
        for v in report.violations:
            rows = ", ".join(str(r) for r in v.first_rows) or "-"
            table.add_row(Text(v.column or "(table)"), v.rule, str(v.count), rows, Text(v.message))
        out.print(table)
    if show_profile:
        table = Table(title=f"Profile (categories shown when seen ≥ {result.profile.k} times)")
        for col in ("column", "nulls", "min", "max", "mean", "std", "categories"):
            table.add_column(col)
        for c in result.profile.columns:
            n = c.numeric
            cats = ", ".join(f"{k}: {v}" for k, v in sorted((c.categories or {}).items())[:6])
            stats = [_num(getattr(n, k, None)) for k in ("min", "max", "mean", "std")]
            table.add_row(Text(c.name), f"{c.null_fraction:.2%}", *stats, Text(cats or "-"))
        out.print(table)


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


@app.command("validate")
def validate(
    contract: ContractArg,
    data: DataArg,
    profile: Annotated[bool, typer.Option(help="Also print the data profile.")] = False,
    report_out: Annotated[
        Path | None, typer.Option(help="Write the report and profile as JSON here.")
    ] = None,
    as_json: JsonOpt = False,
    delimiter: DelimiterOpt = None,
    decimal: DecimalOpt = None,
    encoding: EncodingOpt = None,
) -> None:
    """Check a data file against a contract. Exits 1 if it breaks the contract, 2 if unreadable."""
    from fedpark.contracts import DataError, validate_file

    parsed = _load(contract)
    forced = csv_options(delimiter, decimal, encoding)
    try:
        result = validate_file(parsed, data, csv_options=forced)
    except DataError as exc:
        raise _fail(f"{exc}{read_hint(data, forced)}") from None
    payload: dict[str, Any] = {
        "report": result.report.model_dump(mode="json"),
        "profile": result.profile.model_dump(mode="json"),
    }
    if result.dialect is not None:
        payload["read_as"] = result.dialect.describe()
    if report_out:
        report_out.write_text(json.dumps(payload, indent=2))
    if as_json:
        typer.echo(json.dumps(payload, indent=2))
    else:
        print_report(result, profile)
    if not result.report.passed:
        raise typer.Exit(1)


@app.command("verify")
def verify(
    contract: ContractArg,
    signature: Annotated[Path, typer.Argument(help="The hub's signature (signature.json).")],
    key: Annotated[Path, typer.Option(help="The hub's public key (PEM), pinned beforehand.")],
) -> None:
    """Check offline that the hub approved exactly this contract. Exits 1 if not."""
    from fedpark.contracts import ContractError
    from fedpark.contracts.signing import load_public_key, verify_contract

    parsed = _load(contract)
    try:
        document = json.loads(signature.read_text())
        payload = verify_contract(parsed, document, load_public_key(key.read_bytes()))
    except (OSError, ValueError) as exc:
        raise _fail(cannot_read(exc, signature)) from None
    except ContractError as exc:
        out.print(f"[red]NOT VERIFIED[/red]: {literal(str(exc))}", highlight=False)
        raise typer.Exit(1) from None
    out.print(
        f"[green]verified[/green]: {parsed.id} {parsed.version} approved by "
        f"{payload['approved_by']} ({payload['approved_by_org']}) at {payload['approved_at']}, "
        f"signed by hub key {document['key_id']}",
        highlight=False,
    )


@app.command("export-odcs")
def export_odcs(
    contract: ContractArg,
    output: Annotated[Path, typer.Option("-o", "--output", help="ODCS v3 YAML file.")],
) -> None:
    """Write a contract as an Open Data Contract Standard v3 document."""
    from fedpark.contracts.odcs import dump_odcs

    output.write_text(dump_odcs(_load(contract)))
    out.print(f"wrote {output}", markup=False, highlight=False, soft_wrap=True)


@app.command("import-odcs")
def import_odcs(
    document: Annotated[Path, typer.Argument(help="ODCS v3 YAML file.")],
    output: Annotated[
        Path,
        typer.Option(
            "-o", "--output", help="A .yaml/.json file for one contract, else a folder (ID.yaml)."
        ),
    ] = Path(),
    owner: Annotated[str | None, typer.Option(help="Owner, if the document names none.")] = None,
    schema: Annotated[
        str | None, typer.Option("--schema", help="Import only this schema object.")
    ] = None,
) -> None:
    """Turn an ODCS v3 document into FedPark contracts, one per schema object."""
    from fedpark.contracts import ContractError, save_contract
    from fedpark.contracts.document import parse_document
    from fedpark.contracts.odcs_import import import_odcs as contracts_of

    try:
        imported = contracts_of(parse_document(document.read_bytes(), str(document)), owner, schema)
    except OSError:
        raise _fail(f"cannot read {document}: missing, or no permission to read it") from None
    except ContractError as exc:
        text = str(exc)
        raise _fail(text if text.startswith(str(document)) else f"{document}: {text}") from None
    paths = _odcs_paths(imported, output, document)
    for item, path in zip(imported, paths, strict=True):
        try:
            save_contract(item.contract, path)
        except OSError:
            raise _fail(f"cannot write {path}: check the folder and its permissions") from None
        # document text (schema names, notes) is never read as markup
        said = [f"wrote {path} (schema object {item.schema_name})"]
        for line in said + [f"  note: {note}" for note in item.notes]:
            out.print(line, markup=False, highlight=False, soft_wrap=True)


def _odcs_paths(imported: list[Imported], output: Path, document: Path) -> list[Path]:
    """One file for one contract; a folder (made if missing) of ID.yaml files for several."""
    if output.suffix.lower() in (".yaml", ".yml", ".json") and not output.is_dir():
        if len(imported) > 1:
            names = ", ".join(i.schema_name for i in imported)
            raise _fail(
                f"{document} has {len(imported)} schema objects ({names}): give a folder with -o, "
                "or choose one with --schema NAME"
            )
        return [output]
    try:
        output.mkdir(parents=True, exist_ok=True)
    except OSError:
        raise _fail(f"cannot make the folder {output}") from None
    return [output / f"{i.contract.id}.yaml" for i in imported]


# -- through the hub ------------------------------------------------------------------------


def _document(path: Path) -> dict[str, Any]:
    """Validate locally first so that mistakes are shown before anything is sent."""
    from fedpark.contracts import ContractError
    from fedpark.contracts.document import contract_from_data, parse_document

    try:
        data = parse_document(path.read_bytes(), str(path))
        return contract_from_data(data, str(path)).model_dump(mode="json")
    except ContractError as exc:
        raise _fail(str(exc)) from None
    except OSError as exc:
        raise _fail(f"cannot read {path}: {exc.strerror}") from None


def _show_version(version: ContractVersionPublic, as_json: bool) -> None:
    show(version, COLUMNS, as_json)
    compat = version.compatibility
    if not as_json and compat:
        verdict = "backward compatible" if compat.compatible else "[red]BREAKING[/red]"
        out.print(f"against {compat.previous_version}: {verdict}")
        for change in compat.changes:
            out.print(
                f"  - {change.kind}: {change.field}: {change.message}",
                highlight=False,
                markup=False,
            )
    if not as_json and version.reason:
        out.print(f"reason: {version.reason}", highlight=False, markup=False)


@app.command("create")
def create(
    contract: ContractArg, hub: HubOpt = None, token: TokenOpt = None, as_json: JsonOpt = False
) -> None:
    """Upload a new draft (a new contract, or a new version of yours)."""
    with client(hub, token) as api:
        _show_version(api.create_contract(_document(contract)), as_json)


@app.command("update")
def update(
    contract: ContractArg, hub: HubOpt = None, token: TokenOpt = None, as_json: JsonOpt = False
) -> None:
    """Replace a draft or rejected version with the file's content."""
    document = _document(contract)
    ref = ContractRef(str(document["id"]), str(document["version"]))  # checked by _document
    with client(hub, token) as api:
        _show_version(api.update_contract(ref, document), as_json)


def _move(
    action: Callable[[HubClient, ContractRef], ContractVersionPublic],
    ref: ContractRef,
    hub: str | None,
    token: str | None,
    as_json: bool,
) -> None:
    """One step of a version's lifecycle, as the caller; shows where it landed."""
    with client(hub, token) as api:
        _show_version(action(api, ref), as_json)


@app.command("submit")
def submit(
    contract_id: IdArg,
    version: VersionArg,
    hub: HubOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Send a draft to the stewards."""
    _move(HubClient.submit_contract, _ref(contract_id, version), hub, token, as_json)


@app.command("approve")
def approve(
    contract_id: IdArg,
    version: VersionArg,
    hub: HubOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Approve and sign a submitted version (stewards)."""
    _move(HubClient.approve_contract, _ref(contract_id, version), hub, token, as_json)


@app.command("deprecate")
def deprecate(
    contract_id: IdArg,
    version: VersionArg,
    hub: HubOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Deprecate an approved version (stewards)."""
    _move(HubClient.deprecate_contract, _ref(contract_id, version), hub, token, as_json)


@app.command("retire")
def retire(
    contract_id: IdArg,
    version: VersionArg,
    hub: HubOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Retire a deprecated version (stewards)."""
    _move(HubClient.retire_contract, _ref(contract_id, version), hub, token, as_json)


@app.command("reject")
def reject(
    contract_id: IdArg,
    version: VersionArg,
    reason: Annotated[str, typer.Option(help="Why, for the authors.")],
    hub: HubOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Send a submitted version back to its authors (stewards)."""
    ref, rejection = _ref(contract_id, version), body(RejectionCreate, reason=reason)
    with client(hub, token) as api:
        _show_version(api.reject_contract(ref, rejection), as_json)


@app.command("list")
def list_contracts(
    status: Annotated[str | None, typer.Option(help="draft, submitted, approved, ...")] = None,
    domain: Annotated[str | None, typer.Option(help="smart-factory, mobility, ...")] = None,
    owner: Annotated[str | None, typer.Option(help="Owning organization.")] = None,
    column: Annotated[str | None, typer.Option(help="Has a column with this name.")] = None,
    query: Annotated[str | None, typer.Option("-q", "--query", help="In id or title.")] = None,
    hub: HubOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Search the contract versions you may see."""
    with client(hub, token) as api:
        rows = api.contracts(status=status, domain=domain, owner=owner, column=column, text=query)
    show(rows, COLUMNS, as_json)


@app.command("show")
def show_contract(
    contract_id: IdArg,
    version: Annotated[str | None, typer.Argument(help="Version (default: the newest).")] = None,
    hub: HubOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show a version's state and compatibility, its columns with their rules, the table's
    rules and the usage policy: what a steward approves."""
    from fedpark.contracts import Contract

    with client(hub, token) as api:
        if version is None:
            version = api.contract_versions(contract_id)[-1].version
        found = api.contract(_ref(contract_id, version))
    _show_version(found, as_json)
    if not as_json and found.document:
        _show_terms(Contract.model_validate(found.document))


def _show_terms(contract: Contract) -> None:
    """The contract's terms as the console's contract page has them (no markup read in them)."""
    table = Table(title="Columns")
    for heading in ("name", "type", "nullable", "unit", "role", "rules", "description"):
        table.add_column(heading)
    for c in contract.columns:
        cells = (c.name, c.type, "yes" if c.nullable else "no", c.unit or "-", c.role.value)
        rules = "; ".join(c.rules.describe()) or "-"
        table.add_row(*(Text(cell) for cell in (*cells, rules, c.description)))
    out.print(table)
    rows = contract.rows
    limits = [f"at least {rows.min_rows}"] if rows.min_rows is not None else []
    limits += [f"at most {rows.max_rows}"] if rows.max_rows is not None else []
    policy = contract.policy
    launch = ", ".join(policy.experiment_orgs)
    terms = {
        "rows": " and ".join(limits) or "no limit",
        "purposes": ", ".join(policy.purposes),
        "may launch experiments": f"{launch} and the owner" if launch else "only the owner",
        "may download models": ", ".join(policy.model_download_orgs)
        or "only the launching organization",
        "smallest aggregate (k)": f"{policy.min_factories} distinct factories in every round",
        "expires": str(policy.expires or "never"),
    }
    out.print("Table rules and usage policy", style="bold")
    for name, value in terms.items():
        out.print(Text(f"  {name}: {value}"))


@app.command("download")
def download(
    contract_id: IdArg,
    version: VersionArg,
    output: Annotated[Path, typer.Option("-o", "--output", help="Folder to write into.")] = Path(),
    hub: HubOpt = None,
    token: TokenOpt = None,
) -> None:
    """Save the contract, its Arrow schema, the hub's signature and public key."""
    output.mkdir(parents=True, exist_ok=True)
    ref = _ref(contract_id, version)
    with client(hub, token) as api:
        files = {"contract.json": "document", "schema.arrow": "schema"}
        if api.contract(ref).signed:
            files["signature.json"] = "signature"
        for name, part in files.items():
            (output / name).write_bytes(api.contract_part(ref, part))
        (output / "hub-key.pem").write_bytes(api.hub_key())
        files["hub-key.pem"] = "key"
    out.print(
        f"wrote {', '.join(files)} to {output}", markup=False, highlight=False, soft_wrap=True
    )
    if "signature.json" in files:
        out.print(
            f"verify: fedpark contract verify {output / 'contract.json'} "
            f"{output / 'signature.json'} --key {output / 'hub-key.pem'}",
            highlight=False,
            markup=False,
            soft_wrap=True,  # a command to copy: never wrapped
        )


@app.command("declare")
def declare(
    contract_id: IdArg,
    version: VersionArg,
    data: DataArg,
    name: Annotated[str, typer.Option(help="A name for this dataset, e.g. line-3.")],
    allow_failing: Annotated[
        bool,
        typer.Option(
            "--allow-failing",
            help="Declare data that breaks the contract anyway (it is recorded as "
            "non-compliant and cannot take part in experiments).",
        ),
    ] = False,
    delimiter: DelimiterOpt = None,
    decimal: DecimalOpt = None,
    encoding: EncodingOpt = None,
    hub: HubOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Validate local data against the approved version and declare it (no rows are sent).

    Exits 1 without declaring if the data breaks the contract (unless --allow-failing),
    2 if it cannot be read. What is sent: the validation report (rule names, counts, row
    numbers; neither the file's name nor column names the contract does not know) and the
    profile (aggregates of at least k values, minimum and maximum rounded outward to two
    significant digits; categories seen at least k times).
    """
    from pydantic import ValidationError

    from fedpark.contracts import DataError, validate_file
    from fedpark.contracts.document import contract_from_data

    forced = csv_options(delimiter, decimal, encoding)
    with client(hub, token) as api:
        ref = _ref(contract_id, version)
        contract = contract_from_data(api.contract(ref).document or {})
        try:
            result = validate_file(contract, data, csv_options=forced)
        except DataError as exc:
            raise _fail(f"not declared: {exc}{read_hint(data, forced)}") from None
        print_report(result, show_profile=False)
        if not result.report.passed and not allow_failing:
            counts = ", ".join(f"{r}={n}" for r, n in result.report.rule_counts().items())
            raise _fail(
                f"not declared: {data.name} breaks {contract_id} {version} ({counts}); fix "
                "the data, or record it as non-compliant with --allow-failing",
                code=1,
            )
        try:
            declaration = result.declaration(name)
        except ValidationError:  # its text would quote the name: say the rule instead
            raise _fail(
                "not declared: --name must start with a letter or digit and hold only "
                "letters, digits, spaces and . _ - (at most 100 characters)"
            ) from None
        declared = api.declare_dataset(ref, declaration)
    show(declared, ("org_id", "name", "rows", "compliant", "declared_at"), as_json)
    if not result.report.passed:
        out.print(
            "[yellow]declared as non-compliant[/yellow] (--allow-failing): it cannot take "
            "part in experiments until data that meets the contract is declared",
            highlight=False,
        )


@app.command("datasets")
def datasets(
    contract_id: IdArg,
    version: VersionArg,
    hub: HubOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Which factories declared data under this version, and whether it complies."""
    with client(hub, token) as api:
        rows = api.datasets(_ref(contract_id, version))
    show(rows, ("org_id", "name", "rows", "compliant", "rule_counts", "declared_at"), as_json)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="contract")
