"""The unit's HTTPS identity: a local certificate authority and a server certificate.

Browsers give camera and microphone only to secure contexts, so the admin page and the join
page are served over HTTPS. At first start the unit makes its own CA (kept under
``<data_dir>/tls/``, key 0600) and a server certificate for its hostname, ``<name>.local``
and its addresses; the certificate is re-issued before it expires and when those names
change. The admin may download the CA certificate to trust it, or upload a certificate and
key of their own, which then take precedence until removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import logging
import ssl
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from edge_common.atomic import atomic_write

from .errors import CertificateRejected

log = logging.getLogger(__name__)

CA_LIFETIME = dt.timedelta(days=3650)
# Browsers refuse leaf certificates valid for more than 398 days, even from a private CA.
SERVER_LIFETIME = dt.timedelta(days=397)
RENEW_BEFORE = dt.timedelta(days=30)
MAX_UPLOAD_BYTES = 64 * 1024


@dataclass(frozen=True)
class TlsPaths:
    """Files the HTTPS listener loads. ``custom`` is true for an uploaded certificate."""

    ca_cert: Path
    cert: Path
    key: Path
    custom: bool


def tls_dir(data_dir: Path) -> Path:
    """Where the TLS files live."""
    return Path(data_dir) / "tls"


def _paths(data_dir: Path) -> dict[str, Path]:
    d = tls_dir(data_dir)
    return {
        "ca_cert": d / "ca.crt",
        "ca_key": d / "ca.key",
        "cert": d / "server.crt",
        "key": d / "server.key",
        "custom_cert": d / "custom.crt",
        "custom_key": d / "custom.key",
    }


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _make_ca(data_dir: Path, unit_name: str) -> None:
    p = _paths(data_dir)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "edge-appliance"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{unit_name[:40]} local CA"),
        ]
    )
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + CA_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
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
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    # Key first: a CA certificate without its key on disk would be useless after a crash.
    atomic_write(p["ca_key"], _key_pem(key), mode=0o600)
    atomic_write(p["ca_cert"], cert.public_bytes(serialization.Encoding.PEM), mode=0o644)


def _wanted_sans(hostnames: Iterable[str], addresses: Iterable[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    seen: set[str] = set()
    for h in hostnames:
        h = h.strip().lower().rstrip(".")
        if h and h not in seen:
            seen.add(h)
            names.append(x509.DNSName(h))
    for a in addresses:
        try:
            ip = ipaddress.ip_address(a.split("%", 1)[0])
        except ValueError:
            continue
        if str(ip) not in seen:
            seen.add(str(ip))
            names.append(x509.IPAddress(ip))
    return names


def _san_set(cert: x509.Certificate) -> set[str]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return {str(n.value).lower() for n in ext}


def _issue_server(data_dir: Path, sans: list[x509.GeneralName]) -> None:
    p = _paths(data_dir)
    ca_cert = x509.load_pem_x509_certificate(p["ca_cert"].read_bytes())
    ca_key = serialization.load_pem_private_key(p["ca_key"].read_bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    first = next((str(n.value) for n in sans if isinstance(n, x509.DNSName)), "edge-appliance")
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, first[:64])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + SERVER_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    chain = cert.public_bytes(serialization.Encoding.PEM) + ca_cert.public_bytes(
        serialization.Encoding.PEM
    )
    atomic_write(p["key"], _key_pem(key), mode=0o600)
    atomic_write(p["cert"], chain, mode=0o644)


def _needs_reissue(cert_path: Path, key_path: Path, wanted: set[str]) -> bool:
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (FileNotFoundError, ValueError, TypeError):
        return True
    if key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) != cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ):
        return True
    if cert.not_valid_after_utc - _now() < RENEW_BEFORE:
        return True
    return _san_set(cert) != wanted


def ensure_certificates(
    data_dir: Path, hostnames: Sequence[str], addresses: Sequence[str], *, unit_name: str = ""
) -> TlsPaths:
    """Make the CA and server certificate if missing, re-issue if expiring or names changed.

    ``hostnames`` should hold the hostname, ``<name>.local`` and ``localhost``; ``addresses``
    the unit's IP addresses. An uploaded certificate, when present, is returned instead and
    left alone (its owner renews it).
    """
    p = _paths(data_dir)
    try:
        ca = x509.load_pem_x509_certificate(p["ca_cert"].read_bytes())
        ca_ok = p["ca_key"].is_file() and ca.not_valid_after_utc - _now() > RENEW_BEFORE
    except (FileNotFoundError, ValueError):
        ca_ok = False
    if not ca_ok:
        _make_ca(data_dir, unit_name or (hostnames[0] if hostnames else "edge-appliance"))
        with contextlib.suppress(FileNotFoundError):
            p["cert"].unlink()  # issued by the old CA
    sans = _wanted_sans(hostnames, addresses)
    if _needs_reissue(p["cert"], p["key"], {str(n.value).lower() for n in sans}):
        _issue_server(data_dir, sans)
    if p["custom_cert"].is_file() and p["custom_key"].is_file():
        return TlsPaths(p["ca_cert"], p["custom_cert"], p["custom_key"], custom=True)
    return TlsPaths(p["ca_cert"], p["cert"], p["key"], custom=False)


def current_paths(data_dir: Path) -> TlsPaths:
    """The files in use now, without creating or renewing anything."""
    p = _paths(data_dir)
    if p["custom_cert"].is_file() and p["custom_key"].is_file():
        return TlsPaths(p["ca_cert"], p["custom_cert"], p["custom_key"], custom=True)
    return TlsPaths(p["ca_cert"], p["cert"], p["key"], custom=False)


def server_context(paths: TlsPaths) -> ssl.SSLContext:
    """An ``SSLContext`` for the HTTPS listener (TLS 1.2+).

    Keep the object: :func:`reload_context` loads a new certificate into it in place, so the
    listener serves the new one on the next handshake without a restart.
    """
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(paths.cert), str(paths.key))
    return ctx


def reload_context(ctx: ssl.SSLContext, paths: TlsPaths) -> None:
    """Swap the certificate an existing context serves."""
    ctx.load_cert_chain(str(paths.cert), str(paths.key))


def _load_chain(cert_pem: bytes) -> list[x509.Certificate]:
    if len(cert_pem) > MAX_UPLOAD_BYTES:
        raise CertificateRejected("The certificate file is too large.")
    try:
        chain = x509.load_pem_x509_certificates(cert_pem)
    except ValueError:
        raise CertificateRejected("This is not a PEM certificate.") from None
    if not chain:
        raise CertificateRejected("This is not a PEM certificate.")
    return chain


def validate_custom(cert_pem: bytes, key_pem: bytes) -> x509.Certificate:
    """Check an uploaded pair: PEM, unencrypted key that matches, valid now and not a CA."""
    chain = _load_chain(cert_pem)
    leaf = chain[0]
    if len(key_pem) > MAX_UPLOAD_BYTES:
        raise CertificateRejected("The key file is too large.")
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except TypeError:
        raise CertificateRejected("The key is encrypted; upload it without a passphrase.") from None
    except (ValueError, UnsupportedAlgorithm):
        raise CertificateRejected("This is not a PEM private key.") from None
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    if key.public_key().public_bytes(der, spki) != leaf.public_key().public_bytes(der, spki):
        raise CertificateRejected("The key does not match the certificate.")
    now = _now()
    if leaf.not_valid_after_utc <= now:
        raise CertificateRejected("The certificate has expired.")
    if leaf.not_valid_before_utc > now:
        raise CertificateRejected("The certificate is not valid yet.")
    return leaf


def install_custom(data_dir: Path, cert_pem: bytes, key_pem: bytes) -> TlsPaths:
    """Validate and store an uploaded certificate and key; they take precedence from now on."""
    validate_custom(cert_pem, key_pem)
    p = _paths(data_dir)
    # The certificate is written last: ensure_certificates only uses the pair when both exist.
    atomic_write(p["custom_key"], key_pem, mode=0o600)
    atomic_write(p["custom_cert"], cert_pem, mode=0o644)
    return TlsPaths(p["ca_cert"], p["custom_cert"], p["custom_key"], custom=True)


def remove_custom(data_dir: Path) -> None:
    """Go back to the unit's own CA-issued certificate."""
    p = _paths(data_dir)
    for key in ("custom_cert", "custom_key"):
        with contextlib.suppress(FileNotFoundError):
            p[key].unlink()


def erase(data_dir: Path) -> None:
    """Factory reset: forget every TLS file (a new CA is made at the next start)."""
    for path in _paths(data_dir).values():
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def describe(cert_path: Path) -> dict[str, str]:
    """Facts about a certificate for the TLS page (subject, issuer, names, expiry, SHA-256)."""
    try:
        cert = _load_chain(cert_path.read_bytes())[0]
    except (FileNotFoundError, CertificateRejected):
        return {}
    return {
        "Subject": cert.subject.rfc4514_string(),
        "Issuer": cert.issuer.rfc4514_string(),
        "Names": ", ".join(sorted(_san_set(cert))),
        "Valid until": cert.not_valid_after_utc.strftime("%Y-%m-%d %H:%M UTC"),
        "SHA-256": fingerprint(cert),
    }


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 fingerprint as browsers and ``openssl x509 -fingerprint`` show it."""
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def ca_fingerprint(data_dir: Path) -> str:
    """The local CA's fingerprint, for the console to print next to the claim code."""
    try:
        return fingerprint(x509.load_pem_x509_certificate(_paths(data_dir)["ca_cert"].read_bytes()))
    except (FileNotFoundError, ValueError):
        return ""


class TlsManager:
    """Owns the listener's ``SSLContext`` and keeps its certificate current.

    The daemon creates one at start, passes :attr:`context` to its HTTPS ``TCPSite`` and hands
    the manager to :func:`provisioning.setup` so uploads take effect at once. Call
    :meth:`refresh` when the hostname or addresses change (and once a day): it re-issues only
    when needed.
    """

    def __init__(
        self, data_dir: Path, hostnames: Sequence[str], addresses: Sequence[str], unit_name: str
    ) -> None:
        self.data_dir = Path(data_dir)
        self.unit_name = unit_name
        self._hostnames = list(hostnames)
        self._addresses = list(addresses)
        self.paths = ensure_certificates(self.data_dir, hostnames, addresses, unit_name=unit_name)
        self.context = server_context(self.paths)
        # Public information, printed so an admin can check the CA before trusting it.
        log.info("HTTPS CA certificate SHA-256 fingerprint: %s", ca_fingerprint(self.data_dir))

    def refresh(
        self, hostnames: Sequence[str] | None = None, addresses: Sequence[str] | None = None
    ) -> None:
        """Re-check expiry and names; reload the context in place."""
        if hostnames is not None:
            self._hostnames = list(hostnames)
        if addresses is not None:
            self._addresses = list(addresses)
        self.paths = ensure_certificates(
            self.data_dir, self._hostnames, self._addresses, unit_name=self.unit_name
        )
        reload_context(self.context, self.paths)

    def install_custom(self, cert_pem: bytes, key_pem: bytes) -> None:
        """Validate, store and start serving an uploaded pair."""
        install_custom(self.data_dir, cert_pem, key_pem)
        try:
            self.refresh()
        except (ssl.SSLError, OSError):
            # OpenSSL refused a pair cryptography accepted: fall back to the unit's own.
            remove_custom(self.data_dir)
            self.refresh()
            raise CertificateRejected("The certificate and key could not be loaded.") from None

    def remove_custom(self) -> None:
        """Serve the unit's own certificate again."""
        remove_custom(self.data_dir)
        self.refresh()

    async def watch(
        self,
        names: Callable[[], tuple[Sequence[str], Sequence[str]]],
        interval_s: float = 3600.0,
    ) -> None:
        """Re-check every ``interval_s``: renew before expiry and when ``names()`` (hostnames,
        addresses) changes. Run it as a task and cancel it at shutdown.
        """
        while True:
            await asyncio.sleep(interval_s)
            try:
                hostnames, addresses = names()
                await asyncio.to_thread(self.refresh, hostnames, addresses)
            except (OSError, ValueError, ssl.SSLError):
                log.warning("certificate renewal check failed", exc_info=True)
