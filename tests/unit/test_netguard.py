"""The SSRF guard as plain functions: the allow-list, address classes, and requests pinned to the checked address."""

from __future__ import annotations

import httpx
import pytest

from engine.integrations import netguard
from engine.integrations.netguard import HostNotAllowed, Policy, check_url_static, resolve_checked

PUBLIC_ONLY = Policy.from_entries(["*"])


@pytest.mark.parametrize("url", [
    "http://127.0.0.1/", "http://127.1.2.3:8080/", "http://[::1]/", "http://localhost:8000/", "http://app.localhost/",
    "http://10.0.0.1/", "http://172.16.5.4/", "http://192.168.1.1/", "http://169.254.169.254/latest/meta-data/",
    "http://100.64.0.1/", "http://0.0.0.0/", "http://[::ffff:127.0.0.1]/", "http://[fe80::1]/", "http://[fd00::1]/",
    "http://224.0.0.1/", "http://metadata.google.internal/", "ftp://example.org/", "gopher://example.org/",
])
def test_internal_addresses_names_and_other_schemes_are_refused_by_default(url):
    assert check_url_static(url, PUBLIC_ONLY) is not None


@pytest.mark.parametrize("url", ["https://api.openai.com/v1", "http://93.184.216.34/", "https://[2606:4700::1111]/"])
def test_public_hosts_and_addresses_pass_the_static_check(url):
    assert check_url_static(url, PUBLIC_ONLY) is None


def test_listed_names_patterns_addresses_and_ranges_are_allowed_and_nothing_else_without_star():
    policy = Policy.from_entries(["api.partner.test", "*.corp.test", "10.0.0.0/8", "::1"])
    assert check_url_static("https://api.partner.test/x", policy) is None
    assert check_url_static("https://deep.svc.corp.test/x", policy) is None
    assert check_url_static("http://10.20.30.40/", policy) is None
    assert check_url_static("http://[::1]:9000/", policy) is None
    assert "not in WEFT_HTTP_ALLOWED_HOSTS" in check_url_static("https://example.org/", policy)
    assert check_url_static("http://11.0.0.1/", policy) is not None
    assert check_url_static("http://corp.test/", policy) is not None  # "*.corp.test" means subdomains only


def test_resolution_is_checked_for_names_that_resolve_to_loopback():
    with pytest.raises(HostNotAllowed) as err:
        resolve_checked("localhost", 80, Policy.from_entries(["*", "*.localhost"]))
    assert "loopback" in str(err.value)
    # Named explicitly, a host is allowed whatever it resolves to.
    assert resolve_checked("localhost", 80, Policy.from_entries(["localhost"])) in ("127.0.0.1", "::1")


def test_requests_go_to_the_checked_address_with_the_name_in_host_and_sni(settings):
    settings.WEFT_HTTP_ALLOWED_HOSTS = ["localhost"]
    with httpx.Client() as client:
        request = netguard._pinned_request(client, "GET", "https://localhost:8443/path?q=1", {"X-A": "1"}, None,
                                           netguard.policy(), True)
    assert request.url.host in ("127.0.0.1", "::1") and request.url.port == 8443
    assert request.url.path == "/path" and request.url.query == b"q=1"
    assert request.headers["host"] == "localhost:8443" and request.headers["x-a"] == "1"
    assert request.extensions["sni_hostname"] == "localhost"


def test_retry_after_accepts_seconds_and_http_dates():
    assert netguard.retry_after_seconds("7") == 7.0
    assert netguard.retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    assert netguard.retry_after_seconds("soon") is None
