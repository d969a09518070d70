"""The package boundaries of issue 17, checked on the source (no model is built).

- every exporter the target registry names (FP32, INT8, fallback) has the one
  signature `(end_to_end, metadata, path, force, precision, session, **options)`
  and accepts its target's options;
- no module imports a private name (`_x`) of another package;
- calibration takes nothing from `edgedet.exporters` but the public FP32 ONNX
  conversion (`base`, `onnx_export`): no converter or exporter of its own;
- the CUDA probe and `artifact_metadata` import without TensorFlow.
"""

import ast
import inspect
import pathlib
import subprocess
import sys

import pytest

from edgedet.exporters.registry import TARGETS

ROOT = pathlib.Path(__file__).resolve().parents[1]
# Source folder -> the package it is installed as (pyproject's package-dir).
PACKAGES = {"edgedet": "edgedet", "exporters": "edgedet.exporters",
            "runtimes": "edgedet.runtimes", "calibration": "edgedet.calibration"}
SCANNED = ("edgedet", "exporters", "runtimes", "calibration", "benchmarks", "tools")
SIGNATURE = ("end_to_end", "metadata", "path", "force", "precision", "session")


def _exporters():
    for target in TARGETS:
        for precision in target.precisions:
            yield f"{target.name}:{precision}", target, target.load_exporter(precision)
        if target.fallback:
            yield f"{target.name}:fallback", target, target.load_exporter(fallback=True)


@pytest.mark.parametrize("label, target, function",
                         list(_exporters()), ids=[label for label, _, _ in _exporters()])
def test_every_exporter_has_the_one_signature(label, target, function):
    parameters = list(inspect.signature(function).parameters.values())
    assert tuple(p.name for p in parameters[:6]) == SIGNATURE, label
    defaults = {p.name: p.default for p in parameters[3:6]}
    assert defaults["force"] is False and defaults["session"] is None, label
    assert defaults["precision"] in target.precisions, label
    named = {p.name for p in parameters[6:] if p.kind is p.KEYWORD_ONLY
             or (p.kind is p.POSITIONAL_OR_KEYWORD and p.default is not p.empty)}
    takes_any = any(p.kind is p.VAR_KEYWORD for p in parameters)
    assert takes_any or set(target.options) <= named, (label, target.options, named)


def _module_name(path, root):
    parts = path.relative_to(root).with_suffix("").parts
    parts = parts[:-1] if parts[-1] == "__init__" else parts
    return ".".join((PACKAGES.get(parts[0], parts[0]), *parts[1:]))


def _package_of(dotted, root):
    """The package owning `dotted` (a module, or a name inside one): a package owns
    itself, a module belongs to its parent (`edgedet.files.x` -> `edgedet`)."""
    packages, modules = set(), set()
    for folder in PACKAGES:
        for path in (root / folder).rglob("*.py"):
            name = _module_name(path, root)
            (packages if path.name == "__init__.py" else modules).add(name)
    parts = dotted.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in packages:
            return candidate
        if candidate in modules:
            return candidate.rpartition(".")[0]
    return parts[0]


def _edgedet_imports(path):
    """`(line, module, name)` for every `from edgedet... import name` and every
    `alias.name` attribute read through a name imported from edgedet."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    modules, found = {}, []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("edgedet"):
            for alias in node.names:
                found.append((node.lineno, node.module, alias.name))
                modules[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("edgedet") and alias.asname:
                    modules[alias.asname] = alias.name
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                and node.value.id in modules:
            found.append((node.lineno, modules[node.value.id], node.attr))
    return found


def private_imports(root, folders):
    """`path:line: owner.name` for each private name of another package used in `folders`
    (source folders under `root`, laid out as the repository is)."""
    problems = []
    for folder in folders:
        for path in sorted((root / folder).rglob("*.py")):
            module = _module_name(path, root)
            here = module if path.name == "__init__.py" else module.rpartition(".")[0]
            for line, owner, name in _edgedet_imports(path):
                private = name.startswith("_") and not name.startswith("__")
                if private and _package_of(owner, root) != here:
                    problems.append(f"{path.relative_to(root)}:{line}: {owner}.{name}")
    return problems


def test_no_private_name_is_imported_across_packages():
    assert private_imports(ROOT, SCANNED) == []


def test_the_private_import_check_sees_one(tmp_path):
    """The check above is not vacuous: a planted cross-package private import is found,
    same-package ones are not."""
    for folder in ("edgedet", "edgedet/train", "exporters", "calibration"):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "__init__.py").write_text("")
    for name in ("edgedet/backend.py", "edgedet/files.py", "edgedet/train/run.py",
                 "exporters/tflite.py", "calibration/body.py"):
        (tmp_path / name).write_text("")
    (tmp_path / "calibration" / "planted.py").write_text(
        "from edgedet.exporters.tflite import _blamed_ops\n"
        "from edgedet import backend\nbackend._hidden()\n"
        "from edgedet.calibration.body import _layer\n"
        "from edgedet.train.run import _build_model\n")
    (tmp_path / "edgedet" / "export.py").write_text("from edgedet.files import _size\n")
    assert private_imports(tmp_path, ["edgedet", "calibration"]) == [
        "calibration/planted.py:1: edgedet.exporters.tflite._blamed_ops",
        "calibration/planted.py:5: edgedet.train.run._build_model",
        "calibration/planted.py:3: edgedet.backend._hidden",
    ]


def test_calibration_uses_only_the_public_fp32_onnx_conversion():
    allowed = {"edgedet.exporters.base", "edgedet.exporters.onnx_export"}
    used = {}
    for path in sorted((ROOT / "calibration").rglob("*.py")):
        for line, module, _ in _edgedet_imports(path):
            if module.startswith("edgedet.exporters"):
                used.setdefault(module, []).append(f"{path.name}:{line}")
    assert set(used) <= allowed, used


def test_the_cuda_probe_and_artifact_metadata_import_without_tensorflow():
    code = ("import sys\nfrom edgedet.cuda import cuda_device, has_nvidia_gpu\n"
            "from edgedet.metadata import artifact_metadata\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('tensorflow', 'keras', 'tensorrt', 'onnxruntime')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
