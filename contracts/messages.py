"""Pydantic's validation errors in FedPark's words: what to fix, where, by the error's kind.

Pydantic's own messages name regular expressions a person has to decode ("should match
pattern '^[a-z0-9]...$'"), say "Input should be a valid string" for ``version: 0.1`` and put
a link to pydantic's site under them. Here every error is said from its kind and context
(``ctx``), with its place in words (``column "temp" (3rd): rules.max``); only the messages
of FedPark's own validators (``value_error``) are passed on, as they are FedPark's words.

Free of pyarrow: the hub's request errors and the command line use it too.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, get_args

from pydantic import BaseModel

from fedpark.contracts.names import SEMVER, SLUG

SLUG_WORDS = (
    "must be lowercase letters (a-z), digits and dashes, starting and ending with a letter "
    "or digit, e.g. press-sensors"
)
SEMVER_WORDS = (
    "must be a semantic version MAJOR.MINOR.PATCH, e.g. 1.0.0 (or 1.0.0-rc.1 for a pre-release)"
)
# Where pydantic's error location names the member of a union that failed, not a field.
_UNION_TAGS = frozenset({"bool", "int", "float", "str", "constrained-str", "none", "date"})
_SHOWN_NAME = 60  # characters of a column name or key shown in a message


@dataclass(frozen=True)
class Problem:
    """One error: ``field`` the dotted path (for programs), ``where`` it in words."""

    field: str
    where: str
    message: str


def problems(
    errors: Sequence[Any], data: Any = None, model: type[BaseModel] | None = None
) -> list[Problem]:
    """``errors`` (``ValidationError.errors()``) as problems, the likely typos first.

    ``data`` is what was validated (to name list items by their ``name``); ``model`` the
    model it was validated as (to suggest the field an unknown key was meant to be).
    """
    errors = _merge_unions(errors)
    missing = {tuple(e["loc"]) for e in errors if e["type"] == "missing"}
    typos: list[Problem] = []
    rest: list[Problem] = []
    meant: set[tuple[Any, ...]] = set()
    for error in errors:
        loc = tuple(error["loc"])
        if error["type"] == "extra_forbidden" and loc:
            problem, target = _unknown_key(loc, data, model, missing)
            if target is not None:
                meant.add(target)
            typos.append(problem)
    for error in errors:
        loc = tuple(error["loc"])
        if error["type"] != "extra_forbidden" and loc not in meant:
            rest.append(Problem(_dotted(loc), where(loc, data), describe(error)))
    return typos + rest


def describe(error: Any, echo: bool = True) -> str:
    """What is wrong with one value and how to fix it. ``echo``: the message may quote the
    value (never in the hub's answers, which may be read by someone else)."""
    kind = str(error.get("type", ""))
    ctx = error.get("ctx") or {}
    loc = tuple(error.get("loc", ()))
    if kind == "value_error" or kind == "assertion_error":
        return str(error.get("msg", "invalid")).removeprefix("Value error, ")
    if kind == "string_type":
        return _not_text(error.get("input"), loc, echo)
    if kind == "string_pattern_mismatch":
        return _pattern_words(str(ctx.get("pattern", "")))
    if kind in ("enum", "literal_error"):
        expected = str(ctx.get("expected", "")).replace("'", "").replace(" or ", ", ")
        return f"must be one of: {expected}"
    if kind in _BOUNDS:
        key, words = _BOUNDS[kind]
        return words.format(ctx.get(key))
    return _WORDS.get(kind, f"is not valid ({kind or 'unknown problem'})")


_BOUNDS = {
    "string_too_short": ("min_length", "must be at least {} characters long"),
    "string_too_long": ("max_length", "must be at most {} characters long"),
    "too_short": ("min_length", "must list at least {} items"),
    "too_long": ("max_length", "must list at most {} items"),
    "greater_than_equal": ("ge", "must be at least {}"),
    "greater_than": ("gt", "must be more than {}"),
    "less_than_equal": ("le", "must be at most {}"),
    "less_than": ("lt", "must be less than {}"),
}
_WORDS = {
    "missing": "required, but missing",
    "extra_forbidden": "is not a known field",
    "union": "must be one value: a number, text, or true/false",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "finite_number": "must be a finite number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "list_type": "must be a list",
    "dict_type": "must be a mapping (key: value)",
    "model_type": "must be a mapping (key: value)",
    "model_attributes_type": "must be a mapping (key: value)",
    "date_type": "must be a date such as 2027-12-31",
    "date_parsing": "must be a date such as 2027-12-31",
    "date_from_datetime_parsing": "must be a date such as 2027-12-31",
    "date_from_datetime_inexact": "must be a date such as 2027-12-31 (no time of day)",
    "datetime_type": "must be a date and time such as 2027-12-31T12:00:00Z",
    "datetime_parsing": "must be a date and time such as 2027-12-31T12:00:00Z",
    "datetime_from_date_parsing": "must be a date and time such as 2027-12-31T12:00:00Z",
    "uuid_type": "must be an id the hub gave (a UUID)",
    "uuid_parsing": "must be an id the hub gave (a UUID)",
    "url_parsing": "must be a URL such as https://example.org",
    "url_type": "must be a URL such as https://example.org",
    "url_scheme": "must be a URL starting with http:// or https://",
    "json_invalid": "is not valid JSON",
    "json_type": "must be JSON",
    "bytes_type": "must be text",
    "none_required": "must be left out",
    "frozen_instance": "cannot be changed",
}


def _pattern_words(pattern: str) -> str:
    if pattern == SLUG:
        return SLUG_WORDS
    if pattern == SEMVER:
        return SEMVER_WORDS
    return f"must match the regular expression {pattern}"


def _not_text(value: Any, loc: tuple[Any, ...], echo: bool) -> str:
    """A number (or true/false, a list) where text is needed: YAML read it as one."""
    key = str(loc[-1]) if loc else "value"
    if isinstance(value, bool):
        return "must be text, not true/false (YAML reads yes, no, on, off as those): quote it"
    if not isinstance(value, int | float):
        kind = "a list" if isinstance(value, list) else "a mapping" if value else "empty"
        return f"must be text, not {kind}"
    if key == "version":
        if not echo:
            return f"{SEMVER_WORDS}: a number is not a version (quote it in YAML)"
        suggested = f"{value}.0" if isinstance(value, float) else f"{value}.0.0"
        return (
            f"versions are semantic versions (MAJOR.MINOR.PATCH): write {suggested}, not "
            f'{value} (quote it in YAML if needed: version: "{suggested}")'
        )
    if not echo:
        return "must be text, not a number: quote it in YAML"
    return f'must be text, not the number {value}: quote it in YAML ({key}: "{value}")'


def _merge_unions(errors: Sequence[Any]) -> list[Any]:
    """One error for a value no member of a union (a rule's ``bool | int | float | str``)
    took: pydantic reports each member, its location ending in the member's name."""
    merged: list[Any] = []
    seen: set[tuple[Any, ...]] = set()
    for error in errors:
        loc = tuple(error["loc"])
        if len(loc) > 1 and loc[-1] in _UNION_TAGS:
            if loc[:-1] in seen:
                continue
            seen.add(loc[:-1])
            error = {**error, "loc": loc[:-1], "type": "union"}
        merged.append(error)
    return merged


def _unknown_key(
    loc: tuple[Any, ...],
    data: Any,
    model: type[BaseModel] | None,
    missing: set[tuple[Any, ...]],
) -> tuple[Problem, tuple[Any, ...] | None]:
    """An unknown key, with the field it was likely meant to be: a missing one next to it
    first, else one of the model's fields that is spelled alike."""
    parent, key = loc[:-1], str(loc[-1])
    absent = [str(m[-1]) for m in missing if m[:-1] == parent]
    known = _fields_at(model, parent) if model is not None else []
    guess = difflib.get_close_matches(key, absent, n=1, cutoff=0.5) or difflib.get_close_matches(
        key, known, n=1, cutoff=0.75
    )
    message = f"unknown key {_quoted(key)}"
    if guess:
        message += f" (did you mean {_quoted(guess[0])}?)"
    elif known:
        message += f" (known keys: {', '.join(known)})"
    target = (*parent, guess[0]) if guess and guess[0] in absent else None
    return Problem(_dotted(loc), where(parent, data) or "the document", message), target


def _fields_at(model: type[BaseModel], path: tuple[Any, ...]) -> list[str]:
    """The field names of the model found at ``path`` (list indices skipped)."""
    current: type[BaseModel] | None = model
    for part in path:
        if isinstance(part, int):
            continue
        field = current.model_fields.get(str(part)) if current is not None else None
        current = _inner_model(field.annotation) if field is not None else None
    return list(current.model_fields) if current is not None else []


def _inner_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in get_args(annotation):
        found = _inner_model(argument)
        if found is not None:
            return found
    return None


def where(loc: Sequence[Any], data: Any = None) -> str:
    """A location in words: an item of ``columns`` by its name and place
    (``column "temp" (3rd)``), other list items by their place, fields by their path."""
    words: list[str] = []
    path: list[str] = []
    node = data
    for part in loc:
        if isinstance(part, int):
            item = node[part] if isinstance(node, list) and 0 <= part < len(node) else None
            words.append(_item(".".join(path), part, item))
            path, node = [], item
            continue
        path.append(str(part))
        node = node.get(part) if isinstance(node, dict) else None
    if path:
        words.append(".".join(path))
    return ": ".join(words)


def _item(path: str, index: int, item: Any) -> str:
    place = ordinal(index + 1)
    name = item.get("name") if isinstance(item, dict) else None
    if path.rsplit(".", 1)[-1] == "columns":
        label = f"column {_quoted(name)} " if isinstance(name, str) and name else "column "
        return f"{label}({place})"
    return f"{path} ({place} item)"


def _quoted(text: str) -> str:
    """A name as a person reads it: in double quotes, cut short, control characters shown
    as escapes (a name from a file may hold anything)."""
    shown = text if len(text) <= _SHOWN_NAME else text[: _SHOWN_NAME - 1] + "…"
    return json.dumps(shown, ensure_ascii=False)


def ordinal(number: int) -> str:
    """1st, 2nd, 3rd, 4th, ..., 11th, 12th, 13th, ..., 21st."""
    suffix = "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10)
    return f"{number}{suffix or 'th'}"


def _dotted(loc: Sequence[Any]) -> str:
    return ".".join(str(part) for part in loc) or "(document)"
