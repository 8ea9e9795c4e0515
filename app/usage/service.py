"""Usage use cases: quota warnings."""

from __future__ import annotations

from datetime import datetime

from app.audit import service as audit
from app.audit.service import Target
from app.events import service as events
from app.extensions import db
from app.security import Actor


def threshold_reached(tenant_id: str, percent: int, used: int, included: int, now: datetime) -> None:
    """A tenant's billed calls reached `percent` of the quota this month: publish and audit it once."""
    period = now.strftime("%Y-%m")
    payload = {"metric": "api_calls", "percent": percent, "used": used, "included": included, "period": period}
    events.publish(tenant_id, "usage.threshold_reached", payload)
    audit.record(Actor.system("usage meter"), "usage.threshold_reached", tenant_id=tenant_id,
                 targets=[Target("tenant", tenant_id)], metadata=payload,
                 severity="warning" if percent >= 100 else "info")
    db.session.commit()
