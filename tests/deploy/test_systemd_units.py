"""deploy/systemd/: every unit passes `systemd-analyze verify` and keeps its hardening.

`verify` checks that each ExecStart binary exists, so the units are rendered with the install
path they assume (/opt/fedpark/.venv) replaced by this interpreter's venv, which holds the
same `fedpark` command. `verify` exits 0 on an unknown key or a misspelt section (it only
warns), so any line it prints about a unit fails the test. Without systemd-analyze the tests
skip with a reason, except where FEDPARK_REQUIRE_SYSTEMD=1 (CI sets it): there they fail.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNIT_DIR = ROOT / "deploy" / "systemd"
INSTALL = "/opt/fedpark/.venv"  # where the units expect FedPark (docs/operations.md)
UNITS = ("storage", "hub", "superlink", "gate", "factory")


def _analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found is None:
        message = "systemd-analyze is missing: apt-get install systemd"
        if os.environ.get("FEDPARK_REQUIRE_SYSTEMD") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return found


def _render(text: str) -> str:
    return text.replace(INSTALL, sys.prefix)


def problems(folder: Path, names: list[str]) -> list[str]:
    """What `systemd-analyze verify` says about the units in ``folder``: each line naming
    one of them, and its exit status if not 0."""
    result = subprocess.run(
        [_analyze(), "verify", *(str(folder / name) for name in names)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    said = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        if any(name in line for name in names) or str(folder) in line
    ]
    return said + ([f"exit status {result.returncode}"] if result.returncode else [])


def _rendered(tmp_path: Path) -> list[str]:
    names = []
    for unit in UNITS:
        name = f"fedpark-{unit}.service"
        (tmp_path / name).write_text(_render((UNIT_DIR / name).read_text()))
        names.append(name)
    return names


def test_every_unit_is_there() -> None:
    assert sorted(p.name for p in UNIT_DIR.glob("*.service")) == sorted(
        f"fedpark-{unit}.service" for unit in UNITS
    )


def test_the_units_verify_cleanly(tmp_path: Path) -> None:
    assert Path(sys.prefix, "bin", "fedpark").is_file(), "run the tests in FedPark's venv"
    names = _rendered(tmp_path)
    assert problems(tmp_path, names) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("ProtectHome=yes", "ProtectHome=yes\nProtectHomes=yes"), "Unknown key"),
        (("[Service]", "[Servise]"), "Unknown section"),
        ((f"{INSTALL}/bin/fedpark", f"{INSTALL}/bin/fedpark-nope"), "not executable"),
        (("Restart=on-failure", "Restart=sometimes"), "Failed to parse"),
    ],
)
def test_a_broken_unit_is_caught(tmp_path: Path, change: tuple[str, str], expected: str) -> None:
    """The controls: each kind of mistake makes `problems` non-empty."""
    text = (UNIT_DIR / "fedpark-hub.service").read_text()
    assert change[0] in text
    (tmp_path / "fedpark-hub.service").write_text(_render(text.replace(*change, 1)))
    said = problems(tmp_path, ["fedpark-hub.service"])
    assert any(expected in line for line in said), said


def _settings(text: str) -> dict[str, list[str]]:
    """Each key's values in a unit, continuation lines joined."""
    values: dict[str, list[str]] = {}
    for line in text.replace("\\\n", " ").splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            values.setdefault(key.strip(), []).append(value.strip())
    return values


@pytest.mark.parametrize("unit", UNITS)
def test_hardening(unit: str) -> None:
    values = _settings((UNIT_DIR / f"fedpark-{unit}.service").read_text())
    one = {key: found[-1] for key, found in values.items()}
    assert one["User"] == one["Group"] == "fedpark"
    for key in ("NoNewPrivileges", "PrivateTmp", "ProtectHome", "PrivateDevices"):
        assert one[key] == "yes", key
    assert one["ProtectSystem"] == "strict"
    assert one["CapabilityBoundingSet"] == ""
    assert one["Restart"] in ("on-failure", "always")
    # Writable: the unit's own data dir and nothing else (the gate keeps no state).
    assert "ReadWritePaths" not in values
    state = {"gate": None, "factory": "fedpark-factory"}.get(unit, "fedpark")
    assert one.get("StateDirectory") == state
    assert all(path.lstrip("-").startswith("/etc/fedpark/") for path in values["EnvironmentFile"])
    command = one["ExecStart"].split()
    assert command[0] == f"{INSTALL}/bin/fedpark"
    # Secrets come as files: never a token, key or password on the command line.
    assert not re.search(r"--(token|password|secret)(\s|=)", one["ExecStart"])


def test_secrets_come_as_credentials() -> None:
    factory = _settings((UNIT_DIR / "fedpark-factory.service").read_text())
    assert factory["LoadCredential"] == ["token:/etc/fedpark/factory.token"]
    assert "--token-file ${CREDENTIALS_DIRECTORY}/token" in factory["ExecStart"][0]
    for unit in ("superlink", "gate"):
        values = _settings((UNIT_DIR / f"fedpark-{unit}.service").read_text())
        assert f"{unit}.key:/etc/fedpark/pki/{unit}.key" in values["LoadCredential"]
        assert f"--keyfile ${{CREDENTIALS_DIRECTORY}}/{unit}.key" in values["ExecStart"][0]


def test_the_order_between_them() -> None:
    hub = _settings((UNIT_DIR / "fedpark-hub.service").read_text())
    after = " ".join(hub["After"]).split()
    for first in ("fedpark-storage.service", "fedpark-superlink.service", "postgresql.service"):
        assert first in after
    gate = _settings((UNIT_DIR / "fedpark-gate.service").read_text())
    assert "fedpark-superlink.service" in " ".join(gate["After"]).split()


def test_exposure_stays_low(tmp_path: Path) -> None:
    """systemd's own score of the sandbox (0 best, 10 worst): 'OK' means under 4."""
    names = _rendered(tmp_path)
    for name in names:
        result = subprocess.run(
            [_analyze(), "security", "--offline=yes", "--threshold=39", str(tmp_path / name)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stdout[-400:] + result.stderr[-400:]
    # The control: the hub's unit without its sandbox scores above the threshold.
    bare = [
        line
        for line in (tmp_path / names[1]).read_text().splitlines()
        if "=" not in line
        or line.split("=")[0] in ("Description", "Type", "User", "Group", "ExecStart")
    ]
    (tmp_path / "bare.service").write_text("\n".join(bare) + "\n")
    result = subprocess.run(
        [_analyze(), "security", "--offline=yes", "--threshold=39", str(tmp_path / "bare.service")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
