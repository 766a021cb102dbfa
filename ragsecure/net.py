"""The one helper that decides a request's client IP, trusting only the configured number of proxies."""

import functools
import ipaddress

from django.http import HttpRequest

from ragsecure.conf import ragsecure_settings

# The WSGI environ key the server sets to a verified TLS client certificate's subject (mTLS). Not an HTTP_ key,
# so no request header can set it.
CLIENT_CERT_SUBJECT = "ragsecure.client_cert_subject"


def _parse_ip(value: str) -> str | None:
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


# Addresses repeat from request to request; long values (never an address) are not remembered.
_parse_ip_memo = functools.lru_cache(maxsize=4096)(_parse_ip)


def _valid_ip(value: str) -> str | None:
    return _parse_ip_memo(value) if len(value) <= 64 else None


def client_ip(request: HttpRequest) -> str:
    """The client address: REMOTE_ADDR, or with N trusted proxies the N-th X-Forwarded-For entry from the right.

    The leftmost entries are whatever the client sent and are never trusted. Decided once per request (the
    limiters, the screen and the audit entry all ask).
    """
    known = request.__dict__.get("_ragsecure_client_ip")
    if known is None:
        known = request._ragsecure_client_ip = _client_ip(request)
    return known


def _client_ip(request: HttpRequest) -> str:
    remote = _valid_ip(request.META.get("REMOTE_ADDR", "")) or "0.0.0.0"  # noqa: S104 - a placeholder address, never bound
    trusted = int(ragsecure_settings.TRUSTED_PROXIES or 0)
    if trusted <= 0:
        return remote
    # Split from the right: only the entries our own proxies appended matter, however
    # much the client padded the header on the left.
    hops = request.META.get("HTTP_X_FORWARDED_FOR", "").rsplit(",", trusted)
    if len(hops) < trusted:
        return remote
    return _valid_ip(hops[-trusted]) or remote


def header_text(request: HttpRequest, name: str) -> str:
    """A request header as text: WSGI hands headers over as Latin-1, so UTF-8 bytes are decoded again (invalid ones replaced)."""
    raw = request.META.get(name, "")
    try:
        return raw.encode("latin-1").decode("utf-8", errors="replace")
    except UnicodeEncodeError:
        return raw  # already text (a test client, or a server that decoded it)


def client_certificate_subject(request: HttpRequest) -> str | None:
    """The subject of the client's verified TLS certificate, when the server terminated mTLS itself."""
    subject = request.META.get(CLIENT_CERT_SUBJECT)
    return subject if isinstance(subject, str) and subject else None
