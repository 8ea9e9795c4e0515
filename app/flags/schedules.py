"""Scheduled flag changes: turn on or off, set a rollout's percentage, or replace the rules at a set time.
The scheduler runs `run_due()` every minute; each due change is applied through the flag service (so it
is audited and published like any change) in its own transaction, and marked done (or failed, with why)."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import select

from app import clock
from app.audit import service as audit
from app.audit.service import Target
from app.errors import Invalid, ServiceError
from app.extensions import db
from app.flags import queries, rules, service
from app.flags.models import SCHEDULE_ACTIONS, FlagSchedule
from app.security import Actor

log = logging.getLogger(__name__)
SCHEDULER = Actor.system("scheduler")


def _moment(value: Any, errors: dict[str, str]) -> datetime | None:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            value = None
    if not isinstance(value, datetime) or value.tzinfo is None:
        errors["at"] = "A date and time with a timezone, e.g. 2026-12-01T09:00:00Z."
        return None
    if value <= clock.now():
        errors["at"] = "A moment in the future."
    return value


def _rollout_rule(flag_rules: list[dict], index: Any) -> int | None:
    rollouts = [i for i, rule in enumerate(flag_rules) if rule.get("type") == "rollout"]
    if index is None:
        return rollouts[0] if rollouts else None
    return index if index in rollouts else None


def _payload(flag, action: str, raw: Any, errors: dict[str, str]) -> dict[str, Any]:
    raw = raw if isinstance(raw, dict) else {}
    if action == "set_rollout":
        percentage = raw.get("percentage")
        if isinstance(percentage, bool) or not isinstance(percentage, int) or not 0 <= percentage <= 100:
            errors["payload.percentage"] = "A whole number from 0 to 100."
        index = raw.get("rule")
        if _rollout_rule(flag.rules or [], index) is None:
            errors["payload.rule"] = ("The flag has no rollout rule." if index is None
                                      else f"rules[{index}] is not a rollout rule.")
        return {"percentage": percentage, **({"rule": index} if index is not None else {})}
    if action == "set_rules":
        rule_errors: dict[str, str] = {}
        cleaned = rules.check_rules(raw.get("rules"), flag.type, flag.key, rule_errors)
        errors.update({f"payload.{name}": message for name, message in rule_errors.items()})
        return {"rules": cleaned}
    return {}


def schedule_change(actor: Actor, key: str, at: Any, action: str,
                    payload: dict[str, Any] | None = None) -> FlagSchedule:
    """Schedule `action` (enable, disable, set_rollout {percentage, rule?}, set_rules {rules}) at `at`."""
    flag = queries.get_flag(key)
    errors: dict[str, str] = {}
    moment = _moment(at, errors)
    if action not in SCHEDULE_ACTIONS:
        errors["action"] = f"One of {', '.join(SCHEDULE_ACTIONS)}."
    cleaned = _payload(flag, action, payload, errors) if action in SCHEDULE_ACTIONS else {}
    if errors:
        raise Invalid("The scheduled change has invalid fields.", errors=errors)
    schedule = FlagSchedule(flag_id=flag.id, at=moment, action=action, payload=cleaned,
                            created_by=(actor.display or "")[:254], created_at=clock.now())
    db.session.add(schedule)
    db.session.flush()
    audit.record(actor, "flag.schedule_created", targets=[Target("flag", flag.id, flag.key)],
                 metadata={"schedule_id": schedule.id, "at": moment, "action": action, "payload": cleaned})
    db.session.commit()
    return schedule


def cancel_schedule(actor: Actor, schedule_id: str) -> FlagSchedule:
    schedule = queries.get_schedule(schedule_id)
    if schedule.status != "pending":
        raise Invalid("Only a pending change can be canceled.", errors={"schedule": f"It is {schedule.status}."})
    schedule.canceled_at = clock.now()
    audit.record(actor, "flag.schedule_canceled", targets=[Target("flag", schedule.flag_id, schedule.flag.key)],
                 metadata={"schedule_id": schedule.id, "at": schedule.at, "action": schedule.action})
    db.session.commit()
    return schedule


def _apply(schedule: FlagSchedule) -> None:
    key, meta = schedule.flag.key, {"schedule_id": schedule.id}
    if schedule.action in {"enable", "disable"}:
        service.set_enabled(SCHEDULER, key, schedule.action == "enable", metadata=meta)
        return
    if schedule.action == "set_rules":
        service.update_flag(SCHEDULER, key, {"rules": schedule.payload["rules"]}, metadata=meta)
        return
    flag = queries.get_flag(key)
    new_rules = [dict(rule) for rule in flag.rules or []]
    index = _rollout_rule(new_rules, schedule.payload.get("rule"))
    if index is None:
        raise Invalid("The flag no longer has that rollout rule.")
    new_rules[index]["percentage"] = schedule.payload["percentage"]
    service.update_flag(SCHEDULER, key, {"rules": new_rules}, metadata=meta)


def run_due(now: datetime | None = None) -> int:
    """Apply every pending change whose time has come, oldest first. Returns how many ran (or failed)."""
    now = now or clock.now()
    count = 0
    while True:
        schedule = db.session.scalar(
            select(FlagSchedule).where(FlagSchedule.done_at.is_(None), FlagSchedule.canceled_at.is_(None),
                                       FlagSchedule.at <= now)
            .order_by(FlagSchedule.at, FlagSchedule.id).limit(1).with_for_update(skip_locked=True, of=FlagSchedule))
        if schedule is None:
            return count
        count += 1
        schedule_id = schedule.id
        try:
            schedule.done_at = clock.now()  # commits with the change itself
            _apply(schedule)
            db.session.commit()  # a change that changed nothing (no commit of its own) still counts as done
        except ServiceError as exc:
            db.session.rollback()
            _failed(schedule_id, exc.detail if not exc.errors else f"{exc.detail} {exc.errors}")
        except Exception as exc:  # a bug: recorded so the loop never spins on it, and logged
            db.session.rollback()
            log.exception("flags: scheduled change %s failed", schedule_id)
            _failed(schedule_id, f"{type(exc).__name__}: {exc}")


def _failed(schedule_id: str, reason: str) -> None:
    schedule = db.session.get(FlagSchedule, schedule_id)
    schedule.done_at, schedule.error = clock.now(), reason[:500]
    audit.record(SCHEDULER, "flag.schedule_failed", targets=[Target("flag", schedule.flag_id, schedule.flag.key)],
                 outcome="failure", metadata={"schedule_id": schedule.id, "reason": reason[:500]})
    db.session.commit()
