"""Computing invoices: open a draft for a subscription period and price its lines.

Lines, in order: the subscription fee for the period (in advance), proration lines the subscription had
pending, overage per metric for the closed usage window (in arrears: units beyond the plan's included
quota × the plan's unit price, from the usage rollup tables), the coupon discount (before tax, on the
subtotal of those lines), and one tax line. Every line is in integer minor units and the total is the
sum of the lines, always. A draft is priced again when it is finalized, so usage that arrived during
the finalization grace is billed.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from typing import Any

from flask import current_app
from sqlalchemy import delete, func, insert, select

from app import clock
from app.billing import tax as tax_service
from app.billing.common import coupon_discount, history, invoice_changed, mrr, percent_of, plan_price
from app.billing.invoice_models import Invoice, InvoiceLine
from app.billing.models import Coupon, Subscription
from app.db import new_id
from app.extensions import db
from app.plans.models import Plan
from app.security import Actor
from app.usage.models import UsageDaily, UsageMetric, UsageUniqueValue

COMPUTED = ("subscription", "overage", "discount", "tax")  # kinds rebuilt each time a draft is priced
CARRIED = ("proration", "late_fee")  # pending lines a draft takes over as they are
DAYS_PER_MONTH = Decimal("30.436875")  # 365.2425 / 12


def span(start: datetime, end: datetime) -> str:
    return f"{start:%d %b %Y} – {end:%d %b %Y}"


def open_invoice(sub: Subscription, actor: Actor, reason: str, period_start: datetime, period_end: datetime, *,
                 charge_fee: bool = True, usage_plan: Plan | None = None, usage_start: datetime | None = None,
                 usage_end: datetime | None = None, finalize_after: datetime | None = None) -> Invoice:
    """Create and price a draft for the subscription's period, taking its pending lines and (when the fee
    is charged) one period of its coupon. It is due for finalization BILLING_FINALIZE_GRACE after its
    usage window ended (or after now, when it has none). Flushes: a second invoice for the same
    subscription and period start fails on the UNIQUE constraint (IntegrityError) and the caller's
    transaction rolls back."""
    now = clock.now()
    grace = current_app.config["BILLING_FINALIZE_GRACE"]
    invoice = Invoice(tenant_id=sub.tenant_id, subscription_id=sub.id, status="draft", billing_reason=reason,
                      currency=sub.currency, plan_id=sub.plan_id, interval=sub.interval, period_start=period_start,
                      period_end=period_end, charge_fee=charge_fee,
                      usage_plan_id=usage_plan.id if usage_plan is not None and usage_start else None,
                      usage_start=usage_start, usage_end=usage_end,
                      finalize_after=finalize_after or (usage_end or now) + grace)
    memo = batch_memo()
    bulk = memo is not None and "new_lines" in memo and sub.id not in memo["pending_lines"]
    if bulk:
        # In a billing-run batch the draft is inserted with the others when the batch flushes (a repeated
        # period then fails the batch, which is done again one by one), so what the ORM would fill in at
        # INSERT is given here: it is read (the event payload, amount_due) before that.
        invoice.id, invoice.customer, invoice.created_at, invoice.updated_at = new_id("inv"), {}, now, now
        invoice.subtotal = invoice.discount = invoice.tax = invoice.total = 0
        invoice.amount_paid = invoice.amount_credited = 0
    db.session.add(invoice)
    if not bulk:
        db.session.flush()
    pending = [] if memo is not None and sub.id not in memo["pending_lines"] else db.session.scalars(
        select(InvoiceLine).where(InvoiceLine.subscription_id == sub.id, InvoiceLine.invoice_id.is_(None))).all()
    for line in pending:
        line.invoice_id = invoice.id
    if sub.coupon_id and charge_fee:
        invoice.coupon_id = sub.coupon_id
        if sub.coupon_periods_left is not None:
            mrr_before = mrr(sub)
            sub.coupon_periods_left -= 1
            if sub.coupon_periods_left <= 0:
                coupon_id = sub.coupon_id
                sub.coupon_id, sub.coupon_periods_left, sub.coupon = None, None, None
                history(sub, "coupon_ended", actor, {"status": sub.status, "plan_id": sub.plan_id,
                                                     "interval": sub.interval}, mrr_before, period_start,
                        coupon_id=coupon_id)
    if not bulk:
        db.session.flush()
    price(invoice, fresh=not pending)
    invoice_changed(invoice, actor, "invoice.created", "invoice.created",
                    {"status": [None, "draft"], "total": [None, invoice.total]}, {"billing_reason": reason})
    return invoice


def price(invoice: Invoice, fresh: bool = False) -> None:
    """(Re)compute a draft's fee, overage, discount and tax lines and its totals. `fresh`: the invoice was
    just created without any line, so there is nothing to delete or load."""
    if invoice.status != "draft":
        raise RuntimeError(f"invoice {invoice.id} is {invoice.status}: its lines are immutable")
    memo = batch_memo()
    carried = (memo or {}).get("carried")  # the batch deleted its drafts' computed lines and loaded the rest
    batched = carried is not None and invoice.id in carried
    bulk = memo is not None and "new_lines" in memo and (fresh or batched)  # new lines: see write_new_lines()
    if not fresh and not batched:
        db.session.execute(delete(InvoiceLine).where(InvoiceLine.invoice_id == invoice.id,
                                                     InvoiceLine.kind.in_(COMPUTED)))
        db.session.expire(invoice, ["lines"])
    now = clock.now()
    lines = [] if fresh else list(carried[invoice.id]) if batched else [
        line for line in invoice.lines if line.kind in CARRIED]
    plan = db.session.get(Plan, invoice.plan_id)
    usage = []
    if invoice.usage_plan_id and invoice.usage_start and invoice.usage_end:
        usage = overage(invoice.tenant_id, db.session.get(Plan, invoice.usage_plan_id), invoice.usage_start,
                        invoice.usage_end)
    coupon = db.session.get(Coupon, invoice.coupon_id) if invoice.coupon_id else None
    treatment = remembered(("treatment", invoice.tenant_id), lambda: tax_service.treatment(invoice.tenant_id))
    added: list[InvoiceLine] = []  # the new lines are complete (tax, position) before they are written

    def add(kind: str, description: str, amount: int, **fields) -> InvoiceLine:
        fields = {"tax_amount": 0, "tax_inclusive": False, "tax_note": "", **fields}
        line = (NewLine if bulk else InvoiceLine)(
            tenant_id=invoice.tenant_id, invoice_id=invoice.id, subscription_id=invoice.subscription_id, kind=kind,
            description=description[:300], amount=amount, currency=invoice.currency, created_at=now, **fields)
        lines.append(line)
        added.append(line)
        return line

    if invoice.charge_fee:
        add("subscription", f"{plan.name} ({invoice.interval}) · {span(invoice.period_start, invoice.period_end)}",
            plan_price(plan, invoice.interval), quantity=Decimal(1),
            unit_amount=Decimal(plan_price(plan, invoice.interval)), period_start=invoice.period_start,
            period_end=invoice.period_end)
    for metric, units, unit_price, amount in usage:
        add("overage", f"{metric} over the included quota · {span(invoice.usage_start, invoice.usage_end)}",
            amount, metric=metric, quantity=units, unit_amount=unit_price, period_start=invoice.usage_start,
            period_end=invoice.usage_end)
    subtotal = sum(line.amount for line in lines)
    discount = coupon_discount(coupon, subtotal - sum(line.amount for line in lines if line.kind == "late_fee"))
    if discount:
        add("discount", f"Discount: {coupon.name}", -discount)
    _tax(treatment, lines, add)
    for position, line in enumerate(lines):
        line.position = position
    invoice.subtotal = subtotal
    invoice.discount = discount
    invoice.tax = sum(line.tax_amount for line in lines if line.kind == "tax")
    invoice.total = sum(line.amount for line in lines)
    if bulk:  # written with the batch's other new lines when the batch ends (write_new_lines)
        memo["new_lines"].extend(added)
        if len(lines) > len(added):  # carried lines changed: written while the invoice is still a draft
            db.session.flush()
        return
    db.session.add_all(added)
    db.session.flush()
    db.session.expire(invoice, ["lines"])


class NewLine:
    """A new line of a draft priced inside a billing-run batch: the same fields as an InvoiceLine, written by
    write_new_lines() without the ORM."""

    def __init__(self, **fields) -> None:
        self.__dict__.update(LINE_DEFAULTS)
        self.__dict__.update(fields)


LINE_DEFAULTS = {"metric": None, "quantity": None, "unit_amount": None, "period_start": None, "period_end": None,
                 "tax_rate_id": None, "tax_percent": None, "tax_inclusive": False, "tax_amount": 0, "tax_note": "",
                 "position": 0}


def write_new_lines(memo: dict) -> int:
    """Write the new lines of the drafts a billing-run batch priced, in one INSERT, once the batch has
    flushed its invoices (ids taken in the order the ORM would have taken them). Core, so the per-line
    mapper check that the invoice is still a draft does not run: price() checked it of each, and the batch
    holds them locked (or created them) in its transaction. Until then nothing in the batch reads the
    lines of those drafts."""
    added, memo["new_lines"] = memo.get("new_lines") or [], []
    if added:
        db.session.flush()
        db.session.execute(insert(InvoiceLine.__table__), [
            {**line.__dict__, "id": new_id(InvoiceLine.id_prefix)} for line in added])
    return len(added)


def _tax(treatment: tax_service.Treatment, lines: list[InvoiceLine], add) -> None:
    """Tax each line once (half-up) and add one tax line: the exclusive tax as its amount, or 0 with the
    contained tax shown (inclusive), or a zero-rated reverse-charge line."""
    taxable = list(lines)
    if treatment.reverse_charge:
        for line in taxable:
            line.tax_percent, line.tax_amount, line.tax_note = Decimal(0), 0, treatment.note
        if taxable:
            add("tax", treatment.note, 0, tax_percent=Decimal(0), tax_note=treatment.note)
        return
    rate = treatment.rate
    if rate is None or not taxable:
        return
    for line in taxable:
        line.tax_rate_id, line.tax_percent, line.tax_inclusive = rate.id, rate.percentage, rate.inclusive
        if rate.inclusive:
            net = (Decimal(line.amount) * 100 / (100 + rate.percentage)).quantize(Decimal(1), rounding=ROUND_HALF_UP)
            line.tax_amount = line.amount - int(net)
        else:
            line.tax_amount = percent_of(line.amount, rate.percentage)
    contained = sum(line.tax_amount for line in taxable)
    label = f"{rate.name} {rate.percentage.normalize():f}%"
    add("tax", f"{label} (included)" if rate.inclusive else label, 0 if rate.inclusive else contained,
        tax_rate_id=rate.id, tax_percent=rate.percentage, tax_inclusive=rate.inclusive, tax_amount=contained)


def batch_memo() -> dict | None:
    """The memo of the billing-run batch in progress (app.billing.run), or None outside one."""
    return db.session.info.get("billing_batch")


def remembered(key: tuple, compute):
    """Reference data (a tenant's tax treatment or billing profile, a metric, a number sequence's locked row)
    read once per billing-run batch: app.billing.run keeps a memo in the session for the length of one
    batch transaction. Outside a batch, `compute()` is simply called."""
    memo = db.session.info.get("billing_batch")
    if memo is None:
        return compute()
    if key not in memo:
        memo[key] = compute()
    return memo[key]


# --- usage ------------------------------------------------------------------------------------------


def overage(tenant_id: str, plan: Plan, start: datetime, end: datetime) -> list[tuple[str, Decimal, Decimal, int]]:
    """(metric, units over the quota, unit price, amount) for each metric the plan prices beyond its quota.

    Usage is read by UTC day over [start's day, end's day), so consecutive windows never count a day
    twice. The plan's included units are per month, so a window counts them × its length in months
    (rounded, at least 1: an annual window includes 12 months' worth). The amount is units × unit price,
    rounded half-even once."""
    out = []
    months = max(1, int((Decimal((end - start).total_seconds()) / 86400 / DAYS_PER_MONTH)
                        .quantize(Decimal(1), rounding=ROUND_HALF_EVEN)))
    for metric in sorted(plan.quotas or {}):
        included, unit_price = plan.included(metric), plan.overage_price(metric)
        if included is None or unit_price is None:
            continue
        used = period_usage(tenant_id, metric, start.date(), end.date())
        over = max(Decimal(0), used - included * months)
        if over > 0:
            amount = int((over * unit_price).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
            out.append((metric, over, unit_price, amount))
    return out


def period_usage(tenant_id: str, code: str, start: date, end: date) -> Decimal:
    """A metric's value over the days [start, end) from the rollup tables: API calls (2xx) and count/sum
    metrics add up, max is the largest day, latest the newest value, unique_count the distinct values of
    the whole window. Values of metrics with decimals are scaled to their unit."""
    metric = remembered(("metric", code),
                        lambda: db.session.scalar(select(UsageMetric).where(UsageMetric.code == code)))
    aggregation = metric.aggregation if metric is not None else "count"
    decimals = metric.decimals if metric is not None else 0
    if start >= end:
        return Decimal(0)
    if aggregation == "unique_count":
        value = db.session.scalar(select(func.count(func.distinct(UsageUniqueValue.value))).where(
            UsageUniqueValue.tenant_id == tenant_id, UsageUniqueValue.metric == code,
            UsageUniqueValue.day >= start, UsageUniqueValue.day < end))
        return Decimal(value or 0)
    memo = batch_memo()
    if aggregation != "latest" and memo is not None and tenant_id in memo.get("tenants", ()):
        return Decimal(int(_batch_usage(memo, code, aggregation, start, end).get(tenant_id) or 0)).scaleb(-decimals)
    rows = select(UsageDaily.value).where(UsageDaily.tenant_id == tenant_id, UsageDaily.metric == code,
                                          UsageDaily.day >= start, UsageDaily.day < end)
    if aggregation == "latest":
        value = db.session.scalar(rows.order_by(UsageDaily.observed_at.desc(), UsageDaily.value.desc()).limit(1))
    else:
        total = func.max if aggregation == "max" else func.sum
        value = db.session.scalar(select(func.coalesce(total(rows.subquery().c.value), 0)))
    return Decimal(int(value or 0)).scaleb(-decimals)


def _batch_usage(memo: dict, code: str, aggregation: str, start: date, end: date) -> dict[str, Any]:
    """A metric's sum (or max) over [start, end) for every tenant of the billing-run batch, in one query the
    first time a batch asks for that window (the same figures period_usage() reads one tenant at a time)."""
    key = ("usage", code, aggregation, start, end)
    if key not in memo:
        total = func.max if aggregation == "max" else func.sum
        memo[key] = dict(db.session.execute(
            select(UsageDaily.tenant_id, total(UsageDaily.value)).where(
                UsageDaily.tenant_id.in_(memo["tenants"]), UsageDaily.metric == code, UsageDaily.day >= start,
                UsageDaily.day < end).group_by(UsageDaily.tenant_id)).all())
    return memo[key]


def pending_line(sub: Subscription, description: str, amount: int, start: datetime, end: datetime,
                 quantity: Decimal | None = None, kind: str = "proration") -> InvoiceLine:
    """A line (a proration, or a late fee) waiting for the subscription's next invoice."""
    line = InvoiceLine(tenant_id=sub.tenant_id, invoice_id=None, subscription_id=sub.id, kind=kind,
                       description=description[:300], amount=amount, currency=sub.currency, period_start=start,
                       period_end=end, quantity=quantity, created_at=clock.now())
    db.session.add(line)
    return line
