"""QKeras quantizers read once into :class:`Quantizer`: what they compute, exactly, and the
fixed-point format of their output.

One registry (:data:`READERS`) maps a QKeras quantizer class to its reader; a class without one is
read as ``kind='other'`` and every consumer that needs its values refuses it, naming it. The exact
semantics (:meth:`Quantizer.apply`) are QKeras's, computed in float64: round half to even
(``tf.round``), then clip; QKeras itself computes in float32, which can round the exact value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Literal

import numpy as np

from trigger.errors import TriggerError
from trigger.ir.formats import FixedFormat, Overflow, Rounding, cast_elements

Kind = Literal["bits", "relu", "tanh", "sigmoid", "binary", "ternary", "other"]
Curve = Literal["hard", "real", "smooth"]


class Unsupported(TriggerError):
    """A layer or quantizer the consumer cannot compute exactly (one line naming it)."""


@dataclass(frozen=True)
class Quantizer:
    """A QKeras quantizer as data (see the module docstring). ``alpha``: None means 1; a string is a
    scale QKeras chooses per batch ('auto', 'auto_po2'); a tuple is one fixed scale per channel."""

    kind: Kind
    text: str                          # as QKeras prints it, for messages
    name: str = ""                     # the QKeras class (hls4ml names the node it splits off after it)
    bits: int = 0
    integer: int = 0
    keep_negative: bool = True
    symmetric: bool = False
    alpha: float | str | tuple[float, ...] | None = None
    negative_slope: float = 0.0
    upper_bound: float | None = None   # relu_upper_bound where QKeras applies it
    use_sigmoid: bool = False
    curve: Curve = "hard"
    use_01: bool = False
    threshold: float | None = None
    stochastic: bool = False
    qnoise: float = 1.0

    @property
    def unit_alpha(self) -> bool:
        """True if the quantizer has no scale."""
        return self.alpha is None or (isinstance(self.alpha, float) and self.alpha == 1.0)

    @property
    def cast_format(self) -> FixedFormat | None:
        """The format this quantizer rounds and clips onto when that is all it does (quantized_bits
        with alpha 1 and 2+ bits, quantized_relu without sigmoid, slope or upper bound), else None."""
        if self.stochastic or self.qnoise != 1.0:
            return None
        if self.kind == "bits" and self.unit_alpha and self.bits - int(self.keep_negative) >= 1:
            k = int(self.keep_negative)
            return FixedFormat(k, self.integer, self.bits - k - self.integer,
                               symmetric=self.symmetric and k == 1,
                               overflow="SAT_SYM" if self.symmetric and k == 1 else "SAT")
        if self.kind == "relu" and not (self.use_sigmoid or self.negative_slope or self.upper_bound):
            return FixedFormat(0, self.integer, self.bits - self.integer)
        return None

    @property
    def output_format(self) -> FixedFormat | None:
        """The grid of every output value: :attr:`cast_format`, or that of QKeras's hard tanh
        (signed, ``bits - 1`` fraction bits) or hard sigmoid (unsigned, ``bits`` fraction bits)."""
        if self.cast_format is not None:
            return self.cast_format
        if self.stochastic or self.qnoise != 1.0 or self.curve != "hard":
            return None
        if self.kind == "tanh":
            return FixedFormat(1, 0, self.bits - 1, symmetric=self.symmetric,
                               overflow="SAT_SYM" if self.symmetric else "SAT")
        if self.kind == "sigmoid" and not self.symmetric:
            return FixedFormat(0, 0, self.bits)
        return None

    def scale(self, where: str) -> float:
        """The fixed ``alpha`` as QKeras applies it (a float32 factor); a string alpha scales each
        batch by its own statistics and has no per-event meaning, and a per-channel one is refused."""
        if self.alpha is None:
            return 1.0
        if not isinstance(self.alpha, float):
            raise Unsupported(f"{where}: {self.text} with alpha={self.alpha!r} on activations")
        return float(np.float32(self.alpha))

    def apply(self, x: np.ndarray, where: str = "quantizer") -> np.ndarray:
        """The quantizer applied to ``x`` exactly (float64); :class:`Unsupported` if it has no
        deterministic per-event value."""
        if self.stochastic:
            raise Unsupported(f"{where}: {self.text} with stochastic rounding")
        apply = _APPLY.get(self.kind)
        if apply is None:
            raise Unsupported(f"{where}: activation quantizer {self.text}")
        return apply(self, np.asarray(x, dtype=np.float64), where)


@dataclass(frozen=True, eq=False)
class FixedCast:
    """A per-element fixed-point cast (HGQ's ``FixedPointQuantizer`` in a proxy model): element ``j``
    of the per-event tensor is put on the format (``k[j]``, ``i[j]``, ``f[j]``) (sign, integer bits
    without the sign, fraction bits; arrays of the per-event shape) with one rounding and overflow.
    An element with no bits outputs 0. Exact in float64, as hls4ml's generated cast."""

    k: np.ndarray
    i: np.ndarray
    f: np.ndarray
    rounding: Rounding
    overflow: Overflow

    #: how back ends that dispatch on an activation's name see it (those without a rule refuse it)
    name = "fixed_cast"

    @classmethod
    def from_hgq(cls, keep_negative: np.ndarray, bits: np.ndarray, integers: np.ndarray, rounding: Rounding,
                 overflow: Overflow, shape: tuple[int, ...]) -> "FixedCast":
        """From HGQ's arrays (sign, total bits, integer bits with the sign; a leading batch axis of 1
        or a single value) broadcast to the per-event ``shape``; 0-bit elements become (0, 0, 0)."""
        def per_event(a: np.ndarray) -> np.ndarray:
            a = np.asarray(a, dtype=np.int64)
            return np.broadcast_to(a[0] if a.ndim == len(shape) + 1 else a, shape).copy()

        k, b, big_i = per_event(keep_negative), per_event(bits), per_event(integers)
        live = b > 0
        return cls(np.where(live, k, 0), np.where(live, big_i - k, 0), np.where(live, b - big_i, 0), rounding, overflow)

    @property
    def text(self) -> str:
        """For messages."""
        return f"per-element fixed-point cast within {self.format.hls_type()}"

    @property
    def format(self) -> FixedFormat:
        """The narrowest one format holding every element's (HGQ's result type)."""
        live = (self.k + self.i + self.f) > 0
        if not live.any():
            return FixedFormat(0, 0, 0, rounding=self.rounding, overflow=self.overflow)
        return FixedFormat(int(self.k[live].max()), int(self.i[live].max()), int(self.f[live].max()),
                           symmetric=self.overflow == "SAT_SYM", rounding=self.rounding, overflow=self.overflow)

    @property
    def input_format(self) -> FixedFormat:
        """A format that, cast to first, leaves this cast's result unchanged: :attr:`format` truncated,
        with one more fraction bit for ``RND`` (truncating at f + 1 bits, then rounding half up at f,
        is rounding half up at f); an input this cast alone reads is given this format."""
        fmt = self.format
        return FixedFormat(fmt.k, fmt.i, fmt.f + int(self.rounding == "RND"), rounding="TRN",
                           overflow="WRAP" if self.overflow == "WRAP" else "SAT")

    def apply(self, x: np.ndarray, where: str = "cast") -> np.ndarray:
        """The cast applied to ``x`` (batch first), exactly."""
        return cast_elements(x, self.k, self.i, self.f, self.rounding, self.overflow,
                             symmetric=self.overflow == "SAT_SYM")

    def bounds(self, low: np.ndarray, high: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-element bounds of the output for inputs in [low, high]: the cast of the bounds (it is
        monotone) where no value can wrap, else the element's whole range."""
        sym = float(self.overflow == "SAT_SYM")
        step = 2.0 ** -self.f.astype(np.float64)
        floor, ceil = -(2.0 ** self.i) * self.k + sym * self.k * step, 2.0 ** self.i - step  # (0, 0) with no bits
        lo, hi = (cast_elements(v, self.k, self.i, self.f, self.rounding, None) for v in (low, high))
        if self.overflow == "WRAP":
            inside = (lo >= floor) & (hi <= ceil)
            return np.where(inside, lo, floor), np.where(inside, hi, ceil)
        return np.clip(lo, floor, ceil), np.clip(hi, floor, ceil)


def _round_clip(x: np.ndarray, step: float, low: float, high: float) -> np.ndarray:
    """x rounded half to even on the grid ``step`` (tf.round), clipped to [low, high] (in steps)."""
    return step * np.clip(np.round(x / step), low, high)


def _apply_bits(q: Quantizer, x: np.ndarray, where: str) -> np.ndarray:
    scale = q.scale(where)
    keep_negative = int(q.keep_negative)
    unsigned_bits = q.bits - keep_negative
    if unsigned_bits <= 0:  # a 1-bit sign: QKeras maps 0 to +1
        return scale * np.where(x >= 0, 1.0, -1.0)
    m = 2.0 ** unsigned_bits
    step = 2.0 ** q.integer / m
    low = keep_negative * (-m + int(q.symmetric))
    return scale * _round_clip(x, step, low, m - 1)


def _apply_relu(q: Quantizer, x: np.ndarray, where: str) -> np.ndarray:
    """The positive side on the grid 2^integer / 2^bits' (bits' = bits less a sign bit with a negative
    slope s), clipped below 2^integer; the negative side s*x on the same grid, clipped at -s*2^integer."""
    if q.use_sigmoid:
        raise Unsupported(f"{where}: {q.text} with use_sigmoid")
    slope = q.negative_slope
    m = 2.0 ** (q.bits - (slope != 0.0))
    step = 2.0 ** q.integer / m
    xq = _round_clip(x, step, 0.0, m - 1)
    if slope:
        xq = xq + _round_clip(slope * x, step, -slope * m, 0.0)
    if q.upper_bound:
        xq = np.minimum(xq, q.upper_bound)
    return xq


def _apply_curve(q: Quantizer, x: np.ndarray, where: str) -> np.ndarray:
    """quantized_tanh / quantized_sigmoid on QKeras's hard sigmoid clip(x/2 + 1/2, 0, 1) (exact), or on
    a transcendental curve (QKeras's own float32 value of it, then rounded exactly as QKeras does)."""
    tanh = q.kind == "tanh"
    if q.curve == "hard":
        sigmoid = np.clip(0.5 * x + 0.5, 0.0, 1.0)
        curve = 2.0 * sigmoid - 1.0 if tanh else sigmoid
    else:
        import tensorflow as tf
        from qkeras import quantizers as qk

        if q.curve == "real":
            curve = np.asarray((tf.tanh if tanh else tf.sigmoid)(tf.constant(x, tf.float32)), np.float64)
        else:  # set_internal_sigmoid('smooth' or 'real'): QKeras's float32 value
            sigmoid = np.asarray(qk._sigmoid(tf.constant(x, tf.float32)), np.float64)
            curve = 2.0 * sigmoid - 1.0 if tanh else sigmoid
    sym = int(q.symmetric)
    if tanh:
        m = 2.0 ** (q.bits - 1)
        return _round_clip(curve, 1.0 / m, -m + sym, m - 1)
    m = 2.0 ** q.bits
    return _round_clip(curve, 1.0 / m, sym, m - 1)


def _apply_binary(q: Quantizer, x: np.ndarray, where: str) -> np.ndarray:
    k = np.where(x >= 0, 1.0, -1.0)
    return q.scale(where) * ((k + 1.0) / 2.0 if q.use_01 else k)


def _apply_ternary(q: Quantizer, x: np.ndarray, where: str) -> np.ndarray:
    threshold = float(np.float32(0.33 if q.threshold is None else q.threshold))
    return q.scale(where) * np.where(np.abs(x) >= threshold, np.sign(x), 0.0)


_APPLY: dict[str, Callable[[Quantizer, np.ndarray, str], np.ndarray]] = {
    "bits": _apply_bits, "relu": _apply_relu, "tanh": _apply_curve, "sigmoid": _apply_curve,
    "binary": _apply_binary, "ternary": _apply_ternary,
}


# --- reading QKeras objects -------------------------------------------------------------------------

def describe(quantizer: Any) -> str:
    """A quantizer as QKeras prints it (``quantized_bits(4,0,0,alpha=1)``); some of QKeras's own
    ``__str__`` fail (quantized_hswish asserts), then its class and configuration."""
    try:
        return str(quantizer)
    except Exception:  # noqa: BLE001  (a QKeras bug must not hide the real message)
        config = quantizer.get_config() if hasattr(quantizer, "get_config") else {}
        return f"{type(quantizer).__name__}({', '.join(f'{k}={v!r}' for k, v in config.items())})"


def _alpha(q: Any) -> float | str | tuple[float, ...] | None:
    alpha = getattr(q, "alpha", None)
    if alpha is None or isinstance(alpha, str):
        return alpha
    return float(alpha) if np.size(alpha) == 1 else tuple(float(a) for a in np.ravel(alpha))


def _common(q: Any) -> dict:
    return dict(text=describe(q), name=type(q).__name__, stochastic=bool(getattr(q, "use_stochastic_rounding", False)),
                qnoise=float(getattr(q, "qnoise_factor", 1.0)))


def _read_bits(q: Any) -> Quantizer:
    return Quantizer("bits", bits=int(q.bits), integer=int(q.integer), keep_negative=bool(q.keep_negative),
                     symmetric=bool(q.symmetric), alpha=_alpha(q), **_common(q))


def _read_relu(q: Any) -> Quantizer:
    bound = q.relu_upper_bound if q.relu_upper_bound and not q.is_quantized_clip else None
    return Quantizer("relu", bits=int(q.bits), integer=int(q.integer), keep_negative=False,
                     negative_slope=float(q.negative_slope), upper_bound=None if bound is None else float(bound),
                     use_sigmoid=bool(q.use_sigmoid), **_common(q))


def _read_curve(q: Any) -> Quantizer:
    from qkeras import quantizers as qk

    kind = "tanh" if type(q).__name__ == "quantized_tanh" else "sigmoid"
    real = getattr(q, "use_real_tanh", False) or getattr(q, "use_real_sigmoid", False)
    curve = "real" if real else ("hard" if qk._sigmoid is qk.hard_sigmoid else "smooth")
    return Quantizer(kind, bits=int(q.bits), symmetric=bool(q.symmetric), curve=curve, **_common(q))


def _read_binary(q: Any) -> Quantizer:
    return Quantizer("binary", bits=1, alpha=_alpha(q), use_01=bool(q.use_01), **_common(q))


def _read_ternary(q: Any) -> Quantizer:
    threshold = None if q.threshold is None else float(q.threshold)
    return Quantizer("ternary", bits=2, alpha=_alpha(q), threshold=threshold, **_common(q))


#: the one map from a QKeras quantizer class to its reader
READERS: dict[str, Callable[[Any], Quantizer]] = {
    "quantized_bits": _read_bits, "quantized_relu": _read_relu, "quantized_tanh": _read_curve,
    "quantized_sigmoid": _read_curve, "binary": _read_binary, "ternary": _read_ternary,
}


def is_quantizer(obj: Any) -> bool:
    """True for a QKeras quantizer object (not a float activation function)."""
    return obj is not None and (type(obj).__name__.startswith("quantized_") or hasattr(obj, "bits"))


def read_quantizer(quantizer: Any) -> Quantizer:
    """The :class:`Quantizer` of a QKeras quantizer object (``kind='other'`` for a class without a reader)."""
    reader = READERS.get(type(quantizer).__name__)
    if reader is not None:
        return reader(quantizer)
    common = _common(quantizer)
    common["stochastic"] = common["stochastic"] or type(quantizer).__name__.startswith("stochastic_")
    bits = getattr(quantizer, "bits", 0)
    return Quantizer("other", bits=int(bits) if isinstance(bits, (int, float)) else 0, **common)
