"""Plotly figure builders for usage: data in, Figure out."""

from __future__ import annotations

from itertools import accumulate

import plotly.graph_objects as go


def daily_against_quota(days: list[dict], included: int | None, month_start) -> go.Figure:
    """Daily API calls as bars; this month's running total as a line against the quota."""
    dates = [d["date"] for d in days]
    calls = [d["api_calls"] for d in days]
    figure = go.Figure()
    figure.add_bar(x=dates, y=calls, name="calls per day", marker_color="#91a7ff")
    in_month = [(d, c) for d, c in zip(dates, calls, strict=True) if d >= month_start]
    if in_month:
        figure.add_scatter(x=[d for d, _ in in_month], y=list(accumulate(c for _, c in in_month)),
                           name="this month so far", mode="lines+markers", line={"color": "#3b5bdb"})
    if included is not None:
        figure.add_hline(y=included, line_dash="dash", line_color="#c92a2a",
                         annotation_text=f"quota {included:,}", annotation_position="top left")
    figure.update_layout(margin={"l": 40, "r": 10, "t": 10, "b": 30}, height=320, legend={"orientation": "h"},
                         plot_bgcolor="#fff", yaxis={"rangemode": "tozero", "gridcolor": "#e3e6ec"})
    return figure
