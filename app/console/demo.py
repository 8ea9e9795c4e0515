"""Demo data: the plan catalogue, a staff login and N tenants with people, keys and audit history, usage, and
a year of subscriptions and invoices (app.billing.demo)."""

from __future__ import annotations

import random
from datetime import timedelta

from sqlalchemy import func, select

from app import clock
from app.auth import apikeys, passwords, twofactor
from app.auth import service as auth_service
from app.extensions import db
from app.plans import queries as plan_queries
from app.plans import service as plans_service
from app.security import ROLE_PERMISSIONS, Actor
from app.tenancy import members
from app.tenancy import service as tenancy_service
from app.tenancy.models import Tenant

STAFF_EMAIL = "admin@tenantry.example.com"
STAFF_PASSWORD = "tenantry-admin-demo"  # noqa: S105 - published demo login
# Staff need two-factor sign-in; the demo admin is enrolled with this published secret (demo data only:
# add it to an authenticator app, or print the current code with `flask demo totp`).
STAFF_TOTP_SECRET = "TENANTRYDEMOADMINTOTPSECRETKEY23"  # noqa: S105 - published demo secret
USER_PASSWORD = "tenantry-demo-user"  # noqa: S105 - published demo login
DEMO_OWNER = "owner@acme.example.com"

_FIRST = ["Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark", "Wayne", "Wonka", "Tyrell", "Cyberdyne",
          "Soylent", "Aperture", "Vandelay", "Pied Piper", "Gringotts", "Oscorp", "Monarch", "Massive", "Blue Sun",
          "Nakatomi", "Dunder", "Vehement", "Sterling", "Prestige", "Virtucon"]
_SECOND = ["Corp", "Labs", "Systems", "Analytics", "Cloud", "Logistics", "Health", "Media", "Robotics", "Finance"]
_COUNTRIES = ["US", "US", "US", "GB", "DE", "FR", "CA", "NL", "SE", "JP", "AU", "BR", "IN", "ES"]
_TAGS = ["beta", "vip", "partner", "edu", "nonprofit", "migrated", "eu", "startup"]
_PEOPLE = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy"]


def is_seeded() -> bool:
    """True once the demo (or any) tenants exist."""
    return (db.session.scalar(select(func.count()).select_from(Tenant)) or 0) > 0


def seed(tenants: int = 50, seed_value: int = 7, log=print) -> dict[str, int]:
    """Create the demo data. Deterministic for a given seed; tenants are spread over the past 400 days."""
    rng = random.Random(seed_value)
    system = Actor.system("demo seed")
    plans_service.ensure_default_plans(system)
    plan_ids = {p.code: p.id for p in plan_queries.list_plans()}
    if auth_service.find_user_by_email(STAFF_EMAIL) is None:
        staff_user = auth_service.create_staff(system, STAFF_EMAIL, "Demo Admin", STAFF_PASSWORD)
        twofactor.enrol_with_secret(system, staff_user, STAFF_TOTP_SECRET)
    shared_hash = passwords.hash_password(USER_PASSWORD)  # one argon2 hash for every demo user
    start = clock.now() - timedelta(days=400)
    counts = {"tenants": 0, "users": 0, "keys": 0}
    for index in range(tenants):
        name = "Acme Corp" if index == 0 else f"{rng.choice(_FIRST)} {rng.choice(_SECOND)} {index}"
        slug = "acme" if index == 0 else tenancy_service.slugify(name)
        plan = "pro" if index == 0 else rng.choices(["free", "pro", "enterprise"], weights=[6, 3, 1])[0]
        created = start + timedelta(days=400 * index / max(1, tenants), minutes=rng.randint(0, 600))
        with clock.travel(created):
            tenant = _seed_tenant(system, rng, name, slug, plan_ids[plan], shared_hash, counts)
        if index % 500 == 499:
            log(f"  {index + 1} tenants")
        counts["tenants"] += 1
        db.session.expunge_all()
        del tenant
    from app.usage.demo import seed_usage

    counts["usage_days"] = seed_usage(rng)
    from app.billing.demo import seed_billing

    billing = seed_billing(rng, STAFF_EMAIL, log=log)
    counts.update(billing)
    log(f"  billing: {billing['subscriptions']} subscriptions with a year of history, "
        f"{billing['invoices']} finalized invoices")
    return counts


def _seed_tenant(system: Actor, rng: random.Random, name: str, slug: str, plan_id: str, shared_hash: str,
                 counts: dict[str, int]) -> Tenant:
    tags = rng.sample(_TAGS, rng.randint(0, 2))
    tenant, _ = tenancy_service.create_tenant(system, {
        "name": name, "slug": slug, "country": rng.choice(_COUNTRIES), "plan_id": plan_id, "tags": tags,
        "billing_email": f"billing@{slug}.example.com",
    })
    people = ["owner", *rng.sample(_PEOPLE, rng.randint(1, 3))]
    for position, person in enumerate(people):
        email = f"{person}@{slug}.example.com"
        user = auth_service.find_user_by_email(email) or auth_service.build_user(
            email, person.title(), None, password_hash=shared_hash)
        role = "owner" if position == 0 else rng.choice(["admin", "member", "member", "viewer"])
        members.add_membership(system, tenant, user, role)
        counts["users"] += 1
    db.session.commit()
    owner = Actor(type="user", id=None, display=f"owner@{slug}.example.com", tenant_id=tenant.id,
                  permissions=ROLE_PERMISSIONS["owner"])
    apikeys.create_key(owner, tenant.id, "Production backend", ["tenant:read", "members:read", "keys:read",
                                                               "usage:read", "usage:write", "events:write"])
    counts["keys"] += 1
    if rng.random() < 0.5:
        key, _ = apikeys.create_key(owner, tenant.id, "CI smoke tests", ["tenant:read"])
        counts["keys"] += 1
        if rng.random() < 0.4:
            apikeys.revoke_key(owner, tenant.id, key.id)
    return tenant
