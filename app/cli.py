"""Flask commands: demo seed, create-admin, audit verify, billing run, scheduler."""

from __future__ import annotations

import sys
import time

import click
from flask import Flask
from flask.cli import AppGroup

from app.security import Actor

demo_cli = AppGroup("demo", help="Demo data.")
audit_cli = AppGroup("audit", help="The audit trail.")


@demo_cli.command("seed")
@click.option("--tenants", default=50, show_default=True, type=click.IntRange(0, 1_000_000))
@click.option("--if-empty", is_flag=True, help="Do nothing when tenants already exist (used by scripts/run).")
def demo_seed(tenants: int, if_empty: bool) -> None:
    """Create plans, a staff login and TENANTS tenants with users, keys and audit history."""
    from app.console import demo

    if if_empty and demo.is_seeded():
        click.echo("Demo data already present; not seeding again.")
        return
    started = time.perf_counter()
    counts = demo.seed(tenants, log=click.echo)
    click.echo(f"Seeded {counts['tenants']} tenants, {counts['users']} memberships, {counts['keys']} API keys, "
               f"{counts['usage_days']} days of usage in {time.perf_counter() - started:.1f}s.")
    click.echo(f"Staff: {demo.STAFF_EMAIL} / {demo.STAFF_PASSWORD} at /admin/login, then a code from "
               f"`flask demo totp` (or add the secret {demo.STAFF_TOTP_SECRET} to an authenticator app)")
    click.echo(f"Tenant user: {demo.DEMO_OWNER} / {demo.USER_PASSWORD} at /login")


@demo_cli.command("totp")
def demo_totp() -> None:
    """Print the demo staff account's current two-factor code (from the published demo secret only)."""
    import pyotp

    from app.console import demo

    click.echo(pyotp.TOTP(demo.STAFF_TOTP_SECRET).now())


@click.command("create-admin")
@click.option("--email", prompt=True)
@click.option("--name", default="")
@click.password_option()
def create_admin(email: str, name: str, password: str) -> None:
    """Create an operator staff account."""
    from app.auth import service
    from app.errors import ServiceError

    try:
        user = service.create_staff(Actor.system("cli"), email, name, password)
    except ServiceError as exc:
        raise click.ClickException(f"{exc.detail} {' '.join(exc.errors.values())}".strip()) from None
    click.echo(f"Created staff {user.email} ({user.id}).")


@audit_cli.command("verify")
@click.option("--tenant", "slug", default=None, help="Only this tenant's chain (by slug).")
def audit_verify(slug: str | None) -> None:
    """Walk the hash chains; exit 1 and name the first broken sequence number on tampering."""
    from app.audit import verification
    from app.tenancy import queries

    chain = None
    if slug:
        tenant = queries.get_by_slug(slug)
        if tenant is None:
            raise click.ClickException(f"No tenant with slug {slug!r}.")
        chain = tenant.id
    reports = verification.verify(chain)
    broken = [r for r in reports if not r.ok]
    total = sum(r.events for r in reports)
    for report in broken:
        click.echo(f"BROKEN chain {report.chain}: first bad sequence number {report.broken_seq} ({report.reason})")
    if broken:
        sys.exit(1)
    click.echo(f"OK: {len(reports)} chain(s), {total} event(s) verified.")


@click.command("scheduler")
def scheduler() -> None:
    """Run RQ's cron scheduler with the periodic jobs of app/cron.py."""
    from app.cron import build_scheduler
    from app.queue import get_redis

    build_scheduler(get_redis()).start()


def register(app: Flask) -> None:
    from app.billing.cli import billing_cli

    for command in (demo_cli, audit_cli, create_admin, scheduler, billing_cli):
        app.cli.add_command(command)
