"""An endpoint's own rate limit (messages per second, set by its tenant): one Redis counter per second."""

from __future__ import annotations

from app import clock
from app.webhooks.outbound_models import WebhookEndpoint


def used_up(endpoint: WebhookEndpoint) -> bool:
    """True if the endpoint's messages-per-second limit is used up for this second (Redis counter)."""
    if not endpoint.rate_limit:
        return False
    from redis.exceptions import RedisError

    from app.queue import get_redis

    key = f"whrl:{{{endpoint.id}}}:{int(clock.now().timestamp())}"
    try:
        pipe = get_redis().pipeline()
        pipe.incr(key)
        pipe.expire(key, 5)
        count = pipe.execute()[0]
    except RedisError:
        return False  # fail open: the limit protects the receiver, not us
    return count > endpoint.rate_limit
