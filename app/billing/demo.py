"""Demo billing: twelve months of subscriptions, invoices and payments for the demo tenants, made through the
billing services with the clock moved day by day, so the revenue pages show a believable business.

Tenants on Pro or Enterprise subscribe soon after they were created (or a year ago), a quarter of the Free
ones convert to Pro at some point; some start with a trial or a coupon, a fifth pay annually. Along the way
some upgrade (now, prorated), downgrade (at the period end), cancel at the period end (a few change their
mind), cancel at once (half of those come back), and get goodwill credits. Most pay by bank transfer (staff
mark the invoice paid a few days to a few weeks after it was finalized), some from prepaid credits, and a
few have no way to pay: their invoices go through dunning until the tenant is suspended, and one is
rescued by staff. Every day the billing run closes the periods that ended and dunning retries what is due.
At most MAX_SUBSCRIBERS tenants (the oldest) get this history, so a seed of thousands of tenants stays quick.
"""

from __future__ import annotations

import logging
import random
import zlib
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from app import clock
from app.billing import collection, coupons, invoices, run, subscriptions, tax, wallets
from app.billing.changes import change_plan
from app.billing.invoice_models import Invoice
from app.billing.models import BillingProfile, Coupon, Subscription, TaxRate
from app.errors import ServiceError
from app.extensions import db
from app.plans.models import Plan
from app.security import ROLE_PERMISSIONS, Actor
from app.tenancy.models import Tenant

DAYS = 365
MAX_SUBSCRIBERS = 300  # a larger seed (e.g. --tenants 10000) bills its first 300 subscribers only: minutes, not hours
TAX_RATES = (("DE", "VAT", "19", False), ("GB", "VAT", "20", False), ("FR", "TVA", "20", False),
             ("NL", "BTW", "21", False), ("SE", "Moms", "25", False), ("ES", "IVA", "21", False),
             ("AU", "GST", "10", True), ("JP", "Consumption tax", "10", False), ("IN", "GST", "18", False))
COUPONS = ({"name": "Launch 20% (3 months)", "code": "LAUNCH20", "percent_off": "20", "duration": "repeating",
            "duration_periods": 3},
           {"name": "Partner $50 off", "code": "PARTNER50", "amount_off": 5000, "currency": "USD",
            "duration": "forever"})
EU_REVERSE = {"DE", "FR", "NL", "SE", "ES"}

Action = Callable[[], object]


def seed_billing(rng: random.Random, staff_display: str, log=print) -> dict[str, int]:
    """Give every demo tenant without a subscription its year of billing; returns counts."""
    system, staff = Actor.system("demo seed"), Actor(type="staff", id=None, display=staff_display)
    today = clock.now().replace(hour=0, minute=0, second=0, microsecond=0)
    start = today - timedelta(days=DAYS)
    with clock.travel(start - timedelta(days=1)):
        _catalogue(staff)
    subscribed = set(db.session.scalars(select(Subscription.tenant_id)))
    tenants = [row for row in db.session.execute(
        select(Tenant.id, Tenant.slug, Tenant.country, Plan.code, Tenant.created_at)
        .join(Plan, Plan.id == Tenant.plan_id).order_by(Tenant.created_at, Tenant.id)) if row.id not in subscribed]
    agenda: dict[int, list[tuple[int, Action]]] = defaultdict(list)
    bank: set[str] = set()
    scripted = 0
    for index, tenant in enumerate(tenants):
        if scripted >= MAX_SUBSCRIBERS:
            break
        scripted += _script(rng, index, scripted, tenant, start, system, staff, agenda, bank)
    quiet = logging.getLogger(run.__name__)
    level, _ = quiet.level, quiet.setLevel(logging.WARNING)  # not a line per simulated day
    for day in range(DAYS):
        midnight = start + timedelta(days=day)
        with clock.travel(midnight + timedelta(minutes=30)):
            run.run((midnight - timedelta(days=1)).date(), system)
        with clock.travel(midnight + timedelta(hours=6)):
            collection.retry_due()
        for minute, action in sorted(agenda.get(day, []), key=lambda item: item[0]):
            with clock.travel(midnight + timedelta(hours=9, minutes=minute)):
                _attempt(action)
        with clock.travel(midnight + timedelta(hours=16)):
            _bank_transfers(staff, bank)
        if day % 91 == 90:
            log(f"  billing: {day + 1} of {DAYS} days")
    run.run(None, system)
    quiet.setLevel(level)
    counts = {"subscriptions": db.session.scalar(select(func.count()).select_from(Subscription)) or 0,
              "invoices": db.session.scalar(select(func.count()).select_from(Invoice)
                                            .where(Invoice.status != "draft")) or 0}
    _rebuild_revenue()
    return counts


def _catalogue(staff: Actor) -> None:
    """Tax rates for the demo countries and two coupons (those already there are kept)."""
    for country, name, percentage, inclusive in TAX_RATES:
        if db.session.scalar(select(TaxRate.id).where(TaxRate.country == country, TaxRate.region == "")) is None:
            tax.create_tax_rate(staff, {"country": country, "name": name, "percentage": percentage,
                                        "inclusive": inclusive})
    for spec in COUPONS:
        if db.session.scalar(select(Coupon.id).where(Coupon.code == spec["code"])) is None:
            coupons.create_coupon(staff, spec)


def _owner(tenant) -> Actor:
    return Actor(type="user", id=None, display=f"owner@{tenant.slug}.example.com", tenant_id=tenant.id,
                 permissions=ROLE_PERMISSIONS["owner"])


def _script(rng: random.Random, index: int, number: int, tenant, start: datetime, system: Actor, staff: Actor,
            agenda: dict[int, list[tuple[int, Action]]], bank: set[str]) -> bool:
    """Decide one tenant's year and put its actions on the agenda (day → [(minute, action)]); False when it
    never subscribes. `number` counts the subscribers scripted before it."""
    created = max(0, (tenant.created_at.replace(tzinfo=UTC) - start).days + 1)
    if tenant.code in ("pro", "enterprise"):
        plan, day = tenant.code, created + rng.randint(0, 12)
    elif rng.random() < 0.25 or index == 1:
        plan, day = "pro", created + rng.randint(20, 200)
    else:
        return False
    if day >= DAYS - 5:
        return False
    owner, tid = _owner(tenant), tenant.id
    pays = "bank" if index == 0 else rng.choices(["bank", "credits", "none"], weights=[62, 26, 12])[0]
    if number in (1, 2):
        pays = "none"  # at least two early subscribers go through dunning
    interval = "annual" if index > 0 and rng.random() < 0.2 else "monthly"
    coupon = "LAUNCH20" if index == 0 or rng.random() < 0.12 else "PARTNER50" if rng.random() < 0.05 else None
    trial = pays != "none" and rng.random() < 0.4
    reverse = tenant.country in EU_REVERSE and rng.random() < 0.3

    def setup() -> None:
        tax.set_profile(staff, tid, {"country": tenant.country, "tax_id": f"{tenant.country}{rng.randint(10**8, 10**9)}"
                                     if reverse else "", "tax_exempt": "reverse" if reverse else "none"})
        if pays == "bank":
            _bank_method(tid, bank)
        elif pays == "credits":
            price = db.session.scalar(select(Plan.price_annual if interval == "annual" else Plan.price_monthly)
                                      .where(Plan.code == plan))
            wallets.add(staff, tid, "granted", {"amount": price * (2 if interval == "annual" else 8),
                                                "currency": "USD", "note": "Prepaid package"})
        subscriptions.create(owner, tid, plan, interval, coupon=coupon, trial=trial)

    agenda[day].append((index % 300, setup))
    later = day + rng.randint(35, 220)
    roll = rng.random()
    if plan == "pro" and roll < 0.25:
        agenda[later].append((index % 300, lambda: change_plan(owner, tid, "enterprise")))
        if rng.random() < 0.35:
            agenda[later + rng.randint(40, 120)].append((index % 300, lambda: change_plan(owner, tid, "pro")))
    elif plan == "enterprise" and roll < 0.35:
        agenda[later].append((index % 300, lambda: change_plan(owner, tid, "pro")))
    elif roll < 0.45:
        agenda[later].append((index % 300, lambda: subscriptions.cancel(owner, tid, reason="Moving to another vendor")))
        if rng.random() < 0.35:
            agenda[later + 4].append((index % 300, lambda: subscriptions.reactivate(owner, tid)))
    elif roll < 0.57:
        agenda[later].append((index % 300, lambda: subscriptions.cancel(owner, tid, at_period_end=False,
                                                                         reason="Budget cut")))
        if rng.random() < 0.5:
            agenda[later + rng.randint(30, 70)].append((index % 300, lambda: subscriptions.reactivate(owner, tid)))
    if rng.random() < 0.15:
        agenda[day + rng.randint(20, 150)].append((index % 300, lambda: wallets.add(
            staff, tid, "granted", {"amount": rng.choice([2000, 5000, 10000]), "currency": "USD",
                                    "note": "Goodwill credit"})))
    if pays == "none" and number % 2:
        agenda[day + 45].append((index % 300, lambda: _rescue(staff, tid, bank)))
    return True


def _bank_method(tenant_id: str, bank: set[str]) -> None:
    """Staff record that the tenant pays by bank transfer (the manual provider's payment method)."""
    profile = db.session.scalar(select(BillingProfile).where(BillingProfile.tenant_id == tenant_id))
    profile.default_payment_method = "bank_transfer"
    db.session.commit()
    bank.add(tenant_id)


def _rescue(staff: Actor, tenant_id: str, bank: set[str]) -> None:
    """A tenant in dunning pays its debts by wire and pays by bank transfer from then on."""
    for invoice_id in db.session.scalars(select(Invoice.id).where(Invoice.tenant_id == tenant_id,
                                                                  Invoice.status == "open")):
        invoices.mark_paid(staff, invoice_id, "wire transfer")
    _bank_method(tenant_id, bank)


def _bank_transfers(staff: Actor, bank: set[str]) -> None:
    """Staff mark paid the open invoices of bank-transfer tenants that arrived today: most a few days after
    they were finalized, about one in nine weeks later (decided per tenant and period, the same every seed)."""
    if not bank:
        return
    now = clock.now()
    due = db.session.execute(select(Invoice.id, Invoice.finalized_at, Invoice.period_start, Tenant.slug)
                             .join(Tenant, Tenant.id == Invoice.tenant_id).where(
        Invoice.status == "open", Invoice.tenant_id.in_(bank), Invoice.finalized_at <= now - timedelta(days=3))
        .order_by(Invoice.finalized_at, Tenant.slug, Invoice.period_start)).all()
    for invoice_id, finalized_at, period_start, slug in due:
        draw = zlib.crc32(f"{slug} {period_start:%Y-%m-%d %H:%M}".encode())
        wait = timedelta(days=33 if draw % 9 == 0 else 3 + draw % 5)
        if now - finalized_at.replace(tzinfo=UTC) >= wait:
            _attempt(lambda invoice_id=invoice_id: invoices.mark_paid(staff, invoice_id, "bank transfer"))


def _attempt(action: Action) -> None:
    """Run a scripted action; one that no longer applies (e.g. the subscription was canceled) is skipped."""
    try:
        action()
    except ServiceError:
        db.session.rollback()


def _rebuild_revenue() -> None:
    """Pre-aggregate the revenue metrics of every month the demo covers."""
    from app.billing import metrics

    metrics.rebuild_all()
