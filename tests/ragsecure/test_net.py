"""The client IP helper: REMOTE_ADDR unless trusted proxies vouch for an X-Forwarded-For entry, never the leftmost."""

import pytest
from django.test import RequestFactory

from ragsecure.net import client_ip

PROXY = "10.0.0.2"
SPOOFED = "6.6.6.6"
CLIENT = "203.0.113.7"


@pytest.fixture
def trusted_proxies(settings):
    def set_count(count: int) -> None:
        settings.RAGSECURE = {**settings.RAGSECURE, "TRUSTED_PROXIES": count}

    return set_count


def request_from(remote: str = PROXY, forwarded: str | None = None):
    extra = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return RequestFactory().get("/api/v1/auth/me/", **extra)


def test_remote_addr_by_default():
    assert client_ip(request_from(remote=CLIENT)) == CLIENT


def test_spoofed_forwarded_for_ignored_without_trusted_proxies(trusted_proxies):
    trusted_proxies(0)
    assert client_ip(request_from(remote=CLIENT, forwarded=SPOOFED)) == CLIENT


def test_one_proxy_takes_rightmost_entry(trusted_proxies):
    trusted_proxies(1)
    assert client_ip(request_from(forwarded=f"{SPOOFED}, {CLIENT}")) == CLIENT


def test_one_proxy_never_takes_leftmost_entry(trusted_proxies):
    trusted_proxies(1)
    assert client_ip(request_from(forwarded=f"{SPOOFED},1.1.1.1, {CLIENT}")) == CLIENT


def test_two_proxies_take_second_from_right(trusted_proxies):
    trusted_proxies(2)
    assert client_ip(request_from(forwarded=f"{SPOOFED}, {CLIENT}, 10.0.0.1")) == CLIENT


def test_fewer_entries_than_proxies_falls_back_to_remote_addr(trusted_proxies):
    trusted_proxies(2)
    assert client_ip(request_from(remote=PROXY, forwarded=CLIENT)) == PROXY


def test_missing_header_with_trusted_proxy_falls_back_to_remote_addr(trusted_proxies):
    trusted_proxies(1)
    assert client_ip(request_from(remote=PROXY)) == PROXY


@pytest.mark.parametrize("entry", ["not-an-ip", "999.1.1.1", "1.2.3.4:8080", "unknown", "<script>", "1.2.3.4 5.6.7.8"])
def test_invalid_trusted_entry_falls_back_to_remote_addr(trusted_proxies, entry):
    trusted_proxies(1)
    assert client_ip(request_from(remote=PROXY, forwarded=f"{SPOOFED}, {entry}")) == PROXY


def test_ipv6_entry_is_normalised(trusted_proxies):
    trusted_proxies(1)
    assert client_ip(request_from(forwarded="2001:DB8:0:0:0:0:0:1")) == "2001:db8::1"


def test_invalid_remote_addr_is_a_placeholder_not_the_header():
    assert client_ip(request_from(remote="garbage", forwarded=SPOOFED)) == "0.0.0.0"


def test_huge_header_of_garbage_answers_remote_addr(trusted_proxies):
    trusted_proxies(1)
    assert client_ip(request_from(remote=PROXY, forwarded="x" * 1_000_000)) == PROXY


def test_huge_spoofed_prefix_cannot_push_out_the_proxy_entry(trusted_proxies):
    # The client pads the header; the trusted proxy appends the real address at the right end.
    trusted_proxies(1)
    padding = ",".join([SPOOFED] * 2000)
    assert client_ip(request_from(forwarded=f"{padding}, {CLIENT}")) == CLIENT


def test_the_client_address_is_decided_once_per_request(settings):
    request = request_from(remote=PROXY, forwarded=f"{SPOOFED}, {CLIENT}")
    settings.RAGSECURE = {**settings.RAGSECURE, "TRUSTED_PROXIES": 1}
    assert client_ip(request) == CLIENT
    request.META["HTTP_X_FORWARDED_FOR"] = "198.51.100.99"  # what the limiters, the screen and the audit saw stays
    assert client_ip(request) == CLIENT
    assert client_ip(request_from(remote=PROXY, forwarded="198.51.100.99")) == "198.51.100.99"


def test_an_overlong_address_is_never_parsed():
    assert client_ip(request_from(remote="1" * 10_000)) == "0.0.0.0"
