"""``DIR/report.json`` of ``trigger rtl`` (:class:`RtlReport`) and its ``report.md``."""

from __future__ import annotations

from typing import ClassVar, Literal, Union

from pydantic import BaseModel, ConfigDict

from trigger.contracts import Contract
from trigger.report.markdown import count, row, table

Num = Union[int, float]


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class RtlModel(_Part):
    """The converted model: its file, the layer the RTL outputs, the input format it reads."""

    path: str
    output_layer: str
    cut_softmax: bool
    input_format: str           # e.g. "fixed<16,7> signed (k=1, i=6, f=9)"
    n_inputs: int
    n_outputs: int


class RtlSim(_Part):
    """Verilator simulation against the exact QKeras reference (:mod:`trigger.firmware.reference`)."""

    n_events: int
    n_values: int
    bit_exact_fraction: Num
    max_abs_diff: Num
    interpreter_bit_exact_fraction: Num   # da4ml's own interpreter of the same logic
    inputs: str
    build_seconds: Num
    run_seconds: Num


class RtlLatency(_Part):
    """Latency from the generated pipeline: one register layer per stage."""

    cycles: int
    ns: Num
    clock_ns: Num
    adder_levels_per_stage: int
    adder_levels: int
    method: str
    source: Literal["pipeline"]


class Da4mlCost(_Part):
    """da4ml's own figures of the traced logic (LUT-equivalent adder bits, pipeline registers)."""

    LUT: Num
    FF: int
    source: Literal["da4ml"]


class YosysFigures(_Part):
    """Open-source synthesis before place and route: yosys ``synth_xilinx`` cell counts."""

    LUT: int
    FF: int
    CARRY: int
    MUXF: int
    INV: int
    logic_levels: int
    cells: dict[str, int]
    family: str
    seconds: Num
    note: str
    source: Literal["yosys"]


class HlsCsim(_Part):
    """hls4ml's C simulation of its own distributed-arithmetic design of the same model, on the same
    events: ``bit_exact_fraction`` and ``max_abs_diff`` compare it with the RTL's outputs;
    ``reference_bit_exact_fraction`` compares it with the exact QKeras reference."""

    strategy: Literal["distributed_arithmetic"]
    n_values: int
    bit_exact_fraction: Num
    max_abs_diff: Num
    reference_bit_exact_fraction: Num
    compile_seconds: Num


class RtlEstimate(_Part):
    """The analytic estimator (:mod:`trigger.firmware.estimate`) on hls4ml's distributed-arithmetic
    conversion: ``synth`` (after logic synthesis, the target comparable with yosys) and ``csynth``
    resources, with the builtin calibration; HLS cycles for hls4ml's own pipelining."""

    synth: dict[str, Num]
    csynth: dict[str, Num]
    cycles: int
    calibration: str
    source: Literal["estimate"]


class RtlTimings(_Part):
    """Wall-clock seconds per step."""

    trace: Num
    write: Num
    verilator_build: Num
    simulation: Num
    yosys: Num | None = None
    hls4ml: Num | None = None


class RtlReport(Contract):
    """``report.json`` of ``trigger rtl``."""

    SCHEMA_VERSION: ClassVar[int] = 2  # v2: hls_csim, estimate, hls4ml_note
    NAME: ClassVar[str] = "rtl_report"
    WHAT: ClassVar[str] = "RTL report"
    REMEDY: ClassVar[str] = "regenerate it with `trigger rtl`"

    model: RtlModel
    rtl_sim: RtlSim
    latency: RtlLatency
    da4ml: Da4mlCost
    yosys: YosysFigures | None = None
    hls_csim: HlsCsim | None = None
    estimate: RtlEstimate | None = None
    hls4ml_note: str | None = None   # why hls_csim / estimate are absent (--no-hls, or hls4ml's refusal)
    timings: RtlTimings
    verilog: list[str]
    versions: dict[str, str]


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
