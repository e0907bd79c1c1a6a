"""The package's layers, read from its imports (module-level and function-level alike, via ``ast``): the evaluation
pipeline sits below its reports, ``images/`` is imported by nobody outside it, ``data/`` knows nothing of ``eval/``,
and no two modules import each other."""

import ast
import os

import pytest
from helpers import REPO

PACKAGE_DIR = os.path.join(REPO, "hybrid_tevatron")


def module_name(path: str) -> str:
    rel = os.path.relpath(path, os.path.dirname(PACKAGE_DIR))[:-3].replace(os.sep, ".")
    return rel[: -len(".__init__")] if rel.endswith(".__init__") else rel


def modules() -> dict[str, str]:
    return {module_name(os.path.join(d, n)): os.path.join(d, n)
            for d, _, names in os.walk(PACKAGE_DIR) for n in names if n.endswith(".py")}


def imports(name: str, path: str, known: set[str]) -> set[str]:
    """The package's modules that ``name`` imports anywhere in its body (``from x import y`` counts as ``x.y`` when
    that is a module, else ``x``)."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    package = name if path.endswith("__init__.py") else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


GRAPH = {name: imports(name, path, set(modules())) for name, path in modules().items()}
# Commands that put the layers together, imported by no module: the evaluation program's family list, and the
# caption data command whose ``pool`` subcommand writes a caption pool with eval/benchmarks/captions.py (the command
# name stays the one commands.sh records). Their arrows are exempt from the layer rules below, and only theirs.
COMPOSITION_ROOTS = {"hybrid_tevatron.eval.__main__": {"hybrid_tevatron.images.evaluate"},
                     "hybrid_tevatron.data.captions": {"hybrid_tevatron.eval.benchmarks.captions"}}
LAYERED = {name: targets - COMPOSITION_ROOTS.get(name, set()) for name, targets in GRAPH.items()}


def arrows(source_prefix: str, target_prefix: str, exclude_source: str | None = None) -> list[str]:
    def inside(module, prefix):
        return module == prefix or module.startswith(prefix + ".")

    return sorted(f"{a} -> {b}" for a, targets in LAYERED.items() for b in targets
                  if inside(a, source_prefix) and inside(b, target_prefix)
                  and not (exclude_source and inside(a, exclude_source)))


def test_the_graph_is_read():
    assert "hybrid_tevatron.eval.pipeline.ranks" in GRAPH
    assert "hybrid_tevatron.errors" in set().union(*GRAPH.values())


def test_the_pipeline_does_not_import_the_reports():
    assert arrows("hybrid_tevatron.eval.pipeline", "hybrid_tevatron.eval.reports") == []


def test_composition_roots_are_imported_by_no_module():
    for root, exempt in COMPOSITION_ROOTS.items():
        assert exempt <= GRAPH[root], (root, exempt)
        assert [m for m, targets in GRAPH.items() if root in targets] == []


def test_nothing_outside_images_imports_images():
    assert arrows("hybrid_tevatron", "hybrid_tevatron.images", exclude_source="hybrid_tevatron.images") == []


def test_data_does_not_import_eval():
    assert arrows("hybrid_tevatron.data", "hybrid_tevatron.eval") == []


def test_no_two_modules_import_each_other():
    pairs = sorted({tuple(sorted((a, b))) for a, targets in GRAPH.items() for b in targets if a in GRAPH.get(b, ())})
    assert pairs == []


@pytest.mark.parametrize("layer", ["hybrid_tevatron.eval.pipeline", "hybrid_tevatron.data"])
def test_no_cycle_through_a_lower_layer(layer):
    """No import path leaves ``layer`` and comes back into it."""
    inside = [m for m in GRAPH if m == layer or m.startswith(layer + ".")]
    cycles = []
    for start in inside:
        seen, stack = set(), [(t, [start, t]) for t in LAYERED[start] if t not in inside]
        while stack:
            node, route = stack.pop()
            if node in seen:
                continue
            seen.add(node)
            for t in LAYERED.get(node, ()):
                if t in inside:
                    cycles.append(" -> ".join(route + [t]))
                elif t not in seen:
                    stack.append((t, route + [t]))
    assert cycles == []
