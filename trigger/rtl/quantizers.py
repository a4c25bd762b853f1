"""QKeras quantizers as exact da4ml fixed-point operations.

QKeras rounds half to even (``tf.round``), then clips. da4ml's ``quantize`` offers only truncation
(``TRN``) and round-half-up (``RND``), and half-up differs from QKeras on every exact tie, which
fixed-point networks produce often. Round-half-even is built here from da4ml primitives:

with ``F`` the value's fraction bits and ``f`` the target's, let ``b`` be the lowest kept bit of the
value truncated to ``f`` bits (a one-bit slice). Then ``trunc_f(v + b 2^-F + 2^-(f+1) - 2^-F)`` is
``v`` rounded half to even: away from a tie the two ``2^-F`` terms never move the sum across a grid
point of ``2^-f``; at an exact tie the sum reaches the next grid point only when ``b`` is 1 (the
truncated value is odd). Saturation is a separate ``SAT`` quantize on the already rounded value (a
comparison and a multiplexer each side), never da4ml's ``relu`` with an integer limit, which wraps.
"""

from __future__ import annotations

from typing import Any

from trigger.errors import TriggerError
from trigger.ir.formats import FixedFormat
from trigger.ir.quantizers import Quantizer


def rtl_format(quantizer: Quantizer, where: str) -> FixedFormat:
    """The format a QKeras activation quantizer rounds and clips onto (its
    :attr:`~trigger.ir.quantizers.Quantizer.cast_format`); a quantizer that does more is refused."""
    if quantizer.stochastic:
        raise TriggerError(f"{where}: {quantizer.text} with stochastic rounding has no fixed-point equivalent; "
                           "retrain without use_stochastic_rounding")
    fmt = quantizer.cast_format
    if fmt is not None:
        return fmt
    if quantizer.kind == "bits" and not quantizer.unit_alpha:
        raise TriggerError(f"{where}: quantized_bits with alpha={quantizer.alpha!r} is a learned scale, not a "
                           "fixed-point format; use alpha=1 on activations")
    if quantizer.kind == "bits":  # QKeras's 1-bit quantized_bits is a sign (+-1), not a grid
        raise TriggerError(f"{where}: {quantizer.text} is a 1-bit sign (+-1), not a fixed-point format; "
                           "use at least 2 bits")
    if quantizer.kind == "relu":
        raise TriggerError(f"{where}: quantized_relu with sigmoid, negative slope or an upper bound "
                           "is not supported by `trigger rtl`; use quantized_relu(bits, integer)")
    raise TriggerError(f"{where}: activation quantizer {quantizer.text} is not supported by `trigger rtl` "
                       "(supported: quantized_bits with alpha 1, quantized_relu)")


def value_kif(v: Any) -> tuple[int, int, int]:
    """(sign, integer, fraction) bits of a da4ml FixedVariable."""
    k, i, f = v.kif
    return int(k), int(i), int(f)


def round_half_even(v: Any, f: int) -> Any:
    """``v`` (a da4ml FixedVariable) rounded half to even to ``f`` fraction bits, exactly.

    Values with at most ``f`` fraction bits are returned as they are. Constants are rounded here.
    """
    from da4ml.trace import FixedVariable

    k, i, big_f = value_kif(v)
    if big_f <= f:
        return v
    if v.low == v.high:  # a constant: round it in Python, exactly
        return FixedVariable.from_const(_round_const(v.low, f), hwconf=v.hwconf)
    # the lowest kept bit: the value at weight 2^-f, one unsigned bit (a wire, no logic)
    bit = (v * 2.0 ** f).quantize(0, 1, 0, "WRAP", "TRN")
    nudged = v + bit * 2.0 ** -big_f + (2.0 ** -(f + 1) - 2.0 ** -big_f)
    nk, ni, _ = value_kif(nudged)
    return nudged.quantize(nk, ni, f, "WRAP", "TRN")


def _round_const(value: Any, f: int) -> float:
    """A constant rounded half to even to ``f`` fraction bits (Python's round is half-even)."""
    from decimal import ROUND_HALF_EVEN, Decimal

    step = Decimal(2) ** -f
    return float((Decimal(value) / step).to_integral_value(rounding=ROUND_HALF_EVEN) * step)


def saturate(v: Any, fmt: FixedFormat) -> Any:
    """``v`` (already on the grid of ``fmt``) clipped to its range: a SAT quantize, no rounding."""
    return v.quantize(fmt.k, fmt.i, fmt.f, "SAT_SYM" if fmt.symmetric else "SAT", "TRN")


def apply_qkeras(v: Any, fmt: FixedFormat) -> Any:
    """What a QKeras quantizer of format ``fmt`` does to ``v``: round half to even, then clip."""
    return saturate(round_half_even(v, fmt.f), fmt)


def round_half_up(v: Any, fmt: FixedFormat) -> Any:
    """da4ml's own rounding (half up, ``RND``) then saturation: the cheaper, inexact alternative
    (measured against half-even in docs/rtl.md)."""
    return v.quantize(fmt.k, fmt.i, fmt.f, "SAT_SYM" if fmt.symmetric else "SAT", "RND")
