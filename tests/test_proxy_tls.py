"""Upstream TLS: the system trust store by default, a profile's ca_bundle, verify = false."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from proxy_support import Backend, bearer, mint, profile_text, run_backend, run_proxy

pytestmark = pytest.mark.usefixtures("keyset")


def self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rrdev test backend")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
async def tls_backend(tmp_path: Path) -> AsyncIterator[tuple[Backend, Path]]:
    cert, key = self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    async with run_backend(context) as backend:
        yield backend, cert


@pytest.mark.parametrize(
    ("target", "status"),
    [("", 502), ("ca_bundle = '{cert}'", 200), ("verify = false", 200)],
    ids=["untrusted", "ca_bundle", "verify-off"],
)
async def test_upstream_tls(
    tmp_path: Path, tls_backend: tuple[Backend, Path], target: str, status: int
) -> None:
    backend, cert = tls_backend
    profile = tmp_path / "p.toml"
    profile.write_text(profile_text(backend.url, target=target.format(cert=cert)))
    async with run_proxy(profile) as proxy, httpx.AsyncClient() as client:
        response = await client.get(f"{proxy.url}/api/v1/products", headers=bearer(mint()))
        warnings = proxy.app.info().warnings
    assert response.status_code == status
    if status == 502:
        body = response.json()
        assert body["reason"] == "upstream_unreachable"
        assert "not trusted" in body["message"] and "ca_bundle" in body["hint"]
    if "verify" in target:
        assert any("verify = false" in w for w in warnings)


def test_unreadable_ca_bundle_is_a_profile_error(tmp_path: Path) -> None:
    from rrdev.core.errors import ProfileError
    from rrdev.core.profile import load_profile
    from rrdev.servers.proxy import ProxyApp

    profile = tmp_path / "p.toml"
    profile.write_text(profile_text("https://127.0.0.1:1", target="ca_bundle = '/nonexistent.pem'"))
    with pytest.raises(ProfileError) as error:
        ProxyApp(load_profile(profile))
    assert "target.ca_bundle" in str(error.value) and str(profile) in str(error.value)
