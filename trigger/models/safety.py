"""Model files cannot run code: a model file's configuration is read as data and checked before
Keras deserializes anything.

Loading a Keras ``.h5`` file deserializes a ``Lambda`` layer's Python bytecode, and both formats let
a configuration name any class or Python module to import; Keras 2's ``safe_mode`` guards only the
``.keras`` format's lambdas. So :func:`check_model_config` reads the ``.h5`` root attribute
``model_config`` (a JSON string) or the ``.keras`` zip's ``config.json`` with ``h5py``/``json``/
``zipfile`` alone (no TensorFlow), walks it (nested models and wrapper layers included) and refuses,
in one line naming the layer: a ``Lambda`` layer, a serialized function, any class outside the
supported set (Keras 2's built-in layers and their initializers/regularizers/constraints, QKeras's
layers and quantizers, tfmot's pruning wrapper and schedules, trigger's registered classes), a
module to import outside keras/qkeras/tfmot/trigger, a ``TFOpLambda`` calling anything but a math
or array operation, and a quantizer string QKeras would evaluate that is not a quantizer. The user's
own files load with ``trust=True`` (``--trust-model``), which skips the walk.
"""

from __future__ import annotations

import json
import re
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import h5py

from trigger.errors import TriggerError

TRUST_HINT = "if it is your own model file, pass --trust-model (trust=True in Python)"

# Keras 2.14 built-in layers (tf.keras.layers and its experimental namespace) minus Lambda (Python
# bytecode), the abstract bases, DenseFeatures (feature columns) and TextVectorization (callables).
KERAS_LAYERS = frozenset("""
Activation ActivityRegularization Add AdditiveAttention AlphaDropout Attention Average
AveragePooling1D AveragePooling2D AveragePooling3D AvgPool1D AvgPool2D AvgPool3D BatchNormalization
Bidirectional CategoryEncoding CenterCrop Concatenate Conv1D Conv1DTranspose Conv2D Conv2DTranspose
Conv3D Conv3DTranspose ConvLSTM1D ConvLSTM2D ConvLSTM3D Convolution1D Convolution1DTranspose
Convolution2D Convolution2DTranspose Convolution3D Convolution3DTranspose Cropping1D Cropping2D
Cropping3D Dense DepthwiseConv1D DepthwiseConv2D Discretization Dot Dropout ELU EinsumDense Embedding
Flatten GRU GRUCell GaussianDropout GaussianNoise GlobalAveragePooling1D GlobalAveragePooling2D
GlobalAveragePooling3D GlobalAvgPool1D GlobalAvgPool2D GlobalAvgPool3D GlobalMaxPool1D GlobalMaxPool2D
GlobalMaxPool3D GlobalMaxPooling1D GlobalMaxPooling2D GlobalMaxPooling3D GroupNormalization
HashedCrossing Hashing Identity InputLayer IntegerLookup LSTM LSTMCell LayerNormalization LeakyReLU
LocallyConnected1D LocallyConnected2D Masking MaxPool1D MaxPool2D MaxPool3D MaxPooling1D MaxPooling2D
MaxPooling3D Maximum Minimum MultiHeadAttention Multiply Normalization PReLU Permute RNN
RandomBrightness RandomContrast RandomCrop RandomFlip RandomHeight RandomRotation RandomTranslation
RandomWidth RandomZoom ReLU RepeatVector Rescaling Reshape Resizing SeparableConv1D SeparableConv2D
SeparableConvolution1D SeparableConvolution2D SimpleRNN SimpleRNNCell Softmax SpatialDropout1D
SpatialDropout2D SpatialDropout3D SpectralNormalization StackedRNNCells StringLookup Subtract
ThresholdedReLU TimeDistributed UnitNormalization UpSampling1D UpSampling2D UpSampling3D ZeroPadding1D
ZeroPadding2D ZeroPadding3D RandomFourierFeatures SyncBatchNormalization
Functional Sequential Model TFOpLambda SlicingOpLambda
""".split())

# Keras initializers, regularizers and constraints (both spellings), the dtype policy, and the
# plain-data markers of Keras's JSON (shapes, tuples, arrays).
KERAS_OBJECTS = frozenset("""
Constant GlorotNormal GlorotUniform HeNormal HeUniform Identity Initializer LecunNormal LecunUniform
Ones Orthogonal RandomNormal RandomUniform TruncatedNormal VarianceScaling Zeros constant glorot_normal
glorot_uniform he_normal he_uniform identity lecun_normal lecun_uniform ones orthogonal random_normal
random_uniform truncated_normal variance_scaling zeros
L1 L1L2 L2 OrthogonalRegularizer Regularizer l1 l2 l1_l2 orthogonal_regularizer
Constraint MaxNorm MinMaxNorm NonNeg RadialConstraint UnitNorm max_norm min_max_norm non_neg
radial_constraint unit_norm
Policy TensorShape __tuple__ __ellipsis__ __numpy__ __bytes__ __tensor__
""".split())

# QKeras 0.9.0 quantizers (qkeras.quantizers), usable as objects and as the strings it evaluates.
QKERAS_QUANTIZERS = frozenset("""
bernoulli binary quantized_bits quantized_hswish quantized_po2 quantized_relu quantized_relu_po2
quantized_sigmoid quantized_tanh quantized_ulaw stochastic_binary stochastic_ternary ternary
""".split())

# QKeras 0.9.0 layers and helpers (qkeras.utils._add_supported_quantized_objects).
QKERAS_CLASSES = frozenset("""
Clip QActivation QAdaptiveActivation QAveragePooling2D QBatchNormalization QBidirectional QConv1D
QConv2D QConv2DBatchnorm QConv2DTranspose QDense QDepthwiseConv2D QDepthwiseConv2DBatchnorm QGRU
QGRUCell QGlobalAveragePooling2D QInitializer QLSTM QLSTMCell QSeparableConv1D QSeparableConv2D
QSimpleRNN QSimpleRNNCell
""".split()) | QKERAS_QUANTIZERS

# tfmot 0.7.5's pruning wrapper and schedules.
TFMOT_CLASSES = frozenset({"PruneLowMagnitude", "ConstantSparsity", "PolynomialDecay"})

# HGQ 0.2.6's proxy-model layer (the optional `hgq` extra): a per-element fixed-point cast, no code.
HGQ_PROXY_CLASSES = frozenset({"FixedPointQuantizer", "HGQ>FixedPointQuantizer"})  # as registered

SUPPORTED_CLASSES = KERAS_LAYERS | KERAS_OBJECTS | QKERAS_CLASSES | TFMOT_CLASSES | HGQ_PROXY_CLASSES

# Names a QKeras quantizer string may start with besides a quantizer: QKeras's own activations and
# Keras's built-in ones (QKeras looks both up by name).
QKERAS_ACTIVATIONS = frozenset("""
binary_sigmoid binary_tanh hard_sigmoid hard_tanh smooth_sigmoid smooth_tanh
elu exponential gelu linear mish relu selu sigmoid softmax softplus softsign swish tanh
leaky_relu relu6 silu log_softmax
""".split())

# Modules a `.keras` configuration may name for Keras to import a class from.
ALLOWED_MODULES = re.compile(r"^(keras|qkeras|tensorflow_model_optimization|trigger|HGQ\.proxy)(\..+)?$")

# TensorFlow functions a TFOpLambda / SlicingOpLambda may call: math, nn, linalg, operators, and
# array manipulation (never I/O, py_function or anything that reaches outside the tensor).
TF_OP_PREFIXES = ("math.", "nn.", "linalg.", "__operators__.")
TF_ARRAY_OPS = frozenset("""
concat reshape transpose expand_dims squeeze stack unstack cast clip_by_value identity split tile
gather gather_nd where ones_like zeros_like pad broadcast_to shape size rank reverse slice
strided_slice one_hot maximum minimum argmax argmin einsum matmul range fill roll sort
""".split())

MODEL_REMEDY = "pass a model saved with Keras model.save() (.h5 or .keras)"


def read_model_config(path: str | Path) -> tuple[dict[str, Any], str]:
    """The model configuration of a ``.h5`` file (root attribute ``model_config``) or a ``.keras``
    zip (``config.json``) as JSON data, and where it was found. Reads no Python object: h5py,
    zipfile and json only. One-line :class:`TriggerError` for a missing, non-JSON or malformed one."""
    path = Path(path)
    as_zip = zipfile.is_zipfile(path)
    if as_zip and not str(path).endswith(".keras"):  # Keras picks the format by the name: read what it reads
        raise TriggerError(f"{path} is a zip archive: Keras reads a .keras model only under a name ending "
                           "in .keras; rename it")
    try:
        if as_zip:
            with zipfile.ZipFile(path) as archive:  # the entry Keras reads (the last of that name)
                raw: Any = archive.read("config.json")
            where = "config.json"
        else:
            with h5py.File(path, "r") as f:
                raw = f.attrs.get("model_config")
            where = "model_config"
    except (OSError, KeyError, zipfile.BadZipFile, RuntimeError, ValueError) as exc:
        raise TriggerError(f"{path}: its model configuration cannot be read ({first_line(exc)}); "
                           f"{MODEL_REMEDY}") from None
    if raw is None:
        raise TriggerError(f"{path} holds no Keras model (no model_config); save it with model.save('x.h5')")
    try:
        config = json.loads(raw.decode("utf-8") if isinstance(raw, bytes) else raw)
    except (TypeError, ValueError, RecursionError) as exc:
        raise TriggerError(f"{path}: its {where} is not valid JSON ({first_line(exc)}); {MODEL_REMEDY}") from None
    if not (isinstance(config, dict) and isinstance(config.get("class_name"), str)
            and isinstance(config.get("config"), dict)):
        raise TriggerError(f"{path}: its {where} is not a Keras model configuration (no class_name and "
                           f"config at the top); {MODEL_REMEDY}")
    return config, where


def check_model_config(path: str | Path, *, extra_classes: Iterable[str] = ()) -> dict[str, Any]:
    """Refuse, in one line naming the layer, a model file whose configuration carries code or names
    a class, module or function outside the supported set (see the module docstring).
    ``extra_classes``: trigger's own registered classes. Returns the configuration. Needs no TensorFlow."""
    config, _ = read_model_config(path)
    config.pop("compile_config", None)  # Keras drops it too: trigger never compiles a loaded model
    allowed = SUPPORTED_CLASSES | frozenset(extra_classes)
    stack: list[tuple[Any, str, str]] = [(config, "the model", "")]
    while stack:  # iterative: a deep configuration cannot overflow the Python stack
        node, where, key = stack.pop()
        if isinstance(node, list):
            stack.extend((item, where, key) for item in node)
            continue
        if not isinstance(node, dict):
            continue
        problem, where = _object_problem(node, where, key, allowed)
        if problem:
            raise TriggerError(f"{path}: {problem}; refused, since loading it could run code; {TRUST_HINT}")
        stack.extend((value, where, str(name)) for name, value in node.items())
    return config


def _object_problem(node: dict[str, Any], where: str, key: str, allowed: frozenset[str]) -> tuple[str, str]:
    """What is wrong with one dict of a configuration ("" if nothing), and the layer it belongs to."""
    for name, value in node.items():  # Lambda's "function_type", an RNN cell wrapper's "*_fn_type"
        if isinstance(name, str) and name.endswith("_type") and value == "lambda":
            return f"{where} holds a serialized Python function ({_clean(name)})", where
    value = node.get("value")  # a lambda's body as Keras writes it: {"value": [bytecode, defaults, closure]}
    if len(node) == 1 and isinstance(value, list) and len(value) == 3 and isinstance(value[0], str):
        return f"{where} holds a serialized Python function ({_clean(key) or 'value'})", where
    class_name, inner = node.get("class_name"), node.get("config")
    if class_name is None:
        return "", where
    if not isinstance(class_name, str):
        return f"{where} holds an object whose class_name is not a string", where
    if isinstance(inner, dict) and isinstance(inner.get("name"), str) and class_name != "Policy":
        kind = "model" if class_name in ("Functional", "Sequential", "Model") else "layer"
        where, its = f"{kind} '{_clean(inner['name'])}' ({_clean(class_name)})", ""
    else:
        its = f" its {_clean(key)}" if key else " an object"
    if class_name == "Lambda":
        return f"{where} carries Python code", where
    if class_name == "__lambda__":
        return f"{where} holds a serialized Python function ({_clean(key) or 'lambda'})", where
    if class_name == "function":
        return _function_problem(node, where, key), where
    if class_name not in allowed:
        what = f"{where}:{its} is of class '{_clean(class_name)}'," if its else f"{where} is"
        return f"{what} not a Keras, QKeras or tfmot class trigger knows", where
    registered, module = node.get("registered_name"), node.get("module")
    if registered not in (None, class_name) and not (isinstance(registered, str) and registered in allowed):
        return f"{where} asks for the registered class {_clean(repr(registered))} in place of '{_clean(class_name)}'", where
    if module is not None and not (isinstance(module, str) and ALLOWED_MODULES.match(module)):
        return f"{where} names the Python module {_clean(repr(module))} to import its class '{_clean(class_name)}' from", where
    if class_name in ("TFOpLambda", "SlicingOpLambda") and isinstance(inner, dict):
        return _tf_op_problem(inner.get("function"), where), where
    if isinstance(inner, dict):
        return _quantizer_strings_problem(inner, where, class_name), where
    return "", where


def _function_problem(node: dict[str, Any], where: str, key: str) -> str:
    """A function serialized by name is looked up (harmless) only if it is a Keras or QKeras
    activation from a Keras module; anything else names a function Keras would import and call."""
    name, module = node.get("config"), node.get("module")
    known = isinstance(name, str) and name in QKERAS_ACTIVATIONS | QKERAS_QUANTIZERS
    if known and (module == "builtins" or (isinstance(module, str) and ALLOWED_MODULES.match(module))):
        return ""
    return f"{where} holds the Python function {_clean(repr(name))} from module {_clean(repr(module))}" + (f" as its {_clean(key)}" if key else "")


def _tf_op_problem(function: Any, where: str) -> str:
    """A TFOpLambda calls the TensorFlow function it names: only math and array operations pass."""
    if isinstance(function, str) and (function.startswith(TF_OP_PREFIXES) or function in TF_ARRAY_OPS):
        return ""
    return f"{where} calls TensorFlow's {_clean(repr(function))}, which is not a math or array operation"


def _quantizer_strings_problem(inner: dict[str, Any], where: str, class_name: str) -> str:
    """QKeras evaluates a quantizer given as a string ("quantized_bits(4,0,1)") by looking its name
    up among the globals of qkeras.quantizers: only a quantizer's or an activation's name passes."""
    for name, value in inner.items():
        qkeras_string = "quantizer" in str(name) or (name == "activation" and class_name.startswith("Q"))
        if not (qkeras_string and isinstance(value, str)):
            continue
        head = value.split("(", 1)[0].strip()
        if head and head not in QKERAS_QUANTIZERS | QKERAS_ACTIVATIONS:
            return f"{where} gives its {_clean(name)} as {value[:60]!r}, which is not a QKeras quantizer or activation"
    return ""


def _clean(text: str) -> str:
    """A name from the file, as one short line of the error (a name may hold newlines)."""
    return " ".join(str(text).split())[:80]


def first_line(exc: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message (its class name if it has none), at most ``limit``
    characters: what a one-line error quotes of a library's message."""
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:limit]


# --- layers QKeras cannot build on this stack (a fact of the pins, not of safety) ---------------

UNBUILDABLE_LAYERS = ("QSimpleRNN", "QGRU")


def unbuildable_layer_message(class_name: str, name: str) -> str | None:
    """The one-line refusal of a layer QKeras 0.9.0 cannot build on TensorFlow 2.14, else None."""
    if class_name not in UNBUILDABLE_LAYERS:
        return None
    return (f"layer '{name}' ({class_name}) cannot be used: QKeras 0.9.0's {class_name} calls "
            "tf.nest.is_sequence, which TensorFlow 2.14 removed, so the layer cannot be built; use QLSTM "
            "(converted, its tanh/sigmoid tables reported inexact) or QDense/QConv layers")


def check_buildable(model_config: dict) -> None:
    """Refuse (:class:`TriggerError`, one line) a model configuration read as data (the ``.h5``
    ``model_config`` attribute, a ``.keras`` ``config.json``) that holds a layer of
    :data:`UNBUILDABLE_LAYERS`, before Keras tries to build it. Nested models are searched too."""
    for item in config_objects(model_config):  # in the file's order: the first such layer is named
        cls, cfg = item.get("class_name"), item.get("config")
        if isinstance(cls, str) and isinstance(cfg, dict):
            message = unbuildable_layer_message(cls, str(cfg.get("name", cls))) or _missing_extra(cls, cfg)
            if message is not None:
                raise TriggerError(message)


def _missing_extra(class_name: str, config: dict[str, Any]) -> str | None:
    """The one-line refusal of an HGQ proxy model's layer when the optional ``hgq`` extra is missing."""
    import importlib.util

    if class_name not in HGQ_PROXY_CLASSES or importlib.util.find_spec("HGQ") is not None:
        return None
    return (f"layer '{config.get('name', class_name)}' ({class_name}) is HGQ's: this is an HGQ proxy model, "
            "which needs the optional hgq extra (pip install 'trigger[hgq]', HGQ 0.2.6)")


def input_shape(model_config: dict) -> tuple[int | None, ...] | None:
    """The per-event input shape a model configuration declares (its one ``batch_input_shape``), read
    as data; None for a model with several inputs or none declared."""
    shapes = [item["config"]["batch_input_shape"] for item in config_objects(model_config)
              if isinstance(item.get("config"), dict) and isinstance(item["config"].get("batch_input_shape"), list)]
    return tuple(shapes[0][1:]) if len(shapes) == 1 else None


def config_objects(config: Any) -> Iterator[dict[str, Any]]:
    """Every JSON object of a model configuration, breadth first in the file's order (nested models
    and wrapped layers included); iterative, so a deep configuration cannot overflow the stack."""
    queue = [config]
    for item in queue:
        if isinstance(item, dict):
            yield item
            queue.extend(item.values())
        elif isinstance(item, list):
            queue.extend(item)


# --- the functional graph a configuration describes -------------------------------------------------

FUNCTIONAL_CLASSES = ("Functional", "Model")


def check_structure(model_config: dict) -> None:
    """Refuse (one line naming the layer) a functional configuration, at any depth, whose graph Keras
    cannot rebuild: a layer without inbound nodes, an input from a layer that is not there, or a cycle.
    Keras 2 rebuilds such a graph by looping until every node's inputs exist, which then never ends."""
    for item in config_objects(model_config):
        inner = item.get("config")
        if item.get("class_name") in FUNCTIONAL_CLASSES and isinstance(inner, dict) \
                and isinstance(inner.get("layers"), list):
            _check_functional(inner)


def _check_functional(config: dict[str, Any]) -> None:
    """One functional model's layers: every input resolves, and the graph is acyclic."""
    model = _clean(str(config.get("name", "the model")))
    depends: dict[str, set[str]] = {}
    for layer in config["layers"]:
        if not isinstance(layer, dict):
            raise TriggerError(f"model '{model}': a layer entry is not a JSON object; {MODEL_REMEDY}")
        inner = layer.get("config") if isinstance(layer.get("config"), dict) else {}
        name = layer.get("name", inner.get("name"))
        nodes = layer.get("inbound_nodes")
        where = f"model '{model}': layer '{_clean(str(name))}' ({_clean(str(layer.get('class_name')))})"
        if not isinstance(name, str) or not isinstance(nodes, list):
            raise TriggerError(f"{where} has no name or no inbound_nodes list (a damaged file); {MODEL_REMEDY}")
        if layer.get("class_name") != "InputLayer" and not (nodes and all(nodes)):
            raise TriggerError(f"{where} has no inputs (empty inbound_nodes: a damaged file); {MODEL_REMEDY}")
        depends[name] = set(_referenced_layers(nodes))
    ends = _referenced_layers(config.get("input_layers", [])) + _referenced_layers(config.get("output_layers", []))
    for name, needed in [("the model's inputs and outputs", set(ends))] + list(depends.items()):
        missing = sorted(needed - depends.keys())
        if missing:
            raise TriggerError(f"model '{model}': {_clean(name)} read(s) the layer '{_clean(missing[0])}', which the "
                               f"file does not hold (a damaged file); {MODEL_REMEDY}")
    done: set[str] = set()
    while len(done) < len(depends):  # Kahn's order: what is left at the end lies on a cycle
        ready = [n for n, needed in depends.items() if n not in done and needed <= done]
        if not ready:
            stuck = sorted(depends.keys() - done)[0]
            raise TriggerError(f"model '{model}': layer '{_clean(stuck)}' waits on a cycle of inbound nodes "
                               f"(a damaged file); {MODEL_REMEDY}")
        done.update(ready)


def _referenced_layers(nodes: Any) -> list[str]:
    """The layer names a Keras node list refers to: every ``[name, node_index, tensor_index, ...]``."""
    found: list[str] = []
    stack = [nodes]
    while stack:
        item = stack.pop()
        if isinstance(item, list) and len(item) >= 3 and isinstance(item[0], str) and isinstance(item[1], int):
            found.append(item[0])
        elif isinstance(item, list):
            stack.extend(item)
    return found
