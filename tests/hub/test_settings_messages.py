"""A hub setting that cannot be used is named by its variable or option, in FedPark's words."""

from __future__ import annotations

import pytest
import typer

from fedpark.hub.cli import _settings


def test_a_bad_setting_names_its_variable_and_what_to_write(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FEDPARK_TOKEN_TTL_DAYS", "a month")
    monkeypatch.setenv("FEDPARK_BUCKET_PREFIX", "Park_1")
    with pytest.raises(typer.Exit):
        _settings(port=0)
    said = capsys.readouterr().err.strip()
    assert said == (
        "error: --port: must be at least 1; FEDPARK_BUCKET_PREFIX: must match the regular "
        "expression ^[a-z0-9][a-z0-9-]{1,40}$; FEDPARK_TOKEN_TTL_DAYS: must be a whole number"
    )
    assert "pydantic" not in said and "a month" not in said
