"""trigger.report: physics metrics (:mod:`trigger.report.metrics`), training plots
(:mod:`trigger.report.plots`) and the firmware reports (:mod:`trigger.report.render`):
``read_report`` for ``trigger report DIR``, ``render_markdown`` for report.md and the demo's
``headline_table``."""

from trigger.report.render import headline_table, read_report, render_markdown

__all__ = ["headline_table", "read_report", "render_markdown"]
