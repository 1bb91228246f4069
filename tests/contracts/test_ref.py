"""One contract reference, every spelling derived from it."""

from __future__ import annotations

import pytest

from fedpark.contracts.ref import ContractRef


@pytest.mark.parametrize(
    "text",
    [
        "press-sensors@1.0.0",
        "  press-sensors@1.0.0\n",
        "press-sensors 1.0.0",
        "contract:press-sensors@1.0.0",
    ],
)
def test_every_spelling_a_person_or_the_audit_trail_writes_parses(text: str) -> None:
    assert ContractRef.parse(text) == ContractRef("press-sensors", "1.0.0")


def test_the_spellings_are_derived_from_one_reference() -> None:
    ref = ContractRef("press-sensors", "1.2.0-rc.1")
    assert str(ref) == "press-sensors@1.2.0-rc.1"
    assert ref.display == "press-sensors 1.2.0-rc.1"
    assert ref.audit_object == "contract:press-sensors@1.2.0-rc.1"
    assert ref.api_path == "/contracts/press-sensors/versions/1.2.0-rc.1"
    assert ref.object_prefix == "press-sensors/1.2.0-rc.1"
    for spelling in (str(ref), ref.display, ref.audit_object):
        assert ContractRef.parse(spelling) == ref  # every spelling reads back


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("press-sensors", "semantic"),
        ("press-sensors@", "semantic"),
        ("press-sensors@1.0", "semantic"),
        ("@1.0.0", "lowercase"),
        ("Press@1.0.0", "lowercase"),
        ("press/../x@1.0.0", "lowercase"),
        ("p@1.0.0", "lowercase"),
        ("", "lowercase"),
        ("press@1.0.0@2.0.0", "semantic"),
    ],
)
def test_what_names_no_contract_version_is_refused_with_what_was_expected(
    text: str, says: str
) -> None:
    with pytest.raises(ValueError, match="expected ID@VERSION") as raised:
        ContractRef.parse(text)
    assert says in str(raised.value)
