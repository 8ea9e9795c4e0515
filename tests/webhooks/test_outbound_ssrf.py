"""The SSRF guard: every refused kind of address at save time and at send time; pinning."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.errors import Invalid
from app.extensions import db
from app.webhooks import http, outbound, ssrf
from app.webhooks.outbound_models import WebhookAttempt, WebhookDelivery
from tests.webhooks import outbound_helpers as helpers
from tests.webhooks.outbound_helpers import owner, run_jobs

receiver, webhook_env = helpers.receiver, helpers.webhook_env  # fixtures

REFUSED = [
    ("127.0.0.1", "loopback"),
    ("::1", "loopback"),
    ("10.1.2.3", "private"),
    ("172.16.5.4", "private"),
    ("192.168.1.1", "private"),
    ("169.254.169.254", "cloud metadata"),
    ("fd00:ec2::254", "cloud metadata"),
    ("169.254.10.1", "link-local"),
    ("fe80::1", "link-local"),
    ("100.64.0.1", "carrier-grade NAT"),
    ("2002:a00:1::1", "6to4 of private 10.0.0.1"),
    ("2002:7f00:1::1", "6to4 of loopback 127.0.0.1"),
    ("64:ff9b::a00:1", "NAT64 of private 10.0.0.1"),
    ("64:ff9b::a9fe:a9fe", "NAT64 of cloud metadata 169.254.169.254"),
    ("::ffff:10.0.0.1", "IPv4-mapped"),
    ("::ffff:8.8.8.8", "IPv4-mapped"),
    ("fc00::1", "unique-local"),
    ("fd12:3456::1", "unique-local"),
    ("224.0.0.1", "multicast"),
    ("ff02::1", "multicast"),
    ("0.0.0.0", "unspecified"),  # noqa: S104 - an address refused, not bound
    ("::", "unspecified"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "broadcast"),
]
PUBLIC = ["93.184.216.34", "2606:4700::6810:84e5", "2002:5db8:d822::1", "64:ff9b::5db8:d822"]


def _host(address: str) -> str:
    return f"[{address}]" if ":" in address else address


@pytest.mark.parametrize(("address", "why"), REFUSED)
def test_refused_addresses_are_rejected_at_save_time(ctx, make, monkeypatch, address, why):
    from app.webhooks import catalogue

    catalogue.ensure_event_types()
    monkeypatch.setitem(ctx.config, "WEBHOOKS_ALLOWED_SUBNETS", [])
    tenant = make.tenant()
    for url in (f"https://{_host(address)}/hook", "https://hooks.example.test/hook"):
        monkeypatch.setattr(ssrf, "_resolve", lambda host, port, a=address: [a])
        with pytest.raises(Invalid) as caught:
            outbound.create_endpoint(owner(tenant), tenant.id, {"url": url})
        assert why in caught.value.errors["url"]
    assert ssrf.address_refusal(__import__("ipaddress").ip_address(address)) == why


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_accepted(ctx, monkeypatch, address):
    monkeypatch.setattr(ssrf, "_resolve", lambda host, port: [address])
    destination = ssrf.check("https://hooks.example.test:8443/in?x=1", ctx.config)
    assert (destination.address, destination.port, destination.target) == (address, 8443, "/in?x=1")
    assert destination.host_header == "hooks.example.test:8443"


def test_a_name_with_any_refused_address_is_refused(ctx, monkeypatch):
    monkeypatch.setattr(ssrf, "_resolve", lambda host, port: ["93.184.216.34", "10.0.0.1"])
    with pytest.raises(ssrf.BlockedDestination):
        ssrf.check("https://hooks.example.test/", ctx.config)


@pytest.mark.parametrize("url", ["http://93.184.216.34/", "ftp://93.184.216.34/", "https://user:pw@93.184.216.34/",
                                 "https:///nohost", "not a url", "https://93.184.216.34:99999/", ""])
def test_bad_urls_and_plain_http_are_refused(ctx, monkeypatch, url):
    monkeypatch.setitem(ctx.config, "WEBHOOKS_ALLOW_HTTP", False)
    with pytest.raises(ssrf.BlockedDestination):
        ssrf.check(url, ctx.config)


def test_allowed_subnets_let_private_addresses_through(ctx, monkeypatch):
    monkeypatch.setitem(ctx.config, "WEBHOOKS_ALLOWED_SUBNETS", ["10.0.0.0/8"])
    assert ssrf.check("https://10.1.2.3/", ctx.config).address == "10.1.2.3"
    with pytest.raises(ssrf.BlockedDestination):
        ssrf.check("https://192.168.0.1/", ctx.config)


@pytest.mark.parametrize(("address", "why"), [(a, w) for a, w in REFUSED if not a.startswith("127.")])
def test_refused_addresses_are_rejected_at_send_time(webhook_env, make, monkeypatch, receiver, address, why):
    """Saved while the name pointed at the (allowed) receiver; by send time DNS says something else."""
    tenant = make.tenant()
    monkeypatch.setattr(ssrf, "_resolve", lambda host, port: ["127.0.0.1"])
    outbound.create_endpoint(owner(tenant), tenant.id, {"url": f"http://hooks.example.test:{receiver.port}/hook"})
    monkeypatch.setattr(ssrf, "_resolve", lambda host, port: [address])
    outbound.publish(tenant.id, "member.added", {"n": 1})
    run_jobs()
    assert receiver.requests == []
    attempt = db.session.scalar(select(WebhookAttempt))
    assert attempt.http_status is None and "Blocked" in attempt.error and why in attempt.error
    assert db.session.scalar(select(WebhookDelivery)).status == "failed"


def test_the_connection_is_pinned_to_the_checked_address(webhook_env, make, monkeypatch, receiver):
    """The name is resolved once, by the guard; the request goes to that address with the name as Host."""
    tenant = make.tenant()
    calls = []

    def resolve(host, port):
        calls.append(host)
        return ["127.0.0.1"]

    monkeypatch.setattr(ssrf, "_resolve", resolve)
    outbound.create_endpoint(owner(tenant), tenant.id, {"url": f"http://hooks.example.test:{receiver.port}/hook"})
    outbound.publish(tenant.id, "member.added", {"n": 1})
    run_jobs()
    assert calls == ["hooks.example.test", "hooks.example.test"]  # at save, and at send; the socket never asks
    assert receiver.requests[0].headers["host"] == f"hooks.example.test:{receiver.port}"
    assert http.pool_manager() is http.pool_manager()


def test_https_connects_to_the_address_with_the_name_for_sni_and_the_certificate(monkeypatch):
    seen = {}
    real = http.pool_manager().connection_from_host

    def spy(host, port, scheme, pool_kwargs=None):
        seen.update(host=host, scheme=scheme, **(pool_kwargs or {}))
        return real(host, port, scheme, pool_kwargs=pool_kwargs)

    monkeypatch.setattr(http.pool_manager(), "connection_from_host", spy)
    destination = ssrf.Destination("https", "hooks.example.test", 1, "/", "127.0.0.1", "hooks.example.test:1")
    response = http.post(destination, b"{}", {}, 2)
    assert response.status is None and "127.0.0.1" in response.error  # nothing listens there
    assert seen == {"host": "127.0.0.1", "scheme": "https", "server_hostname": "hooks.example.test",
                    "assert_hostname": "hooks.example.test"}
