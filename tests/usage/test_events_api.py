"""POST /api/v1/usage/events: what a client sees when it reports usage — batches are all or nothing,
limits are stated, event ids make retries safe, and each tenant only ever sees its own numbers."""

from __future__ import annotations

from datetime import timedelta

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from app.usage import events
from tests.usage.conftest import NOW, bearer, current_metrics, daily, define, event, post, roll, used


@pytest.fixture
def world(ctx, at_now, tenant_world):
    define("emails_sent", "count", unit="emails")
    define("storage_gb", "max", "gb", decimals=2, unit="GB")
    return tenant_world


def _fields(response) -> dict[str, str]:
    return {error["field"]: error["message"] for error in response.get_json()["errors"]}


def test_a_batch_is_counted_and_shows_in_current_usage(client, world):
    token = world["a"]["token"]
    response = post(client, token, [event(f"e{i}", "emails_sent") for i in range(3)]
                    + [event("s1", "storage_gb", NOW - timedelta(minutes=5), gb="12.5")])
    assert response.status_code == 202
    assert response.get_json() == {"object": "usage_event_batch", "accepted": 4, "duplicates": 0}
    roll()
    metrics = current_metrics(client, token)
    assert metrics["emails_sent"]["used"] == "3" and metrics["emails_sent"]["unit"] == "emails"
    assert metrics["storage_gb"]["used"] == "12.50"


def test_one_bad_event_refuses_the_whole_batch_and_names_it(client, world):
    token = world["a"]["token"]
    batch = [event("ok1", "emails_sent"), event("ok2", "storage_gb", gb=3),
             event("bad-metric", "no_such_metric"), event("ok3", "emails_sent"),
             event("bad-value", "storage_gb", gb="lots"), event("bad-places", "storage_gb", gb=1.125),
             event("missing", "storage_gb"), {"id": "", "metric": "emails_sent", "colour": "red"}]
    response = post(client, token, batch)
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    errors = _fields(response)
    assert set(errors) == {"events[2].metric", "events[4].properties.gb", "events[5].properties.gb",
                           "events[6].properties.gb", "events[7].id", "events[7].colour"}
    assert "Unknown metric" in errors["events[2].metric"]
    assert errors["events[5].properties.gb"] == "At most 2 decimal places."
    assert "5 of 8 events are not valid; nothing was recorded" in response.get_json()["detail"]
    roll()
    assert daily(world["a"]["tenant"].id, "emails_sent") == {}
    # Nothing was recorded, not even the good events' ids: sent again alone, they all count.
    again = post(client, token, [batch[0], batch[1], batch[3]])
    assert again.get_json()["accepted"] == 3


@pytest.mark.parametrize("size, status", [(1000, 202), (1001, 422), (0, 422)])
def test_at_most_1000_events_per_batch(client, world, size, status):
    response = post(client, world["a"]["token"], [event(f"e{i}", "emails_sent") for i in range(size)])
    assert response.status_code == status
    if status == 422:
        assert _fields(response) == {"events": "Send a list of 1–1,000 events (at most 1,000 per batch)."}
    else:
        assert response.get_json()["accepted"] == 1000


@pytest.mark.parametrize("offset, accepted, message", [
    (-timedelta(days=35), True, None),
    (-timedelta(days=35, seconds=1), False, "More than 35 days in the past."),
    (timedelta(minutes=5), True, None),
    (timedelta(minutes=5, seconds=1), False, "More than 5 minutes in the future."),
])
def test_timestamps_may_be_35_days_old_and_5_minutes_ahead(client, world, offset, accepted, message):
    response = post(client, world["a"]["token"], [event("e1", "emails_sent", NOW + offset)])
    if accepted:
        assert response.status_code == 202
    else:
        assert response.status_code == 422
        assert _fields(response) == {"events[0].timestamp": message}


@pytest.mark.parametrize("stamp", ["2030-03-10 12:00:00", "2030-03-10T12:00:00", "yesterday", 1900000000,
                                   "2030-02-30T12:00:00Z"])
def test_timestamps_must_be_rfc3339_with_a_time_zone(client, world, stamp):
    response = post(client, world["a"]["token"], [event("e1", "emails_sent", stamp)])
    assert response.status_code == 422
    assert "events[0].timestamp" in _fields(response)


def test_offsets_are_honoured_and_the_event_lands_on_its_utc_day(client, world):
    token = world["a"]["token"]
    # 03:30 on the 10th at +05:00 is 22:30 UTC on the 9th.
    assert post(client, token, [event("e1", "emails_sent", "2030-03-10T03:30:00+05:00")]).status_code == 202
    roll()
    assert daily(world["a"]["tenant"].id, "emails_sent") == {"2030-03-09": 1}


@pytest.mark.parametrize("value, message", [
    (True, "Send a number."), ([1], "Send a number."), ("NaN", "Send a finite number."),
    ("1e999999999", "At most 10,000,000,000,000 in size."), ("1e-999999999", "At most 2 decimal places."),
    ("1.000000000000000000000000000000001", "At most 2 decimal places."),
    (10**14, "At most 10,000,000,000,000 in size."),
])
def test_numeric_properties_are_exact_or_refused(client, world, value, message):
    response = post(client, world["a"]["token"], [event("e1", "storage_gb", gb=value)])
    assert response.status_code == 422
    assert _fields(response) == {"events[0].properties.gb": message}


def test_bodies_that_are_not_a_batch(client, world):
    token = world["a"]["token"]
    response = client.post("/api/v1/usage/events", data="{not json", headers={**bearer(token),
                                                                                "Content-Type": "application/json"})
    assert response.status_code == 422
    assert post(client, token, {"events": "emails"}).status_code == 422
    assert _fields(post(client, token, {"events": [event("e", "emails_sent")], "extra": 1})) == {
        "extra": "Unknown field."}
    assert _fields(post(client, token, ["not an event"])) == {"events[0]": "Send an event object."}


def test_duplicates_within_and_across_batches_count_once(client, world):
    token = world["a"]["token"]
    first = post(client, token, [event("e1", "emails_sent"), event("e2", "emails_sent"), event("e1", "emails_sent")])
    assert first.get_json() | {"object": None} == {"object": None, "accepted": 2, "duplicates": 1}
    second = post(client, token, [event("e2", "emails_sent"), event("e3", "emails_sent")])
    assert (second.get_json()["accepted"], second.get_json()["duplicates"]) == (1, 1)
    roll()
    third = post(client, token, [event(f"e{i}", "emails_sent") for i in (1, 2, 3)])  # after the rollup too
    assert (third.get_json()["accepted"], third.get_json()["duplicates"]) == (0, 3)
    roll()
    assert used(client, token, "emails_sent") == 3


def test_a_repeated_id_never_changes_a_value_even_with_another_payload(client, world):
    token = world["a"]["token"]
    post(client, token, [event("s1", "storage_gb", gb=5)])
    assert post(client, token, [event("s1", "storage_gb", gb=500)]).get_json()["duplicates"] == 1
    roll()
    assert used(client, token, "storage_gb") == 5


def test_idempotency_key_replays_the_answer(client, world):
    token = world["a"]["token"]
    batch = [event("e1", "emails_sent"), event("e2", "emails_sent")]
    first = post(client, token, batch, **{"Idempotency-Key": "batch-1"})
    replay = post(client, token, batch, **{"Idempotency-Key": "batch-1"})
    assert replay.headers.get("Idempotent-Replayed") == "true"
    assert replay.get_json() == first.get_json() == {"object": "usage_event_batch", "accepted": 2, "duplicates": 0}
    assert post(client, token, batch[:1], **{"Idempotency-Key": "batch-1"}).status_code == 409


class TestAFailedBatchRetriedCountsOnce:
    """Claiming the ids and counting their events happen in one Redis script: there is no moment at
    which an id is claimed but its event not counted, so whatever fails, a retry counts each event once."""

    BATCH = [event(f"e{i}", "emails_sent") for i in range(5)] + [event("s1", "storage_gb", gb=7)]

    def _fail_script_once(self, monkeypatch, after_running: bool) -> None:
        from redis.commands.core import Script

        original = Script.__call__
        calls = []

        def flaky(script, *args, **kwargs):
            calls.append(1)
            if len(calls) > 1:
                return original(script, *args, **kwargs)
            if after_running:
                original(script, *args, **kwargs)  # the script ran; its answer is lost on the way back
            raise RedisConnectionError("Connection reset by peer")

        monkeypatch.setattr(Script, "__call__", flaky)

    @pytest.mark.parametrize("after_running", [False, True], ids=["before-the-script", "answer-lost"])
    def test_retry_after_a_failure(self, client, world, monkeypatch, after_running):
        token = world["a"]["token"]
        self._fail_script_once(monkeypatch, after_running)
        failed = post(client, token, self.BATCH)
        assert failed.status_code == 503
        assert failed.headers["Retry-After"] == "1"
        assert "Retry the batch" in failed.get_json()["detail"]
        retried = post(client, token, self.BATCH)
        assert retried.status_code == 202
        assert retried.get_json()["accepted"] + retried.get_json()["duplicates"] == 6
        assert retried.get_json()["accepted"] == (0 if after_running else 6)
        roll()
        assert used(client, token, "emails_sent") == 5
        assert used(client, token, "storage_gb") == 7

    def test_a_batch_the_script_refuses_claims_no_id(self, client, world):
        """The script checks everything before its first write: a refused batch leaves no trace."""
        token = world["a"]["token"]
        define("bytes_out", "sum", "bytes")
        big = 10**15
        assert post(client, token, [event(f"b{i}", "bytes_out", bytes=big) for i in range(9)]).status_code == 202
        refused = post(client, token, [event("ok", "bytes_out", bytes=1), event("b-over", "bytes_out", bytes=big),
                                       event("b-over-2", "bytes_out", bytes=big)])
        assert refused.status_code == 422 and "bytes_out" in refused.get_json()["detail"]
        assert post(client, token, [event("ok", "bytes_out", bytes=1)]).get_json()["accepted"] == 1
        roll()
        assert used(client, token, "bytes_out") == 9 * big + 1

    def test_redis_down_answers_503_and_records_nothing(self, client, world, monkeypatch, app):
        token = world["a"]["token"]
        monkeypatch.setitem(app.config, "REDIS_URL", "redis://127.0.0.1:1/0")  # nothing listens there
        response = post(client, token, self.BATCH)
        assert response.status_code == 503
        monkeypatch.undo()
        events.catalog.clear()
        assert post(client, token, self.BATCH).get_json()["accepted"] == 6


def test_a_read_only_key_cannot_report_usage(client, world, make):
    _, read_only = make.api_key(world["a"]["tenant"], scopes=["usage:read"])
    response = post(client, read_only, [event("e1", "emails_sent")])
    assert response.status_code == 403
    assert response.get_json()["missing_scope"] == "usage:write"
    assert post(client, "tnt_live_nope", [event("e1", "emails_sent")]).status_code == 401
    roll()
    assert daily(world["a"]["tenant"].id, "emails_sent") == {}


def test_tenants_never_see_each_others_events(client, world):
    a, b = world["a"], world["b"]
    post(client, a["token"], [event(f"e{i}", "emails_sent") for i in range(4)])
    # The same ids from another tenant are that tenant's own events, not duplicates of A's.
    response = post(client, b["token"], [event("e0", "emails_sent"), event("e1", "emails_sent")])
    assert response.get_json()["accepted"] == 2
    roll()
    assert used(client, a["token"], "emails_sent") == 4
    assert used(client, b["token"], "emails_sent") == 2
    assert daily(b["tenant"].id, "emails_sent") == {NOW.date().isoformat(): 2}
    assert daily(a["tenant"].id, "emails_sent") == {NOW.date().isoformat(): 4}


def test_archived_metrics_refuse_new_events_but_keep_what_was_counted(client, world):
    from app.usage import catalog, service
    from tests.usage.conftest import STAFF

    token = world["a"]["token"]
    post(client, token, [event("e1", "emails_sent")])
    roll()
    service.set_metric_archived(STAFF, catalog.find_metric("emails_sent").id, True)
    response = post(client, token, [event("e2", "emails_sent")])
    assert response.status_code == 422
    assert _fields(response) == {"events[0].metric": "The metric emails_sent is archived."}
    assert used(client, token, "emails_sent") == 1  # still reported this period
