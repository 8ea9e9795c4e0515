"""The per-process snapshot of every flag, compiled, and how it stays fresh.

Built lazily on the first evaluation in a process (so after a fork: a pid check starts afresh), then
evaluation reads only memory. A change commits, then bumps `flags:version` in Redis and publishes on
`flags:changed`; a daemon thread per process subscribed to the channel reloads within milliseconds, and
compares the version once a second as a backstop (a missed message, a Redis restart). The process that
made the change reloads on its next evaluation without waiting. Without the thread (tests: FLAGS_LISTENER
false) the version is compared at most once a second on evaluation, and `refresh()` reloads at once.

The thread also writes `last_evaluated_at` once a minute for the flags this process evaluated.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, current_app, has_app_context
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import event, select, update
from sqlalchemy.orm import Session

from app.flags.engine import (
    CompiledFlag,
    Evaluation,
    Subject,
    canonical,
    compile_flag,
    compile_plan_feature,
    not_found,
    subject_of,
)

log = logging.getLogger(__name__)
VERSION_KEY = "flags:version"
CHANNEL = "flags:changed"
CHECK_SECONDS = 1.0  # the version backstop
FLUSH_SECONDS = 60.0  # last_evaluated_at


@dataclass(frozen=True)
class Snapshot:
    flags: dict[str, CompiledFlag]
    version: str  # a hash of everything evaluation reads: the same content, the same version
    redis_version: int | None
    loaded_at: float = field(default_factory=time.monotonic)


def _redis_version(client: Redis) -> int | None:
    try:
        raw = client.get(VERSION_KEY)
    except RedisError as exc:
        log.warning("flags: cannot read the snapshot version (%s)", type(exc).__name__)
        return None
    return int(raw or 0)


def build(redis_version: int | None) -> Snapshot:
    """Load and compile every live flag and the plans' feature keys (in an app context)."""
    from app.flags.models import Flag
    from app.plans.queries import features_by_code

    plans = {code: frozenset(features) for code, features in features_by_code().items()}
    from app.extensions import db

    rows = list(db.session.scalars(
        select(Flag).where(Flag.archived_at.is_(None)).order_by(Flag.key)))
    flags: dict[str, CompiledFlag] = {}
    for feature in sorted({f for features in plans.values() for f in features}):
        flags[feature] = compile_plan_feature(feature, plans)
    for row in rows:
        flags[row.key] = compile_flag(row.key, row.type, row.enabled, row.default_value, row.rules or [], plans)
    content = canonical([[r.key, r.type, r.enabled, r.default_value, r.rules] for r in rows]
                        + [[code, sorted(features)] for code, features in sorted(plans.items())])
    return Snapshot(flags, hashlib.sha256(content.encode()).hexdigest()[:32], redis_version)


class Holder:
    """This process's snapshot, its listener thread and its marks of evaluated flags."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._snapshot: Snapshot | None = None
        self._stale = False
        self._seen: dict[str, bool] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._next_check = 0.0  # without a listener: when evaluation next compares the version
        self._app: Flask | None = None

    # --- evaluation (memory only once built) --------------------------------------------------------

    def evaluate(self, key: str, tenant: Any) -> Evaluation:
        snapshot = self._snapshot
        if snapshot is None or self._stale or (self._thread is None and time.monotonic() >= self._next_check):
            snapshot = self.current()
        flag = snapshot.flags.get(key)
        if flag is None:
            return not_found(key)
        self._seen[key] = True
        try:
            return flag.evaluate(tenant if type(tenant) is Subject else subject_of(tenant))
        except Exception as exc:  # a bad tenant object: the default, with the reason
            log.exception("flags: evaluating %s failed", key)
            return Evaluation(key, flag.default, "default", "ERROR", None, "GENERAL", str(exc)[:200])

    def current(self) -> Snapshot:
        """The snapshot, built or refreshed first when needed (needs an app context then)."""
        if self._pid != os.getpid():
            self._reset()  # a forked child: its own snapshot and thread
        snapshot = self._snapshot
        if snapshot is not None and not self._stale and (self._thread is not None
                                                         or time.monotonic() < self._next_check):
            return snapshot
        app = current_app._get_current_object()
        self._app = app
        if snapshot is not None and not self._stale and self._thread is None:  # the backstop without a thread
            self._next_check = time.monotonic() + CHECK_SECONDS
            if _redis_version(self._client(app)) == snapshot.redis_version:
                return snapshot
        snapshot = self.refresh()
        if self._thread is None and app.config.get("FLAGS_LISTENER", not app.testing):
            self.start_listener(app)
        return snapshot

    def refresh(self) -> Snapshot:
        """Reload from the database now (in an app context)."""
        with self._lock:
            self._stale = False
            try:
                snapshot = build(_redis_version(self._client(current_app._get_current_object())))
            except Exception:
                self._stale = True
                if self._snapshot is None:
                    raise
                log.exception("flags: reloading the snapshot failed; serving the previous one")
                return self._snapshot
            self._snapshot = snapshot
            self._next_check = time.monotonic() + CHECK_SECONDS
            return snapshot

    def mark_stale(self) -> None:
        self._stale = True

    def reset(self) -> None:
        """Forget the snapshot and stop the listener (tests, and after a database switch)."""
        self.stop_listener()
        self._reset()

    @staticmethod
    def _client(app: Flask) -> Redis:
        with app.app_context():
            from app.queue import get_fast_redis

            return get_fast_redis()

    # --- the listener thread ------------------------------------------------------------------------

    def start_listener(self, app: Flask) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._listen, args=(app, self._stop), name="flags-listener",
                                            daemon=True)
            self._thread.start()

    def stop_listener(self) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            thread.join(timeout=5)

    def _reload_in(self, app: Flask) -> None:
        with app.app_context():
            self.refresh()

    def _listen(self, app: Flask, stop: threading.Event) -> None:
        pause, last_flush = 0.5, time.monotonic()
        while not stop.is_set():
            try:
                client = Redis.from_url(app.config["REDIS_URL"], socket_connect_timeout=2, health_check_interval=30)
                pubsub = client.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(CHANNEL)
                self._reload_in(app)  # subscribed: anything from now on is heard; catch up on what came before
                checked, pause = time.monotonic(), 0.5
                while not stop.is_set():
                    message = pubsub.get_message(timeout=CHECK_SECONDS)
                    if message is not None:
                        while pubsub.get_message(timeout=0) is not None:  # a burst of changes: one reload
                            pass
                        self._reload_in(app)
                    elif time.monotonic() - checked >= CHECK_SECONDS:
                        checked = time.monotonic()
                        snapshot, version = self._snapshot, _redis_version(client)
                        if snapshot is None or (version is not None and version != snapshot.redis_version):
                            self._reload_in(app)
                    if time.monotonic() - last_flush >= FLUSH_SECONDS:
                        last_flush = time.monotonic()
                        self.flush_evaluated(app)
                pubsub.close()
                client.close()
            except Exception as exc:  # noqa: BLE001 - Redis away or a reload failed: keep serving, try again
                log.warning("flags listener: %s; retrying in %.1f s", type(exc).__name__, pause)
                stop.wait(pause)
                pause = min(pause * 2, 10.0)

    # --- last evaluated -------------------------------------------------------------------------------

    def flush_evaluated(self, app: Flask | None = None) -> int:
        """Write last_evaluated_at for the flags evaluated here since the last flush. Returns rows changed."""
        seen, self._seen = self._seen, {}
        if not seen:
            return 0
        from app import clock
        from app.extensions import db
        from app.flags.models import Flag

        app = app or current_app._get_current_object()
        with app.app_context():
            now = clock.now()
            result = db.session.execute(update(Flag).where(Flag.key.in_(sorted(seen))).values(last_evaluated_at=now))
            db.session.commit()
            return result.rowcount or 0


holder = Holder()
if hasattr(os, "register_at_fork"):  # a forked child (gunicorn worker) starts with no snapshot and no thread
    os.register_at_fork(after_in_child=holder._reset)


# --- telling every process ------------------------------------------------------------------------------


def bump_after_commit(session: Session) -> None:
    """Once the transaction commits, every process reloads its snapshot."""
    session.info["flags_bump"] = True


def bump_now() -> None:
    """Move the version on and publish it (this process reloads on its next evaluation)."""
    holder.mark_stale()
    if not has_app_context():
        return
    from app.queue import get_redis

    try:
        pipe = get_redis().pipeline(transaction=False)
        pipe.incr(VERSION_KEY)
        pipe.publish(CHANNEL, "changed")
        pipe.execute()
    except RedisError as exc:  # the other processes' backstop check catches up once Redis is back
        log.warning("flags: could not publish a change (%s)", type(exc).__name__)


def _on_commit(session: Session) -> None:
    if session.info.pop("flags_bump", False):
        bump_now()


def _on_rollback(session: Session) -> None:
    session.info.pop("flags_bump", None)


def _plans_changed(session: Session, _context: Any, _instances: Any) -> None:
    """A plan's features are read as flags: a plan added, changed or removed refreshes the snapshot."""
    from app.plans.models import Plan

    if any(isinstance(obj, Plan) for obj in (*session.new, *session.dirty, *session.deleted)):
        session.info["flags_bump"] = True


def install(_app: Any = None) -> None:
    """Hook the bumps to SQLAlchemy session commits (idempotent)."""
    if not event.contains(Session, "after_commit", _on_commit):
        event.listen(Session, "after_commit", _on_commit)
        event.listen(Session, "after_rollback", _on_rollback)
        event.listen(Session, "before_flush", _plans_changed)
