"""The report's charts, drawn with matplotlib (Agg, no screen): each as PNG and SVG.

Equity is drawn as growth of one dollar from each trader's first row, so traders with
different allocations and the BTC buy-and-hold baseline share one axis.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime

import matplotlib
import matplotlib.dates as mdates
from matplotlib.figure import Figure

from projections.report import RunReport, TraderReport

# Figures are made without pyplot (no global state, no window, nothing to close); SVG
# element ids come from the content, not a random salt, so one run draws the same bytes.
matplotlib.rcParams["svg.hashsalt"] = "nof0"

CHARTS = ("equity", "drawdown", "exposure")


@dataclass(frozen=True)
class Chart:
    name: str
    title: str
    png: bytes
    svg: str


def _series(trader: TraderReport, chart: str) -> tuple[list[datetime], list[float]]:
    times = [p.time for p in trader.points]
    if chart == "equity":
        first = trader.points[0].equity if trader.points and trader.points[0].equity else 1.0
        return times, [p.equity / first for p in trader.points]
    if chart == "drawdown":
        return times, [-100 * p.drawdown for p in trader.points]
    return times, [p.exposure for p in trader.points]


TITLES = {
    "equity": "Growth of $1 (dashed: BTC buy-and-hold)",
    "drawdown": "Drawdown from the running peak (%)",
    "exposure": "Gross exposure (open notional / equity)",
}


def _figure(report: RunReport, chart: str) -> Figure:
    figure = Figure(figsize=(10, 4), dpi=100)
    axes = figure.subplots()
    for trader in report.traders:
        if trader.points:
            times, values = _series(trader, chart)
            axes.plot(times, values, label=trader.model_id, linewidth=1.4)  # type: ignore[arg-type]
    if chart == "equity" and report.baseline is not None and report.baseline.points:
        times, values = _series(report.baseline, chart)
        axes.plot(
            times,  # type: ignore[arg-type]
            values,
            label="BTC buy-and-hold",
            color="black",
            linestyle="--",
            linewidth=1.2,
        )
    axes.set_title(TITLES[chart], fontsize=11, loc="left")
    axes.grid(alpha=0.3)
    axes.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d %H:%M"))  # type: ignore[no-untyped-call]
    figure.autofmt_xdate()
    if axes.lines:
        axes.legend(fontsize=8, loc="best")
    figure.tight_layout()
    return figure


def draw(report: RunReport) -> list[Chart]:
    charts = []
    for name in CHARTS:
        figure = _figure(report, name)
        png, svg = io.BytesIO(), io.StringIO()
        # No timestamps in the files: the same run draws the same bytes.
        figure.savefig(png, format="png", metadata={"Software": None})
        figure.savefig(svg, format="svg", metadata={"Date": None})
        charts.append(Chart(name, TITLES[name], png.getvalue(), svg.getvalue()))
    return charts
