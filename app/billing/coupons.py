"""Coupons: percent or fixed-amount discounts for one invoice, N invoices or forever, with an optional
code, a redemption limit and an expiry. Applied before tax (Lago), on the invoice's subtotal.

A coupon's discount terms are fixed once created (invoices refer to it); its name, limit and expiry can
change, and it can be archived (no new redemptions; subscriptions that have it keep it).
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select, update

from app import clock
from app.audit import service as audit
from app.audit.service import Target
from app.billing.models import COUPON_DURATIONS, Coupon
from app.db import is_id
from app.errors import Conflict, Invalid, NotFound
from app.extensions import db
from app.money import CURRENCIES
from app.security import Actor

CODE_RE = re.compile(r"^[A-Z0-9][A-Z0-9_-]{2,39}$")
MUTABLE = ("name", "max_redemptions", "redeem_by")


def _positive_int(value: Any, field: str, errors: dict[str, str], hi: int = 10**12) -> int | None:
    if value in (None, ""):
        return None
    try:
        number = int(value)
        if isinstance(value, bool | float) or str(number) != str(value).strip() or not 1 <= number <= hi:
            raise ValueError
        return number
    except (TypeError, ValueError):
        errors[field] = f"A whole number from 1 to {hi:,}."
        return None


def _clean(data: dict[str, Any], coupon: Coupon | None) -> dict[str, Any]:
    errors: dict[str, str] = {}
    out: dict[str, Any] = {}
    if "name" in data or coupon is None:
        name = str(data.get("name") or "").strip()
        if not name or len(name) > 80:
            errors["name"] = "A name of at most 80 characters."
        out["name"] = name
    if "max_redemptions" in data:
        out["max_redemptions"] = _positive_int(data.get("max_redemptions"), "max_redemptions", errors)
    if "redeem_by" in data:
        redeem_by = data.get("redeem_by")
        if redeem_by is not None and (not isinstance(redeem_by, datetime) or redeem_by.tzinfo is None):
            errors["redeem_by"] = "A timezone-aware date and time, or none."
        out["redeem_by"] = redeem_by
    if coupon is None:
        code = str(data.get("code") or "").strip().upper() or None
        if code is not None and not CODE_RE.match(code):
            errors["code"] = "3–40 characters: A-Z, 0-9, _ and -."
        elif code is not None and db.session.scalar(select(Coupon.id).where(Coupon.code == code)):
            errors["code"] = "Another coupon has this code."
        out["code"] = code
        percent, amount = data.get("percent_off"), data.get("amount_off")
        if (percent in (None, "")) == (amount in (None, "")):
            errors["percent_off"] = "Give either a percentage or an amount off, not both."
        elif percent not in (None, ""):
            try:
                value = Decimal(str(percent))
                if not value.is_finite() or not 0 < value <= 100 or value.as_tuple().exponent < -2:
                    raise InvalidOperation
                out["percent_off"] = value
            except (InvalidOperation, ValueError):
                errors["percent_off"] = "A percentage above 0 and at most 100, with at most 2 decimals."
        else:
            out["amount_off"] = _positive_int(amount, "amount_off", errors)
            currency = str(data.get("currency") or "").strip().upper()
            if currency not in CURRENCIES:
                errors["currency"] = f"An amount off needs its currency, one of {', '.join(CURRENCIES)}."
            out["currency"] = currency
        duration = data.get("duration")
        if duration not in COUPON_DURATIONS:
            errors["duration"] = f"One of {', '.join(COUPON_DURATIONS)}."
        out["duration"] = duration
        periods = _positive_int(data.get("duration_periods"), "duration_periods", errors, 120)
        if duration == "repeating" and periods is None:
            errors.setdefault("duration_periods", "How many invoices a repeating coupon discounts (1–120).")
        elif duration != "repeating" and periods is not None:
            errors["duration_periods"] = "Only a repeating coupon has a number of periods."
        out["duration_periods"] = periods
    if errors:
        raise Invalid("Some fields need attention.", errors=errors)
    return out


def create_coupon(actor: Actor, data: dict[str, Any]) -> Coupon:
    """Create a coupon (staff); commits."""
    fields = _clean(data, None)
    coupon = Coupon(**fields)
    db.session.add(coupon)
    db.session.flush()
    audit.record(actor, "coupon.created", targets=[Target("coupon", coupon.id, coupon.code or coupon.name)],
                 changes={k: [None, v] for k, v in fields.items()})
    db.session.commit()
    return coupon


def get_coupon(coupon_id: str) -> Coupon:
    coupon = db.session.get(Coupon, coupon_id) if is_id(coupon_id, "cpn") else None
    if coupon is None:
        raise NotFound("No such coupon.")
    return coupon


def update_coupon(actor: Actor, coupon_id: str, data: dict[str, Any]) -> Coupon:
    """Change a coupon's name, redemption limit or expiry (its discount terms are fixed); commits."""
    coupon = get_coupon(coupon_id)
    fields = _clean({k: v for k, v in data.items() if k in MUTABLE}, coupon)
    changes = {k: [getattr(coupon, k), v] for k, v in fields.items() if getattr(coupon, k) != v}
    for key, value in fields.items():
        setattr(coupon, key, value)
    audit.record(actor, "coupon.updated", targets=[Target("coupon", coupon.id, coupon.code or coupon.name)],
                 changes=changes)
    db.session.commit()
    return coupon


def archive_coupon(actor: Actor, coupon_id: str) -> Coupon:
    """No new redemptions; subscriptions that carry it keep their discount. Commits."""
    coupon = get_coupon(coupon_id)
    if coupon.archived_at is not None:
        raise Conflict("The coupon is already archived.")
    coupon.archived_at = clock.now()
    audit.record(actor, "coupon.archived", targets=[Target("coupon", coupon.id, coupon.code or coupon.name)],
                 changes={"archived_at": [None, coupon.archived_at]})
    db.session.commit()
    return coupon


def find(reference: str) -> Coupon:
    """A coupon by id or by code (codes are case-insensitive); NotFound otherwise."""
    if is_id(reference, "cpn"):
        return get_coupon(reference)
    coupon = db.session.scalar(select(Coupon).where(Coupon.code == str(reference or "").strip().upper()))
    if coupon is None:
        raise NotFound("No such coupon.", errors={"coupon": "No coupon has this code."})
    return coupon


def redeem(coupon: Coupon, currency: str) -> int | None:
    """Count one redemption, inside the caller's transaction; returns the periods it discounts (None:
    forever). Invalid when archived, expired, used up or in another currency. The count is a guarded
    UPDATE, so two concurrent redemptions can never exceed the limit."""
    field = {"coupon": None}
    if coupon.archived_at is not None:
        field["coupon"] = "This coupon is no longer offered."
    elif coupon.redeem_by is not None and coupon.redeem_by <= clock.now():
        field["coupon"] = "This coupon has expired."
    elif coupon.currency is not None and coupon.currency != currency:
        field["coupon"] = f"This coupon is in {coupon.currency}; the subscription is billed in {currency}."
    if field["coupon"] is None:
        stmt = update(Coupon).where(Coupon.id == coupon.id).values(times_redeemed=Coupon.times_redeemed + 1)
        if coupon.max_redemptions is not None:
            stmt = stmt.where(Coupon.times_redeemed < coupon.max_redemptions)
        if db.session.execute(stmt).rowcount != 1:
            field["coupon"] = "This coupon has been redeemed as many times as it may be."
    if field["coupon"]:
        raise Invalid(field["coupon"], errors={"coupon": field["coupon"]})
    db.session.refresh(coupon, ["times_redeemed"])
    return {"once": 1, "repeating": coupon.duration_periods, "forever": None}[coupon.duration]
