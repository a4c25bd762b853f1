"""The quantized network as one immutable description: nodes in topological order, each with its
operation (a typed record per kind), per-event output shape and inputs; weights with the exact grid
that holds them; the input format, decided once for every back end; and what the output is.

Built by :func:`trigger.ir.keras.from_keras`; read by the exact evaluator (:mod:`trigger.ir.evaluate`),
the RTL tracer, the hls4ml configuration and the bit-operation count.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal, Union

import numpy as np

from trigger.ir.formats import FixedFormat, grid_of
from trigger.ir.quantizers import FixedCast, Quantizer


@dataclass(frozen=True)
class FloatActivation:
    """A Keras activation function (``relu``, ``linear``, ``softmax``, ``tanh``, ...) by name."""

    name: str


#: what a layer applies to its result: a QKeras quantizer, HGQ's per-element cast, a float function, or nothing
Activation = Union[Quantizer, FixedCast, FloatActivation, None]


@dataclass(frozen=True, eq=False)
class Weights:
    """A weight tensor as the firmware uses it (float64, after its quantizer) and its quantizer."""

    values: np.ndarray
    quantizer: Quantizer | None = None

    @cached_property
    def format(self) -> FixedFormat:
        """The narrowest signed grid holding every value exactly."""
        return grid_of(self.values)

    @property
    def integers(self) -> np.ndarray:
        """The values as exact integers on :attr:`format` (value = integer * 2^-f)."""
        return np.asarray(np.rint(self.values * 2.0 ** self.format.f)).astype(object)

    @cached_property
    def zero_fraction(self) -> float:
        """Fraction of entries that are zero (pruned or rounded to zero)."""
        return float(np.mean(self.values == 0)) if self.values.size else 0.0


@dataclass(frozen=True)
class Input:
    """A model input; its values arrive in :attr:`Network.input_format`."""


@dataclass(frozen=True)
class Identity:
    """Passes its input through at inference (Dropout, noise)."""


@dataclass(frozen=True)
class Activate:
    """An activation layer (QActivation, Activation, a plain ReLU, HGQ's FixedPointQuantizer)."""

    function: Activation


@dataclass(frozen=True)
class Dense:
    """``x @ kernel + bias`` over the last axis, then the activation."""

    kernel: Weights
    bias: Weights | None
    activation: Activation


@dataclass(frozen=True)
class Conv:
    """An N-d convolution, channels last (kernel ``(*spatial, in, out)``), then the activation."""

    kernel: Weights
    bias: Weights | None
    strides: tuple[int, ...]
    padding: Literal["valid", "same"]
    activation: Activation


@dataclass(frozen=True)
class Depthwise:
    """A depthwise convolution (kernel ``(*spatial, channels, multiplier)``), for a separable one
    followed by its pointwise kernel, then bias and activation."""

    depthwise: Weights
    pointwise: Weights | None
    bias: Weights | None
    strides: tuple[int, ...]
    padding: Literal["valid", "same"]
    activation: Activation
    multiplier: int = 1


@dataclass(frozen=True)
class Pool:
    """Max or average pooling over windows."""

    kind: Literal["max", "avg"]
    size: tuple[int, ...]
    strides: tuple[int, ...]
    padding: str


@dataclass(frozen=True)
class GlobalPool:
    """Max or average over every position (all axes but the last)."""

    kind: Literal["max", "avg"]
    keepdims: bool = False


@dataclass(frozen=True)
class Reshape:
    """A reshape to ``shape`` (per event; ``(-1,)`` flattens)."""

    shape: tuple[int, ...]


@dataclass(frozen=True)
class Permute:
    """A transpose of the per-event axes (``dims`` counted from 1, as Keras)."""

    dims: tuple[int, ...]


@dataclass(frozen=True)
class Merge:
    """An elementwise merge of several inputs, or a concatenation along ``axis`` (Keras's, batch included)."""

    kind: Literal["add", "subtract", "multiply", "average", "concatenate"]
    axis: int = -1


@dataclass(frozen=True)
class BatchNorm:
    """Inference batch normalisation ``(x - mean) / sqrt(var + epsilon) * gamma + beta``."""

    mean: np.ndarray = field(compare=False)
    variance: np.ndarray = field(compare=False)
    gamma: np.ndarray | float = field(compare=False)
    beta: np.ndarray | float = field(compare=False)
    epsilon: float = 1e-3


@dataclass(frozen=True)
class QuantizedBatchNorm:
    """QKeras's QBatchNormalization (quantized scale and shift; not evaluated exactly here)."""


@dataclass(frozen=True)
class Lookup:
    """An activation layer with no exact fixed-point form (a float slope or bound, a lookup table):
    LeakyReLU, ELU, PReLU, ThresholdedReLU, a ReLU with a bound or slope, GarNet. ``reason`` says what."""

    reason: str


@dataclass(frozen=True)
class Recurrent:
    """A recurrent layer (SimpleRNN, LSTM, GRU and their QKeras versions) and its activations' names."""

    activations: tuple[str, ...]


@dataclass(frozen=True)
class Opaque:
    """A layer the IR records but no evaluator computes: ``reason`` says why."""

    reason: str


Op = Union[Input, Identity, Activate, Dense, Conv, Depthwise, Pool, GlobalPool, Reshape, Permute, Merge,
           BatchNorm, QuantizedBatchNorm, Lookup, Recurrent, Opaque]
#: the operations whose result type hls4ml takes from a quantized_bits activation after them
CARRY_OPS = (Dense, Conv, BatchNorm, QuantizedBatchNorm)
#: the operations with a weight kernel (the MAC layers of BOPs and the estimator)
WEIGHT_OPS = (Dense, Conv, Depthwise)


@dataclass(frozen=True)
class Node:
    """One layer: its name, Keras class (for messages), the nodes it reads, its per-event output shape."""

    name: str
    cls: str
    inputs: tuple[str, ...]
    shape: tuple[int, ...]
    op: Op

    @property
    def where(self) -> str:
        """How messages name this node."""
        return f"layer '{self.name}' ({self.cls})"


@dataclass(frozen=True)
class Output:
    """What the firmware outputs: node ``node``; ``kind`` is ``logits`` (a final softmax node
    ``cut`` is left out), ``probabilities`` (a softmax fused into the output layer), ``score`` (one
    value per event from a network that computes a reconstruction error itself: the anomaly score
    on chip) or ``values``."""

    node: str
    kind: Literal["logits", "probabilities", "score", "values"]
    cut: str | None = None


@dataclass(frozen=True)
class Network:
    """A quantized network (see the module docstring). Per input: its format, the quantizer node
    that alone reads it (whose output the input format is), if there is one, and whether no
    quantizer fixed the format (hls4ml's default precision, to which the values are truncated)."""

    name: str
    nodes: tuple[Node, ...]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    input_formats: tuple[FixedFormat, ...]
    input_quantizers: tuple[str | None, ...]
    input_defaulted: tuple[bool, ...]
    output: Output

    @property
    def input_format(self) -> FixedFormat:
        """The format of the (first) input."""
        return self.input_formats[0]

    @property
    def input_quantizer(self) -> str | None:
        """The quantizer node that alone reads the (first) input, if any."""
        return self.input_quantizers[0]

    @cached_property
    def by_name(self) -> dict[str, Node]:
        """Nodes by name."""
        return {n.name: n for n in self.nodes}

    @cached_property
    def consumers(self) -> dict[str, tuple[str, ...]]:
        """{node: the nodes that read it}."""
        out: dict[str, list[str]] = {}
        for node in self.nodes:
            for source in node.inputs:
                out.setdefault(source, []).append(node.name)
        return {k: tuple(v) for k, v in out.items()}

    def weight_nodes(self) -> list[Node]:
        """The nodes with a weight kernel, in order."""
        return [n for n in self.nodes if isinstance(n.op, WEIGHT_OPS)]

    def computes_reconstruction_error(self) -> bool:
        """True if a Subtract has one operand that reaches an input through nodes without weights
        and one that does not (input minus its reconstruction: an autoencoder's error on chip)."""
        def raw_input(name: str) -> bool:
            node = self.by_name[name]
            if isinstance(node.op, Input):
                return True
            return not isinstance(node.op, WEIGHT_OPS) and len(node.inputs) == 1 and raw_input(node.inputs[0])

        return any(isinstance(n.op, Merge) and n.op.kind == "subtract" and len(n.inputs) >= 2
                   and raw_input(n.inputs[0]) != raw_input(n.inputs[1]) for n in self.nodes)

    def opaque(self) -> list[Node]:
        """The nodes no evaluator computes."""
        return [n for n in self.nodes if isinstance(n.op, Opaque)]
