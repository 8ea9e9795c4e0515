"""Plotly figures for the revenue page: rows of revenue_months in, the figure's JSON out (what data-figure
holds). The figures are plain dicts encoded by plotly.io without building graph objects, whose validation
would cost more than the rest of the page."""

from __future__ import annotations

from decimal import Decimal

import plotly.io as pio

from app.billing.metrics_models import RevenueMonth
from app.money import EXPONENTS

MOVEMENTS = (("new_mrr", "New", "#2f9e44", 1), ("expansion_mrr", "Expansion", "#74b816", 1),
             ("reactivation_mrr", "Reactivation", "#1098ad", 1), ("contraction_mrr", "Contraction", "#f08c00", -1),
             ("churn_mrr", "Churn", "#e03131", -1))


def _major(amount: int, currency: str) -> float:
    """Minor units → major units, for drawing only (the figures shown as text stay exact)."""
    return float(Decimal(amount).scaleb(-EXPONENTS.get(currency, 2)))


def _layout(currency: str, **extra) -> dict:
    return {"margin": {"l": 50, "r": 10, "t": 10, "b": 30}, "height": 300, "legend": {"orientation": "h"},
            "plot_bgcolor": "#fff", "xaxis": {"type": "category"},
            "yaxis": {"gridcolor": "#e3e6ec", "title": {"text": currency}}, **extra}


def mrr_line(rows: list[RevenueMonth], currency: str) -> str:
    """MRR at each month's end, as a line."""
    months = [row.month.strftime("%Y-%m") for row in rows]
    figure = {"data": [{"type": "scatter", "mode": "lines+markers", "name": f"MRR ({currency})", "x": months,
                        "y": [_major(row.mrr_end, currency) for row in rows], "line": {"color": "#3b5bdb"}}],
              "layout": _layout(currency)}
    figure["layout"]["yaxis"]["rangemode"] = "tozero"
    return pio.to_json(figure, validate=False)


def movements_bars(rows: list[RevenueMonth], currency: str) -> str:
    """The MRR movements per month, stacked: gains above zero, contraction and churn below; net new as a line."""
    months = [row.month.strftime("%Y-%m") for row in rows]
    data = [{"type": "bar", "name": label, "x": months, "marker": {"color": color},
             "y": [sign * _major(getattr(row, name), currency) for row in rows]}
            for name, label, color, sign in MOVEMENTS]
    data.append({"type": "scatter", "mode": "lines+markers", "name": "Net new MRR", "x": months,
                 "y": [_major(row.net_new_mrr, currency) for row in rows], "line": {"color": "#212529", "dash": "dot"}})
    layout = _layout(currency, barmode="relative")
    layout["yaxis"].update({"zeroline": True, "zerolinecolor": "#868e96"})
    return pio.to_json({"data": data, "layout": layout}, validate=False)
