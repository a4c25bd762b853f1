"""The one Markdown writer: table rows, the number formats of the reports, and a report's
``.json`` + ``.md`` pair written through :func:`trigger.runtime.atomic_path`.

Used by report.md (:mod:`trigger.report.render`), the RTL report, the reference model cards and
docs/RESULTS.md, the scan's Pareto table and the estimator's evidence tables (tools/estimator/).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from trigger.runtime import atomic_path


def row(cells: Iterable[Any], fmt: Callable[[Any], str] = str) -> str:
    """One table row, ``| a | b |``, each cell through ``fmt`` (an empty cell is ``|  |``)."""
    return "| " + " | ".join(fmt(cell) for cell in cells) + " |"


def table(header: Iterable[str], rows: Iterable[Iterable[Any]], fmt: Callable[[Any], str] = str) -> list[str]:
    """A Markdown table as lines: the header, the ``|---|`` rule, then one line per row."""
    header = list(header)
    return [row(header), "|" + "---|" * len(header)] + [row(cells, fmt) for cells in rows]


def number(value: Any, digits: int = 4) -> str:
    """report.md's cell: ``-`` for None, yes/no, an integral float without decimals, ``digits``
    significant digits, 3 in scientific notation beyond [1e-3, 1e5)."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
            return f"{value:.3g}"
        return f"{value:.{digits}g}" if not value.is_integer() else f"{int(value)}"
    return str(value)


def significant(value: Any, digits: int = 4) -> str:
    """A metric in the model cards: ``-`` for None, ``digits`` significant digits (3 from 1e4 on)."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) >= 1e4 else f"{value:.{digits}g}"
    return str(value)


def decimals(value: Any) -> str:
    """A scan figure: ``-`` for None, 4 decimals below 10, a whole number with thousands commas above."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 10 else f"{value:,.0f}"
    return str(value)


def count(value: Any) -> str:
    """A resource count with thousands commas; ``-`` for None."""
    return "-" if value is None else f"{value:,.0f}"


def percent(value: float | None) -> str:
    """A signed relative error as whole percent (``+12 %``); empty for None."""
    return "" if value is None else f"{100 * value:+.0f} %"


def write_json_and_markdown(directory: str | os.PathLike, json_text: str, markdown: str,
                            stem: str = "report") -> None:
    """``<stem>.json`` and ``<stem>.md`` into ``directory``, each all-or-nothing
    (:func:`~trigger.runtime.atomic_path`, replacing an older pair)."""
    for suffix, text in ((".json", json_text), (".md", markdown)):
        with atomic_path(Path(directory) / f"{stem}{suffix}", force=True) as tmp:
            tmp.write_text(text)
