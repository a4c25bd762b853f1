"""``DIR/report.json`` of ``trigger rtl`` (:class:`RtlReport`) and its ``report.md``."""

from __future__ import annotations

from trigger.contracts import (  # noqa: F401  (the report's sections, re-exported)
    Da4mlCost, HlsCsim, RtlEstimate, RtlLatency, RtlModel, RtlReport, RtlSim, RtlTimings, YosysFigures)
from trigger.report.markdown import count, row, table


def render_markdown(report: RtlReport) -> str:
    """A short human summary of the report."""
    sim, lat, da = report.rtl_sim, report.latency, report.da4ml
    lines = [f"# RTL of {report.model.path}", "",
             f"Output: layer `{report.model.output_layer}`"
             + (" (the final softmax is cut off: logits)" if report.model.cut_softmax else "") + ".",
             f"Input: {report.model.n_inputs} values, {report.model.input_format}.", "",
             "## Verilator simulation against the exact QKeras reference", "",
             f"- {sim.n_events} events ({sim.inputs}), {sim.n_values} values",
             f"- bit-exact fraction **{sim.bit_exact_fraction:.6g}**, max |diff| {sim.max_abs_diff:.3g}",
             f"- da4ml interpreter bit-exact fraction {sim.interpreter_bit_exact_fraction:.6g}",
             *_hls_csim_lines(report), "",
             "## Latency (from the pipeline)", "",
             f"- **{lat.cycles} cycles** at {lat.clock_ns} ns = {lat.ns:.4g} ns; "
             f"{lat.adder_levels} adder levels, {lat.adder_levels_per_stage} per stage ({lat.method})", "",
             "## Resources", "", *table(["source", "LUT", "FF", "CARRY", "MUXF"],
                                        [["da4ml cost", count(da.LUT), count(da.FF), "", ""]])]
    if report.estimate is not None:
        e = report.estimate
        lines.append(row([f"our estimate, after logic synthesis (hls4ml DA design, calibration {e.calibration})",
                          count(e.synth["LUT"]), count(e.synth["FF"]), "", ""]))
    if report.yosys is not None:
        y = report.yosys
        lines.append(row([f"yosys synth_xilinx -family {y.family}", *map(count, (y.LUT, y.FF, y.CARRY, y.MUXF))]))
        lines += ["", f"yosys: {y.note}; longest path {y.logic_levels} logic levels; "
                      f"{y.INV:,} INV cells not counted as LUT."]
    else:
        lines += ["", "yosys: not run (--no-synth)."]
    t = report.timings
    lines += ["", "## Time (s)", "", f"trace {t.trace:.1f}, write {t.write:.1f}, Verilator build "
              f"{t.verilator_build:.1f}, simulation {t.simulation:.3f}"
              + (f", yosys {t.yosys:.1f}" if t.yosys is not None else ""), ""]
    return "\n".join(lines)


def _hls_csim_lines(report: RtlReport) -> list[str]:
    """The report.md lines of the comparison with hls4ml's C simulation."""
    h = report.hls_csim
    if h is None:
        return [f"- hls4ml C simulation: not compared ({report.hls4ml_note or 'not run'})"]
    return [f"- against hls4ml's C simulation of its {h.strategy} design on the same events: bit-exact "
            f"fraction **{h.bit_exact_fraction:.6g}** of {h.n_values} values, max |diff| {h.max_abs_diff:.3g} "
            f"(hls4ml against the exact reference: {h.reference_bit_exact_fraction:.6g})"]
