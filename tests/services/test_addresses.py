"""Which address a request counts against: the peer, or what a trusted proxy forwarded."""

from __future__ import annotations

import pytest

from iris_reflex.services.addresses import UNKNOWN_ADDRESS, client_address
from iris_reflex.settings import get_settings


@pytest.fixture
def proxies(monkeypatch: pytest.MonkeyPatch):
    def configure(value: str) -> None:
        monkeypatch.setattr(get_settings(), "trusted_proxies", value)

    return configure


def test_without_trusted_proxies_the_header_is_ignored(proxies):
    proxies("")
    assert client_address("203.0.113.5", "192.0.2.7") == "203.0.113.5"


def test_a_header_from_an_untrusted_peer_is_ignored(proxies):
    proxies("10.0.0.1")
    assert client_address("203.0.113.5", "192.0.2.7") == "203.0.113.5"


def test_a_trusted_proxy_names_the_rightmost_address_that_is_not_a_proxy(proxies):
    proxies("10.0.0.0/8,fd00::/8")
    assert client_address("10.0.0.1", "192.0.2.66, 198.51.100.4, 10.2.3.4") == "198.51.100.4"
    assert client_address("fd00::1", "2001:db8::7") == "2001:db8::7"


def test_when_every_hop_is_a_proxy_the_leftmost_is_the_closest_known(proxies):
    proxies("10.0.0.0/8")
    assert client_address("10.0.0.1", "10.9.9.9, 10.0.0.2") == "10.9.9.9"


def test_a_missing_peer_is_unknown_and_values_are_cut_to_the_column(proxies):
    proxies("10.0.0.1")
    assert client_address(None, None) == UNKNOWN_ADDRESS
    assert client_address("", "192.0.2.7") == UNKNOWN_ADDRESS
    assert len(client_address("10.0.0.1", "x" * 500)) == 64


def test_a_bad_proxy_setting_is_an_error_not_a_silent_trust(proxies):
    proxies("not-an-address")
    with pytest.raises(ValueError):
        client_address("203.0.113.5", "192.0.2.7")
