"""Plotly figure builders for the revenue page: rows of revenue_months in, Figure out."""

from __future__ import annotations

from decimal import Decimal

import plotly.graph_objects as go

from app.billing.metrics_models import RevenueMonth
from app.money import EXPONENTS

LAYOUT = {"margin": {"l": 50, "r": 10, "t": 10, "b": 30}, "height": 300, "legend": {"orientation": "h"},
          "plot_bgcolor": "#fff", "yaxis": {"gridcolor": "#e3e6ec"}}


def _major(amount: int, currency: str) -> float:
    """Minor units → major units, for drawing only (the figures shown as text stay exact)."""
    return float(Decimal(amount).scaleb(-EXPONENTS.get(currency, 2)))


def _label(rows: list[RevenueMonth]) -> list[str]:
    return [row.month.strftime("%Y-%m") for row in rows]


def mrr_line(rows: list[RevenueMonth], currency: str) -> go.Figure:
    """MRR at each month's end."""
    figure = go.Figure()
    figure.add_scatter(x=_label(rows), y=[_major(row.mrr_end, currency) for row in rows], name=f"MRR ({currency})",
                       mode="lines+markers", line={"color": "#3b5bdb"})
    figure.update_layout(**LAYOUT)
    figure.update_yaxes(rangemode="tozero", title_text=currency)
    figure.update_xaxes(type="category")
    return figure


MOVEMENTS = (("new_mrr", "New", "#2f9e44", 1), ("expansion_mrr", "Expansion", "#74b816", 1),
             ("reactivation_mrr", "Reactivation", "#1098ad", 1), ("contraction_mrr", "Contraction", "#f08c00", -1),
             ("churn_mrr", "Churn", "#e03131", -1))


def movements_bars(rows: list[RevenueMonth], currency: str) -> go.Figure:
    """The MRR movements per month, stacked: gains above zero, contraction and churn below."""
    figure = go.Figure()
    for name, label, color, sign in MOVEMENTS:
        figure.add_bar(x=_label(rows), y=[sign * _major(getattr(row, name), currency) for row in rows], name=label,
                       marker_color=color)
    figure.add_scatter(x=_label(rows), y=[_major(row.net_new_mrr, currency) for row in rows], name="Net new MRR",
                       mode="lines+markers", line={"color": "#212529", "dash": "dot"})
    figure.update_layout(barmode="relative", **LAYOUT)
    figure.update_yaxes(title_text=currency, zeroline=True, zerolinecolor="#868e96")
    figure.update_xaxes(type="category")
    return figure
