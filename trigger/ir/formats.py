"""Fixed-point formats: the one description of a tensor's number type that every back end reads.

A format is da4ml's (sign bit ``k``, integer bits ``i`` without the sign, fraction bits ``f``) plus
what happens to values off its grid or range: ``rounding`` (``RND_CONV`` round half to even as
QKeras's ``tf.round``, ``RND`` half up, ``TRN`` truncation) and ``overflow`` (``SAT`` clip,
``SAT_SYM`` clip without the most negative code as QKeras ``symmetric=1``, ``WRAP``). The hls4ml
spelling is :meth:`FixedFormat.hls_type`; hls4ml's ``fixed<W, I>`` counts the sign in ``I``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

Rounding = Literal["RND_CONV", "RND", "TRN"]
Overflow = Literal["SAT", "SAT_SYM", "WRAP"]


@dataclass(frozen=True)
class FixedFormat:
    """A fixed-point format (see the module docstring)."""

    k: int
    i: int
    f: int
    symmetric: bool = False
    rounding: Rounding = "RND_CONV"
    overflow: Overflow = "SAT"

    @property
    def width(self) -> int:
        """Total bits."""
        return self.k + self.i + self.f

    @property
    def signed(self) -> bool:
        """True if the format has a sign bit."""
        return bool(self.k)

    @property
    def step(self) -> float:
        """The value of the least significant bit."""
        return 2.0 ** -self.f

    @property
    def low(self) -> float:
        """Smallest representable value."""
        return -(2.0 ** self.i) * self.k + (self.step * self.k if self.symmetric else 0.0)

    @property
    def high(self) -> float:
        """Largest representable value."""
        return 2.0 ** self.i - self.step

    def hls_type(self, *, modes: bool = True) -> str:
        """The hls4ml precision string (``fixed<8,3,RND_CONV,SAT>``); the modes are left out when they
        are hls4ml's defaults (TRN, WRAP) or ``modes=False``."""
        prefix = "" if self.k else "u"
        default = (self.rounding, self.overflow) == ("TRN", "WRAP")
        suffix = f",{self.rounding},{self.overflow}" if modes and not default else ""
        return f"{prefix}fixed<{self.width},{self.k + self.i}{suffix}>"

    def cast(self, x: np.ndarray) -> np.ndarray:
        """``x`` (float64) put on this format's grid and range with its rounding and overflow, exactly."""
        return cast_elements(x, self.k, self.i, self.f, self.rounding, self.overflow, symmetric=self.symmetric)


def cast_elements(x: np.ndarray, k: np.ndarray | int, i: np.ndarray | int, f: np.ndarray | int,
                  rounding: Rounding, overflow: Overflow | None, *, symmetric: bool = False) -> np.ndarray:
    """``x`` (float64) put on the format (``k``, ``i``, ``f``) with its rounding and overflow, exactly;
    ``k``, ``i``, ``f`` are numbers or per-element arrays broadcast against ``x`` (HGQ's per-element
    casts). ``symmetric`` leaves out the most negative code; ``overflow`` None only rounds."""
    k, i, f = (np.asarray(v, dtype=np.float64) for v in (k, i, f))
    step = 2.0 ** -f
    scaled = np.asarray(x, dtype=np.float64) / step
    if rounding == "RND_CONV":
        codes = np.round(scaled)  # numpy rounds half to even, as tf.round
    elif rounding == "RND":
        codes = np.floor(scaled + 0.5)
    else:
        codes = np.floor(scaled)
    high = 2.0 ** (i + f) - 1.0
    low = -(2.0 ** (i + f)) * k + (k if symmetric else 0.0)
    if overflow == "WRAP":
        codes = np.mod(codes - low, 2.0 ** (k + i + f)) + low
    elif overflow is not None:
        codes = np.clip(codes, low, high)
    return codes * step


#: hls4ml's default precision, which a model input without a quantizer is cast to (truncated)
DEFAULT_INPUT = FixedFormat(1, 5, 10, rounding="TRN", overflow="WRAP")


def parse_hls_type(precision: str) -> FixedFormat | None:
    """The format of an hls4ml precision string (``fixed<16,6>``, ``ufixed<8,0,RND_CONV,SAT>``), or
    None if it is not a fixed-point type."""
    text = precision.replace(" ", "")
    signed = not text.startswith("ufixed")
    if not (text.startswith("fixed<") or text.startswith("ufixed<")) or not text.endswith(">"):
        return None
    fields = text[text.index("<") + 1:-1].split(",")
    try:
        width, integer = int(fields[0]), int(fields[1])
    except (ValueError, IndexError):
        return None
    modes = dict(rounding="TRN", overflow="WRAP")
    for field in fields[2:]:
        if field in ("RND_CONV", "RND", "TRN"):
            modes["rounding"] = field
        elif field in ("SAT", "SAT_SYM", "WRAP"):
            modes["overflow"] = field
    k = int(signed)
    return FixedFormat(k, integer - k, width - integer, symmetric=modes["overflow"] == "SAT_SYM", **modes)


def fraction_bits(values: np.ndarray) -> int:
    """Fraction bits of the finest binary fraction among ``values`` (0 for integers)."""
    finite = np.asarray(values, dtype=np.float64).ravel()
    frac = 0
    for v in np.unique(np.abs(finite[finite != 0])):
        mantissa, exponent = math.frexp(float(v))
        m = int(mantissa * 2 ** 53)
        frac = max(frac, -(exponent - 53 + ((m & -m).bit_length() - 1)))
    return frac


def grid_of(values: np.ndarray) -> FixedFormat:
    """The narrowest signed format (at least 2 bits, at least 0 fraction bits) that holds every
    value exactly: the finest binary fraction of the values and their largest magnitude."""
    finite = np.asarray(values, dtype=np.float64).ravel()
    frac = fraction_bits(finite)
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    integer = 1  # the sign
    while -(2.0 ** (integer - 1)) > low or 2.0 ** (integer - 1) - 2.0 ** -frac < high:
        integer += 1
    width = max(integer + frac, 2)
    return FixedFormat(1, integer - 1, width - integer)
