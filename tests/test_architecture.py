"""The package's layout is its architecture (docs/architecture.md): every module belongs to one
layer, a module imports only from its own layer or the layers below, and the import graph has no
cycle. Read from the source's import statements with ``ast`` (function-local imports and
``TYPE_CHECKING`` blocks included: a lazy import is still a dependency)."""
from __future__ import annotations

import ast
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "resfam"
DOC = PACKAGE.parent / "docs" / "architecture.md"

# lowest first; a module's layer is that of the longest prefix listed here
LAYERS = {
    "resfam._version": 0, "resfam._lazy": 0, "resfam.errors": 0, "resfam.files": 0, "resfam.distributed": 0,
    "resfam.primitives": 1,
    "resfam.spec": 2,
    "resfam.network": 3,
    "resfam.weights": 4,
    "resfam.factory": 5,
    "resfam.comparison": 6, "resfam.trainability": 6, "resfam.integrations": 6, "resfam.space": 6,
    "resfam.engines": 6,
    "resfam": 7, "resfam.__main__": 7, "resfam._moved": 7,
}
LAYER_NAMES = ["base", "primitives", "spec", "network", "weights", "build", "uses", "api"]


def modules(root: Path = PACKAGE) -> dict[str, Path]:
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The package modules that ``name``'s import statements name (``from pkg import mod`` names
    the submodule where one exists, else the package)."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        targets = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")[:len(name.split(".")) - (node.level - (1 if is_package else 0))]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            targets = [f"{module}.{a.name}" if f"{module}.{a.name}" in known else module
                       for a in node.names]
        elif isinstance(node, ast.Call) and getattr(node.func, "id", "") == "lazy_exports":
            # a package's names that load on first use (resfam._lazy): imports all the same
            package = name if is_package else name.rpartition(".")[0]
            tables = [a for a in node.args[1:] if isinstance(a, ast.Dict)] + \
                     [k.value for k in node.keywords if isinstance(k.value, ast.Dict)]
            targets = [importlib.util.resolve_name(v.value, package) for t in tables for v in t.values
                       if isinstance(v, ast.Constant) and isinstance(v.value, str)]
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    known = modules(root)
    return {name: imports(name, path, known) for name, path in known.items()}


def layer(name: str) -> int:
    prefix = max((p for p in LAYERS if name == p or name.startswith(p + ".")), key=len, default=None)
    if prefix is None:
        raise KeyError(name)
    return LAYERS[prefix]


def upward(edges: dict[str, set[str]]) -> list[str]:
    return sorted(f"{a} ({LAYER_NAMES[layer(a)]}) imports {b} ({LAYER_NAMES[layer(b)]})"
                  for a, targets in edges.items() for b in targets if layer(b) > layer(a))


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index, low, on_stack, stack, found, counter = {}, {}, set(), [], [], [0]
    for start in edges:
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = counter[0]
        counter[0] += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter[0]
                    counter[0] += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
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


def test_every_module_has_a_layer():
    unplaced = [name for name in modules() if not any(name == p or name.startswith(p + ".") for p in LAYERS)]
    assert not unplaced, f"modules in no layer (add them to LAYERS and docs/architecture.md): {unplaced}"


def test_no_import_from_a_lower_layer_to_a_higher_one():
    assert upward(graph()) == []


def test_the_import_graph_has_no_cycle():
    assert cycles(graph()) == []


def test_the_checks_see_cycles_and_upward_imports(tmp_path):
    """The checks can fail: a small package with a function-local cycle and an upward import."""
    pkg = tmp_path / "resfam"
    (pkg / "spec").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "errors.py").write_text("def f():\n    from .spec import registry\n")
    (pkg / "spec" / "__init__.py").write_text(  # names loaded on first use are imports too
        "from .._lazy import lazy_exports\n__getattr__, __dir__ = lazy_exports(__name__, "
        "{'Spec': '.schema'}, modules={'build': '..factory'})\n")
    (pkg / "spec" / "registry.py").write_text("from ..errors import f\n")
    (pkg / "spec" / "schema.py").write_text("from . import registry\nfrom resfam.factory import x\n")
    (pkg / "factory.py").write_text("import typing\nif typing.TYPE_CHECKING:\n    from .spec import schema\n")
    (pkg / "_lazy.py").write_text("")
    edges = graph(pkg)
    assert edges["resfam.spec"] == {"resfam._lazy", "resfam.spec.schema", "resfam.factory"}
    assert edges["resfam.errors"] == {"resfam.spec.registry"}
    assert edges["resfam.spec.schema"] == {"resfam.spec.registry", "resfam.factory"}
    assert sorted(cycles(edges)) == [["resfam.errors", "resfam.spec.registry"],  # function-local
                                     ["resfam.factory", "resfam.spec.schema"]]  # TYPE_CHECKING
    assert upward(edges) == ["resfam.errors (base) imports resfam.spec.registry (spec)",
                             "resfam.spec (spec) imports resfam.factory (build)",
                             "resfam.spec.schema (spec) imports resfam.factory (build)"]


def test_the_architecture_page_matches_the_package():
    """docs/architecture.md names every folder and top-level module of ``ls resfam/``, and no
    other."""
    listed = set(re.findall(r"^\| [a-z]+ \| `([a-z_]+/?(?:\.py)?)`", DOC.read_text(), flags=re.M))
    present = {p.name + ("/" if p.is_dir() else "") for p in PACKAGE.iterdir()
               if p.name != "__pycache__" and (p.is_dir() or p.suffix == ".py")}
    present.discard("__init__.py")
    present.discard("__main__.py")
    assert listed == present


@pytest.mark.parametrize("old, new", [("resfam.hub", "resfam.weights.hub"),
                                      ("resfam.blocks.residual", "resfam.primitives.blocks"),
                                      ("resfam.registry", "resfam.spec.registry"),
                                      ("resfam.compare.cli", "resfam.comparison")])
def test_an_old_module_path_fails_with_one_line_naming_the_new_one(old, new):
    proc = subprocess.run([sys.executable, "-c", f"import {old}"], capture_output=True, text=True)
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 1 and last.startswith("resfam._moved.MovedModuleError: ") and new in last


def test_the_public_paths_keep_working():
    """What README, docs/backbone.md and the frameworks' configs name: the top-level API,
    ``resfam.detection``, the integrations' module paths, ``python -m resfam``."""
    code = ("import resfam, resfam.detection, resfam.comparison.cli, resfam.integrations.timm_registry\n"
            "from resfam.detection import torchvision_fpn_backbone\n"
            "assert resfam.detection.torchvision_fpn_backbone is torchvision_fpn_backbone\n"
            "assert callable(resfam.compare) and resfam.compare.__module__ == 'resfam.comparison.sweep'\n"
            "print(sorted(n for n in resfam.__all__ if not hasattr(resfam, n)))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
    version = subprocess.run([sys.executable, "-m", "resfam", "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and version.stdout.startswith("resfam ")
