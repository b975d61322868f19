"""The package's shape: folders by concern, imports pointing down, no cycles (docs/architecture.md).

Every import counts, including those inside functions and under ``TYPE_CHECKING`` (a
lazy import is still a dependency), so neither a cycle nor an upward import can hide
behind an ``import`` statement moved into a body.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "calaudit"
#: What computes statistics: the reporters read results and never import these.
COMPUTING = {
    "calaudit.auditing", "calaudit.fixing",
    "calaudit.stats.binning", "calaudit.stats.bootstrap", "calaudit.stats.grouped_bootstrap",
    "calaudit.stats.estimators", "calaudit.stats.estimates", "calaudit.stats.metrics",
    "calaudit.stats.metric_functions", "calaudit.stats.reliability",
    "calaudit.decisions.compare", "calaudit.decisions.segments", "calaudit.decisions.segment_test",
    "calaudit.decisions.segment_levels", "calaudit.decisions.routing", "calaudit.decisions.sequences",
    "calaudit.decisions.analysis", "calaudit.decisions.ensemble", "calaudit.decisions.compare_human",
    "calaudit.human.metrics", "calaudit.human.intervals", "calaudit.human.analysis", "calaudit.human.noise_floor",
    "calaudit.baselines.comparison", "calaudit.baselines.recalibration", "calaudit.baselines.label_smoothing",
    "calaudit.baselines.softmax_regression", "calaudit.baselines.synthetic",
    "calaudit.engine.statistics", "calaudit.engine.kernel", "calaudit.engine.stream", "calaudit.engine.resample",
    "calaudit.engine.sketch", "calaudit.engine.sketch_smooth", "calaudit.engine.windows", "calaudit.engine.drift",
    "calaudit.engine.distributed",
}
#: The packages and top-level modules from the bottom up: each may import its own
#: modules and those of the layers below it, never one beside or above it
#: (docs/architecture.md says what each holds).
LAYERS = (
    ("calaudit._version", "calaudit.errors", "calaudit.display"),
    ("calaudit.predictions",),
    ("calaudit.files", "calaudit.stats"),
    ("calaudit.human",),
    ("calaudit.baselines",),
    ("calaudit.gate",),
    ("calaudit.result",),
    ("calaudit.config",),
    ("calaudit.onnx",),
    ("calaudit.loaders",),
    ("calaudit.decisions",),
    # The statistics engine sits below the library API: the in-memory audit is the
    # engine on one batch plus the row-level extras only small data can afford.
    ("calaudit.engine",),
    ("calaudit.auditing",),
    ("calaudit.fixing",),
    ("calaudit.report",),
    ("calaudit.reporters",),
    ("calaudit.cli",),
    ("calaudit", "calaudit.__main__"),
)
#: The modules at the top of the package: the public API, the result, errors, settings,
#: and the registry through which results show themselves in a notebook.
TOP_LEVEL = {"__init__", "__main__", "_version", "auditing", "config", "display", "errors", "fixing", "gate",
             "result"}
MAX_LINES = 600


def _modules() -> dict[str, Path]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _imports(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            name = ".".join(base + ([node.module] if node.module else []))
            submodules = {f"{name}.{alias.name}" for alias in node.names} & set(modules)
            found |= submodules
            if name in modules and len(submodules) < len(node.names):
                found.add(name)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name in modules}
    return found - {module}


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    return {module: _imports(module, path, modules) for module, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), iteratively."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def unit(module: str) -> str:
    """The package or top-level module a module belongs to: ``calaudit.stats.metrics`` ->
    ``calaudit.stats``; the package's ``__init__`` is ``calaudit``."""
    return ".".join(module.split(".")[:2])


def upward_imports(graph: dict[str, set[str]], layers=LAYERS) -> list[tuple[str, str]]:
    """Imports of a unit beside or above the importer's layer (or of a unit in no layer)."""
    rank = {name: level for level, names in enumerate(layers) for name in names}
    bad = []
    for module, imported in graph.items():
        for other in imported:
            if unit(module) == unit(other):
                continue
            if rank.get(unit(other), len(layers)) >= rank.get(unit(module), -1):
                bad.append((module, other))
    return sorted(bad)


def private_uses(path: Path, defined_elsewhere: dict[str, set[Path]]) -> list[str]:
    """``from x import _y`` of a calaudit module, and ``obj._y`` where ``_y`` is defined in
    another module of the package and not in this one (``self`` and ``cls`` aside)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("calaudit")):
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__") and alias.name != "_version":
                    found.append(f"{path.name}:{node.lineno}: imports {alias.name}")
        elif isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                continue
            owners = defined_elsewhere.get(node.attr, set())
            if owners and path not in owners:
                found.append(f"{path.name}:{node.lineno}: uses {ast.unparse(node)}")
    return found


def _definitions() -> dict[str, set[Path]]:
    """Where each name is defined: functions, classes, assigned names and attributes."""
    where: dict[str, set[Path]] = {}
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = node.name
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                name = node.id
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                name = node.attr
            else:
                continue
            where.setdefault(name, set()).add(path)
    return where


def test_the_import_graph_has_no_cycles():
    assert cycles(import_graph()) == []


def test_the_cycle_finder_finds_a_planted_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]


def test_the_graph_sees_imports_inside_functions():
    graph = import_graph()
    # The run command imports the audit only inside its body.
    assert "calaudit.auditing" in graph["calaudit.cli.run"]


def test_reporters_compute_no_statistic():
    graph = import_graph()
    assert COMPUTING <= set(graph), sorted(COMPUTING - set(graph))  # no stale name weakens the rule
    reporters = [m for m in graph if m.startswith(("calaudit.reporters", "calaudit.report."))]
    assert reporters
    for module in reporters:
        computing = sorted(graph[module] & COMPUTING)
        assert computing == [], f"{module} imports {computing}"


def test_imports_point_down_the_layers():
    graph = import_graph()
    assert {unit(module) for module in graph} == {name for names in LAYERS for name in names}
    assert upward_imports(graph) == []


def test_the_layer_check_finds_planted_upward_imports():
    layers = (("calaudit.errors",), ("calaudit.stats", "calaudit.files"), ("calaudit.report",))
    graph = {
        "calaudit.stats.metrics": {"calaudit.errors", "calaudit.stats.binning", "calaudit.report.charts"},
        "calaudit.files.info": {"calaudit.stats.metrics"},
        "calaudit.report.charts": {"calaudit.stats.metrics"},
        "calaudit.errors": {"calaudit.cli.group"},
    }
    assert upward_imports(graph, layers) == [
        ("calaudit.errors", "calaudit.cli.group"),
        ("calaudit.files.info", "calaudit.stats.metrics"),
        ("calaudit.stats.metrics", "calaudit.report.charts"),
    ]


def test_the_top_level_holds_only_the_listed_modules():
    modules = {path.stem for path in PACKAGE.glob("*.py")}
    assert modules == TOP_LEVEL
    assert len(TOP_LEVEL) <= 10


def test_no_module_uses_another_modules_private_names():
    where = _definitions()
    found = [use for path in sorted(PACKAGE.rglob("*.py")) for use in private_uses(path, where)]
    assert found == []


def test_the_private_name_check_finds_planted_uses(tmp_path):
    planted = tmp_path / "planted.py"
    planted.write_text(
        "from .stats.binning import _helper\n"
        "from . import estimators\n"
        "value = estimators._kernel(3, 0.1)\n"
        "def _own():\n"
        "    return self_made._own\n",
        encoding="utf-8",
    )
    where = {"_kernel": {PACKAGE / "stats" / "estimators.py"}, "_own": {planted}}
    assert private_uses(planted, where) == ["planted.py:1: imports _helper", "planted.py:3: uses estimators._kernel"]


def test_no_module_is_over_600_lines():
    long = {str(path.relative_to(PACKAGE)): n for path in PACKAGE.rglob("*.py")
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}


def _fresh(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_documented_imports_keep_working():
    """README's imports: calaudit.metrics and calaudit.metric_functions are the moved
    modules themselves, and importing calaudit alone loads no numpy."""
    out = _fresh(
        "import sys, calaudit\n"
        "print('numpy' in sys.modules)\n"
        "import calaudit.metrics, calaudit.stats.metrics, calaudit.metric_functions, calaudit.stats.metric_functions\n"
        "from calaudit.metrics import expected_calibration_error, METRICS\n"
        "from calaudit.metric_functions import METRIC_FUNCTIONS\n"
        "from calaudit.predictions import Predictions\n"
        "from calaudit.gate import evaluate_gate\n"
        "from calaudit.cli import cli, main\n"
        "print(calaudit.metrics is calaudit.stats.metrics, calaudit.metric_functions is calaudit.stats.metric_functions,\n"
        "      expected_calibration_error is calaudit.stats.metrics.expected_calibration_error,\n"
        "      METRIC_FUNCTIONS is calaudit.METRIC_FUNCTIONS, METRICS is calaudit.METRICS,\n"
        "      Predictions is calaudit.Predictions, calaudit.metrics.__spec__.name, sorted(cli.commands))\n"
    )
    assert out.splitlines() == [
        "False",
        "True True True True True True calaudit.stats.metrics ['check', 'compare', 'fix', 'run']",
    ]


def test_only_the_listed_old_names_are_importable():
    out = _fresh(
        "import importlib\n"
        "for name in ('calaudit.bootstrap', 'calaudit.cli_types', 'calaudit.location'):\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except ModuleNotFoundError:\n"
        "        print('missing', name)\n"
    )
    assert out.splitlines() == ["missing calaudit.bootstrap", "missing calaudit.cli_types", "missing calaudit.location"]
