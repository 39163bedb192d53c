"""The client's address: REMOTE_ADDR, or X-Forwarded-For's last address when REMOTE_ADDR is a trusted proxy."""

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import RequestFactory

from accounts.addresses import client_address


def request_from(remote_addr: str, forwarded_for: str | None = None):
    headers = {} if forwarded_for is None else {"X-Forwarded-For": forwarded_for}
    return RequestFactory().get("/", REMOTE_ADDR=remote_addr, headers=headers)


class ClientAddressTest:
    def test_client_address_direct_connection_remote_addr(self):
        assert client_address(request_from("203.0.113.7")) == "203.0.113.7"

    def test_client_address_untrusted_peer_forwarded_for_ignored(self):
        assert client_address(request_from("203.0.113.7", "198.51.100.1")) == "203.0.113.7"

    @pytest.mark.parametrize("proxy", ["127.0.0.1", "::1"])
    def test_client_address_behind_default_trusted_proxy_forwarded_for(self, proxy):
        assert client_address(request_from(proxy, "198.51.100.1")) == "198.51.100.1"

    def test_client_address_behind_proxy_rightmost_forwarded_address(self):
        # The client wrote the left part itself; the proxy appended the address it saw.
        assert client_address(request_from("127.0.0.1", "10.9.8.7, 192.0.2.66 ,198.51.100.1")) == "198.51.100.1"

    @pytest.mark.parametrize("forwarded_for", ["", "not-an-address", "198.51.100.1, nonsense", "198.51.100.1,", "unknown"])
    def test_client_address_behind_proxy_bad_forwarded_for_proxy_address(self, forwarded_for):
        assert client_address(request_from("127.0.0.1", forwarded_for)) == "127.0.0.1"

    def test_client_address_behind_proxy_no_forwarded_for_proxy_address(self):
        assert client_address(request_from("127.0.0.1")) == "127.0.0.1"

    def test_client_address_ipv6_forwarded_normalised(self):
        assert client_address(request_from("127.0.0.1", "2001:DB8:0:0::1")) == "2001:db8::1"

    def test_client_address_ipv4_mapped_peer_is_ipv4(self):
        assert client_address(request_from("::ffff:127.0.0.1", "198.51.100.1")) == "198.51.100.1"

    def test_client_address_trusted_proxies_setting_networks(self, settings):
        settings.TABULA_TRUSTED_PROXIES = ["10.0.0.0/24"]
        assert client_address(request_from("10.0.0.5", "198.51.100.1")) == "198.51.100.1"
        assert client_address(request_from("10.0.1.5", "198.51.100.1")) == "10.0.1.5"
        assert client_address(request_from("127.0.0.1", "198.51.100.1")) == "127.0.0.1"

    def test_client_address_trusted_proxies_setting_malformed_refused(self, settings):
        settings.TABULA_TRUSTED_PROXIES = ["nginx.local"]
        with pytest.raises(ImproperlyConfigured, match="TABULA_TRUSTED_PROXIES"):
            client_address(request_from("127.0.0.1"))

    def test_client_address_no_remote_addr_none(self):
        assert client_address(request_from("", "198.51.100.1")) is None
