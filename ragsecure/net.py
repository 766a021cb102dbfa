"""The one helper that decides a request's client IP, trusting only the configured number of proxies."""

import ipaddress

from django.http import HttpRequest

from ragsecure.conf import ragsecure_settings


def _valid_ip(value: str) -> str | None:
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def client_ip(request: HttpRequest) -> str:
    """The client address: REMOTE_ADDR, or with N trusted proxies the N-th X-Forwarded-For entry from the right.

    The leftmost entries are whatever the client sent and are never trusted.
    """
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
