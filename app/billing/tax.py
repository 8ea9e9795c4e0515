"""Billing profiles (where a tenant is taxed, its tax id, whether it can pay) and tax rates by country
and region, with the treatment an invoice applies to its lines.

Treatment, in order: a tenant marked exempt pays no tax; one marked reverse (or, automatically, a
business with a tax id in another EU country than BILLING_SELLER_COUNTRY) gets zero-rated lines with a
reverse-charge note; otherwise the active rate for its country and region, else for its country, applies
(none: untaxed). Tax is computed per line, rounded half-up once per line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import pycountry
from flask import current_app
from sqlalchemy import select

from app.audit import service as audit
from app.audit.service import Target
from app.billing.models import TAX_EXEMPT, BillingProfile, TaxRate
from app.errors import Conflict, Invalid, NotFound
from app.extensions import db
from app.security import Actor
from app.tenancy.models import Tenant

EU = frozenset({"AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE", "IT", "LT",
                "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK"})
REGION_RE = re.compile(r"^[A-Z0-9-]{1,10}$")
TAX_ID_RE = re.compile(r"^[A-Z0-9 .-]{2,40}$")
REVERSE_CHARGE_NOTE = "Reverse charge: tax to be accounted for by the recipient."


@dataclass(frozen=True)
class Treatment:
    """How an invoice taxes its lines: a rate (or none), or zero-rated with a reverse-charge note."""

    rate: TaxRate | None
    reverse_charge: bool = False

    @property
    def note(self) -> str:
        return REVERSE_CHARGE_NOTE if self.reverse_charge else ""


def _country(value: Any, errors: dict[str, str], field: str = "country") -> str:
    country = str(value or "").strip().upper()
    if len(country) != 2 or pycountry.countries.get(alpha_2=country) is None:
        errors[field] = "Use a two-letter ISO 3166 country code, e.g. US, DE, GB."
    return country


def _region(value: Any, errors: dict[str, str]) -> str:
    region = str(value or "").strip().upper()
    if region and not REGION_RE.match(region):
        errors["region"] = "A region code of at most 10 characters (A-Z, 0-9, -), e.g. CA or QC."
    return region


# --- billing profiles -----------------------------------------------------------------------------


def get_profile(tenant_id: str) -> BillingProfile | None:
    return db.session.scalar(select(BillingProfile).where(BillingProfile.tenant_id == tenant_id))


OFFLINE_METHODS = ("bank_transfer",)  # ways to pay that staff record (their invoices wait for a manual payment)


def set_profile(actor: Actor, tenant_id: str, data: dict[str, Any]) -> BillingProfile:
    """Create or change a tenant's billing profile (country, region, tax_id, tax_exempt, and — staff only —
    default_payment_method); commits."""
    tenant = db.session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound("No such tenant.")
    profile = get_profile(tenant_id)
    errors: dict[str, str] = {}
    fields: dict[str, Any] = {}
    if "country" in data or profile is None:
        fields["country"] = _country(data.get("country") or tenant.country, errors)
    if "region" in data:
        fields["region"] = _region(data.get("region"), errors)
    if "tax_id" in data:
        tax_id = str(data.get("tax_id") or "").strip().upper()
        if tax_id and not TAX_ID_RE.match(tax_id):
            errors["tax_id"] = "A tax id of 2–40 letters and digits, e.g. DE123456789."
        fields["tax_id"] = tax_id
    if "tax_exempt" in data:
        if data.get("tax_exempt") not in TAX_EXEMPT:
            errors["tax_exempt"] = f"One of {', '.join(TAX_EXEMPT)}."
        fields["tax_exempt"] = data.get("tax_exempt")
    if "default_payment_method" in data:  # staff: how a tenant pays outside the provider, e.g. bank_transfer
        method = str(data.get("default_payment_method") or "").strip() or None
        if method is not None and method not in OFFLINE_METHODS:
            errors["default_payment_method"] = f"One of {', '.join(OFFLINE_METHODS)}, or none."
        fields["default_payment_method"] = method
    if errors:
        raise Invalid("Some fields need attention.", errors=errors)
    if profile is None:
        profile = BillingProfile(tenant_id=tenant_id, **fields)
        db.session.add(profile)
        changes = {k: [None, v] for k, v in fields.items()}
    else:
        changes = {k: [getattr(profile, k), v] for k, v in fields.items() if getattr(profile, k) != v}
        for key, value in fields.items():
            setattr(profile, key, value)
    db.session.flush()
    audit.record(actor, "billing_profile.updated", tenant_id=tenant_id,
                 targets=[Target("billing_profile", profile.id, tenant.slug)], changes=changes)
    db.session.commit()
    return profile


def has_payment_method(tenant_id: str) -> bool:
    """Whether the tenant has a way to pay: a card on file (app.billing.providers), prepaid credit, or a
    payment method staff recorded on its billing profile (e.g. "bank_transfer")."""
    from app.billing import providers, wallets

    profile = get_profile(tenant_id)
    if profile and profile.default_payment_method:
        return True
    account = providers.account(tenant_id)
    return bool(account and account.payment_method_ref) or any(v > 0 for v in wallets.balances(tenant_id).values())


# --- tax rates --------------------------------------------------------------------------------------


def _clean_rate(data: dict[str, Any], rate: TaxRate | None) -> dict[str, Any]:
    errors: dict[str, str] = {}
    out: dict[str, Any] = {}
    if rate is None:
        out["country"] = _country(data.get("country"), errors)
        out["region"] = _region(data.get("region"), errors)
    if "name" in data or rate is None:
        name = str(data.get("name") or "").strip()
        if not name or len(name) > 40:
            errors["name"] = "A name of at most 40 characters, e.g. VAT."
        out["name"] = name
    if rate is None:  # the percentage and inclusiveness of a rate never change: make a new rate instead
        try:
            percentage = Decimal(str(data.get("percentage")))
            if not percentage.is_finite() or not 0 <= percentage <= 100 or percentage.as_tuple().exponent < -4:
                raise InvalidOperation
            out["percentage"] = percentage
        except (InvalidOperation, ValueError):
            errors["percentage"] = "A percentage from 0 to 100 with at most 4 decimals, e.g. 19 or 7.25."
        out["inclusive"] = bool(data.get("inclusive", False))
    if "active" in data:
        out["active"] = bool(data.get("active"))
    if errors:
        raise Invalid("Some fields need attention.", errors=errors)
    return out


def create_tax_rate(actor: Actor, data: dict[str, Any]) -> TaxRate:
    """A rate for a country (region "" = the whole country); one per country and region. Commits."""
    fields = _clean_rate(data, None)
    if db.session.scalar(select(TaxRate.id).where(TaxRate.country == fields["country"],
                                                  TaxRate.region == fields["region"])):
        raise Conflict("A tax rate for this country and region exists; deactivate or rename it.",
                       errors={"region": "Already has a rate."})
    rate = TaxRate(**fields)
    db.session.add(rate)
    db.session.flush()
    audit.record(actor, "tax_rate.created", targets=[Target("tax_rate", rate.id, rate.name)],
                 changes={k: [None, v] for k, v in fields.items()})
    db.session.commit()
    return rate


def update_tax_rate(actor: Actor, rate_id: str, data: dict[str, Any]) -> TaxRate:
    """Rename or (de)activate a rate; its percentage is fixed (invoices already refer to it). Commits."""
    rate = db.session.get(TaxRate, rate_id)
    if rate is None:
        raise NotFound("No such tax rate.")
    fields = _clean_rate(data, rate)
    changes = {k: [getattr(rate, k), v] for k, v in fields.items() if getattr(rate, k) != v}
    for key, value in fields.items():
        setattr(rate, key, value)
    audit.record(actor, "tax_rate.updated", targets=[Target("tax_rate", rate.id, rate.name)], changes=changes)
    db.session.commit()
    return rate


def treatment(tenant_id: str) -> Treatment:
    """The tax treatment for a tenant's invoices (see the module docstring)."""
    memo = db.session.info.get("billing_batch")  # a billing-run batch loaded its tenants' profiles once
    key = ("profile", tenant_id)
    profile = memo[key] if memo is not None and key in memo else get_profile(tenant_id)
    if profile is None:
        tenant = db.session.get(Tenant, tenant_id)
        country, region, tax_id, exempt = (tenant.country if tenant else ""), "", "", "none"
    else:
        country, region, tax_id, exempt = profile.country, profile.region, profile.tax_id, profile.tax_exempt
    if exempt == "exempt":
        return Treatment(None)
    seller = (current_app.config.get("BILLING_SELLER_COUNTRY") or "").upper()
    if exempt == "reverse" or (tax_id and country in EU and seller in EU and country != seller):
        return Treatment(None, reverse_charge=True)
    rates_key = ("tax_rates", country, region)
    if memo is not None and rates_key in memo:
        rates = memo[rates_key]
    else:
        rates = db.session.scalars(select(TaxRate).where(TaxRate.country == country, TaxRate.active.is_(True),
                                                         TaxRate.region.in_([region, ""]))).all()
        if memo is not None:
            memo[rates_key] = rates
    best = sorted(rates, key=lambda r: r.region != region)  # the region's own rate first
    return Treatment(best[0] if best else None)
