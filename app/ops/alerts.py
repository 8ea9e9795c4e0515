"""Alert rules: staff create, switch and delete them (audited); a job evaluates them every minute.

A rule whose condition holds (and has held for its `for` duration) fires: an `alerts` row with fired_at,
a banner on every staff page, and an `alert.fired` event POSTed to the rule's webhook URL, signed with the
Standard Webhooks headers (the outbound webhooks' signing, SSRF guard and HTTP client). When the
condition stops holding the alert is resolved (resolved_at, `alert.resolved`).

Kinds: webhook success rate below X% over N minutes (attempts in the window; none: not firing), the
oldest queued job older than N seconds, /readyz failing, and the daily audit chain verification finding
a break (its result is kept in Redis by `verify_audit`).
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from flask import current_app
from redis.exceptions import RedisError
from sqlalchemy import func, select

from app import clock
from app.audit import service as audit
from app.audit import verification
from app.db import new_id
from app.errors import Invalid, NotFound
from app.extensions import db
from app.ops.models import KINDS, Alert, AlertRule
from app.security import Actor

log = logging.getLogger(__name__)
AUDIT_VERIFY_KEY = "tenantry:ops:audit_verify"  # the last verification's result, JSON
SYSTEM = Actor.system("alerts")


def rules() -> list[AlertRule]:
    return list(db.session.scalars(select(AlertRule).order_by(AlertRule.created_at, AlertRule.id)))


def firing() -> list[tuple[Alert, AlertRule]]:
    """Alerts firing now, newest first, with their rules."""
    return list(db.session.execute(select(Alert, AlertRule).join(AlertRule, AlertRule.id == Alert.rule_id)
                                   .where(Alert.resolved_at.is_(None)).order_by(Alert.fired_at.desc())).tuples())


def firing_count() -> int:
    return db.session.scalar(select(func.count()).select_from(Alert).where(Alert.resolved_at.is_(None))) or 0


def recent(limit: int = 20) -> list[tuple[Alert, AlertRule]]:
    return list(db.session.execute(select(Alert, AlertRule).join(AlertRule, AlertRule.id == Alert.rule_id)
                                   .order_by(Alert.fired_at.desc()).limit(limit)).tuples())


def _parse(form: dict[str, Any]) -> dict[str, Any]:
    """The fields of a rule from a form; Invalid with per-field messages."""
    errors: dict[str, str] = {}
    name = (form.get("name") or "").strip()
    if not name or len(name) > 200 or "\0" in name:
        errors["name"] = "A name of 1 to 200 characters."
    kind = form.get("kind") or ""
    if kind not in KINDS:
        errors["kind"] = "Choose what the rule watches."
    threshold = window = None
    if kind == "webhook_success_rate":
        try:
            threshold = float(form.get("threshold") or "")
            if not 0 < threshold <= 100:
                raise ValueError
        except ValueError:
            errors["threshold"] = "A percentage above 0 and at most 100."
        try:
            window = int(form.get("window_minutes") or "")
            if not 1 <= window <= 1440:
                raise ValueError
        except ValueError:
            errors["window_minutes"] = "Minutes from 1 to 1440."
    elif kind == "queue_oldest_job":
        try:
            threshold = float(form.get("threshold") or "")
            if not 1 <= threshold <= 86400:
                raise ValueError
        except ValueError:
            errors["threshold"] = "Seconds from 1 to 86400."
    try:
        for_seconds = int(form.get("for_seconds") or 0)
        if not 0 <= for_seconds <= 86400:
            raise ValueError
    except ValueError:
        errors["for_seconds"] = "Seconds from 0 to 86400."
        for_seconds = 0
    url = (form.get("webhook_url") or "").strip()
    if url:
        from app.webhooks import ssrf

        try:
            ssrf.check(url, current_app.config)
        except ssrf.BlockedDestination as exc:
            errors["webhook_url"] = str(exc)
        except ValueError as exc:
            errors["webhook_url"] = str(exc) or "Not a usable URL."
    if errors:
        raise Invalid("The rule has invalid fields.", errors=errors)
    return {"name": name, "kind": kind, "threshold": threshold, "window_minutes": window or 15,
            "for_seconds": for_seconds, "webhook_url": url}


def create_rule(actor: Actor, form: dict[str, Any]) -> AlertRule:
    from app.webhooks import secrets, signing

    fields = _parse(form)
    now = clock.now()
    rule = AlertRule(id=new_id(AlertRule.id_prefix), **fields, enabled=True, created_at=now, updated_at=now,
                     signing_secret=secrets.encrypt(signing.generate_secret()))
    db.session.add(rule)
    audit.record(actor, "ops.alert_rule.created", targets=[audit.Target("alert_rule", rule.id, rule.name)],
                 metadata={k: v for k, v in fields.items() if k != "webhook_url"}
                 | {"webhook_host": urlsplit(fields["webhook_url"]).hostname or ""})
    db.session.commit()
    return rule


def _get(rule_id: str) -> AlertRule:
    rule = db.session.get(AlertRule, rule_id)
    if rule is None:
        raise NotFound("No such alert rule.")
    return rule


def set_enabled(actor: Actor, rule_id: str, enabled: bool) -> AlertRule:
    """Switch a rule on or off; off resolves its firing alert."""
    rule = _get(rule_id)
    if rule.enabled != enabled:
        now = clock.now()
        rule.enabled, rule.updated_at = enabled, now
        if not enabled:
            rule.pending_since = None
            _resolve(rule, now)
        audit.record(actor, "ops.alert_rule.updated", targets=[audit.Target("alert_rule", rule.id, rule.name)],
                     changes={"enabled": [not enabled, enabled]})
    db.session.commit()
    return rule


def delete_rule(actor: Actor, rule_id: str) -> None:
    rule = _get(rule_id)
    audit.record(actor, "ops.alert_rule.deleted", targets=[audit.Target("alert_rule", rule.id, rule.name)],
                 metadata={"kind": rule.kind})
    db.session.execute(Alert.__table__.delete().where(Alert.rule_id == rule.id))
    db.session.delete(rule)
    db.session.commit()


def signing_secret(rule: AlertRule) -> str:
    from app.webhooks import secrets

    return secrets.decrypt(rule.signing_secret)


# --- evaluation ---------------------------------------------------------------------------------------


def _webhook_success_rate(rule: AlertRule, now: datetime) -> tuple[bool, float | None, str]:
    from app.webhooks.outbound_models import WebhookAttempt as A

    counts = dict(db.session.execute(
        select(A.status, func.count()).where(A.created_at >= now - timedelta(minutes=rule.window_minutes))
        .group_by(A.status)).all())
    total = sum(int(v) for v in counts.values())
    if not total:
        return False, None, "no attempts"
    rate = round(100 * int(counts.get("succeeded", 0)) / total, 1)
    return rate < (rule.threshold or 0), rate, (f"webhook success {rate:g}% of {total} attempts in the last "
                                               f"{rule.window_minutes} min (below {rule.threshold:g}%)")


def _queue_oldest(rule: AlertRule, now: datetime) -> tuple[bool, float | None, str]:
    from app.ops.system import queue_stats

    try:
        queues = queue_stats()
    except RedisError:
        return False, None, "Redis unavailable"
    ages = [(q["oldest_s"], q["name"]) for q in queues if q["oldest_s"] is not None]
    if not ages:
        return False, 0.0, "no job waiting"
    age, name = max(ages)
    return age > (rule.threshold or 0), age, f"the oldest job in queue {name} has waited {age:g} s"


def _readiness(rule: AlertRule, now: datetime) -> tuple[bool, float | None, str]:
    from app.ops.health import report

    body = report()
    failing = sorted(key for key, entries in body["checks"].items() if any(e["status"] == "fail" for e in entries))
    return body["status"] == "fail", None, "readiness failing: " + ", ".join(failing) if failing else "ready"


def last_audit_verify() -> dict[str, Any] | None:
    """The last audit chain verification's result ({ok, at, broken: [...]}), if any is kept."""
    from app.queue import get_redis

    raw = get_redis().get(AUDIT_VERIFY_KEY)
    return json.loads(raw) if raw else None


def _audit_chain(rule: AlertRule, now: datetime) -> tuple[bool, float | None, str]:
    try:
        result = last_audit_verify()
    except RedisError:
        return False, None, "Redis unavailable"
    if result is None or result["ok"]:
        return False, 0.0, "audit chains verified"
    broken = result["broken"]
    return True, float(len(broken)), "audit chain broken: " + "; ".join(
        f"{b['chain']} at seq {b['seq']} ({b['reason']})" for b in broken[:3])


CONDITIONS = {"webhook_success_rate": _webhook_success_rate, "queue_oldest_job": _queue_oldest,
              "readiness_failing": _readiness, "audit_chain_broken": _audit_chain}


def _open_alert(rule: AlertRule) -> Alert | None:
    return db.session.scalar(select(Alert).where(Alert.rule_id == rule.id, Alert.resolved_at.is_(None)))


def _resolve(rule: AlertRule, now: datetime) -> Alert | None:
    alert = _open_alert(rule)
    if alert is not None:
        alert.resolved_at = now
    return alert


def evaluate(now: datetime | None = None) -> dict[str, int]:
    """Check every enabled rule: fire, keep, or resolve its alert; then send the notifications."""
    now = now or clock.now()
    counts = {"fired": 0, "resolved": 0, "firing": 0}
    notices: list[tuple[str, AlertRule, Alert]] = []
    for rule in list(db.session.scalars(select(AlertRule).where(AlertRule.enabled.is_(True)).order_by(AlertRule.id))):
        try:
            holds, value, message = CONDITIONS[rule.kind](rule, now)
        except Exception:  # one broken rule must not stop the others
            db.session.rollback()
            log.exception("alert rule %s could not be evaluated", rule.id)
            continue
        rule.last_value, rule.last_evaluated_at = value, now
        alert = _open_alert(rule)
        if holds:
            rule.pending_since = rule.pending_since or now
            if alert is None and now - rule.pending_since >= timedelta(seconds=rule.for_seconds):
                alert = Alert(id=new_id(Alert.id_prefix), rule_id=rule.id, fired_at=now, value=value,
                              message=message[:500])
                db.session.add(alert)
                audit.record(SYSTEM, "ops.alert.fired", targets=[audit.Target("alert_rule", rule.id, rule.name)],
                             metadata={"alert": alert.id, "message": message[:400]}, severity="warning")
                notices.append(("alert.fired", rule, alert))
                counts["fired"] += 1
            if alert is not None:
                counts["firing"] += 1
        else:
            rule.pending_since = None
            if alert is not None:
                alert.resolved_at = now
                audit.record(SYSTEM, "ops.alert.resolved", targets=[audit.Target("alert_rule", rule.id, rule.name)],
                             metadata={"alert": alert.id, "message": message[:400]})
                notices.append(("alert.resolved", rule, alert))
                counts["resolved"] += 1
        db.session.commit()
    for event_type, rule, alert in notices:
        notify(event_type, rule, alert)
    return counts


def notify(event_type: str, rule: AlertRule, alert: Alert) -> bool:
    """POST the event to the rule's webhook URL, signed (Standard Webhooks); the error is kept on the alert."""
    if not rule.webhook_url:
        return True
    from app.audit.service import iso
    from app.webhooks import signing, ssrf
    from app.webhooks.http import post

    payload = {"type": event_type, "timestamp": iso(clock.now()),
               "data": {"alert_id": alert.id, "rule_id": rule.id, "rule": rule.name, "kind": rule.kind,
                        "message": alert.message, "value": alert.value, "fired_at": iso(alert.fired_at),
                        "resolved_at": iso(alert.resolved_at) if alert.resolved_at else None}}
    body = json.dumps(payload, separators=(",", ":")).encode()
    msg_id = new_id("msg")
    error = ""
    try:
        destination = ssrf.check(rule.webhook_url, current_app.config)
        headers = signing.headers(msg_id, int(clock.now().timestamp()), body, [signing_secret(rule)])
        response = post(destination, body, headers, current_app.config["ALERT_WEBHOOK_TIMEOUT"])
        if response.status is None or not 200 <= response.status < 300:
            error = response.error or f"HTTP {response.status}"
    except Exception as exc:  # noqa: BLE001 - a failed notification is recorded, never raised
        error = f"{type(exc).__name__}: {exc}"
    if error:
        log.warning("alert %s: %s not delivered to the rule's webhook: %s", alert.id, event_type, error)
    alert.notify_error = error[:500]
    db.session.commit()
    return not error


def verify_audit() -> dict[str, Any]:
    """Verify every audit hash chain (as `flask audit verify`), keep the result for the alert rules and count
    breaks in the metrics; then evaluate the rules so a break fires its alert at once."""
    from app.ops.metrics import AUDIT_VERIFY_FAILURES
    from app.queue import get_redis

    reports = verification.verify()
    broken = [{"chain": r.chain, "seq": r.broken_seq, "reason": r.reason} for r in reports if not r.ok]
    result = {"ok": not broken, "at": clock.now().isoformat(), "chains": len(reports),
              "events": sum(r.events for r in reports), "broken": broken}
    if broken:
        AUDIT_VERIFY_FAILURES.inc(len(broken))
        log.error("audit verify: %d broken chain(s): %s", len(broken), broken)
    get_redis().set(AUDIT_VERIFY_KEY, json.dumps(result))
    evaluate()
    return result
