"""Fixed-point widths of hls4ml types, read in one place.

hls4ml describes a type either as a ``PrecisionType`` object (``FixedPrecisionType``,
``IntegerPrecisionType``, ``XnorPrecisionType``, ... in ``hls4ml.model.types``) or as a string in a
configuration (``fixed<16,6>``, ``ap_ufixed<8,0,AP_RND,AP_SAT>``, ``ap_int<8>``). The estimator,
the synth layer table and the converter all need its width, integer bits and signedness; this
module is the only place that reads them.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

_FIXED = re.compile(r"^(?:ap_)?(u?)fixed<\s*(\d+)\s*,\s*(-?\d+)")
_INT = re.compile(r"^(?:ap_)?(u?)int<\s*(\d+)\s*>")


class Precision(NamedTuple):
    """A fixed-point (or integer) type: ``signed, width, integer`` unpack in that order."""

    signed: bool
    width: int
    integer: int

    @property
    def fractional(self) -> int:
        """Bits right of the binary point (negative when the type is coarser than 1)."""
        return self.width - self.integer


def parse_precision(precision: Any) -> Precision | None:
    """The :class:`Precision` of an hls4ml precision object or a type string; None otherwise.

    Objects are read from their ``width``/``integer``/``signed`` attributes (an
    ``IntegerPrecisionType`` has ``integer == width``); an object that has a width but no integer
    bits (``ExponentPrecisionType``, the float types) is not fixed-point and gives None, as does a
    string that is neither ``[ap_][u]fixed<W,I...>`` nor ``[ap_][u]int<W>``.
    """
    if precision is None:
        return None
    if hasattr(precision, "width"):  # an hls4ml PrecisionType: trust its attributes, not its str()
        width = getattr(precision, "width", None)
        integer = getattr(precision, "integer", None)
        signed = getattr(precision, "signed", None)
        if width is None or integer is None or signed is None:
            return None
        return Precision(bool(signed), int(width), int(integer))
    text = str(precision).strip()
    match = _FIXED.match(text)
    if match:
        return Precision(match.group(1) != "u", int(match.group(2)), int(match.group(3)))
    match = _INT.match(text)
    if match:
        return Precision(match.group(1) != "u", int(match.group(2)), int(match.group(2)))
    return None


def bit_width(precision: Any, default: int | None = None) -> int | None:
    """Total bits of a type; ``default`` when there is no type (None) or it has no width.

    Unlike :func:`parse_precision` this also reads types that are not fixed-point but have a
    width (an exponent or float type: the bits a product with it sees).
    """
    width = getattr(precision, "width", None)
    if width is None and isinstance(precision, str):
        parsed = parse_precision(precision)
        width = parsed.width if parsed is not None else None
    return default if width is None else int(width)


def fraction_bits(precision: Any) -> int:
    """Bits right of the binary point; 0 for integer types and for anything not fixed-point."""
    parsed = parse_precision(precision)
    return 0 if parsed is None else parsed.fractional
