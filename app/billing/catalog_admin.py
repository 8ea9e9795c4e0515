"""Staff page /admin/billing/catalog: coupons (create, archive) and tax rates (create, switch on or off).
The services validate, audit and keep discount terms and percentages fixed once created."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request, url_for
from sqlalchemy import select

from app.billing import coupons, tax
from app.billing.models import COUPON_DURATIONS, Coupon, TaxRate
from app.errors import Invalid, NotFound, ServiceError
from app.extensions import db
from app.money import CURRENCIES, Money
from app.security import current_actor, staff_required
from app.web import form_day_end, redirect_to, render, toast

bp = Blueprint("billing_catalog_admin", __name__, url_prefix="/admin/billing/catalog")

COUPON_FIELDS = ("name", "code", "kind", "value", "currency", "duration", "duration_periods", "max_redemptions",
                 "redeem_by")
RATE_FIELDS = ("country", "region", "name", "percentage", "inclusive")


def _page(status: int = 200, coupon_errors: dict | None = None, coupon_form: dict | None = None,
          rate_errors: dict | None = None, rate_form: dict | None = None) -> Any:
    return render("admin/billing/catalog.html", status=status,
                  coupons=list(db.session.scalars(select(Coupon).order_by(Coupon.archived_at.is_not(None),
                                                                          Coupon.created_at.desc()).limit(200))),
                  rates=list(db.session.scalars(select(TaxRate).order_by(TaxRate.country, TaxRate.region))),
                  coupon_errors=coupon_errors or {}, coupon_form=coupon_form or {"kind": "percent",
                                                                                 "duration": "once"},
                  rate_errors=rate_errors or {}, rate_form=rate_form or {},
                  currency_options=[(c, c) for c in CURRENCIES],
                  duration_options=[(d, d) for d in COUPON_DURATIONS])


@bp.route("")
@staff_required
def index():
    """Coupons and tax rates."""
    return _page()


@bp.route("/coupons", methods=["POST"])
@staff_required
def create_coupon():
    """A coupon: percent or amount off, once / repeating N invoices / forever."""
    form = {k: request.form.get(k, "").strip() for k in COUPON_FIELDS}
    errors: dict[str, str] = {}
    data: dict[str, Any] = {"name": form["name"], "code": form["code"] or None, "duration": form["duration"],
                            "duration_periods": form["duration_periods"] or None,
                            "max_redemptions": form["max_redemptions"] or None,
                            "redeem_by": form_day_end(form["redeem_by"], "redeem_by", errors)}
    if form["kind"] == "amount":
        data["currency"] = form["currency"]
        try:
            data["amount_off"] = Money.parse(form["value"], form["currency"].upper() or "USD").amount
        except ValueError:
            errors["value"] = "An amount such as 10 or 9.99."
    else:
        data["percent_off"] = form["value"]
    try:
        if errors:
            raise Invalid(errors=errors)
        coupon = coupons.create_coupon(current_actor(), data)
    except ServiceError as exc:
        found = dict(exc.errors)
        for key in ("percent_off", "amount_off"):  # both are the form's one "value" field
            if key in found:
                found["value"] = found.pop(key)
        return _page(exc.status, found or {"name": exc.detail}, form)
    toast(f"Coupon {coupon.code or coupon.name} created.")
    return redirect_to(url_for(".index"))


@bp.route("/coupons/<coupon_id>/archive", methods=["POST"])
@staff_required
def archive_coupon(coupon_id: str):
    """No new redemptions; subscriptions that have it keep their discount."""
    try:
        coupon = coupons.archive_coupon(current_actor(), coupon_id)
        toast(f"Coupon {coupon.code or coupon.name} archived.")
    except (NotFound, ServiceError) as exc:
        toast(exc.detail, "error")
    return redirect_to(url_for(".index"))


@bp.route("/tax-rates", methods=["POST"])
@staff_required
def create_rate():
    """A tax rate for a country or one of its regions."""
    form = {k: request.form.get(k, "").strip() for k in RATE_FIELDS}
    try:
        rate = tax.create_tax_rate(current_actor(), {**form, "inclusive": form["inclusive"] == "1"})
    except ServiceError as exc:
        return _page(exc.status, rate_errors=exc.errors or {"name": exc.detail}, rate_form=form)
    toast(f"{rate.name} {rate.percentage.normalize():f}% for {rate.country}{'-' + rate.region if rate.region else ''}.")
    return redirect_to(url_for(".index"))


@bp.route("/tax-rates/<rate_id>/toggle", methods=["POST"])
@staff_required
def toggle_rate(rate_id: str):
    """Switch a rate on or off (its percentage never changes: make a new rate instead)."""
    rate = db.session.get(TaxRate, rate_id)
    if rate is None:
        raise NotFound("No such tax rate.")
    tax.update_tax_rate(current_actor(), rate.id, {"active": not rate.active})
    toast(f"{rate.name} ({rate.country}) is {'on' if rate.active else 'off'}.")
    return redirect_to(url_for(".index"))
