"""The rollup moves usage events from Redis into usage_daily exactly once: every aggregation adds up
to what was sent, in whatever order batches arrive and are rolled up, and a rollup that runs twice,
overlaps another or dies halfway neither loses nor double counts anything."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy.exc import OperationalError

from app.extensions import db
from app.queue import get_redis
from app.usage import rollup
from app.usage.meter import hour_label
from tests.conftest import SETTINGS
from tests.usage.conftest import NOW, daily, define, event, post, roll, used

H = timedelta(hours=1)
TODAY, YESTERDAY = NOW.date().isoformat(), (NOW.date() - timedelta(days=1)).isoformat()


@pytest.fixture
def a(ctx, at_now, tenant_world):
    return tenant_world["a"]


def _send(client, token, batch):
    response = post(client, token, batch)
    assert response.status_code == 202, response.get_data(as_text=True)
    return response.get_json()


def test_count_counts_events_per_day(client, a):
    define("emails_sent", "count")
    _send(client, a["token"], [event(f"t{i}", "emails_sent", NOW - i * H) for i in range(5)]
          + [event("y1", "emails_sent", NOW - 24 * H), event("t0", "emails_sent")])  # t0 again: once
    roll()
    _send(client, a["token"], [event("t9", "emails_sent", NOW - 3 * H)])  # a later batch, an hour rolled up
    roll()
    assert daily(a["tenant"].id, "emails_sent") == {YESTERDAY: 1, TODAY: 6}
    assert used(client, a["token"], "emails_sent") == 7


def test_sum_adds_exact_decimals(client, a):
    define("storage_gb_hours", "sum", "gb", decimals=3)
    values = ["0.1", 0.2, "1.005", 7, "-0.3"]  # strings, floats and integers; a negative correction
    _send(client, a["token"], [event(f"s{i}", "storage_gb_hours", NOW - i * H, gb=v) for i, v in enumerate(values)])
    roll()
    _send(client, a["token"], [event("s9", "storage_gb_hours", NOW - 30 * H, gb="2.5")])
    roll()
    assert daily(a["tenant"].id, "storage_gb_hours") == {YESTERDAY: 2500, TODAY: 8005}
    assert used(client, a["token"], "storage_gb_hours") == Decimal("10.505")  # not 10.504999…


def test_sums_stay_exact_beyond_what_a_double_holds(client, a):
    define("bytes_out", "sum", "bytes")
    big = 10**15  # the largest value an event may carry
    # Past 2^53 a double drops the +1s (9.1e15 + 1 rounds back to 9.1e15): the script adds these one by one.
    _send(client, a["token"], [event(f"b{i}", "bytes_out", bytes=big) for i in range(9)]
          + [event("b9", "bytes_out", bytes=big // 10)] + [event(f"one{i}", "bytes_out", bytes=1) for i in range(3)])
    _send(client, a["token"], [event(f"z{i}", "bytes_out", bytes=big if i % 2 else -big) for i in range(1000)])
    roll()
    assert daily(a["tenant"].id, "bytes_out") == {TODAY: 9_100_000_000_000_003}


def test_max_keeps_the_largest_value_of_the_period(client, a):
    define("seats", "max", "seats")
    _send(client, a["token"], [event("m1", "seats", NOW - 2 * H, seats=5), event("m2", "seats", NOW - H, seats=17),
                               event("m3", "seats", NOW, seats=3)])
    roll()
    _send(client, a["token"], [event("m4", "seats", NOW - 2 * H, seats=10), event("m5", "seats", NOW - 26 * H,
                                                                                   seats=12)])
    roll()
    assert daily(a["tenant"].id, "seats") == {YESTERDAY: 12, TODAY: 17}
    assert used(client, a["token"], "seats") == 17


def test_unique_count_counts_distinct_values_over_the_period_not_per_day(client, a):
    define("active_users", "unique_count", "user")
    _send(client, a["token"], [event("u1", "active_users", NOW - 25 * H, user="alice"),
                               event("u2", "active_users", NOW - 25 * H, user="bob"),
                               event("u3", "active_users", NOW - 2 * H, user="alice"),
                               event("u4", "active_users", NOW - H, user="alice")])
    roll()
    _send(client, a["token"], [event("u5", "active_users", NOW, user="carol"),
                               event("u6", "active_users", NOW, user=42),
                               event("u7", "active_users", NOW - 2 * H, user="42"),  # the same value as 42
                               event("u8", "active_users", NOW - 2 * H, user="alice")])
    roll()
    assert daily(a["tenant"].id, "active_users") == {YESTERDAY: 2, TODAY: 3}  # alice, carol, 42
    assert used(client, a["token"], "active_users") == 4  # alice, bob, carol, 42: not 2 + 3


def test_latest_keeps_the_value_with_the_newest_event_time(client, a):
    define("plan_seats", "latest", "seats")
    _send(client, a["token"], [event("l1", "plan_seats", NOW - 2 * H, seats=4),
                               event("l2", "plan_seats", NOW - H, seats=9)])
    roll()
    # Arriving later but older: ignored. The newest event of the period wins, whichever batch it came in.
    _send(client, a["token"], [event("l3", "plan_seats", NOW - 90 * timedelta(minutes=1), seats=50),
                               event("l4", "plan_seats", NOW - 26 * H, seats=1)])
    roll()
    assert daily(a["tenant"].id, "plan_seats") == {YESTERDAY: 1, TODAY: 9}
    assert used(client, a["token"], "plan_seats") == 9
    _send(client, a["token"], [event("l5", "plan_seats", NOW - timedelta(minutes=10), seats=6)])
    roll()
    assert used(client, a["token"], "plan_seats") == 6


def test_latest_breaks_a_tie_the_same_way_whatever_the_order(client, a):
    define("plan_seats", "latest", "seats")
    _send(client, a["token"], [event("l1", "plan_seats", NOW - H, seats=3)])
    roll()
    _send(client, a["token"], [event("l2", "plan_seats", NOW - H, seats=8), event("l3", "plan_seats", NOW - H,
                                                                                   seats=5)])
    roll()
    assert used(client, a["token"], "plan_seats") == 8


def _three_hours(client, a) -> None:
    """Events in three hours of today: three batches for the rollup."""
    define("emails_sent", "count")
    define("bytes_out", "sum", "bytes")
    define("active_users", "unique_count", "user")
    batch = []
    for hour in range(3):
        at = NOW - hour * H
        batch += [event(f"e{hour}-{i}", "emails_sent", at) for i in range(10)]
        batch += [event(f"b{hour}", "bytes_out", at, bytes=100 + hour),
                  event(f"u{hour}", "active_users", at, user=f"user{hour}")]
    _send(client, a["token"], batch)


EXPECTED = {"emails_sent": 30, "bytes_out": 303, "active_users": 3}


def _totals(tenant_id: str) -> dict[str, int]:
    return {metric: sum(daily(tenant_id, metric).values()) for metric in EXPECTED}


def test_running_the_rollup_twice_counts_nothing_twice(client, a):
    _three_hours(client, a)
    assert roll() == 4  # three hours of events and the hour of the API call that sent them
    assert roll() == 0
    assert _totals(a["tenant"].id) == EXPECTED


def test_a_rollup_whose_commit_fails_is_completed_by_the_next_run(client, a, monkeypatch):
    _three_hours(client, a)
    real_commit, commits = db.session.commit, []

    def commit_failing_the_third_time():  # the API calls' batch, the first hour of events, then this
        commits.append(1)
        if len(commits) == 3:
            raise OperationalError("COMMIT", {}, Exception("server closed the connection unexpectedly"))
        real_commit()

    monkeypatch.setattr(db.session, "commit", commit_failing_the_third_time)
    with pytest.raises(rollup.RollupFailed):
        rollup.rollup_all()
    monkeypatch.undo()
    db.session.expire_all()
    assert _totals(a["tenant"].id) == {"emails_sent": 10, "bytes_out": 102, "active_users": 1}  # one hour in
    assert roll() == 2
    assert _totals(a["tenant"].id) == EXPECTED
    assert roll() == 0
    assert _totals(a["tenant"].id) == EXPECTED


def test_a_rollup_that_died_after_taking_is_completed_and_new_events_wait_their_turn(client, a):
    _three_hours(client, a)
    hour = hour_label(NOW)
    taken = rollup.take_events(get_redis(), a["tenant"].id, hour)  # …and the job dies here
    assert taken["emails_sent|c"] == "10"
    _send(client, a["token"], [event("late", "emails_sent", NOW)])  # lands in a fresh hash meanwhile
    roll()
    roll()
    assert _totals(a["tenant"].id) == EXPECTED | {"emails_sent": 31}


def test_a_rollup_that_died_after_writing_is_not_applied_twice(client, a):
    _three_hours(client, a)
    hour, redis = hour_label(NOW), get_redis()
    assert rollup.apply_events(a["tenant"].id, hour, rollup.take_events(redis, a["tenant"].id, hour))  # then dies
    roll()  # the other two hours; the written one is only cleared
    assert not redis.exists(rollup.events_taking_key(a["tenant"].id, hour))
    assert _totals(a["tenant"].id) == EXPECTED


def test_two_overlapping_rollups_apply_a_batch_once(client, a):
    _three_hours(client, a)
    hour, redis = hour_label(NOW), get_redis()
    slow = rollup.take_events(redis, a["tenant"].id, hour)  # job 1 takes the hour and stalls
    roll()  # job 2 runs in full, finds the same batch in progress and applies it
    assert rollup.apply_events(a["tenant"].id, hour, slow) is False  # job 1 wakes up: already applied
    db.session.expire_all()
    assert _totals(a["tenant"].id) == EXPECTED


def test_one_tenant_failing_does_not_hold_up_the_others(client, a, tenant_world, monkeypatch):
    _three_hours(client, a)
    b = tenant_world["b"]
    _send(client, b["token"], [event("x", "emails_sent")])
    real = rollup.apply_events

    def broken_for_a(tenant_id, hour, aggregates):
        if tenant_id == a["tenant"].id:
            raise OperationalError("INSERT", {}, Exception("deadlock detected"))
        return real(tenant_id, hour, aggregates)

    monkeypatch.setattr(rollup, "apply_events", broken_for_a)
    with pytest.raises(rollup.RollupFailed, match="1 tenant"):
        rollup.rollup_all()
    monkeypatch.undo()
    db.session.expire_all()
    assert daily(b["tenant"].id, "emails_sent") == {TODAY: 1}
    roll()
    assert _totals(a["tenant"].id) == EXPECTED
    assert daily(b["tenant"].id, "emails_sent") == {TODAY: 1}


def test_events_up_to_35_days_late_are_rolled_into_their_own_day(client, a):
    define("emails_sent", "count")
    _send(client, a["token"], [event("now", "emails_sent")])
    roll()
    old = NOW - timedelta(days=35)
    _send(client, a["token"], [event("old", "emails_sent", old)])
    roll()
    assert daily(a["tenant"].id, "emails_sent") == {old.date().isoformat(): 1, TODAY: 1}
    assert used(client, a["token"], "emails_sent") == 1  # February is another period


@pytest.mark.skipif(not SETTINGS["database_url"], reason="row locks between two connections: PostgreSQL only "
                                                            "(SQLite lets one writer in at a time)")
def test_two_rollups_adding_different_hours_to_one_day_both_count(app, client, a, monkeypatch):
    """Two jobs applying different batches to the same day's row at once: the second waits for the
    first and adds to its total instead of overwriting it with a stale one."""
    _three_hours(client, a)
    tenant_id, redis = a["tenant"].id, get_redis()
    assert rollup.apply_events(tenant_id, hour_label(NOW - 2 * H), rollup.take_events(redis, tenant_id,
                                                                                      hour_label(NOW - 2 * H)))
    batches = {name: rollup.take_events(redis, tenant_id, hour_label(NOW - i * H))
               for name, i in (("job1", 1), ("job2", 0))}
    real_commit, job1_writing, job1_may_commit = db.session.commit, threading.Event(), threading.Event()

    def commit():
        if threading.current_thread().name == "job1":
            job1_writing.set()
            job1_may_commit.wait(10)
        real_commit()

    monkeypatch.setattr(db.session, "commit", commit)
    results = {}

    def job():
        name = threading.current_thread().name
        with app.app_context():
            hour = hour_label(NOW - (H if name == "job1" else timedelta(0)))
            results[name] = rollup.apply_events(tenant_id, hour, batches[name])
            db.session.remove()

    first = threading.Thread(target=job, name="job1")
    first.start()
    assert job1_writing.wait(10)
    second = threading.Thread(target=job, name="job2")
    second.start()
    time.sleep(0.5)  # job 2 reads the day's rows now, while job 1 holds them
    job1_may_commit.set()
    first.join(10)
    second.join(10)
    assert results == {"job1": True, "job2": True}
    db.session.expire_all()
    assert _totals(tenant_id) == EXPECTED
