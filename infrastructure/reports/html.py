"""Write a run's report: ``report.html`` (charts inline), ``report.json`` and one PNG per
chart, into a directory of their own."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import jinja2

from infrastructure.files import atomic_write
from infrastructure.reports.charts import draw
from projections.report import RunReport, report_document

TEMPLATES = Path(__file__).with_name("templates")


@dataclass(frozen=True)
class WrittenReport:
    directory: Path
    html: Path
    json: Path
    pngs: list[Path]


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.2f} %"


def _number(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def _interval(interval: dict[str, float | None], percent: bool = False) -> str:
    show = _percent if percent else _number
    text = show(interval["estimate"])
    if interval["low"] is None or interval["high"] is None:
        return text
    return f"{text} [{show(interval['low'])}, {show(interval['high'])}]"


def write_report(report: RunReport, directory: Path, *, title: str) -> WrittenReport:
    directory.mkdir(parents=True, exist_ok=True)
    document = report_document(report)
    charts = draw(report)
    pngs = []
    for chart in charts:
        path = directory / f"{chart.name}.png"
        atomic_write(path, chart.png)
        pngs.append(path)
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
    )
    environment.filters.update(percent=_percent, number=_number, interval=_interval)
    rows = list(document["traders"])  # type: ignore[call-overload]
    if document["baseline"] is not None:
        rows.append(document["baseline"])
    html = environment.get_template("report.html.j2").render(
        title=title, report=document, charts=charts, rows=rows
    )
    html_path, json_path = directory / "report.html", directory / "report.json"
    atomic_write(html_path, html.encode())
    atomic_write(json_path, json.dumps(document, indent=2, default=str).encode())
    return WrittenReport(directory, html_path, json_path, pngs)
