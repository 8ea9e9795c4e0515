"""RQ entry points of billing (queue `billing`): take ids or dates, reload, call a service; safe twice."""

from __future__ import annotations

from datetime import date

from app import clock
from app.billing import collection, invoices, run, wallets
from app.errors import Conflict
from app.security import Actor


def billing_run(run_date: str | None = None) -> dict:
    """The daily billing run for an ISO date (default: today, UTC)."""
    day = date.fromisoformat(run_date) if run_date else None
    return _counted(run.run(day)).as_dict()


def finalize_due() -> dict:
    """Finalize the drafts whose grace has passed (hourly, between daily runs)."""
    return _counted(run.finalize_due()).as_dict()


def _counted(report: run.RunReport) -> run.RunReport:
    """Count a run's invoices and failures in the Prometheus metrics."""
    from app.ops.metrics import record_billing_run

    record_billing_run(report.invoices_created, len(report.failed))
    return report


def close_subscription(subscription_id: str) -> dict:
    """Close the periods of one subscription that have ended (e.g. to retry a failure at once)."""
    report = run.RunReport(clock.now().date())
    run.close_subscription(subscription_id, clock.now(), Actor.system("billing job"), report)
    return report.as_dict()


def finalize_invoice(invoice_id: str) -> str:
    """Finalize one draft now; an invoice already finalized is left as it is."""
    try:
        return invoices.finalize(Actor.system("billing job"), invoice_id).status
    except Conflict:
        return "already finalized"


def retry_dunning() -> dict:
    """Charge late fees that fell due, then collect again the failed invoices whose next dunning retry is
    due (hourly)."""
    late = collection.charge_late_fees()
    return {**collection.retry_due(), "late_fees": late}


def expire_credits() -> int:
    """Expire what is left of credit grants past their expiry (hourly)."""
    return wallets.expire()
