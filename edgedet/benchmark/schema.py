"""`benchmark.json`: the documented layout, as a JSON Schema (draft 2020-12).

Every field is documented here (its `description`) and every documented
field is required, so a document that validates has all of them. A field
whose value cannot be measured is `null`, never missing. Times are in
milliseconds (`*_ms`) or seconds (`*_seconds`), memory in MiB (`*_mb`).

Top level: `schema_version` (2), `edgedet_version`, `created`, `command`,
`settings`, `machine`, `results` (one per artifact, in command-line order).

A change to this layout that breaks a reader bumps `SCHEMA_VERSION`.
Version 2: `results[].runtime` holds the artifact kind under the export
target's name (`savedmodel`, `onnx`, `tflite`), where version 1 held
`tf_saved_model`, `onnxrt`, `litert` (`edgedet.runtimes.kinds.RENAMED`).
"""

SCHEMA_VERSION = 2

_NUMBER = {"type": "number"}
_NULLABLE_NUMBER = {"type": ["number", "null"]}
_NULLABLE_STRING = {"type": ["string", "null"]}
_STAT_NAMES = ("median", "p90", "p99", "min", "max", "mean")


def _object(properties, description, nullable=False, extra=None):
    """A closed object schema whose every property is required."""
    schema = {
        "type": ["object", "null"] if nullable else "object",
        "description": description,
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }
    schema.update(extra or {})
    return schema


def _field(base, description):
    return {**base, "description": description}


STATS = _object(
    {name: _field(_NUMBER, f"{name} of the timed runs, in milliseconds.") for name in _STAT_NAMES},
    "Statistics of the timed runs (ms). Percentiles interpolate linearly (numpy's default).",
)

#: Stages of the end-to-end graph timed separately for the Keras reference.
STAGE_NAMES = ("letterbox", "network", "decode", "nms")

STAGES = _object(
    {
        "letterbox": _field(STATS, "Resize and pad of the uint8 batch to the model input."),
        "network": _field(STATS, "The network (raw head), float32."),
        "decode": _field(STATS, "DFL decode to boxes and class scores."),
        "nms": _field(STATS, "NMS, un-letterbox and output box format."),
    },
    "Per-stage latency of one batch, each stage run as its own TensorFlow function "
    "(so the sum is slightly above the fused graph's latency); null where the runtime "
    "runs the graph as one call (see `stages_reason`).",
    nullable=True,
)

BATCH = _object(
    {
        "batch_size": {"type": "integer", "minimum": 1, "description": "Images per call."},
        "runs": {"type": "integer", "minimum": 1, "description": "Timed calls."},
        "warmup": {"type": "integer", "minimum": 0, "description": "Untimed calls before."},
        "first_call_ms": _field(
            _NUMBER, "Latency of the very first call at this batch size (graph tracing, "
                     "tensor allocation): the cold start a service sees once."),
        "latency_ms": _field(
            STATS, "Wall time of `runtime.predict(batch)` per call: input checks, the graph, "
                   "and conversion to `Detections`."),
        "graph_ms": _field(
            STATS, "Time spent in the graph alone (`runtime.last_inference_seconds`)."),
        "throughput_ips": _field(
            _NUMBER, "Images per second over the timed runs: batch_size * runs / total time."),
        "stages": STAGES,
    },
    "One batch size.",
)

MEMORY = _object(
    {
        "rss_before_load_mb": _field(
            _NULLABLE_NUMBER, "Resident memory before the runtime library and the artifact "
                              "were loaded (Python, numpy and the input images)."),
        "rss_after_load_mb": _field(_NULLABLE_NUMBER, "Resident memory after loading."),
        "peak_rss_mb": _field(
            _NULLABLE_NUMBER, "Peak resident memory of the measuring process over its whole "
                              "life (Linux VmHWM; macOS ru_maxrss; Windows peak working set)."),
    },
    "Memory of the process that measured this artifact (one process per artifact).",
    nullable=True,
)

THREADS = _object(
    {
        "requested": {"type": ["integer", "null"], "minimum": 1,
                      "description": "--threads, or null for the runtime's default."},
        "applied_via": _field(
            _NULLABLE_STRING, "The setting that received it (e.g. "
                              "`SessionOptions.intra_op_num_threads`); null when not requested."),
    },
    "Intra-op thread setting.",
)

RESULT = _object(
    {
        "name": {"type": "string", "description": "Short label (file or folder name)."},
        "artifact": {"type": "string", "description": "Path as given."},
        "runtime": _field(_NULLABLE_STRING,
                          "Artifact kind (edgedet.runtimes.kinds): savedmodel, onnx, tflite, "
                          "openvino, trt, keras, bundle (schema 1: tf_saved_model, onnxrt, "
                          "litert)."),
        "target": _field(_NULLABLE_STRING, "Export target from the artifact's metadata."),
        "precision": _field(_NULLABLE_STRING, "fp32, fp16 or int8 (metadata)."),
        "inference_precision": _field(
            _NULLABLE_STRING, "What the runtime computed at: the artifact's precision, or "
                              "bf16/fp16 where the runtime lowers it (OpenVINO's CPU default "
                              "on CPUs with bf16; EDGEDET_OPENVINO_PRECISION=f32 forces fp32)."),
        "model_size": {"type": ["integer", "null"],
                       "description": "Square model input side (metadata letterbox size)."},
        "num_classes": {"type": ["integer", "null"], "description": "Classes (metadata)."},
        "size_bytes": {"type": ["integer", "null"],
                       "description": "Artifact size on disk (all files of a folder)."},
        "load_seconds": _field(
            _NULLABLE_NUMBER, "Opening and loading the artifact (runtime import excluded)."),
        "runtime_import_seconds": _field(
            _NULLABLE_NUMBER, "Importing the runtime library (TensorFlow, ONNX Runtime, LiteRT)."),
        "execution_provider": _field(
            _NULLABLE_STRING, "ONNX Runtime: the provider that runs the session (first of "
                              "`execution_providers`); null for other runtimes."),
        "execution_providers": {
            "type": ["array", "null"], "items": {"type": "string"},
            "description": "ONNX Runtime: the session's providers in priority order.",
        },
        "threads": THREADS,
        "memory": MEMORY,
        "batches": {"type": "array", "items": BATCH,
                    "description": "One entry per --batch size; empty on error."},
        "stages_reason": _field(
            _NULLABLE_STRING, "Why per-stage timing is null for this runtime; null when measured."),
        "error": _field(_NULLABLE_STRING, "Why this artifact could not be measured, or null."),
    },
    "One artifact.",
)

IMAGES = _object(
    {
        "source": {"type": "string", "description": "--images: a folder or a synthetic: spec."},
        "count": {"type": "integer", "minimum": 1, "description": "Images used."},
        "sizes": {"type": "array",
                  "items": {"type": "array", "items": {"type": "integer"},
                            "minItems": 2, "maxItems": 2},
                  "description": "Distinct [height, width] of the images, in first-seen order."},
        "unreadable": {
            "type": "array",
            "items": _object({
                "image": {"type": "string", "description": "The file (odd bytes escaped)."},
                "reason": {"type": "string", "description": "Why it could not be read."},
            }, "One unreadable image."),
            "description": "Images of --images that could not be read (file and reason); they "
                           "were left out and the others measured. The command exits with 3."},
    },
    "The input images. A batch holds images of one size; batches cycle through the sizes.",
)

SETTINGS = _object(
    {
        "batch_sizes": {"type": "array", "items": {"type": "integer", "minimum": 1},
                        "minItems": 1, "description": "--batch."},
        "runs": {"type": "integer", "minimum": 1, "description": "--runs (timed calls)."},
        "warmup": {"type": "integer", "minimum": 0, "description": "--warmup (untimed calls)."},
        "threads": {"type": ["integer", "null"], "description": "--threads, or null."},
        "images": IMAGES,
    },
    "How the benchmark was run.",
)

MACHINE = _object(
    {
        "cpu": {"type": "string", "description": "CPU model name."},
        "architecture": {"type": "string", "description": "e.g. x86_64, arm64."},
        "cpu_class": {"type": "string", "enum": ["vnni", "avx512", "avx2", "arm"],
                      "description": "INT8 kernel class (edgedet.cpu): decides whether "
                                     "ONNX Runtime's U8S8 kernels can saturate."},
        "int8_flags": {"type": "array", "items": {"type": "string"},
                       "description": "CPU flags that matter for INT8 (avx2, avx512_vnni, "
                                      "asimddp, ...)."},
        "physical_cores": {"type": ["integer", "null"], "description": "Physical cores."},
        "logical_cores": {"type": ["integer", "null"], "description": "Logical CPUs."},
        "usable_cores": {"type": ["integer", "null"],
                         "description": "CPUs this process may run on (affinity / cgroup mask)."},
        "memory_total_mb": _field(_NULLABLE_NUMBER, "Physical memory."),
        "load_average": {"type": ["array", "null"], "items": {"type": "number"},
                         "description": "1, 5 and 15 minute load averages at the start "
                                        "(a busy machine makes latencies noisy)."},
        "os": {"type": "string", "description": "platform.platform()."},
        "python": {"type": "string", "description": "Python version."},
        "libraries": {"type": "object", "additionalProperties": _NULLABLE_STRING,
                      "description": "Installed versions of edgedet, numpy, tensorflow, keras, "
                                     "onnx, onnxruntime, ai-edge-litert, tf2onnx (null: absent)."},
    },
    "The machine the numbers were measured on.",
)

SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "edgedet benchmark.json",
    **_object(
        {
            "schema_version": {"const": SCHEMA_VERSION,
                               "description": "Layout version of this document."},
            "edgedet_version": {"type": "string", "description": "edgedet that measured."},
            "created": {"type": "string", "description": "UTC time, ISO 8601."},
            "command": _field(_NULLABLE_STRING, "The command line that produced it, if any."),
            "settings": SETTINGS,
            "machine": MACHINE,
            "results": {"type": "array", "items": RESULT,
                        "description": "One entry per artifact, in the order given."},
        },
        "Latency, throughput and memory of edgedet artifacts.",
    ),
}


def schema():
    """The JSON Schema of `benchmark.json`, as a dict."""
    return SCHEMA


def validate(document):
    """Validates a parsed `benchmark.json` (needs `jsonschema`).

    Raises:
        jsonschema.ValidationError: naming the first offending field.
    """
    import jsonschema

    jsonschema.validate(document, SCHEMA, cls=jsonschema.Draft202012Validator)
