"""mTLS for internal callers, over real TLS: gunicorn.conf.py serving with a server certificate and requiring client
certificates from an internal CA (all generated here with `cryptography`). No certificate or another CA's: refused at
the handshake; a valid one: served, and its subject recorded in the audit entry."""

import datetime
import http.client
import json
import sqlite3
import ssl
import tempfile
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.live import live_server

pytestmark = pytest.mark.redis


def _name(common_name: str) -> x509.Name:
    organization = x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ragsecure-test")
    return x509.Name([organization, x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _issue(subject: str, issuer_key, issuer_name, *, ca: bool = False, server: bool = False, key=None):
    key = key or ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(issuer_name or _name(subject))
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if server:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    elif not ca:
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    return key, builder.sign(issuer_key or key, hashes.SHA256())


def _write(directory: Path, name: str, key, certificate) -> tuple[str, str]:
    key_path, cert_path = directory / f"{name}.key", directory / f"{name}.pem"
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return str(cert_path), str(key_path)


@pytest.fixture(scope="module")
def pki():
    directory = Path(tempfile.mkdtemp(prefix="ragsecure-pki-"))
    ca_key, ca = _issue("internal-ca", None, None, ca=True)
    other_key, other = _issue("other-ca", None, None, ca=True)
    files = {"ca": _write(directory, "ca", ca_key, ca)[0]}
    files["server"] = _write(directory, "server", *_issue("localhost", ca_key, ca.subject, server=True))
    files["client"] = _write(directory, "client", *_issue("billing-service", ca_key, ca.subject))
    files["stranger"] = _write(directory, "stranger", *_issue("billing-service", other_key, other.subject))
    return files


def _context(pki, client: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=pki["ca"])
    if client:
        context.load_cert_chain(*pki[client])
    return context


def _get(port: int, context: ssl.SSLContext, path: str = "/api/v1/auth/me/"):
    connection = http.client.HTTPSConnection("localhost", port, context=context, timeout=10)
    try:
        connection.request("GET", path, headers={"Host": "localhost"})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


@pytest.fixture(scope="module")
def live(pki):
    env = {"RAGSECURE_TLS_CERT": pki["server"][0], "RAGSECURE_TLS_KEY": pki["server"][1], "RAGSECURE_TLS_CLIENT_CA": pki["ca"]}

    def ready(port: int) -> bool:
        return _get(port, _context(pki, "client"), "/healthz")[0] == 200

    with live_server(redis_database=13, env=env, gunicorn_args=("--workers", "1", "--threads", "2"), ready=ready) as server:
        yield server


@pytest.mark.parametrize("client", [None, "stranger"])
def test_a_client_without_a_certificate_of_the_internal_ca_is_refused(live, pki, client):
    with pytest.raises((ssl.SSLError, ConnectionError, http.client.RemoteDisconnected, OSError)):
        _get(live.port, _context(pki, client))


def test_a_valid_client_certificate_is_served_and_audited_with_its_subject(live, pki):
    status, headers, body = _get(live.port, _context(pki, "client"))
    assert status == 401 and json.loads(body)["error"]["code"] == "authentication_failed"  # mTLS says who calls, not who is the user
    with sqlite3.connect(f"{live.workdir}/db.sqlite3") as database:
        (detail,) = database.execute("SELECT detail FROM audit_auditentry WHERE request_id = ?", (headers["X-Request-ID"],)).fetchone()
    assert json.loads(detail)["client_cert"] == "O=ragsecure-test,CN=billing-service"


def test_a_forged_subject_header_is_not_taken_for_a_certificate(live, pki):
    connection = http.client.HTTPSConnection("localhost", live.port, context=_context(pki, "client"), timeout=10)
    try:
        # A sign-in attempt: an entry of its own (a second anonymous 401 of the minute would be counted into a summary).
        body = json.dumps({"username": "nobody", "password": "not-the-password-1"})
        headers = {"Host": "localhost", "Content-Type": "application/json", "ragsecure.client_cert_subject": "CN=admin"}
        connection.request("POST", "/api/v1/auth/token/", body=body, headers=headers)
        response = connection.getresponse()
        request_id = response.getheader("X-Request-ID")
        response.read()
    finally:
        connection.close()
    with sqlite3.connect(f"{live.workdir}/db.sqlite3") as database:
        (detail,) = database.execute("SELECT detail FROM audit_auditentry WHERE request_id = ?", (request_id,)).fetchone()
    assert json.loads(detail)["client_cert"] == "O=ragsecure-test,CN=billing-service"
