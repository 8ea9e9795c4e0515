"""Factories that build data through the real services (so audit, validation and events run too)."""

from __future__ import annotations

import itertools

from app.auth import apikeys, passwords
from app.auth import service as auth_service
from app.extensions import db
from app.plans import service as plans_service
from app.security import ROLE_PERMISSIONS, ROLES, Actor
from app.tenancy import members
from app.tenancy import service as tenancy_service

_counter = itertools.count(1)
_HASH: dict[str, str] = {}


class Factories:
    PASSWORD = "correct horse battery"
    system = Actor.system("tests")

    def _hash(self) -> str:
        if "h" not in _HASH:
            _HASH["h"] = passwords.hash_password(self.PASSWORD)
        return _HASH["h"]

    def plans(self):
        plans_service.ensure_default_plans(self.system)

    def user(self, email: str | None = None, name: str = "Test User"):
        email = email or f"user{next(_counter)}@example.com"
        user = auth_service.build_user(email, name, None, password_hash=self._hash())
        db.session.commit()
        return user

    def staff(self, email: str | None = None, enrolled: bool = True):
        """A staff account; enrolled in two-factor sign-in with TOTP_SECRET unless enrolled=False."""
        email = email or f"staff{next(_counter)}@example.com"
        user = auth_service.build_user(email, "Staff", None, is_staff=True, password_hash=self._hash())
        if enrolled:
            self.enrol(user)
        db.session.commit()
        return user

    TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"  # tests only

    def enrol(self, user):
        """Two-factor sign-in on with TOTP_SECRET (tests.conftest.totp_code computes its codes)."""
        from app import clock
        from app.webhooks import secrets

        user.totp_secret = secrets.encrypt(self.TOTP_SECRET)
        user.totp_enabled_at = clock.now()
        db.session.commit()
        return user

    def tenant(self, slug: str | None = None, plan: str = "pro", **fields):
        self.plans()
        n = next(_counter)
        data = {"name": fields.pop("name", f"Tenant {n}"), "slug": slug or f"tenant-{n}", "plan_id": plan, **fields}
        tenant, _ = tenancy_service.create_tenant(self.system, data)
        return tenant

    def member(self, tenant, role: str = "member", user=None):
        user = user or self.user()
        membership = members.add_membership(self.system, tenant, user, role)
        db.session.commit()
        return membership

    def actor_for(self, tenant, role: str = "owner", user=None) -> Actor:
        return Actor(type="user", id=user.id if user else None, display=user.email if user else f"{role}@tests",
                     tenant_id=tenant.id, permissions=ROLE_PERMISSIONS[role])

    def api_key(self, tenant, scopes=None, **kwargs):
        """(ApiKey, plaintext) with the given scopes (default: every permission)."""
        actor = self.actor_for(tenant, "owner")
        return apikeys.create_key(actor, tenant.id, kwargs.pop("name", "test key"),
                                  scopes or sorted(ROLE_PERMISSIONS["owner"]), **kwargs)

    def world(self) -> dict:
        """Tenants A and B with one user per role and an owner key each."""
        out = {}
        for name in ("a", "b"):
            tenant = self.tenant(slug=f"tenant-{name}", name=f"Tenant {name.upper()}")
            users = {}
            for role in ROLES:
                user = self.user(email=f"{role}@{name}.example.com")
                self.member(tenant, role, user)
                users[role] = user
            key, plaintext = self.api_key(tenant)
            out[name] = {"tenant": tenant, "users": users, "key": key, "token": plaintext}
        return out
