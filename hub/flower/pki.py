"""FedPark's own certificate authority for the park's Flower control plane.

``fedpark pki init`` makes the park's CA; ``fedpark pki issue`` signs the server certificates
of the SuperLink and of the Fleet gate. Factories pin the CA (the hub hands it out when they
join), so only certificates the park issued are trusted. Keys are EC P-384, written 0600.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from fedpark.hub.errors import ConfigurationError
from fedpark.hub.services.bootstrap import write_secret_file

CA_CERT, CA_KEY = "ca.pem", "ca.key"


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    write_secret_file(path, pem.decode())


def init_ca(folder: Path, name: str = "FedPark park CA", days: int = 3650) -> Path:
    """Create the park's CA in ``folder``; refuses to replace an existing one."""
    folder.mkdir(parents=True, exist_ok=True)
    if (folder / CA_KEY).exists() or (folder / CA_CERT).exists():
        raise ConfigurationError(f"{folder} already holds a CA: keep it, or use another folder")
    key = ec.generate_private_key(ec.SECP384R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA384())
    )
    _write_key(folder / CA_KEY, key)
    (folder / CA_CERT).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return folder / CA_CERT


def _load_ca(folder: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    try:
        cert = x509.load_pem_x509_certificate((folder / CA_CERT).read_bytes())
        key = serialization.load_pem_private_key((folder / CA_KEY).read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"no usable CA in {folder} (`fedpark pki init`): {exc}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ConfigurationError(f"{folder / CA_KEY} is not an EC key")
    return cert, key


def _alt_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def issue(folder: Path, name: str, hosts: Sequence[str], days: int = 825) -> tuple[Path, Path]:
    """A server certificate for ``hosts`` (DNS names or IP addresses), signed by the CA in
    ``folder``: ``folder/name.pem`` (with the CA appended) and ``folder/name.key``."""
    if not hosts:
        raise ConfigurationError("name at least one --host the certificate is for")
    if not name.replace("-", "").isalnum():
        raise ConfigurationError(f"certificate name {name!r}: use letters, digits and dashes")
    ca_cert, ca_key = _load_ca(folder)
    key = ec.generate_private_key(ec.SECP384R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(min(now + dt.timedelta(days=days), ca_cert.not_valid_after_utc))
        .add_extension(x509.SubjectAlternativeName([_alt_name(h) for h in hosts]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA384())
    )
    cert_path, key_path = folder / f"{name}.pem", folder / f"{name}.key"
    key_path.unlink(missing_ok=True)
    _write_key(key_path, key)
    cert_path.write_bytes(
        cert.public_bytes(serialization.Encoding.PEM)
        + ca_cert.public_bytes(serialization.Encoding.PEM)
    )
    return cert_path, key_path
