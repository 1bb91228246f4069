"""ODCS v3 documents as other tools write them: each imports, typed by its physical types, or
is refused in one line naming the schema object and the property. The fixtures were checked
against the official ODCS JSON schemas (v3.0.2, v3.1.0) when written; the structural test
below keeps them to the standard's shape here."""

from __future__ import annotations

import copy
import datetime as dt
from decimal import Decimal
from pathlib import Path
from random import Random
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from fedpark.contracts import Contract, ContractError, validate_file
from fedpark.contracts.odcs import dump_odcs, load_odcs, load_odcs_all
from fedpark.contracts.odcs_import import Imported, import_odcs, slug_id

FIXTURES = Path(__file__).parent / "fixtures" / "odcs"
ALL = sorted(FIXTURES.glob("*.yaml"))


def _import(name: str, schema: str | None = None) -> list[Imported]:
    return load_odcs_all((FIXTURES / name).read_bytes(), owner="acme", schema=schema)


def _types(contract: Contract) -> dict[str, str]:
    return {c.name: c.type for c in contract.columns}


REFUSED = {
    "empty-schema-object.yaml": 'schema object "feed" has no properties: no columns to make a '
    "contract of",
    "object-without-properties.yaml": 'schema object "states", property "state": logicalType '
    "object without properties: FedPark cannot tell its fields (list them under properties, "
    "or give a physicalType)",
    "not-v3.yaml": "not an ODCS v3 DataContract (kind 'DataContract', apiVersion v2.2.2): "
    "FedPark imports ODCS v3.0.0 and later",
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_refusals_are_one_line_naming_the_object(name: str) -> None:
    with pytest.raises(ContractError) as caught:
        _import(name)
    assert str(caught.value) == REFUSED[name]


def test_object_becomes_a_struct_of_its_properties() -> None:
    (item,) = _import("object-struct.yaml")
    assert _types(item.contract)["address"] == (
        "struct<street: string not null, zip: string, floor: int64>"
    )
    assert item.notes == ()


def test_time_and_zoned_timestamp_logical_types() -> None:
    (item,) = _import("time-logical.yaml")
    assert _types(item.contract) == {
        "starts_at": "time64[us]",
        "logged": "timestamp[us, tz=UTC]",
        "local_clock": "timestamp[us]",
    }


def test_an_id_that_is_no_slug_becomes_one_and_the_original_is_kept() -> None:
    (item,) = _import("urn-id.yaml")
    original = "urn:datacontract:checkout:Orders_Latest"
    assert item.contract.id == "urn-datacontract-checkout-orders-latest"
    assert item.contract.description.endswith(f"ODCS id: {original}")
    assert item.notes[0] == (
        f"id {original!r} is not a FedPark id: the contract's id "
        "'urn-datacontract-checkout-orders-latest' (the original is kept in its description)"
    )
    assert "domain 'checkout' is not one of FedPark's: set to other" in item.notes


@pytest.mark.parametrize(
    ("text", "slug"),
    [
        ("Orders_Latest", "orders-latest"),
        ("urn:a::b", "urn-a-b"),
        ("--x--", "odcs-x"),
        ("受注", f"odcs-{slug_id('受注')[5:]}"),
        ("Ärger über Öl", "arger-uber-ol"),
    ],
)
def test_slug_id(text: str, slug: str) -> None:
    assert slug_id(text) == slug


def test_long_ids_are_cut_with_a_hash_that_keeps_them_apart() -> None:
    a, b = slug_id("x" * 80 + "a"), slug_id("x" * 80 + "b")
    assert len(a) == len(b) == 63 and a != b


def test_several_schema_objects_become_several_contracts() -> None:
    orders, items = _import("several-schema-objects.yaml")
    assert (orders.contract.id, items.contract.id) == ("webshop-orders", "webshop-line-items")
    assert orders.contract.description == "ODCS id: webshop, schema object: orders"
    assert _types(orders.contract) == {"order_id": "string", "placed_at": "timestamp[us]"}
    assert orders.contract.rows.min_rows == 1 and items.contract.rows.min_rows is None
    assert orders.notes == (
        "one contract per schema object: id 'webshop' and 'orders' make the contract's id "
        "'webshop-orders' (the original is kept in its description)",
        "skipped schema object(s) without properties: audit",
    )


def test_schema_chooses_one_object() -> None:
    (item,) = _import("several-schema-objects.yaml", schema="line_items")
    assert item.contract.id == "webshop-line-items"  # the same id as when all are imported
    with pytest.raises(ContractError) as caught:
        _import("several-schema-objects.yaml", schema="nope")
    assert (
        str(caught.value) == "no schema object is named 'nope' (it has orders, line_items, audit)"
    )
    with pytest.raises(ContractError) as caught:
        _import("several-schema-objects.yaml", schema="audit")
    assert str(caught.value) == (
        'schema object "audit" has no properties: no columns to make a contract of'
    )


def test_one_contract_api_refuses_several_objects_by_name() -> None:
    with pytest.raises(ContractError) as caught:
        load_odcs((FIXTURES / "several-schema-objects.yaml").read_bytes(), owner="acme")
    assert str(caught.value) == (
        "the document has 2 schema objects (orders, line_items): import each as its own "
        "contract, or choose one (--schema NAME)"
    )


def test_physical_types_win_over_logical_ones() -> None:
    (item,) = _import("physical-types-postgres.yaml")
    assert _types(item.contract) == {
        "read_on": "timestamp[us]",  # date logical, timestamp physical: not date32
        "received": "timestamp[us, tz=UTC]",
        "stamped": "timestamp[ms, tz=UTC]",
        "day": "date32",
        "temp": "float64",  # SQL FLOAT is 64-bit
        "temp_real": "float32",
        "temp_double": "float64",
        "price": "decimal128(10, 2)",
        "big": "int64",
        "count": "int32",
        "small": "int16",
        "tiny": "int8",
        "code": "string",
        "note": "string",
        "ok": "bool",
        "photo": "binary",  # no logical type: binary, not string
        "raw_frame": "binary",
        "shift_start": "time64[us]",
        "tags": "list<string>",
        "site": "string",
    }
    assert item.notes == (
        'schema object "readings", property "site": physicalType \'geography\' is not a type '
        "FedPark knows: typed from logicalType string",
    )


def test_arrays_are_lists_of_their_items() -> None:
    (item,) = _import("arrays.yaml")
    assert _types(item.contract) == {
        "batch": "string",
        "samples": "list<float64>",
        "counts": "list<int32>",
        "steps": "list<struct<step: int64 not null, at: timestamp[us]>>",
        "labels": "list<string>",
        "anything": "list<string>",
    }
    assert item.notes == (
        'schema object "batches", property "anything": an array without items: read as '
        "list<string>",
    )


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "databricks.yaml",
            {
                "at": "timestamp[us, tz=UTC]",  # Spark's TIMESTAMP is an instant
                "at_local": "timestamp[us]",
                "gain": "float64",
                "cost": "decimal128(18, 2)",
                "frame": "binary",
                "location": "struct<lat: float64, lon: float64>",
                "samples": "list<int32>",
            },
        ),
        (
            "bigquery.yaml",
            {
                "trip_id": "int64",
                "vehicle_count": "int64",  # BigQuery's INTEGER is INT64
                "fare": "decimal128(38, 9)",
                "started": "timestamp[us, tz=UTC]",
                "local_start": "timestamp[us]",
                "signature": "binary",
                "meta": "string",
                "route": "struct<from_stop: string, to_stop: string>",
            },
        ),
    ],
)
def test_warehouse_spellings(name: str, expected: dict[str, str]) -> None:
    (item,) = _import(name)
    types = _types(item.contract)
    assert {k: types[k] for k in expected} == expected
    assert item.notes == ()


def test_datacontract_cli_document() -> None:
    (item,) = _import("datacontract-cli.yaml")
    contract = item.contract
    assert contract.id == "orders-latest" and contract.version == "2.0.0"
    assert _types(contract)["order_timestamp"] == "timestamp[us]"
    order_id, email = contract.column("order_id"), contract.column("customer_email_address")
    assert order_id.role.value == "id" and order_id.rules.unique and not order_id.nullable
    assert email.role.value == "pii"
    assert contract.column("order_total").rules.min == 0
    assert contract.description.startswith("Successful customer orders in the webshop.")


def test_catalog_document_keeps_what_fedpark_can_check() -> None:
    (item,) = _import("collibra-like.yaml")
    contract = item.contract
    assert contract.id == "53581432-6c55-4ba2-a65f-72344a91553a"
    assert _types(contract)["amount"] == "decimal128(15, 2)"
    assert _types(contract)["payload"] == "binary"
    assert contract.column("rcvr_id").role.value == "pii"
    assert contract.column("rcvr_cntry_code").rules.max_null_fraction == 0.0
    assert contract.column("rcvr_cntry_code").rules.regex is None
    assert (
        'schema object "tbl", property "rcvr_cntry_code": rule regex left out: invalid regular '
        "expression for RE2, which checks the data: no look-arounds (?=, ?!, ?<=) or "
        "back-references (\\1)"
    ) in item.notes


def test_dbt_document_on_snowflake() -> None:
    customers, orders = _import("dbt-like.yaml")
    assert customers.contract.id == "jaffle-shop-marts-dim-customers"
    assert customers.contract.version == "1.0.0"  # "1.0" meant as semver
    assert _types(customers.contract) == {
        "CUSTOMER_ID": "int64",
        "FIRST_NAME": "string",
        "FIRST_ORDER": "date32",
        "LIFETIME_VALUE": "float64",
        "UPDATED_AT": "timestamp[ns]",
        "LOADED_AT": "timestamp[us, tz=UTC]",
    }
    assert orders.contract.column("STATUS").rules.allowed_values == [
        "placed",
        "shipped",
        "completed",
        "return_pending",
        "returned",
    ]
    assert _types(orders.contract)["ATTRIBUTES"] == "string"  # VARIANT arrives as JSON text
    assert (
        'schema object "dim_customers", property "CUSTOMER_ID": quality rule \'custom\' is '
        "not checked by FedPark"
    ) in customers.notes


def test_no_owner_is_refused_in_one_line() -> None:
    with pytest.raises(ContractError) as caught:
        load_odcs_all((FIXTURES / "object-struct.yaml").read_bytes())
    assert str(caught.value) == (
        "the document names no FedPark owner (customProperty fedpark.owner): give the "
        "organization that owns the data (--owner)"
    )


@pytest.mark.parametrize("path", ALL, ids=[p.name for p in ALL])
def test_every_fixture_imports_or_is_refused_in_one_line(path: Path) -> None:
    try:
        imported = load_odcs_all(path.read_bytes(), owner="acme")
    except ContractError as exc:
        assert "\n" not in str(exc)
        return
    for item in imported:
        assert all("\n" not in note for note in item.notes)
        # what was imported exports and comes back the same
        assert load_odcs(dump_odcs(item.contract)) == item.contract


API_VERSIONS = {"v3.0.0", "v3.0.1", "v3.0.2", "v3.1.0", "v2.2.2"}
LOGICAL = {"string", "date", "number", "integer", "object", "array", "boolean"}


def _logical_types(node: dict[str, Any]) -> list[Any]:
    found = [node["logicalType"]] if "logicalType" in node else []
    children = list(node.get("properties") or [])
    if isinstance(node.get("items"), dict):
        children.append(node["items"])
    for child in children:
        found += _logical_types(child)
    return found


@pytest.mark.parametrize("path", ALL, ids=[p.name for p in ALL])
def test_fixtures_have_the_standards_shape(path: Path) -> None:
    """The official schema's required keys and logical types (time/timestamp from v3.1)."""
    document = yaml.safe_load(path.read_text())
    assert {"apiVersion", "kind", "id", "version", "status"} <= document.keys()
    assert document["apiVersion"] in API_VERSIONS and document["kind"] == "DataContract"
    allowed = LOGICAL | ({"time", "timestamp"} if document["apiVersion"] >= "v3.1" else set())
    for table in document.get("schema") or []:
        assert table["name"] and all(p["name"] for p in table.get("properties") or [])
        assert set(_logical_types(table)) - {"object"} <= allowed


NEW_TYPES = [
    "time64[us]",
    "time32[ms]",
    "timestamp[us, tz=UTC]",
    "timestamp[ns]",
    "date32",
    "struct<street: string not null, floor: int64>",
    "list<struct<step: int64 not null, at: timestamp[us]>>",
    "list<int32>",
    "binary",
    "decimal128(10, 2)",
    "decimal256(40, 4)",
    "float64",
    "float32",
    "int8",  # FedPark's int8 is 8-bit, though Postgres' is 64
    "uint64",
    "map<string, int32>",
    "fixed_size_binary[16]",
    'struct<"first name": string>',
]


def test_new_types_round_trip_through_odcs(contract: Contract) -> None:
    columns = [{"name": f"c{i}", "type": t} for i, t in enumerate(NEW_TYPES)]
    wide = Contract.model_validate({**contract.model_dump(mode="json"), "columns": columns})
    text = dump_odcs(wide)
    assert load_odcs(text) == wide
    (item,) = load_odcs_all(text)
    assert item.notes == ()


def test_bounds_go_where_the_official_schema_allows_them(contract: Contract) -> None:
    """A list's bounds on its items, a duration's in customProperties: the export stays valid
    against the official schema (whose array and string options have no minimum)."""
    columns = [
        {"name": "d", "type": "duration[s]", "rules": {"min": 0, "max": 60}},
        {"name": "l", "type": "list<string>", "rules": {"regex": "[a-z]+"}},
        {"name": "w", "type": "fixed_size_list<float32>[3]", "rules": {"min": -1, "max": 1}},
    ]
    data = {**contract.model_dump(mode="json"), "columns": columns}
    bounded = Contract.model_validate(data)
    document = yaml.safe_load(dump_odcs(bounded))
    d, lst, w = document["schema"][0]["properties"]
    assert "logicalTypeOptions" not in d and "logicalTypeOptions" not in w
    assert {"property": "fedpark.minimum", "value": 0} in d["customProperties"]
    assert lst["items"] == {"logicalType": "string", "logicalTypeOptions": {"pattern": "[a-z]+"}}
    assert w["items"]["logicalTypeOptions"] == {"minimum": -1, "maximum": 1}
    assert load_odcs(dump_odcs(bounded)) == bounded


HEAD = "apiVersion: v3.0.2\nkind: DataContract\nstatus: active\n"


@pytest.mark.parametrize(
    ("text", "line"),
    [
        (HEAD + "version: 1.0.0\n", "the document has no id (ODCS requires one)"),
        (
            HEAD + "id: ab\nversion: 1.0.0\n",
            "the document has no schema objects: nothing to import",
        ),
        (
            HEAD + "id: ab\nversion: banana\nschema: [{name: t, properties: [{name: a}]}]\n",
            "version 'banana' is not a semantic version (MAJOR.MINOR.PATCH, e.g. 1.0.0)",
        ),
    ],
    ids=["no id", "no schema", "version"],
)
def test_document_level_refusals(text: str, line: str) -> None:
    with pytest.raises(ContractError) as caught:
        load_odcs_all(text, owner="acme")
    assert str(caught.value) == line


def test_versions_meant_as_semver() -> None:
    for given, read in (("1", "1.0.0"), ("v1.2.3", "1.2.3"), ("2.1", "2.1.0")):
        text = (
            HEAD + f"id: ab\nversion: '{given}'\nschema: [{{name: t, properties: [{{name: a}}]}}]\n"
        )
        (item,) = load_odcs_all(text, owner="acme")
        assert item.contract.version == read
        assert item.notes == (
            'schema object "t", property "a": no logicalType or physicalType: read as string',
        )


ODD_VALUES: list[Any] = [None, 0, 3.5, "", "x", "FLOAT", "object", "array", "time", [], {}, [1]]
ODD_VALUES += [{"a": 1}, True, "ARRAY<", "struct<a int", "decimal(99,100)", [{"name": "z"}]]


def _places(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path] if path else []
    if isinstance(node, dict):
        children = list(node.items())
    else:
        children = list(enumerate(node)) if isinstance(node, list) else []
    for key, child in children:
        found += _places(child, (*path, key))
    return found


def test_damaged_documents_are_refused_in_one_line_never_a_crash() -> None:
    """Fixtures with values swapped for odd ones (as a hand-edited document has them)."""
    random = Random(21)
    documents = [yaml.safe_load(p.read_text()) for p in ALL]
    for _ in range(400):
        document = copy.deepcopy(random.choice(documents))
        for _ in range(random.randint(1, 3)):
            *parents, last = random.choice(_places(document))
            node = document
            for key in parents:
                node = node[key]
            node[last] = copy.deepcopy(random.choice(ODD_VALUES))
        try:
            import_odcs(document, owner="acme")
        except ContractError as exc:
            assert "\n" not in str(exc)


def test_exclusive_bounds_are_inclusive_and_unchecked_options_said() -> None:
    (old,) = _import("bounds-v3.0.yaml")
    (new,) = _import("bounds-v3.1.yaml")
    force = 'schema object "presses", property "force"'
    assert old.contract.column("force").rules.min == new.contract.column("force").rules.min == 0
    assert old.notes == (
        f"{force}: exclusiveMinimum: FedPark checks the bound inclusively",
        f"{force}: logicalTypeOptions not checked by FedPark: multipleOf",
        'schema object "presses", property "code": logicalTypeOptions not checked by FedPark: '
        "maxLength, minLength",
    )
    assert new.notes == (f"{force}: exclusiveMinimum: FedPark checks the bound inclusively",)


def test_data_as_the_database_hands_it_over_validates(tmp_path: Path) -> None:
    """What Postgres' types arrive as in Arrow (a zoned timestamp, a 64-bit FLOAT, bytes,
    a timestamp under a `date` logical type) passes the contract imported from its ODCS:
    before, the logical types alone made every one of these a type error."""
    (item,) = _import("physical-types-postgres.yaml")
    moment = dt.datetime(2026, 3, 1, 8, 30, tzinfo=dt.UTC)
    columns = {
        "read_on": pa.array([moment.replace(tzinfo=None)], pa.timestamp("us")),
        "received": pa.array([moment], pa.timestamp("us", tz="UTC")),
        "stamped": pa.array([moment], pa.timestamp("ms", tz="UTC")),
        "day": pa.array([moment.date()], pa.date32()),
        "temp": pa.array([21.123456789012], pa.float64()),
        "temp_real": pa.array([21.5], pa.float32()),
        "temp_double": pa.array([1e300], pa.float64()),
        "price": pa.array([Decimal("12.34")], pa.decimal128(10, 2)),
        "big": pa.array([2**40], pa.int64()),
        "count": pa.array([7], pa.int32()),
        "small": pa.array([7], pa.int16()),
        "tiny": pa.array([7], pa.int8()),
        "code": pa.array(["A-1"]),
        "note": pa.array(["text"]),
        "ok": pa.array([True]),
        "photo": pa.array([b"\x89PNG"], pa.binary()),
        "raw_frame": pa.array([b"\x00\x01"], pa.binary()),
        "shift_start": pa.array([dt.time(8, 0)], pa.time64("us")),
        "tags": pa.array([["a", "b"]], pa.list_(pa.string())),
        "site": pa.array(["POINT(1 2)"]),
    }
    path = tmp_path / "readings.parquet"
    pq.write_table(pa.table(columns), path)
    result = validate_file(item.contract, path)
    assert result.report.passed, result.report


def test_long_texts_are_cut_with_a_note_and_the_original_id_survives() -> None:
    text = (
        HEAD
        + f"id: A_B\nname: {'n' * 300}\nversion: 1.0.0\ndescription: {{purpose: {'p' * 25000}}}\n"
        + f"schema: [{{name: t, properties: [{{name: a, description: {'d' * 3000}}}]}}]\n"
    )
    (item,) = load_odcs_all(text, owner="acme")
    contract = item.contract
    assert len(contract.title) == 200 and len(contract.columns[0].description) == 2000
    assert len(contract.description) == 20_000
    assert contract.description.endswith("p\n\nODCS id: A_B")
    assert "the description: cut to its first 19986 characters (FedPark's limit)" in item.notes
    assert "the title: cut to its first 200 characters (FedPark's limit)" in item.notes


def test_a_decimal_without_precision_falls_back_to_the_logical_type() -> None:
    text = HEAD + (
        "id: ab\nversion: 1.0.0\nschema: [{name: t, properties: "
        "[{name: a, logicalType: integer, physicalType: NUMBER}]}]\n"
    )
    (item,) = load_odcs_all(text, owner="acme")
    assert item.contract.columns[0].type == "int64"
    assert item.notes == (
        'schema object "t", property "a": physicalType \'NUMBER\' has no precision: typed '
        "from logicalType integer",
    )


def test_v3_1_library_checks_by_metric_are_the_same_checks() -> None:
    """`metric: invalidValues` with `arguments.validValues` and `metric: nullValues` are v3.1's
    names for v3.0's `rule: validValues` and `rule: nullCheck`: imported, not dropped."""
    (imported,) = _import("quality-v3.1.yaml")
    mode = imported.contract.column("mode").rules
    assert mode.allowed_values == ["idle", "press", "eject"]
    assert mode.max_null_fraction == pytest.approx(0.05)
    assert any("'duplicateValues' is not checked" in n for n in imported.notes), imported.notes


def test_a_valid_values_check_that_tolerates_some_invalid_ones_is_noted_not_made_strict() -> None:
    """`mustBeLessOrEqualTo: 5` percent invalid: FedPark's allowed values admit none, so
    importing it as a rule would refuse data the document accepts."""
    text = (FIXTURES / "quality-v3.1.yaml").read_text()
    tolerant = "            unit: percent\n            mustBeLessOrEqualTo: 5\n"
    document = text.replace("            mustBe: 0\n", tolerant, 1)
    (imported,) = load_odcs_all(document.encode(), owner="acme", schema=None)
    assert imported.contract.column("mode").rules.allowed_values is None
    assert any("'invalidValues' lets some values be invalid" in n for n in imported.notes)
