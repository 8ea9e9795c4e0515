"""Tenant pages: billing — the plan and its period, the next invoice as it stands, changing plan with a
preview of the proration before confirming, cancelling and reactivating, the card on file (added through
Stripe Checkout), prepaid credits and top-ups, and the invoices (printable page and CSV).

billing:read to look (owners and admins), billing:write to change (owners); another tenant's invoice ids
are 404.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, g, request, url_for

from app.billing import changes, collection, invoices, providers, queries, subscriptions, tax
from app.billing.common import get_invoice
from app.errors import Invalid, NotFound, ServiceError
from app.money import Money
from app.security import current_actor, recent_auth_required, tenant_permission
from app.tenancy.models import Tenant
from app.web import int_arg, is_partial_request, redirect_to, render, toast

bp = Blueprint("billing_portal", __name__, url_prefix="/t/<slug>/billing")


@bp.app_template_filter("number")
def number(value: Any) -> str:
    """A Decimal without trailing zeros or an exponent: 20.00 → 20, 7.2500 → 7.25, 1234.5 → 1,234.5."""
    from decimal import Decimal

    return "" if value is None else f"{Decimal(value).normalize():,f}"


@bp.app_template_filter("unit_price")
def unit_price(minor: Any, currency: str) -> str:
    """A unit price held in (possibly fractional) minor units, in major units: 4900 → $49.00, 0.1 → $0.001."""
    from decimal import Decimal

    from app.money import EXPONENTS, SYMBOLS

    if minor is None:
        return ""
    exponent = EXPONENTS[currency]
    major = (Decimal(minor).scaleb(-exponent)).normalize()
    places = max(exponent, -major.as_tuple().exponent)
    text = f"{major:,.{places}f}"
    symbol = SYMBOLS.get(currency)
    return f"{symbol}{text}" if symbol else f"{text} {currency}"


@bp.app_template_filter("money")
def money(amount: int | None, currency: str) -> str:
    """Minor units as money: {{ invoice.total|money(invoice.currency) }} → $49.00."""
    return "—" if amount is None else Money(int(amount), currency).format()


def _page(tenant: Tenant, status: int = 200, errors: dict | None = None, form: dict | None = None) -> Any:
    sub = queries.subscription(tenant.id)
    account = providers.account(tenant.id)
    return render("portal/billing/index.html", status=status, tenant=tenant, sub=sub,
                  upcoming=queries.upcoming(sub) if sub else None,
                  plans=queries.public_plans(sub.currency) if sub else [],
                  invoices=queries.invoices_page(tenant.id, int_arg("page", 1), 10), credits=queries.credits(tenant.id),
                  account=account, provider=providers.name(), can_write=g.actor.can("billing:write"),
                  profile=tax.get_profile(tenant.id), errors=errors or {}, form=form or {})


@bp.route("")
@tenant_permission("billing:read")
def index(tenant: Tenant):
    """The plan, the next invoice, payment method, credits and invoices."""
    return _page(tenant)


def _change_form() -> dict[str, str]:
    return {"plan": request.form.get("plan", ""), "interval": request.form.get("interval", "")}


@bp.route("/preview", methods=["POST"])
@tenant_permission("billing:write")
def preview(tenant: Tenant):
    """What a plan change would do — when it takes effect and the proration — before confirming."""
    form = _change_form()
    try:
        change = changes.preview_change(current_actor(), tenant.id, form["plan"], form["interval"] or None)
    except ServiceError as exc:
        return render("portal/billing/_preview.html", status=exc.status, tenant=tenant, change=None,
                      error=exc.errors.get("plan") or exc.errors.get("when") or exc.detail, form=form)
    return render("portal/billing/_preview.html", tenant=tenant, change=change, error=None, form=form)


@bp.route("/change", methods=["POST"])
@tenant_permission("billing:write")
@recent_auth_required
def change(tenant: Tenant):
    """Apply the previewed change: an upgrade now (prorated), a downgrade at the period end."""
    form = _change_form()
    try:
        done = changes.change_plan(current_actor(), tenant.id, form["plan"], form["interval"] or None)
    except ServiceError as exc:
        if is_partial_request():
            toast(exc.detail, "error")
        return _page(tenant, status=exc.status, errors=exc.errors or {"plan": exc.detail}, form=form)
    if done.kind == "same":
        toast("That is your plan already.")
    elif done.effective == "now":
        toast(f"You are on {done.plan.name} ({done.interval}) now.")
    else:
        toast(f"You move to {done.plan.name} ({done.interval}) on {done.at:%Y-%m-%d}.")
    return redirect_to(url_for(".index", slug=tenant.slug))


@bp.route("/cancel", methods=["POST"])
@tenant_permission("billing:write")
def cancel(tenant: Tenant):
    """Cancel at the end of the paid period (reactivate undoes it until then)."""
    sub = subscriptions.cancel(current_actor(), tenant.id, at_period_end=True,
                               reason=request.form.get("reason", "")[:200])
    toast(f"Your subscription ends on {sub.current_period_end:%Y-%m-%d}; you can reactivate it until then.")
    return redirect_to(url_for(".index", slug=tenant.slug))


@bp.route("/reactivate", methods=["POST"])
@tenant_permission("billing:write")
def reactivate(tenant: Tenant):
    """Undo a cancellation (or subscribe again after one)."""
    try:
        subscriptions.reactivate(current_actor(), tenant.id)
        toast("Your subscription goes on.")
    except ServiceError as exc:
        toast(exc.detail, "error")
    return redirect_to(url_for(".index", slug=tenant.slug))


@bp.route("/card", methods=["POST"])
@tenant_permission("billing:write")
def card(tenant: Tenant):
    """Add or replace the card: off to Stripe Checkout, which brings the tenant back here."""
    try:
        url = providers.setup_checkout(tenant.id, url_for(".index", slug=tenant.slug, card="added", _external=True),
                                       url_for(".index", slug=tenant.slug, _external=True))
    except ServiceError as exc:
        toast(exc.detail, "error")
        return redirect_to(url_for(".index", slug=tenant.slug))
    return redirect_to(url, full_reload=True)


@bp.route("/top-up", methods=["POST"])
@tenant_permission("billing:write")
def top_up(tenant: Tenant):
    """Buy prepaid credit with the card on file."""
    sub = queries.subscription(tenant.id)
    currency = sub.currency if sub else "USD"
    raw = request.form.get("amount", "")
    form = {"amount": raw}
    try:
        amount = Money.parse(raw, currency).amount
    except ValueError:
        return _page(tenant, 422, {"amount": f"An amount such as 50 or 49.99 ({currency})."}, form)
    try:
        payment = collection.top_up(current_actor(), tenant.id, amount, currency)
    except Invalid as exc:
        return _page(tenant, exc.status, exc.errors, form)
    if payment.status == "succeeded":
        toast(f"{Money(amount, currency)} of credit added.")
    elif payment.status == "pending":
        toast("The payment is processing; the credit shows once it goes through.")
    else:
        toast(f"The card was not charged: {payment.failure_message}", "error")
    return redirect_to(url_for(".index", slug=tenant.slug))


@bp.route("/details", methods=["POST"])
@tenant_permission("billing:write")
def details(tenant: Tenant):
    """Where the tenant is taxed (country, region) and its tax id, printed on its invoices."""
    form = {k: request.form.get(k, "") for k in ("country", "region", "tax_id")}
    try:
        tax.set_profile(current_actor(), tenant.id, form)
    except ServiceError as exc:
        return _page(tenant, exc.status, exc.errors, form)
    toast("Billing details saved; the next invoice uses them.")
    return redirect_to(url_for(".index", slug=tenant.slug))


@bp.route("/coupon", methods=["POST"])
@tenant_permission("billing:write")
def coupon(tenant: Tenant):
    """Redeem a coupon code on the subscription."""
    code = request.form.get("coupon", "").strip()
    form = {"coupon": code}
    if not code:
        return _page(tenant, 422, {"coupon": "Enter the code."}, form)
    try:
        sub = subscriptions.apply_coupon(current_actor(), tenant.id, code)
    except ServiceError as exc:
        errors = exc.errors or {}
        return _page(tenant, exc.status, {"coupon": errors.get("coupon") or errors.get("code") or exc.detail}, form)
    toast(f"Coupon {sub.coupon.name} applied: it discounts your next invoice"
          f"{'s' if sub.coupon.duration != 'once' else ''}.")
    return redirect_to(url_for(".index", slug=tenant.slug))


def _invoice(tenant: Tenant, invoice_id: str):
    invoice = get_invoice(tenant.id, invoice_id)
    if invoice.status == "draft":
        raise NotFound("No such invoice.")
    return invoice


@bp.route("/invoices/<invoice_id>")
@tenant_permission("billing:read")
def invoice(tenant: Tenant, invoice_id: str):
    """One invoice, printable (print CSS)."""
    found = _invoice(tenant, invoice_id)
    return render("billing/invoice.html", tenant=tenant, invoice=found, payments=queries.payments_of(found.id),
                  back=url_for(".index", slug=tenant.slug),
                  csv_url=url_for(".invoice_csv", slug=tenant.slug, invoice_id=found.id))


@bp.route("/invoices/<invoice_id>/csv")
@tenant_permission("billing:read")
def invoice_csv(tenant: Tenant, invoice_id: str):
    """The invoice's lines as CSV."""
    found = _invoice(tenant, invoice_id)
    return Response(invoices.invoice_csv(tenant.id, found.id), mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="{found.number or found.id}.csv"'})
