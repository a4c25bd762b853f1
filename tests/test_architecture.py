"""The shape of the code, read from the source with ``ast``: the import graph of ``trigger/`` has no
cycle (function-level imports and ``importlib.import_module`` calls included, so none can hide one;
importing ``a.b.c`` also runs the ``__init__`` of ``a.b``, so it counts as importing that package),
a library never imports the layer above it (stage runners, CLI), and no function is longer than
80 lines. See docs/architecture.md."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "trigger"
MAX_FUNCTION_LINES = 80

#: The layers, lowest first. A module may import its own layer and the layers below it, never above.
#: Listed by dotted prefix; the longest matching prefix decides.
LAYERS: dict[str, int] = {
    "trigger.errors": 0, "trigger.runtime": 0, "trigger.config": 0, "trigger.executor": 0,
    # the typed files between stages (ModelMeta.split rebuilds a split with trigger.data.splits);
    # metrics, plots and the rendering of typed reports: pure functions every stage may use
    "trigger.data": 1, "trigger.contracts": 1, "trigger.report": 1,
    "trigger.models": 2, "trigger.ir": 2,
    "trigger.compress": 3,
    "trigger.firmware": 4,
    "trigger.rtl": 5,  # Verilog through da4ml, Verilator simulation, yosys counts (trigger rtl)
    "trigger.scan": 5,  # the search space, trial records, Pareto front and scan plots (no stage)
    "trigger.stages": 6, "trigger.reference": 6, "trigger.demo": 6,
    "trigger": 7,  # the package root (its lazy load_model convenience) and anything not listed
    "trigger.cli": 8, "trigger.__main__": 8,
}
#: What the root package itself provides to the libraries: the process-wide warning filters and the
#: version, set before any stage imports Keras. The root's own lazy import goes downward.
ROOT_NAMES_FOR_LIBRARIES = {"KNOWN_KERAS_WARNINGS", "__version__"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _resolve(name: str) -> str:
    """The module a dotted import name lands in (``trigger.a.b`` may be a name in ``trigger.a``)."""
    while name not in MODULES and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def _is_package(module: str) -> bool:
    return MODULES[module].name == "__init__.py"


def _dynamic_import(node: ast.Call, module: str) -> str | None:
    """The module name an ``importlib.import_module(...)`` call names, as far as the source says:
    a string literal, or the literal prefix of an f-string (``{__name__}`` read as ``module``)."""
    func = node.func
    called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    if called != "import_module" or not node.args:
        return None
    arg = node.args[0]
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return arg.value
    if not isinstance(arg, ast.JoinedStr):
        return None
    prefix = ""
    for part in arg.values:
        if isinstance(part, ast.Constant):
            prefix += str(part.value)
        elif isinstance(part.value, ast.Name) and part.value.id == "__name__":
            prefix += module
        else:
            break
    return prefix


def imports_of(module: str) -> set[tuple[str, str | None]]:
    """(imported module, imported name or None) for every ``trigger`` import anywhere in ``module``:
    import statements at any depth and ``importlib.import_module`` calls. An f-string whose name is
    only known up to a prefix (``f"trigger.x.{name}"``) counts as importing every module under it."""
    tree = ast.parse(MODULES[module].read_text())
    found: set[tuple[str, str | None]] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {(_resolve(a.name), None) for a in node.names if a.name.split(".")[0] == "trigger"}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                anchor = module if _is_package(module) else module.rsplit(".", 1)[0]
                for _ in range(node.level - 1):
                    anchor = anchor.rsplit(".", 1)[0]
                base = f"{anchor}.{base}" if base else anchor
            if base.split(".")[0] != "trigger":
                continue
            for alias in node.names:
                target = _resolve(f"{base}.{alias.name}")
                found.add((target, None if target != _resolve(base) else alias.name))
        elif isinstance(node, ast.Call) and (name := _dynamic_import(node, module)) is not None:
            if name.split(".")[0] != "trigger":
                continue
            if name in MODULES or not name.endswith("."):
                found.add((_resolve(name.rstrip(".")), None))
            else:
                found |= {(m, None) for m in MODULES if m.startswith(name)}
    found.discard((module, None))
    return found


def packages_run_by(target: str, importer: str) -> set[str]:
    """The packages whose ``__init__`` importing ``target`` runs first, leaving out the importer's
    own packages (already being imported when the importer runs)."""
    parts = target.split(".")
    parents = {".".join(parts[:i]) for i in range(1, len(parts))}
    return {p for p in parents if p in MODULES and not (importer == p or importer.startswith(p + "."))}


def import_graph() -> dict[str, set[str]]:
    """module -> the modules it imports, each with the package ``__init__`` files that run first."""
    graph = {}
    for m in MODULES:
        targets = {target for target, _ in imports_of(m) if target != m}
        graph[m] = targets | {p for target in targets for p in packages_run_by(target, m)}
    return graph


def layer_of(module: str) -> int:
    prefix = max((p for p in LAYERS if module == p or module.startswith(p + ".")), key=len, default="trigger")
    return LAYERS[prefix]


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first == last), or None."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_find_cycle_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_importing_a_submodule_runs_its_package_init():
    assert packages_run_by("trigger.firmware.estimate.timing", "trigger.firmware.convert") == {
        "trigger.firmware.estimate"}  # trigger and trigger.firmware hold the importer already
    assert packages_run_by("trigger.firmware.estimate.timing", "trigger.stages.rtl") == {
        "trigger.firmware", "trigger.firmware.estimate"}
    assert packages_run_by("trigger.errors", "trigger.data.splits") == set()


def test_importlib_calls_count_as_imports():
    call = ast.parse('importlib.import_module(f"{__name__}.model")').body[0].value
    assert _dynamic_import(call, "trigger.firmware.estimate") == "trigger.firmware.estimate.model"
    call = ast.parse('import_module("trigger.stages." + name)').body[0].value
    assert _dynamic_import(call, "trigger.cli") is None  # not a literal: not read
    call = ast.parse('importlib.import_module(f"trigger.stages.{name}")').body[0].value
    assert _dynamic_import(call, "trigger.cli") == "trigger.stages."


def test_import_graph_is_read_from_the_source():
    graph = import_graph()
    assert "trigger.cli" in graph and len(graph) == len(MODULES) > 20
    assert any(graph.values()), "no import found at all: the parser is broken"


def test_no_import_cycles():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_libraries_never_import_upward():
    upward = []
    for module in MODULES:
        for target, name in imports_of(module):
            if target == "trigger" and name in ROOT_NAMES_FOR_LIBRARIES:
                continue
            if layer_of(target) > layer_of(module):
                upward.append(f"{module} (layer {layer_of(module)}) imports {target} (layer {layer_of(target)})")
    assert not upward, "\n".join(upward)


def test_no_library_imports_the_stage_runners_or_the_cli():
    libraries = [m for m in MODULES if layer_of(m) < LAYERS["trigger.stages"]]
    assert {"trigger.data", "trigger.models", "trigger.compress", "trigger.firmware", "trigger.report"} <= set(libraries)
    offending = [f"{m} imports {t}" for m in libraries for t, _ in imports_of(m)
                 if layer_of(t) >= LAYERS["trigger.stages"] and not (t == "trigger")]
    assert not offending, "\n".join(offending)


def long_functions(path: Path) -> list[str]:
    """Every function or method in ``path`` longer than MAX_FUNCTION_LINES (decorators excluded)."""
    tree = ast.parse(path.read_text())
    return [f"{path.name}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
            for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]


def test_long_function_detector(tmp_path):
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    (tmp_path / "long.py").write_text(f"def too_long():\n{body}\n")
    (tmp_path / "short.py").write_text("def fine():\n    return 1\n")
    assert long_functions(tmp_path / "long.py") == [f"long.py:1 too_long ({MAX_FUNCTION_LINES + 1} lines)"]
    assert long_functions(tmp_path / "short.py") == []


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_function_longer_than_80_lines(path):
    assert long_functions(path) == []


#: Where a Keras or QKeras layer class may be named in a string (issue 28): the IR's handlers, and
#: compress/, which builds QKeras models. The modules below still read Keras layers by class name;
#: each entry says why it is not on the IR yet. The list may only shrink: a new module that names a
#: layer class fails this test.
LAYER_CLASS_NAMES_ALLOWED = {
    "trigger/ir/keras.py": "the IR's handlers",
    "trigger/compress/": "builds QKeras models (quantize.py) and reads the student's graph (distill.py)",
    "trigger/models/safety.py": "reads a model file's configuration as JSON before Keras (no layer objects)",
    "trigger/firmware/estimate/": "names hls4ml's layer classes (hls4ml's ModelGraph), which reuse Keras names",
}


def _layer_class_names() -> set[str]:
    from trigger.ir.keras import HANDLERS

    return (set(HANDLERS) | {"QBatchNormalization", "QLSTM", "QSimpleRNN", "QGRU", "LSTM", "GRU", "SimpleRNN",
                             "LeakyReLU", "ELU", "PReLU", "ThresholdedReLU", "Lambda"}) - {"Activation"}


def test_layer_class_names_only_in_the_ir_handlers_and_compress():
    """No string naming a Keras/QKeras layer class outside the allowed modules. 'Activation' is left
    out: it is also an ordinary English word in messages."""
    names = _layer_class_names()
    offending = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = str(path.relative_to(PACKAGE.parent))
        if any(rel == allowed or (allowed.endswith("/") and rel.startswith(allowed))
               for allowed in LAYER_CLASS_NAMES_ALLOWED):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names:
                offending.append(f"{rel}:{node.lineno} {node.value!r}")
    assert not offending, "\n".join(offending)
