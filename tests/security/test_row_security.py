"""Row-level security on PostgreSQL (the tests skip on SQLite, which has none): every table with a tenant_id
carries the tenant policy, and inside a tenant's request a query that deliberately forgets its tenant
filter — through the ORM or as raw SQL, reading or writing — sees and touches that tenant's rows only;
staff paths (no tenant set) see every tenant."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.exc import DBAPIError

from app.auth.models import ApiKey
from app.extensions import db
from app.tenancy import rls
from app.tenancy.models import Membership


@pytest.fixture(autouse=True)
def _postgres_only(ctx):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("row-level security is PostgreSQL's (SQLite has none)")


def test_every_tenant_table_has_the_policy():
    tables = {t.name for t in db.metadata.sorted_tables if "tenant_id" in t.c}
    rows = db.session.execute(text(
        "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity, count(p.polname) FROM pg_class c "
        "LEFT JOIN pg_policy p ON p.polrelid = c.oid WHERE c.relkind = 'r' AND c.relnamespace = "
        "'public'::regnamespace GROUP BY c.relname, c.relrowsecurity, c.relforcerowsecurity")).all()
    secured = {name for name, enabled, forced, policies in rows if enabled and forced and policies}
    assert tables - secured == set(), "tables with tenant_id but no row-level security (migrations/row_security.py)"


@pytest.fixture
def two_tenants(make):
    a, b = make.tenant(slug="rls-a"), make.tenant(slug="rls-b")
    for tenant in (a, b):
        make.api_key(tenant, name=f"key of {tenant.slug}")
        make.member(tenant, role="owner")
    return a, b


def test_an_unfiltered_query_in_a_tenants_request_sees_only_that_tenant(app, two_tenants):
    a, b = two_tenants
    with app.app_context(), app.test_request_context("/api/v1/tenant"):  # a request of its own (its own g and session)
        rls.enter(a.id)
        keys = db.session.scalars(select(ApiKey)).all()  # no WHERE tenant_id: deliberately
        assert {k.tenant_id for k in keys} == {a.id}
        raw = db.session.execute(text("SELECT DISTINCT tenant_id FROM memberships")).scalars().all()
        assert raw == [a.id]
        assert db.session.execute(text("SELECT count(*) FROM api_keys WHERE tenant_id = :b"), {"b": b.id}).scalar() == 0
        changed = db.session.execute(update(ApiKey).values(name="renamed"))  # every row, it says
        assert changed.rowcount == 1
        db.session.commit()
        # The next transaction of the same request is bound too.
        assert {k.tenant_id for k in db.session.scalars(select(ApiKey))} == {a.id}
        db.session.rollback()
    names = dict(db.session.execute(select(ApiKey.tenant_id, ApiKey.name)).all())
    assert names == {a.id: "renamed", b.id: "key of rls-b"}  # outside the request: every tenant, B untouched


def test_writing_another_tenants_row_is_refused(app, two_tenants):
    a, b = two_tenants
    user_b = db.session.scalars(select(Membership.user_id).where(Membership.tenant_id == b.id)).first()
    with app.app_context(), app.test_request_context("/t/rls-a"):  # a request of its own (its own g and session)
        rls.enter(a.id)
        db.session.add(Membership(tenant_id=b.id, user_id=user_b, role="member"))
        with pytest.raises(DBAPIError, match="row-level security"):
            db.session.flush()
        db.session.rollback()


def test_a_users_own_memberships_stay_visible_for_the_tenant_switcher(app, make, two_tenants):
    a, b = two_tenants
    both = make.user("both@example.com")
    make.member(a, user=both)
    make.member(b, user=both)
    with app.app_context(), app.test_request_context("/t/rls-a"):  # a request of its own (its own g and session)
        rls.enter(a.id, both.id)
        mine = db.session.scalars(select(Membership.tenant_id).where(Membership.user_id == both.id)).all()
        everyone = db.session.scalars(select(Membership.tenant_id)).all()
        db.session.rollback()
    assert sorted(mine) == sorted([a.id, b.id])
    assert set(everyone) == {a.id, b.id} and everyone.count(b.id) == 1  # of B's members, only this user


def test_the_tenant_role_cannot_change_the_audit_trail(app, two_tenants):
    a, _ = two_tenants
    with app.app_context(), app.test_request_context("/api/v1/tenant"):  # a request of its own (its own g and session)
        rls.enter(a.id)
        with pytest.raises(DBAPIError, match=r"permission denied|append-only"):
            db.session.execute(text("DELETE FROM audit_events"))
        db.session.rollback()


def test_staff_paths_see_every_tenant(app, two_tenants):
    with app.app_context(), app.test_request_context("/admin/"):  # a request of its own (its own g and session)
        assert len(db.session.scalars(select(ApiKey)).all()) == 2
        db.session.rollback()
