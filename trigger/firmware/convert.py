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
5. *alpha='auto_po2'*: hls4ml factorises the power-of-two scale into an inserted ApplyAlpha layer
   whose scale quantizer has too few bits (measured: a scale of 4 becomes 2) and whose result type
   comes from the model default. The kernel is instead written with its scales folded in, under a
   plain quantized_bits(alpha=1) wide enough to hold every value exactly.
6. *softmax* is a lookup table and never bit-exact: classifier logits are compared instead, and
   layers that cannot be exact (softmax, standalone BatchNormalization, LUT activations, pooling
   over a non-power-of-two count) are listed in ``Conversion.inexact``.
7. *the firmware's output* (``SynthConfig.output``, for a model ending in a separate softmax layer):
   ``logits`` leaves the softmax out (hls4ml's ``Skip``: the output is the bit-exact logits),
   ``argmax`` uses hls4ml's argmax implementation (a one-hot of the largest logit), ``softmax`` sizes
   and types hls4ml's ``stable`` softmax tables (:func:`softmax_tables`) instead of its defaults,
   whose 1024-entry tables index the max-subtracted logits and the sum of exponentials by their top
   10 bits only (measured: 75-99 % argmax agreement, probabilities off by up to 0.19).
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
from trigger.models.graph import Graph, layer_graph
from trigger.runtime import log

DENSE_LIKE = ("QDense", "QConv1D", "QConv2D", "Dense", "Conv1D", "Conv2D", "BatchNormalization",
              "QBatchNormalization")
AVERAGE_POOLING = ("GlobalAveragePooling1D", "GlobalAveragePooling2D", "AveragePooling1D", "AveragePooling2D")
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


# --- quantizer -> HLS type ------------------------------------------------------------------------

def quantizer_type(quantizer: Any, *, rounding: bool = True) -> str | None:
    """The hls4ml precision string equal to a QKeras quantizer's grid, or None if there is none.

    quantized_bits(b, i) -> fixed<b, i+1> (i excludes the sign); quantized_relu(b, i) -> ufixed<b, i>.
    ``rounding`` adds RND_CONV (round half to even, as tf.round) and SAT (clip, as QKeras).
    """
    name = type(quantizer).__name__
    mode = ",RND_CONV,SAT" if rounding else ""
    if name == "quantized_bits":
        alpha = quantizer.alpha
        if not (alpha is None or (not isinstance(alpha, str) and float(alpha) == 1.0)):
            return None
        if quantizer.symmetric or quantizer.bits < 2:
            return None
        if quantizer.keep_negative:
            return f"fixed<{quantizer.bits},{quantizer.integer + 1}{mode}>"
        return f"ufixed<{quantizer.bits},{quantizer.integer}{mode}>"
    if name == "quantized_relu":
        if quantizer.use_sigmoid or quantizer.negative_slope:
            return None
        return f"ufixed<{quantizer.bits},{quantizer.integer}{mode}>"
    return None


def _layer_quantizer(layer) -> Any:
    """The quantizer of a QActivation layer (or None)."""
    if type(layer).__name__ != "QActivation":
        return None
    q = getattr(layer, "quantizer", None)
    return q if type(q).__name__.startswith("quantized_") else None


def _uses_auto_po2(model) -> bool:
    for layer in model.layers:
        for attr in ("kernel_quantizer_internal", "bias_quantizer_internal"):
            q = getattr(layer, attr, None)
            if q is not None and isinstance(getattr(q, "alpha", None), str):
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

    Returns a new model (the original is untouched) and the recipe entries applied.
    """
    import tensorflow as tf
    import tensorflow_model_optimization as tfmot

    from trigger.models.io import custom_objects

    recipe: list[dict] = []
    if any(type(l).__name__ == "PruneLowMagnitude" for l in model.layers):
        model = tfmot.sparsity.keras.strip_pruning(model)
        recipe.append({"layer": "*", "action": "stripped pruning wrappers",
                       "why": "hls4ml does not parse tfmot PruneLowMagnitude"})
    renames = {l.name: f"{l.name}_layer" for l in model.layers if l.name in RESERVED_NAMES}
    for old, new in renames.items():
        recipe.append({"layer": new, "action": f"renamed from '{old}'", "why": "hls4ml reserves this layer name"})

    po2_values: dict[str, np.ndarray] = {}

    def clone_layer(layer):
        config = layer.get_config()  # holds the quantizer objects themselves, which from_config takes
        config["name"] = renames.get(layer.name, layer.name)
        q = getattr(layer, "kernel_quantizer_internal", None)
        if q is not None and getattr(q, "alpha", None) == "auto_po2" and "po2" not in skip:
            values, quantizer = _po2_as_fixed(q, layer.get_weights()[0])
            config["kernel_quantizer"] = quantizer
            po2_values[config["name"]] = values
            recipe.append({"layer": config["name"], "action": f"alpha='auto_po2' kernel as {quantizer} "
                           "(same values, scales folded in)",
                           "why": "hls4ml's inserted ApplyAlpha layer quantizes the power-of-two scale with "
                                  "too few bits (a scale of 4 becomes 2); a plain fixed-point kernel is exact"})
        return layer.__class__.from_config(config)

    inputs = [tf.keras.Input(batch_shape=t.shape, dtype=t.dtype,
                             name=renames.get(t.node.layer.name, t.node.layer.name)) for t in model.inputs]
    with tf.keras.utils.custom_object_scope(custom_objects()):
        clone = tf.keras.models.clone_model(model, input_tensors=inputs if len(inputs) > 1 else inputs[0],
                                            clone_function=clone_layer)
    clone.set_weights(model.get_weights())
    quantized_layers: list[str] = []
    for layer in clone.layers:
        weights = layer.get_weights()
        changed = False
        if layer.name in po2_values:
            weights[0] = po2_values[layer.name]
            layer.set_weights(weights)
        for idx, attr in ((0, "kernel_quantizer_internal"), (1, "bias_quantizer_internal")):
            q = getattr(layer, attr, None)
            if q is None or idx >= len(weights) or (idx == 1 and not getattr(layer, "use_bias", False)):
                continue
            alpha = getattr(q, "alpha", None)
            if isinstance(alpha, str) or "weights" in skip:
                continue  # auto_po2: hls4ml factorises the scale itself (recipe item 5)
            quantized = np.asarray(q(tf.constant(weights[idx])), dtype=np.float32)
            if not np.array_equal(quantized, weights[idx]):
                weights[idx] = quantized
                changed = True
        if changed:
            layer.set_weights(weights)
            quantized_layers.append(layer.name)
    if quantized_layers:
        recipe.append({"layer": ", ".join(quantized_layers), "action": "weights replaced by their quantized values",
                       "why": "every hls4ml path then uses exactly QKeras's weight values (hls4ml drops the "
                              "quantizer when it rewrites Dense on (N,F) inputs as a pointwise convolution, "
                              "so raw weights would truncate and wrap)"})
    return clone, recipe


def _po2_as_fixed(quantizer, kernel: np.ndarray):
    """The values of an ``alpha='auto_po2'`` kernel (per-channel power-of-two scale times the
    quantized_bits grid) and a plain ``quantized_bits(alpha=1)`` whose grid holds all of them exactly.

    With scales 2^e (e_min..e_max) on a grid of b bits and i integer bits, the values need
    b - 1 - i - e_min fractional and i + e_max integer bits (plus the sign).
    """
    import tensorflow as tf
    from qkeras import quantized_bits

    values = np.asarray(quantizer(tf.constant(kernel)), dtype=np.float32)
    scale = np.asarray(quantizer.scale, dtype=np.float64)
    exponents = np.round(np.log2(scale)).astype(int)
    e_min, e_max = int(exponents.min()), int(exponents.max())
    frac = quantizer.bits - 1 - quantizer.integer - e_min
    integer = max(quantizer.integer + e_max, 0)
    wide = quantized_bits(1 + integer + frac, integer, alpha=1)
    if not np.array_equal(np.asarray(wide(tf.constant(values))), values):  # never expected: say so loudly
        raise RuntimeError(f"auto_po2 kernel is not exactly representable as {wide}")
    return values, wide


# --- configuration ---------------------------------------------------------------------------------

def _is_positionwise_dense(layer) -> bool:
    """A Dense applied at every position of a rank >= 3 tensor (hls4ml: a pointwise convolution)."""
    if type(layer).__name__ not in ("Dense", "QDense"):
        return False
    shape = layer.input_shape
    return isinstance(shape, tuple) and len(shape) > 2


def _parallelization_factor(layer, config: SynthConfig) -> int:
    """The layer's ParallelizationFactor: 'full' is every output position (channels last) at once."""
    if config.parallelization_factor != "full":
        return int(config.parallelization_factor)
    return int(np.prod(layer.output_shape[1:-1], dtype=np.int64)) or 1


def _set_options(cfg: dict, keras_model, config: SynthConfig) -> None:
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
    for layer in keras_model.layers:
        if layer.name in layers_cfg and ("ParallelizationFactor" in layers_cfg[layer.name]
                                         or _is_positionwise_dense(layer)):
            layers_cfg[layer.name]["ParallelizationFactor"] = _parallelization_factor(layer, config)


def _input_type(layer, graph: Graph, layers_cfg: dict, default: str, skip: tuple[str, ...],
                recipe: list[dict], inexact: list[dict]) -> str:
    """Recipe item 1: the input layer's type is its consumers' common input quantizer."""
    consumers = graph.children(layer.name)
    quantizers = [_layer_quantizer(c) for c in consumers]
    types = {quantizer_type(q) for q in quantizers if q is not None}
    if "input" in skip:
        return str(default)
    if len(consumers) >= 1 and all(q is not None for q in quantizers) and len(types) == 1 and None not in types:
        input_precision = types.pop()
        layers_cfg[layer.name]["Precision"]["result"] = input_precision
        recipe.append({"layer": layer.name, "action": f"input type {input_precision}",
                       "why": f"the model's input quantizer {consumers[0].name}"})
        return input_precision
    layers_cfg[layer.name]["Precision"]["result"] = str(default)
    inexact.append({"layer": layer.name,
                    "reason": f"no quantized_bits input quantizer: inputs are truncated to {default}"})
    return str(default)


def _qactivation_type(layer, graph: Graph, layers_cfg: dict, skip: tuple[str, ...], recipe: list[dict],
                      inexact: list[dict]) -> None:
    """A QActivation's result type from its quantizer; recipe item 3 carries a quantized_bits type
    onto the Dense/Conv before it."""
    q = _layer_quantizer(layer)
    ptype = quantizer_type(q) if q is not None else None
    if q is None or ptype is None:
        act = str(layer.get_config().get("activation"))
        if act in ("relu", "linear"):
            return  # exact in fixed point: hls4ml keeps the input type
        reason = "softmax is a lookup table; logits are compared" if "softmax" in act else \
            f"activation {act} has no exact fixed-point equivalent (lookup table or float scale)"
        inexact.append({"layer": layer.name, "reason": reason})
        return
    layers_cfg.setdefault(layer.name, {}).setdefault("Precision", {})["result"] = ptype
    parents = graph.parents(layer.name)
    if type(q).__name__ == "quantized_bits" and len(parents) == 1 and "carry" not in skip \
            and type(parents[0]).__name__ in DENSE_LIKE and parents[0].name in layers_cfg:
        parent = parents[0]
        layers_cfg[parent.name]["Precision"]["result"] = ptype
        # hls4ml splits the layer's own (linear) activation into '<name>_linear'; once the
        # layer's type is explicit that node is kept as a cast, so it must carry the type too
        if parent.name + "_linear" in layers_cfg:
            layers_cfg[parent.name + "_linear"].setdefault("Precision", {})["result"] = ptype
        recipe.append({"layer": parent.name, "action": f"result type {ptype} from {layer.name}",
                       "why": "hls4ml removes a quantized_bits QActivation after Dense/Conv "
                              "without applying its rounding"})


def _inline_activation_type(layer, layers_cfg: dict, skip: tuple[str, ...], recipe: list[dict]) -> None:
    """An inline activation=quantized_bits(...): hls4ml splits it into '<name>_quantized_bits' and
    then merges it away like a separate QActivation (item 3)."""
    ptype = quantizer_type(layer.activation)
    if ptype is None or "carry" in skip:
        return
    for name in (layer.name, f"{layer.name}_quantized_bits", f"{layer.name}_linear"):
        if name in layers_cfg:
            layers_cfg[name].setdefault("Precision", {})["result"] = ptype
    recipe.append({"layer": layer.name, "action": f"result type {ptype} from its activation",
                   "why": "hls4ml drops the rounding of an inline quantized_bits activation"})


def _inexact_reason(layer) -> str | None:
    """Why a layer (other than an input, a QActivation or a Dense/Conv) cannot be bit-exact, if so."""
    cls = type(layer).__name__
    if cls == "Activation":
        act = layer.get_config().get("activation")
        if act == "softmax":
            return "softmax is a lookup table; logits are compared"
        return None if act in ("linear", "relu") else f"activation {act} is a lookup table"
    if cls == "BatchNormalization":
        return "standalone BatchNormalization: float scale and shift, rounded"
    if cls in AVERAGE_POOLING:
        n = _pool_count(layer)
        return f"average over {n} values: 1/{n} is not a power of two" if n & (n - 1) else None
    if cls.startswith("GarNet"):
        return "GarNet uses lookup tables and float weights"
    return None


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


def final_softmax(keras_model, graph: Graph):
    """The separate softmax layer that produces the model's only output, or None."""
    from trigger.models.graph import softmax_input

    logits = softmax_input(keras_model)
    if logits is None:
        return None
    out_layer = keras_model.outputs[0]._keras_history.layer
    return out_layer if out_layer.name in graph.layers else None


def _output_config(keras_model, graph: Graph, layers_cfg: dict, config: SynthConfig, recipe: list[dict],
                   inexact: list[dict]) -> None:
    """Recipe item 7: configure the final softmax for ``config.output``."""
    layer = final_softmax(keras_model, graph) if len(keras_model.outputs) == 1 else None
    if layer is None or layer.name not in layers_cfg:
        return
    layer_cfg = layers_cfg[layer.name]
    if config.output == "logits":
        layer_cfg["Skip"] = True
        action, why = "left out: the firmware outputs the logits", "output: logits (bit-exact)"
    elif config.output == "argmax":
        layer_cfg["Implementation"] = "argmax"
        layer_cfg.setdefault("Precision", {})["result"] = "ufixed<1,1>"
        action, why = "hls4ml's argmax: a one-hot of the largest logit", "output: argmax (exact on exact logits)"
    else:
        parents = graph.parents(layer.name)
        parent_cfg = layers_cfg.get(parents[0].name, {}) if len(parents) == 1 else {}
        precision = (parent_cfg.get("Precision") or {}).get("result")
        tables = softmax_tables(precision if isinstance(precision, str) else None,
                                int(np.prod(keras_model.output_shape[1:])))
        layer_cfg.update(tables)
        layer_cfg.setdefault("Precision", {})["result"] = SOFTMAX_RESULT
        action = (f"stable softmax, exp table {tables['exp_table_size']} x {tables['exp_table_t']} indexed by "
                  f"{tables['inp_norm_t']}, inverse table {tables['inv_table_size']} x {tables['inv_table_t']} "
                  f"indexed by {tables['inv_inp_t']}, result {SOFTMAX_RESULT}")
        why = "output: softmax; hls4ml's default tables index only the top 10 bits (argmax agreement 75-99 %)"
    recipe.append({"layer": layer.name, "action": action, "why": why})
    if config.output != "softmax":  # no table left in the firmware
        inexact[:] = [e for e in inexact if e.get("layer") != layer.name]


def hls_config(keras_model, config: SynthConfig, skip: tuple[str, ...] = ()) -> tuple[dict, list[dict], list[dict], str | None]:
    """hls4ml configuration with the bit-exact recipe (items 1, 3, 5 and 6; 4 needs inferred types).

    Returns (hls config dict, recipe entries, inexact entries, input precision).
    """
    import hls4ml

    wide = _uses_auto_po2(keras_model)
    default = WIDE_DEFAULT if wide else STANDARD_DEFAULT
    cfg = hls4ml.utils.config_from_keras_model(keras_model, granularity="name", backend=config.backend,
                                               default_precision=default)
    recipe: list[dict] = []
    inexact: list[dict] = []
    if wide:
        recipe.append({"layer": "*", "action": f"default precision {default}",
                       "why": "alpha='auto_po2' inserts scale layers typed from the default precision"})
    _set_options(cfg, keras_model, config)
    layers_cfg = cfg["LayerName"]
    graph = layer_graph(keras_model)
    input_precision = None
    for layer in keras_model.layers:
        cls = type(layer).__name__
        if cls == "InputLayer":
            input_precision = _input_type(layer, graph, layers_cfg, default, skip, recipe, inexact)
        elif cls == "QActivation":
            _qactivation_type(layer, graph, layers_cfg, skip, recipe, inexact)
        elif cls in DENSE_LIKE and type(getattr(layer, "activation", None)).__name__ == "quantized_bits":
            _inline_activation_type(layer, layers_cfg, skip, recipe)
        else:
            reason = _inexact_reason(layer)
            if reason is not None:
                inexact.append({"layer": layer.name, "reason": reason})
    _output_config(keras_model, graph, layers_cfg, config, recipe, inexact)
    return cfg, recipe, inexact, input_precision


def _pool_count(layer) -> int:
    cls = type(layer).__name__
    if cls.startswith("Global"):
        shape = layer.input_shape
        return int(np.prod(shape[1:-1]))
    return int(np.prod(layer.pool_size))


def _average_pooling_types(hls_model, keras_model, cfg: dict, recipe: list[dict]) -> None:
    """Recipe item 4: explicit accumulator/result types of average pooling from the inferred input
    type of each pooling layer."""
    for layer in keras_model.layers:
        if type(layer).__name__ not in AVERAGE_POOLING:
            continue
        node = next((n for n in hls_model.get_layers() if n.name == layer.name), None)
        if node is None:
            continue
        parsed = parse_precision(node.get_input_variable().type.precision)
        if parsed is None:
            continue
        signed, width, integer = parsed
        k = max(1, math.ceil(math.log2(max(_pool_count(layer), 2))))
        frac = width - integer
        prefix = "" if signed else "u"
        accum = f"{prefix}fixed<{integer + frac + 2 * k},{integer + k}>"
        result = f"{prefix}fixed<{integer + frac + k},{integer}>"
        prec = cfg["LayerName"].setdefault(layer.name, {}).setdefault("Precision", {})
        prec["accum"] = accum
        prec["result"] = result
        recipe.append({"layer": layer.name, "action": f"accum {accum}, result {result}",
                       "why": "'auto' does not cover average pooling; the sum needs log2(N) more "
                              "integer bits and the division log2(N) more fractional bits"})


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
    cfg, more_recipe, inexact, input_precision = hls_config(prepared, config, skip)
    recipe += more_recipe
    output_dir = Path(output_dir)
    if "pooling" not in skip and any(type(l).__name__ in AVERAGE_POOLING for l in prepared.layers):
        # first pass: let hls4ml infer the 'auto' types that average pooling's types derive from
        scratch = Path(tempfile.mkdtemp(prefix="trigger-hls-infer-"))
        try:
            _average_pooling_types(_hls_convert(prepared, cfg, config, scratch), prepared, cfg, recipe)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    hls_model = _hls_convert(prepared, cfg, config, output_dir)
    log.debug("converted %s with %d recipe items", prepared.name, len(recipe))
    return Conversion(hls_model=hls_model, keras_model=prepared, recipe=recipe, inexact=inexact,
                      input_precision=input_precision)


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
