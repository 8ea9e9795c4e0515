"""Staff page /admin/revenue: MRR over 12 months and its movements (Plotly), the month's figures, top tenants
by MRR, upcoming renewals, past-due invoices, aging and collection. It reads the pre-aggregated
revenue_months rows and a few bounded lists only, so it costs the same at 10,000 tenants as at 100;
"Recompute" rebuilds the shown month now (the hourly job does the current and previous month)."""

from __future__ import annotations

from datetime import date

from flask import Blueprint, request, url_for

from app import clock
from app.billing import metrics, metrics_charts, metrics_queries
from app.errors import Invalid
from app.money import EXPONENTS, Money
from app.security import current_actor, staff_required
from app.web import redirect_to, render, toast

bp = Blueprint("revenue_admin", __name__, url_prefix="/admin/revenue")


def money(amount: int | None, currency: str) -> str:
    if amount is None:
        return "—"
    return Money(int(amount), currency).format() if currency in EXPONENTS else f"{amount:,} {currency}"


def rate(value) -> str:
    return "—" if value is None else f"{value:.1f}%"


def _choose(options: list, wanted, default):
    return wanted if wanted in options else default


@bp.route("")
@staff_required
def index():
    """The revenue figures of one month (default: the latest computed) in one currency (default: the main)."""
    currencies = metrics_queries.currencies()
    current = metrics.first_of(clock.now())
    context: dict = {"currencies": currencies, "money": money, "rate": rate, "current_month": current}
    if not currencies:
        return render("admin/revenue/index.html", row=None, currency=None, month=current, **context)
    currency = _choose(currencies, request.args.get("currency", "").upper(), currencies[0])
    months = metrics_queries.months(currency)
    try:
        wanted: date | None = metrics.parse_month(request.args["month"]) if request.args.get("month") else None
    except Invalid:
        wanted = None
    month = _choose(months, wanted, months[0])
    rows = metrics_queries.series(currency, month)
    top, renewals = metrics_queries.top_tenants(currency, month), metrics_queries.upcoming_renewals(currency)
    past_due = metrics_queries.past_due_invoices(currency)
    metrics_queries.with_tenants(top, renewals, past_due)
    return render(
        "admin/revenue/index.html", row=metrics_queries.month_row(currency, month), currency=currency, month=month,
        months=months, rows=rows, mrr_figure=metrics_charts.mrr_line(rows, currency),
        movements_figure=metrics_charts.movements_bars(rows, currency),
        top=top, renewals=renewals, past_due=past_due, renewal_days=metrics_queries.RENEWAL_DAYS,
        **context)


@bp.route("/recompute", methods=["POST"])
@staff_required
def recompute():
    """Recompute one month's figures from the history now (audited); back to that month."""
    currency = request.form.get("currency", "").strip().upper()[:3]
    try:
        month = metrics.parse_month(request.form.get("month"))
    except Invalid as exc:
        toast(exc.errors.get("month", exc.detail), "error")
        return redirect_to(url_for(".index"))
    if month > metrics.first_of(clock.now()):
        toast("That month has not started yet.", "error")
        return redirect_to(url_for(".index"))
    written = metrics.recompute(current_actor(), month)
    toast(f"Revenue for {month:%B %Y} recomputed ({written} currenc{'y' if written == 1 else 'ies'}).")
    args = {"month": month.strftime("%Y-%m")}
    if currency.isalpha() and len(currency) == 3:
        args["currency"] = currency
    return redirect_to(url_for(".index", **args))
