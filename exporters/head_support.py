"""Which detection head a target can carry: the refusals, checked before any work.

The one-to-one head (`InferenceConfig.head == "one2one"`, `edgedet.topk`)
goes through every target, but a few runtime + precision combinations cannot
run it faithfully. Each row of `REFUSALS` names the combination, why, and
what to export instead; `check_head_support` raises on the first row that
applies, before the graph is built. The sources:

- LiteRT INT8 is **not** refused, although Ultralytics turns its NMS-free
  branch off there (`engine/exporter.py`, 8.4.x: its static activation
  quantization collapses the one-to-one class index). edgedet quantizes the
  body only; the top-k selection and its int32 class index stay out of INT8.
  Measured on an Ultralytics-trained YOLO26n, 1000 labelled images, conf
  0.25 (docs/benchmarks.md, "YOLO26"): the one-to-one TFLite INT8 matches the
  FP32 reference's detections, class included, as well as the one-to-many
  TFLite INT8 does, with no mAP50-95 lost.
- TensorRT 10.3 (JetPack 6) implicit INT8: the builder fails on the NMS-free
  graph while optimising the calibration graph (`checkSanity.cpp::checkLinks`,
  ultralytics#23841; Ultralytics selects the one-to-many head there, and pins
  TensorRT 10.7 on JetPack 6, ultralytics#24368).
- TensorRT before 8.5 has no ONNX `Mod` (ultralytics#24607): edgedet's
  selection computes the class index without it, and edgedet's TensorRT
  path needs 8.5 anyway (`edgedet.exporters.trt_lint`, rule `mod`).

| head | target | precision | when | alternative |
| ---- | ------ | --------- | ---- | ----------- |
| one2one | trt | int8 | `--int8-mode implicit` on TensorRT 10.3.x | `--int8-mode explicit`, TensorRT >= 10.4, or `--head one2many` |
"""  # noqa: E501 (the table)

import dataclasses


@dataclasses.dataclass(frozen=True)
class HeadRefusal:
    """One combination a head cannot be exported to.

    Args:
        head: str. The head (`edgedet.config.HEADS`).
        target: str. Canonical target name.
        precision: str. The precision refused.
        reason: str. Why, with its source.
        alternative: str. What to export instead.
        applies: callable `(options) -> bool` or None, on the target's options
            (`export(..., target_options=...)`). None: always. Defaults to None.
    """

    head: str
    target: str
    precision: str
    reason: str
    alternative: str
    applies: object = None


def _trt_version(options):
    """The device's TensorRT version: `trt_version`, else the installed one, else the default."""
    import importlib.metadata

    from edgedet.calibration.trt_cache import DEFAULT_TRT_VERSION

    if options.get("trt_version"):
        return str(options["trt_version"])
    try:
        return importlib.metadata.version("tensorrt")
    except importlib.metadata.PackageNotFoundError:
        return DEFAULT_TRT_VERSION


def _implicit_int8_on_trt_10_3(options):
    from edgedet.calibration.trt_cache import parse_version

    major, minor, _ = parse_version(_trt_version(options))
    return options.get("int8_mode") == "implicit" and (major, minor) == (10, 3)


REFUSALS = (
    HeadRefusal(
        "one2one", "trt", "int8",
        reason="TensorRT 10.3 (JetPack 6) fails building an implicit (calibration cache) INT8 "
               "engine of the NMS-free graph (checkLinks internal error, ultralytics#23841)",
        alternative="use --int8-mode explicit (Q/DQ), a TensorRT of 10.4 or later, or "
                    "--head one2many",
        applies=_implicit_int8_on_trt_10_3),
)


def refusal(head, target, precision, options=None):
    """The `HeadRefusal` forbidding `head` on `target` at `precision` with `options`, or None."""
    for row in REFUSALS:
        if (row.head, row.target, row.precision) == (head, target, precision) and (
                row.applies is None or row.applies(options or {})):
            return row
    return None


def check_head_support(head, targets, precision, target_options=None):
    """Raises ValueError when a `REFUSALS` row forbids `head` on one of `targets`.

    Args:
        head: str. The head to export.
        targets: iterable of canonical target names.
        precision: str. The export precision.
        target_options: dict or None. `{target: {option: value}}` (checked).
    """
    options = target_options or {}
    for target in targets:
        row = refusal(head, target, precision, options.get(target, {}))
        if row is not None:
            raise ValueError(
                f"Cannot export the {head} head to {target} at {precision}: {row.reason}. "
                f"Instead, {row.alternative}.")
