"""`edgedet export` as a library function: one model, several artifacts.

The end-to-end graph (letterbox, network, decode, NMS, un-letterbox) is
built once and handed to every exporter, so every artifact computes the
same function as the Keras reference runtime.

Example:

```python
from edgedet.export import export
from edgedet.models import YOLOV8Detector

model = YOLOV8Detector.from_preset("tiny", num_classes=3)
for result in export(model, ["onnx", "tflite"], "out/"):
    print(result.target, result.path, result.size_bytes, result.seconds)
```
"""

import dataclasses
import os
import re
import time
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class ExportResult:
    """One written artifact.

    Args:
        target: str. Canonical target name.
        path: `pathlib.Path`. The artifact (file or folder).
        size_bytes: int. Size on disk (all files, for a folder).
        seconds: float. Wall time of this target's export.
    """

    target: str
    path: Path
    size_bytes: int
    seconds: float


def export(model, targets, out_dir, config=None, force=False, progress=None, stem=None,
           precision="fp32", calibration=None, target_options=None, protected=()):
    """Exports `model` to each of `targets` under `out_dir`.

    Every target name and output path is checked before any work starts.

    Args:
        model: a Keras YOLOv8 (`edgedet.models.YOLOV8Detector`) with
            `class_names`.
        targets: str or list of str. Target names or aliases (see
            `edgedet.exporters.registry`); `"all"` means every target this
            machine can build.
        out_dir: str or path. Folder for the artifacts (created if missing).
        config: `InferenceConfig` or None. Letterbox, NMS and box format
            baked into the graphs. Defaults to `model.default_inference_config()`
            (a square letterbox: the target table's per-target default,
            `registry.default_letterbox`, is applied by `edgedet export`).
        force: bool. Replace artifacts that already exist (the files this
            export writes, never anything else). Defaults to False.
        progress: callable or None. Called with one message string per step.
            Defaults to None.
        stem: str or None. Artifact base name. Defaults to the model's name.
        precision: str. `"fp32"`, `"fp16"` (trt) or `"int8"`; every target
            must support it (see the registry). Non-fp32 artifacts are named
            `<stem>_<precision><suffix>`. Defaults to `"fp32"`.
        calibration: dict or None. INT8 calibration options for
            `edgedet.calibration.session.ExportCalibration` (`data`,
            `method`, `size`, `seed`, `quantize_head`); one calibration is
            shared by all targets. Defaults to None (the default set).
        target_options: dict or None. Target name (or alias) -> keyword
            options for its exporter, at every precision (e.g.
            `{"onnx": {"opset": 18}, "trt": {"workspace_mib": 2048}}`); the
            accepted options are the registry's `Target.options`. Options for
            a target not exported are checked and unused. Defaults to None.
        protected: iterable of paths. Inputs the artifacts may not replace
            (the model file, calibration images). Defaults to `()`.

    Returns:
        A list of `ExportResult`, in target order.

    Raises:
        ValueError: an unknown target (with a suggestion), one this machine
            cannot build, an unknown target option (naming it and the
            accepted ones), or a head a target cannot carry
            (`edgedet.exporters.head_support`).
        OutputExistsError: an artifact exists and `force` is False (naming
            the path; nothing was exported).
        ExportError: a target failed; the other targets were still exported
            and the error lists what was written.
    """
    from edgedet.exporters.base import ExportError
    from edgedet.exporters.registry import get_target, resolve_targets, skipped_targets
    from edgedet.files import check_writable_output
    from edgedet.metadata import artifact_metadata

    notify = progress or (lambda message: None)
    requested = [targets] if isinstance(targets, str) else list(targets)
    resolved = resolve_targets(requested, allow_fallback=True)
    named_targets = {get_target(n).name for n in requested if str(n).strip().lower() != "all"}
    for target in list(resolved):
        if precision not in target.precisions and target.name not in named_targets:
            resolved.remove(target)  # Came from "all".
            notify(f"{target.name}: skipped, it has no {precision} export")
        else:
            target.check_precision(precision)
    if any(str(name).strip().lower() == "all" for name in requested):
        for target, reason in skipped_targets():
            if target not in resolved:
                notify(f"{target.name}: skipped, it {reason}")
    config = model.default_inference_config() if config is None else config
    _check_letterbox_shape(resolved, named_targets, config, notify)
    out_dir = Path(out_dir)
    stem = _safe_stem(stem or getattr(model, "name", None) or "model")
    named = stem if precision == "fp32" else f"{stem}_{precision}"
    options = _target_options(target_options)
    paths = {t.name: out_dir / t.artifact_name(named) for t in resolved}
    for path in paths.values():
        check_writable_output(path, force, protected)
    from edgedet.exporters.head_support import check_head_support

    check_head_support(config.head, [t.name for t in resolved], precision, options)

    notify("building the end-to-end graph (letterbox, network, decode, NMS)")
    from edgedet.end_to_end import build_end_to_end

    end_to_end = build_end_to_end(model, config)
    base_metadata = artifact_metadata(model, config, target="keras")

    session = None
    results, failures = [], []
    for target in resolved:
        path = paths[target.name]
        notify(f"{target.name}: exporting to {path}")
        started = time.perf_counter()
        metadata = dataclasses.replace(base_metadata, target=target.name)
        # One call for every target and precision: the exporter signature
        # `(end_to_end, metadata, path, force, precision, session, **options)`.
        fallback = target.fallback is not None and target.unavailable_reason() is not None
        if session is None and (precision != "fp32" or target.fallback is not None):
            from edgedet.calibration.session import ExportCalibration

            session = ExportCalibration(progress=notify, **(calibration or {}))
        kwargs = {"precision": precision, "session": session, **options.get(target.name, {})}
        try:
            exporter = target.load_exporter(precision, fallback=fallback)
            exporter(end_to_end, metadata, path, force=force, **kwargs)
        except ExportError as error:
            failures.append(error)
            notify(f"{target.name}: FAILED: {str(error).splitlines()[0]}")  # The rest below.
            continue
        seconds = time.perf_counter() - started
        result = ExportResult(target.name, path, _size(path), seconds)
        results.append(result)
        notify(f"{target.name}: wrote {path} ({result.size_bytes} bytes) in {seconds:.1f}s")
    if failures:
        files = [str(r.path) for r in results]
        files += [f for failure in failures for f in getattr(failure, "written", ())]
        written = ", ".join(files) or "nothing"
        first = failures[0]
        others = "".join(f"\nAlso: {f}" for f in failures[1:])
        raise ExportError(
            first.target, first.stage, f"{first.detail}{others}\nWritten: {written}.",
            ops=first.ops,
        )
    return results


def _target_options(target_options):
    """`{canonical target name: checked options}`; raises ValueError naming a bad one."""
    from edgedet.exporters.registry import get_target

    if target_options is None:
        return {}
    if not isinstance(target_options, dict):
        raise ValueError("target_options must be a dict {target: {option: value}}, received "
                         f"{type(target_options).__name__}.")
    checked = {}
    for name, options in target_options.items():
        target = get_target(name)
        checked[target.name] = target.check_options(options)
    return checked


def _check_letterbox_shape(resolved, named, config, notify):
    """Drops (from "all") or refuses (`named`) targets that cannot run `config`'s letterbox body."""
    from edgedet.exporters.registry import check_letterbox_shape

    shape = config.letterbox.shape
    for target in list(resolved):
        try:
            check_letterbox_shape(target, shape)
        except ValueError:
            if target.name in named:
                raise
            resolved.remove(target)
            notify(f"{target.name}: skipped, it cannot take a {shape} letterbox")
    if not resolved:
        raise ValueError(f"No target this machine builds can take a {shape} letterbox.")


def _safe_stem(name):
    """A file-name-safe artifact base name."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", str(name)).strip("._")
    return stem or "model"


def _size(path):
    path = Path(path)
    if path.is_dir():
        return sum(
            os.path.getsize(os.path.join(root, name))
            for root, _, names in os.walk(path)
            for name in names
        )
    return path.stat().st_size
