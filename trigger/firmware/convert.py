"""QKeras -> hls4ml conversion with the bit-exact configuration (hls4ml 1.3.0, TF 2.14 Keras 2).

Every item of the recipe was found by measurement on this stack (see ``docs/firmware.md``); each is
applied only where its pattern occurs, and recorded in ``Conversion.recipe`` so the report says what
was done to which layer:

1. *input type*: the model's first ``QActivation(quantized_bits(b, i, alpha=1))`` is its real input
   type; the hls4ml input layer gets ``fixed<b, i+1, RND_CONV, SAT>`` (RND_CONV = round half to even
   like ``tf.round``, SAT = QKeras's clip), instead of the default ``fixed<16,6>`` that truncates.
2. *weights quantized before conversion*: hls4ml rewrites a QDense on an (N, F) input into a
   pointwise convolution and drops the QKeras quantizer on the way, so raw float weights would be
   truncated (and wrap). Writing ``quantizer(kernel)`` into the weights first makes every path exact
   (a no-op for the other layers: quantized_bits with alpha=1 is idempotent).
3. *quantized_bits after QDense/QConv*: hls4ml merges the linear QActivation into the layer before
   and never applies its rounding; its type (with RND_CONV, SAT) is carried onto that layer's result.
4. *average pooling*: 'auto' does not cover (Global)AveragePooling; hls4ml sums and divides in the
   accumulator type, so accumulator and result get log2(N) more integer and fractional bits.
5. *weight quantizers other than quantized_bits(alpha=1)*: for alpha='auto_po2' hls4ml factorises
   the power-of-two scale into an inserted ApplyAlpha layer whose scale quantizer has too few bits
   (measured: a scale of 4 becomes 2) and whose result type comes from the model default; binary
   and ternary kernels become XNOR/2-bit codes, quantized_po2 an exponent type (measured: weights
   near 2^18 wrong), keep_negative=False a signed grid one bit too coarse, and float weights of a
   Q-layer take the default precision. Every such kernel or bias is instead written with its
   values (scales folded in) under a plain quantized_bits(alpha=1) whose grid holds every value
   exactly (at most :data:`MAX_WEIGHT_BITS` bits; wider is refused in one line). Activation
   quantizers without a per-event fixed-point meaning (alpha='auto', stochastic rounding,
   qnoise_factor < 1) or that hls4ml does not convert (quantized_po2, ...) are refused in one line;
   those hls4ml converts but not exactly (negative slope, real sigmoid, scaled alpha, ternary) are
   listed in ``Conversion.inexact``
   (:func:`trigger.firmware.hls_layers.activation_inexact_reason`).
6. *softmax* is a lookup table and never bit-exact: classifier logits are compared instead, and
   layers that cannot be exact (softmax, standalone BatchNormalization, LUT activations, pooling
   over a non-power-of-two count) are listed in ``Conversion.inexact``.
7. *the firmware's output* (``SynthConfig.output``, for a model ending in a separate softmax layer):
   ``logits`` leaves the softmax out (hls4ml's ``Skip``: the output is the bit-exact logits),
   ``argmax`` uses hls4ml's argmax implementation (a one-hot of the largest logit), ``softmax`` sizes
   and types hls4ml's ``stable`` softmax tables (:func:`softmax_tables`) instead of its defaults,
   whose 1024-entry tables index the max-subtracted logits and the sum of exponentials by their top
   10 bits only (measured: 75-99 % argmax agreement, probabilities off by up to 0.19). A softmax
   fused into the output layer (``QDense(..., activation='softmax')``) is first split into its own
   layer (:func:`trigger.models.graph.split_fused_softmax`), so it is handled the same way.
8. *float relu*: hls4ml splits ``activation='relu'`` (and types ``Activation('relu')``, ``ReLU()``)
   into a node typed with the default ``fixed<16,6>``, truncating e.g. a 27-bit convolution result
   (measured: 0.05 exact); it gets its input's type without the sign bit (:func:`_passthrough_types`,
   from hls4ml's inferred types). ``QActivation('relu')`` (no quantizer), which hls4ml refuses, is
   rebuilt as ``Activation('relu')``. Other float activations (tanh, sigmoid, elu, ...) are tables
   or float scales: listed in ``Conversion.inexact``.
9. *depthwise/separable convolutions* convert with io_stream
   (:func:`trigger.firmware.hls_layers.choose_io`); *recurrent
   layers* get one type for input, result and accumulator, the only one hls4ml's C++ compiles, and
   are listed inexact (tanh/sigmoid tables). Sequential models are read through their functional
   view (:func:`trigger.models.graph.layer_graph`), so their InputLayer gets item 1 too.

The per-layer rules read the model's IR (:mod:`trigger.ir`) and live in
:mod:`trigger.firmware.hls_layers`; this module prepares the Keras model hls4ml reads and runs the
conversion.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from trigger.config import SynthConfig
from trigger.errors import TriggerError
from trigger.firmware import da
from trigger.firmware.precision import parse_precision
from trigger.firmware import hls_layers
from trigger.ir import network as ir
from trigger.ir.formats import FixedFormat, grid_of
from trigger.ir.keras import HLS4ML_SKIPPED, from_keras
from trigger.ir.network import Network
from trigger.ir.quantizers import describe, read_quantizer
from trigger.models.graph import split_fused_softmax
from trigger.runtime import log

# hls4ml reserves these names for its own graph nodes
RESERVED_NAMES = ("input", "output")
# wide default for the scale layers hls4ml inserts for alpha='auto_po2' (recipe item 5)
WIDE_DEFAULT = "fixed<32,16>"
STANDARD_DEFAULT = "fixed<16,6>"


@dataclass
class Conversion:
    """An hls4ml model plus what was done to reach it."""

    hls_model: Any
    keras_model: Any              # the model as converted: pruning stripped, weights quantized
    recipe: list[dict] = field(default_factory=list)      # {"layer", "action", "why"}
    inexact: list[dict] = field(default_factory=list)     # {"layer", "reason"}
    input_precision: str | None = None
    io: str = "parallel"          # the IO type converted with ('stream' for depthwise/separable layers)


# --- which quantizers trigger takes, and how ---------------------------------------------------------

#: weight quantizers: (layer config key, weight variable name)
WEIGHT_QUANTIZERS = (("kernel_quantizer", "kernel"), ("bias_quantizer", "bias"),
                     ("depthwise_quantizer", "depthwise_kernel"), ("pointwise_quantizer", "pointwise_kernel"),
                     ("recurrent_quantizer", "recurrent_kernel"))
#: widest fixed-point type a weight may need: the exact reference (float64, 53 bits) must hold the
#: products of these weights with the inputs and their sums
MAX_WEIGHT_BITS = 40


def _uses_auto_po2(network: Network) -> bool:
    """True if a weight quantizer scales by a power of two chosen per batch (alpha='auto_po2' or 'auto')."""
    for node in network.weight_nodes():
        for weights in (node.op.kernel, node.op.bias) if hasattr(node.op, "kernel") else ():
            q = weights.quantizer if weights is not None else None
            if q is not None and isinstance(q.alpha, str):
                return True
    return False


# --- preparing the Keras model ------------------------------------------------------------------

def load_keras(model: Any):
    """A Keras model from a path (with trigger's custom objects) or the model itself."""
    if isinstance(model, (str, os.PathLike)):
        from trigger.models.io import load_model

        return load_model(model)
    return model


def prepare_model(model, skip: tuple[str, ...] = ()) -> tuple[Any, list[dict]]:
    """Strip pruning wrappers, rename layers hls4ml reserves, write quantized weights.

    Every weight quantizer other than a plain ``quantized_bits(alpha=1)`` (binary, ternary,
    quantized_po2, alpha scales, keep_negative=False, ...) is replaced by a plain quantized_bits whose
    grid holds its values exactly (:func:`weights_as_fixed`); an activation quantizer with no
    fixed-point meaning is refused (:func:`trigger.firmware.hls_layers.check_activation_quantizer`). Returns a new model (the
    original is untouched) and the recipe entries applied.
    """
    import tensorflow as tf
    import tensorflow_model_optimization as tfmot

    from trigger.models.io import custom_objects

    recipe: list[dict] = []
    if any(type(l).__name__ == "PruneLowMagnitude" for l in model.layers):
        model = tfmot.sparsity.keras.strip_pruning(model)
        recipe.append({"layer": "*", "action": "stripped pruning wrappers",
                       "why": "hls4ml does not parse tfmot PruneLowMagnitude"})
    hls_layers.check_activations(from_keras(model))
    renames = {l.name: f"{l.name}_layer" for l in model.layers if l.name in RESERVED_NAMES}
    for old, new in renames.items():
        recipe.append({"layer": new, "action": f"renamed from '{old}'", "why": "hls4ml reserves this layer name"})

    fixed_values: dict[str, dict[int, np.ndarray]] = {}

    def clone_layer(layer):
        config = layer.get_config()  # holds the quantizer objects themselves, which from_config takes
        config["name"] = renames.get(layer.name, layer.name)
        for key, index, quantizer, values, wide in _replaced_weight_quantizers(layer, skip):
            config[key] = wide
            fixed_values.setdefault(config["name"], {})[index] = values
            recipe.append(_weight_recipe(config["name"], key, quantizer, wide))
        return layer.__class__.from_config(config)

    inputs = [tf.keras.Input(batch_shape=t.shape, dtype=t.dtype,
                             name=renames.get(t.node.layer.name, t.node.layer.name)) for t in model.inputs]
    with tf.keras.utils.custom_object_scope(custom_objects()):
        clone = tf.keras.models.clone_model(model, input_tensors=inputs if len(inputs) > 1 else inputs[0],
                                            clone_function=clone_layer)
    clone.set_weights(model.get_weights())
    quantized_layers = _write_quantized_weights(clone, fixed_values, skip)
    if quantized_layers:
        recipe.append({"layer": ", ".join(quantized_layers), "action": "weights replaced by their quantized values",
                       "why": "every hls4ml path then uses exactly QKeras's weight values (hls4ml drops the "
                              "quantizer when it rewrites Dense on (N,F) inputs as a pointwise convolution, "
                              "so raw weights would truncate and wrap)"})
    return clone, recipe


def _weight_recipe(layer: str, key: str, quantizer: Any, wide: Any) -> dict:
    if quantizer is None:
        return {"layer": layer, "action": f"float weights (no {key}) as {wide} (same values)",
                "why": "hls4ml types float weights with the default precision, which truncates them"}
    return {"layer": layer, "action": f"{key} {describe(quantizer)} as {wide} (same values)",
            "why": "hls4ml mis-types this quantizer (alpha scale, binary/ternary codes, powers of two, "
                   "unsigned grid); a plain fixed-point grid holding every value is exact"}


def _weight_index(layer, variable: str) -> int | None:
    """Index in ``layer.get_weights()`` of the weight variable named ``variable`` (kernel, bias, ...)."""
    for i, w in enumerate(layer.weights):
        if w.name.split("/")[-1].split(":")[0] == variable:
            return i
    return None


def _weight_quantizer(layer, key: str, spec: Any) -> Any:
    """The quantizer object a layer applies to a weight (the layer's own, so its ``scale`` is the
    eager one after it runs), or None."""
    from qkeras.quantizers import get_quantizer

    if spec is None:
        return None
    for owner in (layer, getattr(layer, "cell", None)):  # recurrent layers keep them on their cell
        q = getattr(owner, f"{key}_internal", None)
        if q is not None:
            return q
    return get_quantizer(spec)


def _is_plain(quantizer) -> bool:
    """A quantized_bits(alpha=1) hls4ml types exactly as fixed<bits, integer+1>."""
    q = read_quantizer(quantizer)
    return q.kind == "bits" and q.keep_negative and q.cast_format is not None


def _replaced_weight_quantizers(layer, skip: tuple[str, ...]):
    """(config key, weight index, quantizer, quantized values, plain quantizer) for each weight
    quantizer of ``layer`` that hls4ml would not type exactly."""
    config = layer.get_config()
    weights = None
    for key, variable in WEIGHT_QUANTIZERS:
        if key not in config or (key == "bias_quantizer" and not config.get("use_bias", True)):
            continue
        index = _weight_index(layer, variable)
        if index is None:
            continue
        quantizer = _weight_quantizer(layer, key, config[key])
        if quantizer is None:  # float weights of a Q-layer: typed exactly if a short grid holds them
            weights = layer.get_weights() if weights is None else weights
            values = weights[index].astype(np.float32)
            grid = grid_of(values)
            if grid.width <= MAX_WEIGHT_BITS and np.all(np.isfinite(values)):
                yield key, index, None, values, _grid_quantizer(grid)
            continue
        if _is_plain(quantizer):
            continue
        if "po2" in skip and isinstance(getattr(quantizer, "alpha", None), str):
            continue  # ablation: leave alpha='auto_po2' to hls4ml's ApplyAlpha (recipe item 5)
        if weights is None:
            weights = layer.get_weights()
        values, wide = weights_as_fixed(quantizer, weights[index], f"layer '{layer.name}' "
                                        f"({type(layer).__name__}): {key} {describe(quantizer)}")
        yield key, index, quantizer, values, wide


def _write_quantized_weights(clone, fixed_values: dict[str, dict[int, np.ndarray]],
                             skip: tuple[str, ...]) -> list[str]:
    """Write each layer's quantized weights (replaced quantizers: their values); the changed layers."""
    import tensorflow as tf

    quantized_layers: list[str] = []
    for layer in clone.layers:
        weights = layer.get_weights()
        changed = False
        for index, values in fixed_values.get(layer.name, {}).items():
            changed = changed or not np.array_equal(weights[index], values)
            weights[index] = values
        config = layer.get_config()
        for key, variable in WEIGHT_QUANTIZERS:
            index = _weight_index(layer, variable)
            if config.get(key) is None or index is None or "weights" in skip:
                continue
            q = _weight_quantizer(layer, key, config[key])
            if isinstance(getattr(q, "alpha", None), str):
                continue  # ablation without 'po2': hls4ml factorises the scale itself (recipe item 5)
            quantized = np.asarray(q(tf.constant(weights[index])), dtype=np.float32)
            if not np.array_equal(quantized, weights[index]):
                weights[index] = quantized
                changed = True
        if changed:
            layer.set_weights(weights)
            quantized_layers.append(layer.name)
    return quantized_layers


def _grid_quantizer(grid: FixedFormat):
    """The quantized_bits(alpha=1) of a signed grid."""
    from qkeras import quantized_bits

    return quantized_bits(grid.width, grid.i, alpha=1)


def weights_as_fixed(quantizer, weights: np.ndarray, where: str):
    """The values of a weight quantizer and a plain ``quantized_bits(alpha=1)`` whose grid holds all
    of them exactly, or one TriggerError line (``where`` names the layer and quantizer) if none of at
    most :data:`MAX_WEIGHT_BITS` bits does.

    QKeras computes the values in float32 (``alpha`` scales, binary/ternary codes, powers of two),
    so each is a short dyadic fraction; the grid has their finest fraction and their largest magnitude.
    """
    import tensorflow as tf

    values = np.asarray(quantizer(tf.constant(weights)), dtype=np.float32)
    if not np.all(np.isfinite(values)):
        raise TriggerError(f"{where} gives non-finite weights; retrain or fix the quantizer")
    grid = grid_of(values)
    if grid.width > MAX_WEIGHT_BITS:
        raise TriggerError(f"{where} gives weights from {values.min():g} to {values.max():g} (smallest step "
                           f"2^-{grid.f}), which need a {grid.width}-bit fixed-point type; trigger takes "
                           f"at most {MAX_WEIGHT_BITS} bits: bound the quantizer's range (max_value, bits)")
    wide = _grid_quantizer(grid)
    if not np.array_equal(np.asarray(wide(tf.constant(values))), values):  # never expected: say so loudly
        raise RuntimeError(f"{where}: weights are not exactly representable as {wide}")
    return values, wide


# --- configuration ---------------------------------------------------------------------------------

# --- the firmware's output (recipe item 7) ------------------------------------------------------

#: integer bits of the max-subtracted logits x_max - x_i: larger differences saturate, where
#: exp(-8) = 3.4e-4 is below the probability bound 2^-8 of the ``softmax`` output
SOFTMAX_DIFF_INTEGER = 3
#: at most this many fractional bits of x_max - x_i index the exponential table (fewer if the
#: logits have fewer: then every difference is exact); 9 gave 0.999 argmax agreement on jet_cnn
SOFTMAX_DIFF_FRACTION = 10
#: fractional bits of the sum of exponentials that index the inverse table: 1/sum within 2^-9
SOFTMAX_SUM_FRACTION = 8
SOFTMAX_TABLE_WIDTH = 18  # one block-RAM word: exp(-d) and 1/sum in ufixed<18,1>, 17 fractional bits
SOFTMAX_RESULT = "ufixed<16,1,RND,SAT>"


def softmax_tables(logits_precision: str | None, n_classes: int) -> dict:
    """hls4ml layer config of a ``stable`` softmax whose tables cover their index types exactly.

    The exponential table is indexed by every value of x_max - x_i in ufixed<3+f, 3> (f: the logits'
    fractional bits, at most :data:`SOFTMAX_DIFF_FRACTION`), the inverse table by every value of the
    sum in ufixed<s+8, s> (the sum lies in [1, n_classes]); both hold 17 fractional bits, rounded.
    """
    parsed = parse_precision(logits_precision) if logits_precision else None
    frac = SOFTMAX_DIFF_FRACTION if parsed is None else min(max(parsed[1] - parsed[2], 0), SOFTMAX_DIFF_FRACTION)
    sum_int = max(1, math.ceil(math.log2(n_classes + 1)))
    width = SOFTMAX_TABLE_WIDTH
    return {"Implementation": "stable",
            "exp_table_size": 2 ** (SOFTMAX_DIFF_INTEGER + frac),
            "inv_table_size": 2 ** (sum_int + SOFTMAX_SUM_FRACTION),
            "inp_norm_t": f"ufixed<{SOFTMAX_DIFF_INTEGER + frac},{SOFTMAX_DIFF_INTEGER},RND,SAT>",
            "exp_table_t": f"ufixed<{width},1,RND,SAT>", "inv_table_t": f"ufixed<{width},1,RND,SAT>",
            "accum_t": f"ufixed<{width + sum_int},{1 + sum_int}>",
            "inv_inp_t": f"ufixed<{sum_int + SOFTMAX_SUM_FRACTION},{sum_int},RND,SAT>"}


def _output_config(network: Network, layers_cfg: dict, config: SynthConfig, recipe: list[dict],
                   inexact: list[dict]) -> None:
    """Recipe item 7: configure the final softmax (the IR's cut output) for ``config.output``."""
    softmax = network.output.cut if len(network.outputs) == 1 else None
    if softmax is None or softmax not in layers_cfg:
        return
    layer_cfg = layers_cfg[softmax]
    if config.output == "logits":
        layer_cfg["Skip"] = True
        action, why = "left out: the firmware outputs the logits", "output: logits (bit-exact)"
    elif config.output == "argmax":
        layer_cfg["Implementation"] = "argmax"
        layer_cfg.setdefault("Precision", {})["result"] = "ufixed<1,1>"
        action, why = "hls4ml's argmax: a one-hot of the largest logit", "output: argmax (exact on exact logits)"
    else:
        precision = (layers_cfg.get(network.output.node, {}).get("Precision") or {}).get("result")
        tables = softmax_tables(precision if isinstance(precision, str) else None,
                                int(np.prod(network.by_name[softmax].shape)))
        layer_cfg.update(tables)
        layer_cfg.setdefault("Precision", {})["result"] = SOFTMAX_RESULT
        action = (f"stable softmax, exp table {tables['exp_table_size']} x {tables['exp_table_t']} indexed by "
                  f"{tables['inp_norm_t']}, inverse table {tables['inv_table_size']} x {tables['inv_table_t']} "
                  f"indexed by {tables['inv_inp_t']}, result {SOFTMAX_RESULT}")
        why = "output: softmax; hls4ml's default tables index only the top 10 bits (argmax agreement 75-99 %)"
    recipe.append({"layer": softmax, "action": action, "why": why})
    if config.output != "softmax":  # no table left in the firmware
        inexact[:] = [e for e in inexact if e.get("layer") != softmax]


def check_hls_layers(keras_model) -> None:
    """Refuse, in one line naming the layer, a layer class hls4ml 1.3.0's Keras 2 converter has no
    handler for (a Lambda of a trusted file, a nested model, ...), before hls4ml raises a bare Exception."""
    from hls4ml.converters.keras_v2_to_hls import get_supported_keras_layers

    supported = set(get_supported_keras_layers()) | {HLS4ML_SKIPPED}  # inference: identity
    for layer in keras_model.layers:
        cls = type(layer).__name__
        if cls not in supported:
            raise TriggerError(f"layer '{layer.name}' ({cls}) is not converted by hls4ml 1.3.0; replace it with "
                               "supported layers (docs/firmware.md lists what trigger converts)")


def hls_config(keras_model, config: SynthConfig, skip: tuple[str, ...] = (),
               network: Network | None = None) -> tuple[dict, list[dict], list[dict], str | None]:
    """hls4ml configuration with the bit-exact recipe (items 1, 3, 5 and 6; 4 needs inferred types),
    from the model's IR (:mod:`trigger.firmware.hls_layers`).

    Returns (hls config dict, recipe entries, inexact entries, input precision). ``network``: the
    model's IR, if the caller has it.
    """
    import hls4ml

    check_hls_layers(keras_model)
    network = network or from_keras(keras_model)
    wide = _uses_auto_po2(network)
    default = WIDE_DEFAULT if wide else STANDARD_DEFAULT
    cfg = hls4ml.utils.config_from_keras_model(keras_model, granularity="name", backend=config.backend,
                                               default_precision=default)
    recipe: list[dict] = []
    inexact: list[dict] = []
    if wide:
        recipe.append({"layer": "*", "action": f"default precision {default}",
                       "why": "alpha='auto_po2' inserts scale layers typed from the default precision"})
    hls_layers.set_options(cfg, network, config)
    input_precision = hls_layers.configure_nodes(network, cfg["LayerName"], default, skip, recipe, inexact)
    _output_config(network, cfg["LayerName"], config, recipe, inexact)
    return cfg, recipe, inexact, input_precision


def _passthrough_types(hls_model, cfg: dict, nodes: dict[str, str]) -> bool:
    """Type each relu node of ``nodes`` with its input's type without the sign bit (relu's output
    is >= 0, so the values are kept exactly); True if a type changed."""
    changed = False
    for node in hls_model.get_layers():
        parsed = parse_precision(node.get_input_variable().type.precision) if node.name in nodes else None
        if parsed is None:
            continue
        signed, width, integer = parsed
        ptype = f"ufixed<{width - 1},{integer - 1}>" if signed and width > 1 else f"ufixed<{width},{integer}>"
        prec = cfg["LayerName"].setdefault(node.name, {}).setdefault("Precision", {})
        if prec.get("result") != ptype:
            prec["result"] = ptype
            changed = True
    return changed


def _recurrent_types(hls_model, cfg: dict, recurrent: list[str]) -> bool:
    """hls4ml's recurrent layers pass their state (result type) where their input type is expected
    and compute their gates into it as the accumulator type (``nnet_recurrent.h``), so the C++
    compiles only if the three are the same type: result and accumulator take the input's type.
    True if a type changed."""
    changed = False
    for node in hls_model.get_layers():
        if node.name not in recurrent:
            continue
        ptype = str(node.get_input_variable().type.precision)
        prec = cfg["LayerName"].setdefault(node.name, {}).setdefault("Precision", {})
        if (prec.get("result"), prec.get("accum")) != (ptype, ptype):
            prec["result"] = prec["accum"] = ptype
            changed = True
    return changed


#: at most this many conversions infer the types that later types derive from (each a second or so)
TYPE_PASSES = 4


def _inferred_types(prepared, network: Network, cfg: dict, config: SynthConfig, skip: tuple[str, ...]) -> list[dict]:
    """Recipe items that need hls4ml's inferred types (average pooling, float relu nodes, recurrent
    result types): convert into a scratch folder, set the types, repeat until none changes.
    Returns their recipe entries."""
    pools = hls_layers.average_pool_nodes(network) if "pooling" not in skip else {}
    relus = hls_layers.relu_nodes(network)
    recurrent = hls_layers.recurrent_nodes(network)
    if not (pools or relus or recurrent):
        return []
    scratch = Path(tempfile.mkdtemp(prefix="trigger-hls-infer-"))
    pool_recipe: list[dict] = []
    try:
        for _ in range(TYPE_PASSES):
            probe = _hls_convert(prepared, cfg, config, scratch)
            changed = _passthrough_types(probe, cfg, relus) | _recurrent_types(probe, cfg, recurrent)
            if pools:
                pool_recipe = []
                probe_layers = {node.name: node for node in probe.get_layers()}
                changed |= hls_layers.average_pooling_types(probe_layers, pools, cfg, pool_recipe)
            if not changed:
                break
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return _inferred_recipe(cfg["LayerName"], relus, recurrent) + pool_recipe


def _inferred_recipe(layers_cfg: dict, relus: dict[str, str], recurrent: list[str]) -> list[dict]:
    """The recipe entries of the relu and recurrent types set from inferred types."""
    recipe = [{"layer": layer, "action": f"relu result type {layers_cfg[node]['Precision']['result']} "
               f"(its input's type without the sign bit)",
               "why": "hls4ml types a float relu's node with the default precision, truncating the result "
                      "of the layer before"} for node, layer in relus.items()
              if node in layers_cfg and "result" in layers_cfg[node].get("Precision", {})]
    return recipe + [{"layer": name, "action": f"result type {layers_cfg[name]['Precision']['result']} "
                      "(its input's type, also its accumulator type)", "why": "hls4ml's recurrent layers compile "
                      "only when input, result and accumulator types are one type (the defaults fail to compile)"}
                     for name in recurrent if name in layers_cfg and "result" in layers_cfg[name].get("Precision", {})]


# --- conversion ---------------------------------------------------------------------------------

def _check_strategy(config: SynthConfig) -> None:
    if config.strategy == "distributed_arithmetic":
        da.require()


def _hls_convert(keras_model, cfg: dict, config: SynthConfig, output_dir: Path):
    import hls4ml

    try:
        return hls4ml.converters.convert_from_keras_model(
            keras_model, hls_config=cfg, output_dir=str(output_dir), project_name="myproject",
            backend=config.backend, io_type=f"io_{config.io}", part=config.part,
            clock_period=config.clock_ns)
    except TriggerError:
        raise
    except Exception as exc:  # hls4ml raises bare Exceptions for unsupported layers
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise TriggerError(f"hls4ml cannot convert this model ({config.backend}, io_{config.io}): "
                           f"{first[:300]}; check the layer types and --io") from None


def _is_keras_activation(name: str | None) -> bool:
    """A name Keras's ``Activation`` knows (``relu``), not a QKeras function (``binary_tanh``)."""
    import tensorflow as tf

    try:
        return name is not None and tf.keras.activations.get(name) is not None
    except ValueError:
        return False


def float_qactivations_as_activations(model, recipe: list[dict]):
    """``model`` with each ``QActivation`` that holds a float activation (``QActivation('relu')``: no
    quantizer) rebuilt as the same Keras ``Activation``: hls4ml 1.3.0 refuses the former ("Unsupported
    QKeras activation: unknown") and converts the latter. The model itself if there is none."""
    import tensorflow as tf

    from trigger.models.graph import as_functional
    from trigger.models.io import custom_objects

    fmodel = as_functional(model)
    floats = {node.name: node.op.function.name for node in from_keras(fmodel).nodes
              if isinstance(node.op, ir.Activate) and isinstance(node.op.function, ir.FloatActivation)
              and hasattr(fmodel.get_layer(node.name), "quantizer")  # a QActivation, not a Keras Activation
              and _is_keras_activation(node.op.function.name)}  # not binary_tanh, which Keras does not know
    if not floats:
        return model

    def clone(layer):
        if layer.name in floats:
            return tf.keras.layers.Activation(floats[layer.name], name=layer.name)
        return layer.__class__.from_config(layer.get_config())

    with tf.keras.utils.custom_object_scope(custom_objects()):
        rebuilt = tf.keras.models.clone_model(fmodel, clone_function=clone)
    rebuilt.set_weights(fmodel.get_weights())
    recipe.append({"layer": ", ".join(floats), "action": "QActivation with a float activation as a Keras Activation",
                   "why": "hls4ml 1.3.0 converts a QActivation only with a quantizer"})
    return rebuilt


RECIPE_ITEMS = ("input", "weights", "carry", "pooling", "po2")


def convert_model(model: Any, config: SynthConfig, output_dir: str | os.PathLike,
                  skip: tuple[str, ...] = ()) -> Conversion:
    """Convert a QKeras model (path or Keras model) with the bit-exact recipe; see the module doc.

    ``skip`` leaves out recipe items (names in :data:`RECIPE_ITEMS`: 'input', 'weights', 'carry',
    'pooling', 'po2'); it exists to measure what each item is needed for (``benchmarks/bench_synth.py
    --ablation``), never for production use.
    """
    unknown = set(skip) - set(RECIPE_ITEMS)
    if unknown:
        raise ValueError(f"unknown recipe items {sorted(unknown)}; choose from {RECIPE_ITEMS}")
    _check_strategy(config)
    keras_model = load_keras(model)
    import tensorflow as tf  # noqa: F401  (imported by load_keras; seeds below need it)

    from trigger.runtime import set_seed

    set_seed(0)
    prepared, recipe = prepare_model(keras_model, skip)
    hls_layers.check_has_layers(from_keras(prepared))
    prepared = float_qactivations_as_activations(prepared, recipe)
    prepared, split = split_fused_softmax(prepared)
    if split is not None:
        recipe.append({"layer": split, "action": "the output layer's own softmax as a separate layer",
                       "why": "a softmax is a lookup table: like a final softmax layer, the logits are "
                              "compared and --output chooses what the firmware outputs"})
    network = from_keras(prepared)
    config = hls_layers.choose_io(network, config, recipe)
    cfg, more_recipe, inexact, input_precision = hls_config(prepared, config, skip, network)
    recipe += more_recipe
    output_dir = Path(output_dir)
    recipe += _inferred_types(prepared, network, cfg, config, skip)
    hls_model = _hls_convert(prepared, cfg, config, output_dir)
    log.debug("converted %s with %d recipe items", prepared.name, len(recipe))
    return Conversion(hls_model=hls_model, keras_model=prepared, recipe=recipe, inexact=inexact,
                      input_precision=input_precision, io=config.io)


def convert(model: Any, config: SynthConfig, output_dir: str | os.PathLike):
    """Convert a QKeras model (a ``.h5`` path or a Keras model) to an hls4ml ``ModelGraph`` with the
    bit-exact configuration. The project is not written or compiled yet (call ``.compile()``)."""
    return convert_model(model, config, output_dir).hls_model


def grid_inputs(precision: str, shape: tuple[int, ...], n: int, seed: int = 0) -> np.ndarray:
    """Random inputs on the grid of an input type (e.g. ``fixed<12,5,RND_CONV,SAT>``).

    Each event draws its values uniformly from a random fraction (1, 1/4, 1/16 or 1/64) of the
    type's full range, so both saturating and small-value paths of the network are exercised.
    """
    parsed = parse_precision(precision)
    if parsed is None:
        raise TriggerError(f"cannot draw random inputs for input type {precision}; pass --data")
    signed, width, integer = parsed
    frac = width - integer
    rng = np.random.default_rng(seed)
    top = 2 ** (width - 1) if signed else 2 ** width
    scale = rng.choice([1.0, 0.25, 1 / 16, 1 / 64], size=(n,) + (1,) * len(shape))
    u = rng.uniform(-1.0 if signed else 0.0, 1.0, size=(n,) + tuple(shape)) * scale
    k = np.clip(np.floor(u * top), -top if signed else 0, top - 1)
    return (k * 2.0 ** -frac).astype(np.float32)
