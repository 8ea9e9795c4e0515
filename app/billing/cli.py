"""`flask billing run`: the billing run from the command line."""

from __future__ import annotations

from datetime import datetime

import click
from flask.cli import AppGroup

billing_cli = AppGroup("billing", help="Subscriptions and invoices.")


@billing_cli.command("run")
@click.option("--date", "run_date", default=None, help="Close periods that ended by the end of this UTC day "
              "(YYYY-MM-DD; default today).")
def billing_run(run_date: str | None) -> None:
    """Renew subscriptions whose period ended, open their invoices and finalize due drafts."""
    from app.billing import run
    from app.security import Actor

    day = None
    if run_date:
        try:
            day = datetime.strptime(run_date, "%Y-%m-%d").date()
        except ValueError:
            raise click.BadParameter("use YYYY-MM-DD", param_hint="--date") from None
    report = run.run(day, Actor.system("cli"))
    click.echo(f"Billing run {report.run_date}: {report.periods_closed} period(s) closed, "
               f"{report.invoices_created} invoice(s) created, {report.finalized} finalized, "
               f"{report.skipped} already done, {len(report.failed)} failed.")
    for subject in report.failed:
        click.echo(f"FAILED {subject} (recorded; the next run retries it)")
    if report.failed:
        raise SystemExit(1)


@billing_cli.command("metrics")
@click.option("--from", "since", default=None, help="Recompute from this month (YYYY-MM; default: the first month "
              "with billing data) to the current one.")
def billing_metrics(since: str | None) -> None:
    """Recompute the revenue metrics (revenue_months) from the subscription history, invoices and payments."""
    from app.billing import metrics
    from app.errors import Invalid

    try:
        first = metrics.parse_month(since, "from") if since else None
    except Invalid:
        raise click.BadParameter("use YYYY-MM", param_hint="--from") from None
    written = metrics.rebuild_all(first)
    click.echo(f"Revenue metrics: {written} month/currency row(s) recomputed.")
