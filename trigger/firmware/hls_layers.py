"""hls4ml's per-layer configuration, read from the IR (:mod:`trigger.ir`): the bit-exact recipe's
types (input type, quantizer result types, the carry onto the layer before a quantized_bits), the
layers that cannot be bit-exact and why, the final softmax, and the layer-level facts the
conversion needs (average pooling counts, relu nodes, recurrent layers, the IO type).

Every rule dispatches on the IR's operation records; no Keras layer class is named here.
"""

from __future__ import annotations

import math

import numpy as np

from trigger.config import SynthConfig
from trigger.errors import TriggerError
from trigger.firmware.precision import parse_precision
from trigger.ir import network as ir
from trigger.ir.quantizers import FixedCast, Quantizer

Entries = list[dict]

#: QKeras activation quantizers hls4ml 1.3.0 converts (others raise inside hls4ml), by IR kind
HLS_ACTIVATION_QUANTIZERS = ("quantized_bits", "quantized_relu", "quantized_tanh", "quantized_sigmoid",
                             "binary", "ternary")


def quantizer_type(q: Quantizer) -> str | None:
    """The hls4ml precision string equal to a quantizer's output grid (round half to even and
    saturating as QKeras), or None if there is none. quantized_tanh/sigmoid on QKeras's hard curve
    have one: hls4ml computes the curve exactly before the cast."""
    return None if q.output_format is None else q.output_format.hls_type()


def check_activation_quantizer(node: ir.Node, q: Quantizer) -> None:
    """Refuse, in one line naming the layer, an activation quantizer that has no deterministic
    fixed-point meaning or that hls4ml 1.3.0 does not convert."""
    where = f"{node.where}: activation quantizer {q.text}"
    if q.stochastic:
        raise TriggerError(f"{where} rounds at random, so no firmware can match it; use_stochastic_rounding=False")
    if q.qnoise != 1.0:
        raise TriggerError(f"{where} mixes the unquantized input into its output (qnoise_factor="
                           f"{q.qnoise:g}); set qnoise_factor=1, its inference value")
    if isinstance(q.alpha, str):
        raise TriggerError(f"{where} scales each batch by its own maximum (alpha={q.alpha!r}), which a "
                           "firmware that sees one event cannot compute; use alpha=1 on activations")
    if q.kind == "other":
        raise TriggerError(f"{where} is not converted by hls4ml 1.3.0 (activation quantizers: "
                           f"{', '.join(HLS_ACTIVATION_QUANTIZERS)}); use quantized_bits or quantized_relu")


def layer_activation(node: ir.Node) -> ir.Activation:
    """What a node applies to its result: an activation layer's function or a layer's own activation."""
    if isinstance(node.op, ir.Activate):
        return node.op.function
    return getattr(node.op, "activation", None)


def check_activations(network: ir.Network) -> None:
    """:func:`check_activation_quantizer` on every node's activation quantizer."""
    for node in network.nodes:
        function = layer_activation(node)
        if isinstance(function, Quantizer):
            check_activation_quantizer(node, function)


def activation_inexact_reason(q: Quantizer) -> str | None:
    """Why hls4ml's version of a (converted) activation quantizer is not bit-exact, or None if it is
    (a cast to :func:`quantizer_type`, QKeras's hard tanh/sigmoid and the ±1 binary, measured exact
    in hls4ml's own types)."""
    if q.output_format is not None or (q.kind == "binary" and q.unit_alpha and not q.use_01):
        return None
    d = q.text
    if q.kind == "bits":
        if not q.unit_alpha:
            return f"{d}: hls4ml drops the scale alpha={q.alpha} of an activation"
        return f"{d}: a 1-bit sign, which hls4ml implements as a pass-through"
    if q.kind == "relu":
        if q.negative_slope:
            return (f"{d}: hls4ml's LeakyReLU saturates negative values at -2^integer where QKeras "
                    f"saturates at -{q.negative_slope}*2^integer")
        return f"{d}: a sigmoid mode or an upper bound that hls4ml does not apply"
    if q.kind in ("tanh", "sigmoid"):
        if q.curve != "hard":
            return f"{d}: a transcendental curve, a lookup table in hls4ml"
        if q.kind == "sigmoid" and q.symmetric:
            return f"{d}: hls4ml's unsigned cast keeps the zero code that symmetric=1 drops"
        return None
    if q.kind in ("binary", "ternary"):
        return f"{d}: hls4ml's binary/ternary tanh has its own threshold and output values"
    return f"{d}: no exact hls4ml equivalent"


# --- types (recipe items 1 and 3) -------------------------------------------------------------------

def input_type(name: str, network: ir.Network, layers_cfg: dict, default: str, skip: tuple[str, ...],
               recipe: Entries, inexact: Entries) -> str:
    """Recipe item 1: the input layer's type is the IR's input format (its readers' common input
    quantizer), or the default precision the values are truncated to."""
    index = network.inputs.index(name)
    fmt = network.input_formats[index]
    if not network.input_defaulted[index] and "input" not in skip:
        precision = fmt.hls_type()
        layers_cfg[name]["Precision"]["result"] = precision
        recipe.append({"layer": name, "action": f"input type {precision}",
                       "why": f"the model's input quantizer {network.consumers[name][0]}"})
        return precision
    layers_cfg[name]["Precision"]["result"] = str(default)
    if "input" not in skip:
        inexact.append({"layer": name, "reason": f"no quantized_bits input quantizer: inputs are truncated to {default}"})
    return str(default)


def quantizer_node_type(node: ir.Node, network: ir.Network, layers_cfg: dict, skip: tuple[str, ...],
                        recipe: Entries, inexact: Entries) -> None:
    """A quantizer layer's result type; recipe item 3 carries a quantized_bits type onto the
    Dense/Conv/normalisation before it."""
    q = node.op.function
    ptype = quantizer_type(q)
    if ptype is None:  # not a cast: exact in hls4ml's own types, or flagged
        reason = activation_inexact_reason(q)
        if reason is not None:
            inexact.append({"layer": node.name, "reason": reason})
        return
    layers_cfg.setdefault(node.name, {}).setdefault("Precision", {})["result"] = ptype
    parent = network.by_name[node.inputs[0]] if len(node.inputs) == 1 else None
    if q.kind != "bits" or parent is None or "carry" in skip or not isinstance(parent.op, ir.CARRY_OPS) \
            or parent.name not in layers_cfg:
        return
    layers_cfg[parent.name]["Precision"]["result"] = ptype
    # hls4ml splits the layer's own (linear) activation into '<name>_linear'; once the layer's type
    # is explicit that node is kept as a cast, so it must carry the type too
    if parent.name + "_linear" in layers_cfg:
        layers_cfg[parent.name + "_linear"].setdefault("Precision", {})["result"] = ptype
    recipe.append({"layer": parent.name, "action": f"result type {ptype} from {node.name}",
                   "why": "hls4ml removes a quantized_bits QActivation after Dense/Conv "
                          "without applying its rounding"})


def inline_activation_type(node: ir.Node, layers_cfg: dict, skip: tuple[str, ...], recipe: Entries) -> None:
    """An inline activation=quantized_bits(...): hls4ml splits it into '<name>_quantized_bits' and
    then merges it away like a separate QActivation (item 3)."""
    q = node.op.activation
    ptype = quantizer_type(q)
    if ptype is None or "carry" in skip:
        return
    for name in (node.name, f"{node.name}_{q.name}", f"{node.name}_linear"):
        if name in layers_cfg:
            layers_cfg[name].setdefault("Precision", {})["result"] = ptype
    recipe.append({"layer": node.name, "action": f"result type {ptype} from its activation",
                   "why": "hls4ml drops the rounding of an inline quantized_bits activation"})


def _carries_inline_bits(node: ir.Node) -> bool:
    q = getattr(node.op, "activation", None)
    return isinstance(node.op, (ir.Dense, ir.Conv)) and isinstance(q, Quantizer) and q.kind == "bits" \
        and q.output_format is not None


def configure_nodes(network: ir.Network, layers_cfg: dict, default: str, skip: tuple[str, ...],
                    recipe: Entries, inexact: Entries) -> str | None:
    """Recipe items 1 and 3 and the inexact layers, node by node; returns the input precision."""
    input_precision = None
    for node in network.nodes:
        if isinstance(node.op, ir.Input):
            input_precision = input_type(node.name, network, layers_cfg, default, skip, recipe, inexact)
        elif isinstance(node.op, ir.Activate) and isinstance(node.op.function, Quantizer):
            quantizer_node_type(node, network, layers_cfg, skip, recipe, inexact)
        elif _carries_inline_bits(node):
            inline_activation_type(node, layers_cfg, skip, recipe)
        else:
            reason = inexact_reason(node, network)
            if reason is not None:
                inexact.append({"layer": node.name, "reason": reason})
    return input_precision


# --- what cannot be bit-exact -----------------------------------------------------------------------

def _float_function_reason(function: ir.FloatActivation) -> str | None:
    if function.name in ("linear", "relu"):
        return None
    if function.name == "softmax":
        return "softmax is a lookup table; logits are compared"
    return f"activation {function.name} is a lookup table or float scale in hls4ml, not bit-exact"


def _inline_reason(function: ir.Activation) -> str | None:
    """Why a layer's own activation is not bit-exact (relu and linear are; a softmax that produces
    the model's output was split into its own layer before conversion)."""
    if isinstance(function, Quantizer):
        if function.kind in ("binary", "ternary"):  # measured: 0 % of binary() values equal
            return f"{function.text}: hls4ml's inline binary/ternary node does not output QKeras's values"
        return activation_inexact_reason(function)
    if function is None or function.name in ("linear", "relu"):
        return None
    if function.name == "softmax":
        return "inline softmax before the model output: a lookup table"
    return f"inline activation {function.name}: a lookup table or float scale in hls4ml, not bit-exact"


def inexact_reason(node: ir.Node, network: ir.Network) -> str | None:
    """Why a node (other than an input or a quantizer layer) cannot be bit-exact, if so."""
    op = node.op
    if isinstance(op, ir.Recurrent):
        return (f"{node.cls}: activations {' and '.join(op.activations)} are lookup tables in hls4ml, and its "
                "state is computed in the accumulator type; QKeras float32 is compared")
    if isinstance(op, ir.Activate) and isinstance(op.function, FixedCast):
        return None  # a per-element cast (HGQ): hls4ml's proxy-model conversion keeps it exact
    if isinstance(op, ir.Activate):
        return _float_function_reason(op.function)
    if isinstance(op, ir.Lookup):
        return f"{node.cls} layer: {op.reason} in hls4ml, not bit-exact"
    if isinstance(op, ir.BatchNorm):
        return "standalone BatchNormalization: float scale and shift, rounded"
    n = pool_count(node, network)
    if n is not None:
        return f"average over {n} values: 1/{n} is not a power of two" if n & (n - 1) else None
    return _inline_reason(getattr(op, "activation", None))


def pool_count(node: ir.Node, network: ir.Network) -> int | None:
    """How many values an average pooling node averages (None for any other node)."""
    if isinstance(node.op, ir.Pool) and node.op.kind == "avg":
        return int(np.prod(node.op.size))
    if isinstance(node.op, ir.GlobalPool) and node.op.kind == "avg":
        return int(np.prod(network.by_name[node.inputs[0]].shape[:-1]))
    return None


# --- layer-level facts the conversion needs -----------------------------------------------------------

def relu_nodes(network: ir.Network) -> dict[str, str]:
    """{hls4ml node: layer} of the float relu activations (a relu activation layer or a layer's own
    ``activation='relu'``, which hls4ml splits into ``<layer>_relu``), whose node hls4ml types with
    the default precision: a wider result of the layer before is truncated."""
    nodes: dict[str, str] = {}
    for node in network.nodes:
        function = layer_activation(node)
        if not isinstance(function, ir.FloatActivation) or function.name != "relu":
            continue
        nodes[node.name if isinstance(node.op, ir.Activate) else f"{node.name}_relu"] = node.name
    return nodes


def recurrent_nodes(network: ir.Network) -> list[str]:
    """The recurrent layers' names."""
    return [n.name for n in network.nodes if isinstance(n.op, ir.Recurrent)]


def average_pool_nodes(network: ir.Network) -> dict[str, int]:
    """{average pooling node: how many values it averages}."""
    counts = {n.name: pool_count(n, network) for n in network.nodes}
    return {name: n for name, n in counts.items() if n is not None}


def check_has_layers(network: ir.Network) -> None:
    """Refuse a model that is only its input quantizer, a ``quantized_bits`` QActivation: that becomes
    the input type (recipe item 1), hls4ml removes the layer, names the input and output ports alike
    and g++ fails ("redefinition of ... q_activation_input", measured on hls4ml's own single
    quantized_bits test models; a single quantized_relu or tanh keeps its node and compiles)."""
    nodes = [n for n in network.nodes if not isinstance(n.op, ir.Input)]
    only = nodes[0] if len(nodes) == 1 else None
    if only is not None and isinstance(only.op, ir.Activate) and isinstance(only.op.function, Quantizer) \
            and only.op.function.kind == "bits":
        raise TriggerError(f"model '{network.name}' is only its input quantizer '{only.name}' "
                           "(quantized_bits), which becomes the firmware's input type: hls4ml's firmware of it "
                           "does not compile (its input and output become one port); add a layer after it")


def choose_io(network: ir.Network, config: SynthConfig, recipe: Entries) -> SynthConfig:
    """io_stream for a model with depthwise or separable convolutions, whatever ``config.io`` says.

    hls4ml 1.3.0's io_parallel separable convolution does not compile (measured:
    ``depthwise_conv_2d_latency_cl`` is not declared) and its io_parallel depthwise convolution writes
    one statement per output pixel and kernel tap (g++ ran past 300 s on a 32x32x3 input); io_stream
    compiled the same model in 21 s, bit-exact. Depth multipliers other than 1 are refused: hls4ml
    computes wrong values for them (measured)."""
    nodes = [n for n in network.nodes if isinstance(n.op, ir.Depthwise)]
    for node in nodes:
        if node.op.multiplier != 1:
            raise TriggerError(f"{node.where} has depth_multiplier={node.op.multiplier}: hls4ml 1.3.0 computes "
                               "depth multiplier 1 only (other values give wrong outputs); use depth_multiplier=1")
    if not nodes or config.io == "stream":
        return config
    recipe.append({"layer": ", ".join(n.name for n in nodes), "action": "converted with io_stream instead of "
                   "io_parallel", "why": "hls4ml 1.3.0's io_parallel separable convolution does not compile and "
                   "its depthwise one takes minutes to compile (one statement per pixel and tap)"})
    return config.model_copy(update={"io": "stream"})


def set_options(cfg: dict, network: ir.Network, config: SynthConfig) -> None:
    """Reuse factor, strategy, tracing and parallelization factors of the hls4ml config."""
    model_cfg = cfg["Model"]
    model_cfg["ReuseFactor"] = config.reuse
    model_cfg["Strategy"] = config.strategy
    model_cfg["TraceOutput"] = True  # trace code is outside synthesis (#ifndef __SYNTHESIS__)
    layers_cfg = cfg["LayerName"]
    for layer_cfg in layers_cfg.values():
        layer_cfg["Trace"] = True
        if "ReuseFactor" in layer_cfg:
            layer_cfg["ReuseFactor"] = config.reuse
    # Convolutions and Dense layers on a (positions, features) tensor (hls4ml turns those into
    # pointwise convolutions: the GNN's per-edge and per-particle networks) take a parallelization
    # factor; the name-granularity config only carries it for layers that are convolutions in Keras.
    for node in network.nodes:
        positionwise = isinstance(node.op, ir.Dense) and len(network.by_name[node.inputs[0]].shape) > 1
        if node.name in layers_cfg and ("ParallelizationFactor" in layers_cfg[node.name] or positionwise):
            layers_cfg[node.name]["ParallelizationFactor"] = _parallelization_factor(node, config)


def _parallelization_factor(node: ir.Node, config: SynthConfig) -> int:
    """The layer's ParallelizationFactor: 'full' is every output position (channels last) at once."""
    if config.parallelization_factor != "full":
        return int(config.parallelization_factor)
    return int(np.prod(node.shape[:-1], dtype=np.int64)) or 1


def average_pooling_types(probe_layers: dict, pools: dict[str, int], cfg: dict, recipe: Entries) -> bool:
    """Recipe item 4: explicit accumulator/result types of average pooling from the inferred input
    type of each pooling node (``probe_layers``: hls4ml node name -> node); True if a type changed."""
    changed = False
    for name, count in pools.items():
        node = probe_layers.get(name)
        parsed = parse_precision(node.get_input_variable().type.precision) if node is not None else None
        if parsed is None:
            continue
        signed, width, integer = parsed
        k = max(1, math.ceil(math.log2(max(count, 2))))
        frac = width - integer
        prefix = "" if signed else "u"
        accum = f"{prefix}fixed<{integer + frac + 2 * k},{integer + k}>"
        result = f"{prefix}fixed<{integer + frac + k},{integer}>"
        prec = cfg["LayerName"].setdefault(name, {}).setdefault("Precision", {})
        changed |= (prec.get("accum"), prec.get("result")) != (accum, result)
        prec["accum"] = accum
        prec["result"] = result
        recipe.append({"layer": name, "action": f"accum {accum}, result {result}",
                       "why": "'auto' does not cover average pooling; the sum needs log2(N) more "
                              "integer bits and the division log2(N) more fractional bits"})
    return changed
