"""The door's security counts: one Redis HINCRBY per request (a flood of forgeries writes nothing to the
database), moved into inbound_webhook_counts exactly once, straight into the database while Redis is
down, and read back per day (stored plus not yet moved)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from redis import Redis
from sqlalchemy import func, select

from app import clock
from app.extensions import db
from app.webhooks import inbound_counts, inbound_jobs
from app.webhooks.inbound_models import COUNT_KINDS, InboundWebhookCount
from tests.webhooks.inbound_helpers import SECRET, counts, post_stripe, stripe_event


@pytest.fixture(autouse=True)
def configured(app, monkeypatch):
    monkeypatch.setitem(app.config, "STRIPE_WEBHOOK_SECRET", SECRET)


def _rows() -> dict[tuple[str, str], int]:
    db.session.rollback()  # a fresh read: see what requests and jobs committed (SQLite snapshots too)
    return {(r.provider, r.kind): r.count for r in db.session.scalars(select(InboundWebhookCount))}


def test_refused_requests_are_counted_in_redis_and_moved_exactly_once(ctx, client):
    for _ in range(5):
        post_stripe(client, stripe_event(), signature=None)
    post_stripe(client, stripe_event("evt_1Counted"))
    assert _rows() == {}  # nothing written to the database per request
    assert counts()["signature_failed"] == 5 and counts()["accepted"] == 1  # the page sees them already

    assert inbound_jobs.flush_inbound_counts() == 2
    assert _rows() == {("stripe", "signature_failed"): 5, ("stripe", "accepted"): 1}
    assert inbound_counts.flush_counts() == 0  # run twice: nothing moved twice
    assert _rows() == {("stripe", "signature_failed"): 5, ("stripe", "accepted"): 1}
    assert counts()["signature_failed"] == 5

    post_stripe(client, stripe_event(), signature=None)
    inbound_counts.flush_counts()
    assert _rows()[("stripe", "signature_failed")] == 6  # added to the day's row
    assert db.session.scalar(select(func.count()).select_from(InboundWebhookCount)) == 2


def test_counts_the_database_refuses_are_put_back_for_the_next_flush(ctx, client, monkeypatch):
    from sqlalchemy.exc import OperationalError

    for _ in range(2):
        post_stripe(client, stripe_event(), signature=None)

    def broken(*args, **kwargs):
        raise OperationalError("INSERT", {}, Exception("database went away"))

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(inbound_counts, "_upsert", broken)
        with pytest.raises(OperationalError):
            inbound_counts.flush_counts()
    post_stripe(client, stripe_event(), signature=None)  # counted meanwhile
    assert _rows() == {} and counts()["signature_failed"] == 3
    assert inbound_counts.flush_counts() == 1
    assert _rows() == {("stripe", "signature_failed"): 3}


def test_while_redis_is_down_counts_go_straight_to_the_database(ctx, client, monkeypatch):
    from app import queue as queue_module

    dead = Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2, socket_timeout=0.2)
    monkeypatch.setattr(queue_module, "get_fast_redis", lambda: dead)
    for _ in range(3):
        assert post_stripe(client, stripe_event(), signature=None).status_code == 400
    assert _rows() == {("stripe", "signature_failed"): 3}
    assert counts()["signature_failed"] == 3  # the page reads the database alone


def test_daily_counts_cover_seven_days_newest_first_with_zeros(ctx):
    today = clock.now().date()
    with db.engine.begin() as conn:
        inbound_counts._upsert(conn, today, "stripe", "accepted", 4)
        inbound_counts._upsert(conn, today - timedelta(days=6), "stripe", "stale", 2)
        inbound_counts._upsert(conn, today - timedelta(days=7), "stripe", "stale", 50)  # out of the window
        inbound_counts._upsert(conn, today, "other", "accepted", 1)
    inbound_counts.count("stripe", "duplicate")
    days = inbound_counts.daily_counts(7)
    assert [d for d, _ in days] == [today - timedelta(days=n) for n in range(7)]
    assert all(set(c) == set(COUNT_KINDS) for _, c in days)
    assert days[0][1] == {"accepted": 5, "duplicate": 1, "signature_failed": 0, "stale": 0, "invalid": 0}
    assert days[6][1]["stale"] == 2
    assert inbound_counts.totals(days)["stale"] == 2
    assert inbound_counts.daily_counts(7, provider="stripe")[0][1]["accepted"] == 4


def test_days_are_utc_days_from_the_clock(ctx):
    from datetime import UTC, datetime

    with clock.travel(datetime(2026, 3, 1, 23, 59, 59, tzinfo=UTC)):
        inbound_counts.count("stripe", "stale")
    with clock.travel(datetime(2026, 3, 2, 0, 0, 1, tzinfo=UTC)):
        inbound_counts.count("stripe", "stale")
        inbound_counts.flush_counts()
        days = dict(inbound_counts.daily_counts(2))
    assert days[date(2026, 3, 1)]["stale"] == 1 and days[date(2026, 3, 2)]["stale"] == 1


def test_an_unknown_kind_is_a_programming_error(ctx):
    with pytest.raises(ValueError):
        inbound_counts.count("stripe", "weird")
