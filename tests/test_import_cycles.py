"""No import cycles among edgedet's modules, counting imports inside functions too.

The graph is built from the source with `ast` (nothing is imported), over
the folders `[tool.setuptools.package-dir]` maps into `edgedet`. Written by
hand (a small Tarjan): grimp and pydeps build the graph from one package's
own folder, so they miss `edgedet.exporters`, `edgedet.runtimes` and
`edgedet.calibration`, which live in other folders; import-linter sits on
grimp. This is about 60 lines and needs no extra dependency.
"""

import ast
import pathlib
import textwrap

ROOT = pathlib.Path(__file__).resolve().parents[1]
# The package-dir mapping of pyproject.toml.
PACKAGE_DIRS = {
    "edgedet": "edgedet",
    "edgedet.exporters": "exporters",
    "edgedet.runtimes": "runtimes",
    "edgedet.calibration": "calibration",
}


def module_files(root, package_dirs):
    """Returns `{module name: file}` for every `.py` under the mapped folders."""
    modules = {}
    for package, folder in package_dirs.items():
        for path in sorted((root / folder).rglob("*.py")):
            parts = list(path.relative_to(root / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join([package, *parts])] = path
    return modules


def import_graph(modules):
    """Returns `{module: set of edgedet modules it imports}`, at any depth of its code."""

    def resolve(name):
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for module, path in modules.items():
        is_package = path.name == "__init__.py"
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # Relative: from the module's package upwards.
                    package = module if is_package else module.rpartition(".")[0]
                    for _ in range(node.level - 1):
                        package = package.rpartition(".")[0]
                    base = f"{package}.{base}" if base else package
                targets.update(f"{base}.{alias.name}" for alias in node.names)
        graph[module] = {r for t in targets if (r := resolve(t)) and r != module}
    return graph


def cycles(graph):
    """Returns one cycle (a list of modules, first repeated last) per strongly
    connected component of more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, components = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_one_cycle(graph, component) for component in components]


def _one_cycle(graph, component):
    """A shortest path from the component's first module back to itself."""
    start = min(component)
    paths, seen = [[start]], set()
    while paths:
        path = paths.pop(0)
        for nxt in sorted(graph[path[-1]] & component):
            if nxt == start:
                return [*path, start]
            if nxt not in seen:
                seen.add(nxt)
                paths.append([*path, nxt])
    raise AssertionError(f"no cycle in {component}")  # Tarjan guarantees one.


def test_no_import_cycles_among_edgedet_modules():
    modules = module_files(ROOT, PACKAGE_DIRS)
    assert "edgedet.exporters.registry" in modules and "edgedet.calibration.body" in modules
    found = cycles(import_graph(modules))
    assert not found, "Import cycles (imports inside functions count):\n" + "\n".join(
        " -> ".join(cycle) for cycle in found
    )


def test_the_check_finds_cycles_through_function_level_and_relative_imports(tmp_path):
    files = {
        "pkg/__init__.py": "",
        "pkg/a.py": "def f():\n    from pkg import b\n",
        "pkg/b.py": "from .sub import c\n",
        "pkg/sub/__init__.py": "",
        "pkg/sub/c.py": "import pkg.a.something\n",
        "pkg/d.py": "from pkg.b import name\n",  # Imports into the cycle, not part of it.
        "other/e.py": "from pkg import d\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(textwrap.dedent(text))
    graph = import_graph(module_files(tmp_path, {"pkg": "pkg", "pkg.other": "other"}))
    assert graph["pkg.other.e"] == {"pkg.d"}
    assert cycles(graph) == [["pkg.a", "pkg.b", "pkg.sub.c", "pkg.a"]]
