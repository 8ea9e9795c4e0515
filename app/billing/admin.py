"""Staff pages: invoices across tenants (filtered by tenant and status), debts in dunning and the billing
run's failures; one invoice with its actions (mark paid, void, write off, credit note); and a tenant's
billing — its subscription with staff-only moves (a change or cancellation now), credit grants, invoices.
Every action goes through the billing services, so each is validated, audited and published."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request, url_for
from sqlalchemy import select

from app.billing import changes, invoices, queries, run, subscriptions, tax, wallets
from app.billing.common import get_invoice
from app.billing.invoice_models import CREDIT_NOTE_REASONS, INVOICE_STATUSES
from app.billing.payment_models import InvoiceCollection
from app.errors import Invalid, NotFound, ServiceError
from app.extensions import db
from app.money import CURRENCIES, Money
from app.security import current_actor, recent_auth_required, staff_required
from app.tenancy import queries as tenancy_queries
from app.tenancy.models import Tenant
from app.web import form_day_end, int_arg, redirect_to, render, toast

bp = Blueprint("billing_admin", __name__, url_prefix="/admin/billing")


def _tenant(value: str) -> Tenant:
    found = tenancy_queries.find_by_id_or_slug(value)
    if found is None:
        raise NotFound("No such tenant.")
    return found


@bp.route("/")
@staff_required
def index():
    """Invoices newest first (filters: tenant, status), debts in dunning, open billing-run failures."""
    errors: dict[str, str] = {}
    tenant_id = tenancy_queries.tenant_filter(request.args.get("tenant", ""), errors)
    status = request.args.get("status", "").strip() or None
    if status and status not in INVOICE_STATUSES:
        errors["status"] = f"Status is one of {', '.join(INVOICE_STATUSES)}."
    page = queries.invoices_page(tenant_id, int_arg("page", 1), 25, status, include_drafts=True) \
        if not errors else None
    tenants = {t.id: t for t in db.session.scalars(select(Tenant).where(
        Tenant.id.in_({i.tenant_id for i in page.items} if page else set())))}
    dunning = list(db.session.scalars(select(InvoiceCollection).where(
        InvoiceCollection.status.in_(("retrying", "exhausted"))).order_by(InvoiceCollection.first_failed_at)
        .limit(50)))
    args = {k: v for k, v in {"tenant": request.args.get("tenant", ""), "status": status or ""}.items() if v}
    return render("admin/billing/index.html", "admin/billing/_invoices.html", status=422 if errors else 200,
                  page=page, tenants=tenants, errors=errors, args=args,
                  status_options=[(s, s) for s in INVOICE_STATUSES],
                  dunning=dunning, failures=run.open_failures())


def _invoice_page(found, status: int = 200, errors: dict | None = None, form: dict | None = None) -> Any:
    return render("billing/invoice.html", status=status, tenant=db.session.get(Tenant, found.tenant_id),
                  invoice=found, payments=queries.payments_of(found.id), back=url_for(".index"),
                  csv_url=url_for(".invoice_csv", invoice_id=found.id), staff=True,
                  reason_options=[(r, r.replace("_", " ")) for r in CREDIT_NOTE_REASONS], errors=errors or {},
                  form=form or {})


@bp.route("/invoices/<invoice_id>")
@staff_required
def invoice(invoice_id: str):
    """One invoice (draft included) with staff actions."""
    return _invoice_page(get_invoice(None, invoice_id))


@bp.route("/invoices/<invoice_id>/csv")
@staff_required
def invoice_csv(invoice_id: str):
    found = get_invoice(None, invoice_id)
    return Response(invoices.invoice_csv(None, found.id), mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="{found.number or found.id}.csv"'})


@bp.route("/invoices/<invoice_id>/<action>", methods=["POST"])
@staff_required
def invoice_action(invoice_id: str, action: str):
    """mark-paid (with a reference), void (with a reason), uncollectible, finalize, credit-note."""
    found = get_invoice(None, invoice_id)
    actor = current_actor()
    try:
        if action == "mark-paid":
            invoices.mark_paid(actor, found.id, request.form.get("reference", "").strip()[:100])
            toast(f"{found.number} is paid.")
        elif action == "void":
            invoices.void(actor, found.id, request.form.get("reason", ""))
            toast(f"{found.number or found.id} is void.")
        elif action == "uncollectible":
            invoices.mark_uncollectible(actor, found.id)
            toast(f"{found.number} is written off as uncollectible.")
        elif action == "finalize":
            invoices.finalize(actor, found.id)
            toast(f"Finalized as {found.number}.")
        elif action == "credit-note":
            return _credit_note(found)
        else:
            return Response("No such action.", status=404)
    except ServiceError as exc:
        toast(exc.detail, "error")
    return redirect_to(url_for(".invoice", invoice_id=found.id))


def _credit_note(found) -> Any:
    form = {k: request.form.get(k, "") for k in ("amount", "reason", "memo")}
    try:
        amount = Money.parse(form["amount"], found.currency).amount
    except ValueError:
        amount = None
    try:
        if amount is None:
            raise Invalid(errors={"amount": f"An amount such as 10 or 9.99 ({found.currency})."})
        note = invoices.create_credit_note(current_actor(), found.id, amount, form["reason"] or "other", form["memo"])
    except ServiceError as exc:
        return _invoice_page(found, exc.status, exc.errors or {"amount": exc.detail}, form)
    toast(f"Credit note {note.number} issued.")
    return redirect_to(url_for(".invoice", invoice_id=found.id))


def _tenant_page(tenant: Tenant, status: int = 200, errors: dict | None = None, form: dict | None = None) -> Any:
    sub = queries.subscription(tenant.id)
    return render("admin/billing/tenant.html", status=status, tenant=tenant, sub=sub,
                  upcoming=queries.upcoming(sub) if sub else None, credits=queries.credits(tenant.id),
                  invoices=queries.invoices_page(tenant.id, int_arg("page", 1), 10, include_drafts=True),
                  plan_options=[(p.code, p.name) for p in (queries.public_plans(sub.currency) if sub else [])],
                  currency_options=[(c, c) for c in CURRENCIES], profile=tax.get_profile(tenant.id),
                  errors=errors or {}, form=form or {})


@bp.route("/tenants/<tenant_id>")
@staff_required
def tenant(tenant_id: str):
    """A tenant's billing: subscription, credit, invoices."""
    return _tenant_page(_tenant(tenant_id))


@bp.route("/tenants/<tenant_id>/credits", methods=["POST"])
@staff_required
def grant(tenant_id: str):
    """Grant free credit (optionally expiring at the end of a day, UTC)."""
    found = _tenant(tenant_id)
    form = {k: request.form.get(k, "") for k in ("amount", "currency", "expires", "note")}
    errors: dict[str, str] = {}
    currency = form["currency"].upper()
    amount: Any = None
    try:
        amount = Money.parse(form["amount"], currency).amount
    except ValueError:
        errors["amount"] = "An amount such as 50 or 49.99."
    expires = form_day_end(form["expires"], "expires", errors)
    data = {"amount": amount, "currency": currency, "expires_at": expires, "note": form["note"]}
    errors = {**wallets.problems({**data, "amount": amount if amount is not None else 0}), **errors}
    if "amount" in errors:  # the form takes major units
        errors["amount"] = "An amount such as 50 or 49.99, more than zero."
    try:
        if errors:
            raise Invalid(errors=errors)
        wallets.add(current_actor(), found.id, "granted", data)
    except ServiceError as exc:
        return _tenant_page(found, exc.status, exc.errors, form)
    toast(f"{Money(amount, currency)} of credit granted to {found.name}.")
    return redirect_to(url_for(".tenant", tenant_id=found.id))


@bp.route("/tenants/<tenant_id>/profile", methods=["POST"])
@staff_required
def profile(tenant_id: str):
    """Billing details, tax treatment, and whether the tenant pays by bank transfer."""
    found = _tenant(tenant_id)
    form = {k: request.form.get(k, "") for k in ("country", "region", "tax_id", "tax_exempt", "default_payment_method")}
    try:
        tax.set_profile(current_actor(), found.id, form)
    except ServiceError as exc:
        return _tenant_page(found, exc.status, exc.errors, form)
    toast(f"{found.name}'s billing details are saved.")
    return redirect_to(url_for(".tenant", tenant_id=found.id))


@bp.route("/tenants/<tenant_id>/change", methods=["POST"])
@staff_required
@recent_auth_required
def change(tenant_id: str):
    """Change the plan: when "now" even for a downgrade (staff may), else as the tenant would."""
    found = _tenant(tenant_id)
    form = {k: request.form.get(k, "") for k in ("plan", "interval", "when")}
    try:
        done = changes.change_plan(current_actor(), found.id, form["plan"], form["interval"] or None,
                                   form["when"] or "auto")
    except ServiceError as exc:
        return _tenant_page(found, exc.status, exc.errors or {"plan": exc.detail}, form)
    toast(f"{found.name}: {done.kind} to {done.plan.name} ({done.interval}), "
          f"{'now' if done.effective == 'now' else 'at ' + done.at.strftime('%Y-%m-%d')}.")
    return redirect_to(url_for(".tenant", tenant_id=found.id))


@bp.route("/tenants/<tenant_id>/cancel", methods=["POST"])
@staff_required
def cancel(tenant_id: str):
    """Cancel at period end, or now (with the unused time credited when asked)."""
    found = _tenant(tenant_id)
    now = request.form.get("when") == "now"
    try:
        subscriptions.cancel(current_actor(), found.id, at_period_end=not now,
                             prorate=now and request.form.get("prorate") == "1",
                             reason=request.form.get("reason", "")[:200])
        toast(f"{found.name}'s subscription {'ended' if now else 'ends at the end of the period'}.")
    except ServiceError as exc:
        toast(exc.detail, "error")
    return redirect_to(url_for(".tenant", tenant_id=found.id))


@bp.route("/tenants/<tenant_id>/subscribe", methods=["POST"])
@staff_required
def subscribe(tenant_id: str):
    """Start billing a tenant that has no subscription (its plan's trial, unless skipped)."""
    found = _tenant(tenant_id)
    form = {k: request.form.get(k, "") for k in ("plan", "interval")}
    try:
        subscriptions.create(current_actor(), found.id, form["plan"] or None, form["interval"] or "monthly",
                             trial=request.form.get("trial") == "1")
    except ServiceError as exc:
        return _tenant_page(found, exc.status, exc.errors or {"plan": exc.detail}, form)
    toast(f"{found.name} is subscribed.")
    return redirect_to(url_for(".tenant", tenant_id=found.id))
