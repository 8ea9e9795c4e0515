"""Pages: console — the staff overview at /admin: the whole business and the whole system on one screen,
each figure linking to its page (figures from app.console.overview)."""

from __future__ import annotations

from datetime import datetime

from flask import Blueprint, url_for

from app.console import overview
from app.security import staff_required
from app.web import redirect_to, render, toast

bp = Blueprint("console", __name__, url_prefix="/admin")


@bp.route("/")
@staff_required
def index():
    """The overview: the snapshot (refreshed every few minutes) and the live figures."""
    snap = overview.snapshot()
    live = overview.live()
    return render("admin/console/index.html", snap=snap, live=live,
                  computed_at=datetime.fromisoformat(snap["computed_at"]), tenants=overview.tenant_labels(snap, live))


@bp.route("/overview/refresh", methods=["POST"])
@staff_required
def refresh():
    """Compute the snapshot now instead of waiting for the scheduler."""
    overview.refresh()
    toast("The overview is up to date.")
    return redirect_to(url_for(".index"))
