"""Whether da4ml, hls4ml's distributed-arithmetic back end, can be used (the '[da]' extra).

Conversion asks before it lets hls4ml run its DA pass; the estimate of a DA design (da4ml's adder
graph as LUT, FF and cycles) is :mod:`trigger.firmware.estimate.da`.
"""

from __future__ import annotations

from trigger.errors import TriggerError


def require() -> None:
    """Raise a one-line TriggerError when da4ml (the '[da]' extra, with numba) cannot be imported.

    The one da4ml availability check; the message is the one ``trigger synth`` gives for
    ``--strategy distributed_arithmetic`` without the extra.
    """
    try:
        import da4ml  # noqa: F401
    except ImportError:
        raise TriggerError("strategy 'distributed_arithmetic' needs da4ml, which is not installed; "
                           "install it with `pip install da4ml` (the hls4ml 'da' extra) or use "
                           "--strategy Latency") from None
