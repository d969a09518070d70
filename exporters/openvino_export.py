"""OpenVINO exporter: the end-to-end ONNX converted to an OpenVINO IR (`.xml` + `.bin`).

The IR is converted from the FP32 end-to-end ONNX, the model every other
ONNX-based target starts from (made once per export by the
`ExportCalibration` session: `session.fp32_onnx`), with
`openvino.convert_model`, and written with `openvino.save_model` (weights
kept in FP32: `compress_to_fp16=False`). It follows the artifact contract:
input `images` uint8 `[B, H, W, 3]` with batch, height and width dynamic;
outputs `boxes`, `confidence`, `classes`, `num_detections`; letterbox and
NMS inside (ONNX `NonMaxSuppression` becomes OpenVINO's `NMS` op).

Metadata lives in the IR's runtime info (`<rt_info>` of the `.xml`):
`edgedet/metadata` holds the edgedet metadata JSON (class names included)
and `model_info/labels` the class names, space-separated with spaces inside
a name replaced by `_` (the OpenVINO Model API convention, also what
Ultralytics writes), so OpenVINO tools show them.

The `.bin` is written first, then the `.xml`, each atomically; a reader
opens the `.xml`, so it never sees a new graph with old weights.

This module is not called `openvino.py`, so it never shadows the
`openvino` package.
"""

import tempfile
from pathlib import Path

from edgedet.exporters.base import INPUT_NAME, check_outputs, require_precision, stage
from edgedet.files import atomic_write_bytes, check_writable_output
from edgedet.metadata import METADATA_KEY

TARGET = "openvino"
#: rt_info path of the edgedet metadata JSON.
METADATA_PATH = (METADATA_KEY, "metadata")
#: rt_info path of the class names (OpenVINO Model API convention).
LABELS_PATH = ("model_info", "labels")


def export(end_to_end, metadata, path, force=False, precision="fp32", session=None):
    """Converts `end_to_end` to an OpenVINO IR at `path` (`.xml`, `.bin` beside it).

    Args:
        end_to_end: `tf.Module` from `edgedet.end_to_end.build_end_to_end`.
        metadata: `ArtifactMetadata`, stored in the IR's runtime info.
        path: str or path. The `.xml` file to write.
        force: bool. Replace an existing IR. Defaults to False.
        precision: str. Must be `"fp32"` (INT8:
            `edgedet.exporters.openvino_int8`).
        session: `edgedet.calibration.session.ExportCalibration` or None. The
            export's session, whose FP32 ONNX is converted (made here when
            None). Defaults to None.

    Returns:
        `path` as a `pathlib.Path`.

    Raises:
        ExportError: naming the stage (`convert`, `check`, `write`).
        OutputExistsError: the `.xml` or `.bin` exists and `force` is False.
    """
    require_precision(TARGET, precision)
    path, weights = check_paths(path, force)
    ov_model = convert(fp32_onnx(end_to_end, metadata, session))
    write(ov_model, metadata, path, weights)
    return path


def check_paths(path, force):
    """`(xml, bin)` paths of the IR at `path`, both checked writable.

    Raises:
        ValueError: `path` does not end in `.xml`.
        OutputExistsError: one exists and `force` is False.
    """
    path = Path(path)
    if path.suffix.lower() != ".xml":
        raise ValueError(f"An OpenVINO IR is written to a '.xml' file; received '{path}'.")
    return (check_writable_output(path, force),
            check_writable_output(path.with_suffix(".bin"), force))


def fp32_onnx(end_to_end, metadata, session=None):
    """The FP32 end-to-end ONNX `ModelProto` of the export's session (one made if None)."""
    from edgedet.calibration.session import ExportCalibration

    session = session or ExportCalibration()
    return session.fp32_onnx(end_to_end, metadata)


def convert(onnx_model):
    """`openvino.convert_model` of an ONNX `ModelProto`; returns the checked `openvino.Model`."""
    with stage(TARGET, "convert"):
        import openvino as ov

        with tempfile.TemporaryDirectory(prefix="edgedet-openvino-") as folder:
            onnx_path = Path(folder) / "model.onnx"
            onnx_path.write_bytes(onnx_model.SerializeToString())
            ov_model = ov.convert_model(str(onnx_path))
    from edgedet.exporters.onnx_export import head_of

    with stage(TARGET, "check"):
        check(ov_model, head_of(onnx_model))
    return ov_model


def check(ov_model, head="one2many"):
    """Checks an `openvino.Model` against the artifact contract.

    The selection stage must be OpenVINO's own op: NMS for the one-to-many
    head, TopK for the one-to-one head (`head`, default `"one2many"`).

    Raises:
        ValueError: not one uint8 input `images` of rank 4, or outputs that
            do not follow the contract (names, dtypes, ranks), or no NMS op.
    """
    inputs = [(sorted(i.get_names()), i.get_element_type().get_type_name(),
               i.get_partial_shape().rank.get_length()) for i in ov_model.inputs]
    if len(inputs) != 1 or INPUT_NAME not in inputs[0][0] or inputs[0][1:] != ("u8", 4):
        raise ValueError(f"Expected one u8 rank-4 input named '{INPUT_NAME}', received "
                         f"{inputs}.")
    found = {}
    for output in ov_model.outputs:
        dtype = {"f32": "float32", "i32": "int32"}.get(
            output.get_element_type().get_type_name(), output.get_element_type().get_type_name())
        for name in output.get_names():
            found[name] = (dtype, output.get_partial_shape().rank.get_length())
    check_outputs(found, where="OpenVINO model")
    types = {op.get_type_name() for op in ov_model.get_ops()}
    if head == "one2one":
        if not any(t.startswith("TopK") for t in types):
            raise ValueError("The OpenVINO model has no TopK op: the one-to-one selection did "
                             "not convert to OpenVINO's own.")
    elif not any(t.startswith("NonMaxSuppression") or t.startswith("NMS") for t in types):
        raise ValueError("The OpenVINO model has no NonMaxSuppression op: the NMS did not "
                         "convert to OpenVINO's own.")


def set_metadata(ov_model, metadata):
    """Stores `metadata` (and the class names) in `ov_model`'s runtime info."""
    ov_model.set_rt_info(metadata.to_json(), list(METADATA_PATH))
    ov_model.set_rt_info(" ".join(name.replace(" ", "_") for name in metadata.class_names),
                         list(LABELS_PATH))


def write(ov_model, metadata, path, weights):
    """Writes `ov_model` with `metadata` as the IR `path` + `weights` (`.bin` first)."""
    with stage(TARGET, "write metadata"):
        set_metadata(ov_model, metadata)
    with stage(TARGET, "write"):
        import openvino as ov

        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".edgedet-openvino-", dir=path.parent) as folder:
            xml = Path(folder) / "model.xml"
            ov.save_model(ov_model, str(xml), compress_to_fp16=False)
            # The .xml names its weights by position only, so the .bin can be renamed.
            atomic_write_bytes(weights, xml.with_suffix(".bin").read_bytes())
            atomic_write_bytes(path, xml.read_bytes())
