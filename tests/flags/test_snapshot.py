"""The per-process snapshot: built lazily, rebuilt after a fork, refreshed through real Redis pub/sub within
a second of a change made elsewhere, with the version check as a backstop; evaluation runs no SQL."""

from __future__ import annotations

import time

from sqlalchemy import event, update

from app.extensions import db
from app.flags import service
from app.flags.engine import subject_of
from app.flags.models import Flag
from app.flags.snapshot import VERSION_KEY, Holder, holder
from app.queue import get_redis
from tests.flags.conftest import STAFF


def _wait_for(predicate, seconds: float = 3.0) -> float:
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if predicate():
            return time.monotonic() - started
        time.sleep(0.005)
    raise AssertionError("not within the time allowed")


def test_a_change_reaches_another_listener_within_a_second(app, ctx, make, create):
    subject = subject_of(make.tenant())
    create("live", enabled=False, default_value=False, rules=[{"type": "rollout", "percentage": 100, "value": True}])
    other = Holder()  # another process's holder: only pub/sub (or the backstop) tells it anything
    other.start_listener(app)
    try:
        _wait_for(lambda: other._snapshot is not None)
        assert other.evaluate("live", subject).reason == "DISABLED"
        service.set_enabled(STAFF, "live", True)
        assert _wait_for(lambda: other.evaluate("live", subject).value is True, 1.0) < 1.0
        # the backstop: a change whose message was lost is still picked up by the version check
        db.session.execute(update(Flag).where(Flag.key == "live").values(enabled=False))
        db.session.commit()
        get_redis().incr(VERSION_KEY)
        _wait_for(lambda: other.evaluate("live", subject).reason == "DISABLED", 3.0)
    finally:
        other.stop_listener()


def test_the_process_that_changes_a_flag_sees_it_at_once(ctx, make, create):
    tenant = make.tenant()
    create("mine", enabled=True)
    assert holder.evaluate("mine", tenant).value is False
    service.update_flag(STAFF, "mine", {"default_value": True})
    assert holder.evaluate("mine", tenant).value is True


def test_evaluation_runs_no_sql_once_built(app, ctx, make, create):
    tenant = make.tenant()
    subject = subject_of(tenant)
    create("hot", enabled=True, rules=[{"type": "rollout", "percentage": 50, "value": True}])
    warm = Holder()
    warm.start_listener(app)
    try:
        _wait_for(lambda: warm._snapshot is not None)
        statements = []
        listener = lambda *args: statements.append(args[2])  # noqa: E731
        event.listen(db.engine, "before_cursor_execute", listener)
        try:
            for _ in range(5000):
                warm.evaluate("hot", subject)
                warm.evaluate("webhooks", subject)
        finally:
            event.remove(db.engine, "before_cursor_execute", listener)
        assert statements == []
    finally:
        warm.stop_listener()


def test_a_forked_child_builds_its_own_snapshot(ctx, make, create):
    tenant = make.tenant()
    create("forked", enabled=True, default_value=True)
    holder.evaluate("forked", tenant)
    built = holder._snapshot
    holder._reset()  # what a forked child runs (os.register_at_fork); current() also checks the pid
    assert holder.evaluate("forked", tenant).value is True
    assert holder._snapshot is not built


def test_the_version_is_the_content(ctx, create):
    first = holder.refresh().version
    assert holder.refresh().version == first
    create("v1", enabled=True)
    assert holder.current().version != first
