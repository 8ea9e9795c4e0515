"""GCRA against a real Redis: bursts, refill, all-or-nothing across buckets, headers."""

from __future__ import annotations

import time

import pytest

from app.queue import get_redis
from app.ratelimit.gcra import GCRA, Bucket


@pytest.fixture
def gcra(ctx):
    return GCRA(get_redis())


def test_a_burst_of_the_whole_limit_then_refusal(gcra):
    bucket = Bucket("tenant", "rl:{t1}:tenant:m", limit=5, period=60)
    results = [gcra.check([bucket]).decision for _ in range(6)]
    assert [r.allowed for r in results] == [True] * 5 + [False]
    assert [r.states[0].remaining for r in results[:5]] == [4, 3, 2, 1, 0]
    refused = results[5]
    assert refused.violated == bucket
    assert 11 <= refused.retry_after <= 12  # one request frees up every 60/5 = 12 s


def test_the_bucket_refills_at_the_emission_rate(gcra):
    bucket = Bucket("tenant", "rl:{t1}:tenant:s", limit=10, period=1)  # one every 100 ms
    assert all(gcra.check([bucket]).decision.allowed for _ in range(10))
    assert not gcra.check([bucket]).decision.allowed
    time.sleep(0.25)
    assert [gcra.check([bucket]).decision.allowed for _ in range(3)] == [True, True, False]


def test_a_refusal_by_one_bucket_charges_none(gcra):
    tight = Bucket("key", "rl:{t1}:key:k1:s", limit=1, period=60)
    loose = Bucket("tenant", "rl:{t1}:tenant:s", limit=100, period=60)
    assert gcra.check([tight, loose]).decision.allowed
    refused = gcra.check([tight, loose]).decision
    assert not refused.allowed and refused.violated == tight
    assert refused.states[1].remaining == 98  # the tenant bucket was not charged for the refusal
    assert gcra.check([loose]).decision.states[0].remaining == 98


def test_headers_follow_the_ietf_draft(gcra):
    minute = Bucket("tenant", "rl:{t1}:tenant:m", limit=100, period=60)
    second = Bucket("key", "rl:{t1}:key:s", limit=10, period=1)
    decision = gcra.check([minute, second]).decision
    headers = decision.headers(now_epoch=1_000_000)
    assert headers["RateLimit-Policy"] == '"tenant";q=100;w=60, "key";q=10;w=1'
    assert headers["RateLimit"].startswith('"tenant";r=99;t=')
    assert '"key";r=9;t=1' in headers["RateLimit"]
    assert headers["X-RateLimit-Limit"] == "10" and headers["X-RateLimit-Remaining"] == "9"
    assert "Retry-After" not in headers
    for _ in range(9):
        gcra.check([minute, second])
    refused = gcra.check([minute, second]).decision
    assert refused.headers(now_epoch=1_000_000)["Retry-After"] == "1"


def test_the_highest_allowed_limit_still_counts_down(gcra):
    """A million a second is one request per µs, GCRA's finest step: the headers stay meaningful."""
    bucket = Bucket("tenant", "rl:{t1}:tenant:top", limit=1_000_000, period=1)
    decisions = [gcra.check([bucket]).decision for _ in range(3)]
    assert all(d.allowed and 0 <= d.states[0].remaining < 1_000_000 and 0 < d.states[0].reset <= 1
               for d in decisions)  # (the bucket refills a request every µs: later calls find it full again)
    assert decisions[-1].headers(now_epoch=1_000_000)["RateLimit"].startswith('"tenant";r=999')
