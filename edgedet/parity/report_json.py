"""`parity.json`: the machine-readable report, versioned by `schema_version`.

The document is described by the JSON Schema shipped beside this module
(`parity.schema.json`, `schema()` returns it). Top-level keys:

- `schema_version` (2: added the 95th-percentile pair metrics and
  thresholds, and `labels_note`), `edgedet_version`, `created` (UTC ISO 8601),
  `passed` (bool).
- `reference`: `name`, `class_names`, `runs` (one per distinct inference
  config among the artifacts: `inference`, `latency_ms`, `labels_map`
  with the `confidence_threshold` and `max_detections` it was computed at).
- `matching`: the IoU threshold and the rule in words.
- `images`: `source`, `count`, `names`, `shapes` (`[height, width]`).
- `labels`: where real labels came from, or null; `labels_note`: the
  confidence threshold of the label mAP in words, and how to get a
  validation-style figure (null without labels).
- `latency`: what the latency numbers mean and the machine they came from.
- `counts`: artifacts, passed, failed, skipped.
- `artifacts`: per artifact `name`, `path`, `target`, `precision`,
  `status` (`passed` / `failed` / `skipped`), `reason` (why skipped),
  `reference_run`, `thresholds`, `summary` (metrics), `checks` (each
  threshold with its value and verdict), `latency_ms` (`median`, `p90`),
  `failing_images` (worst first) and `images` (per-image counts; flagged
  images also list their `missing_detections` and `extra_detections`).

A new major change to this layout bumps `schema_version`.
"""

import json

from edgedet.parity import schemas

SCHEMA_FILE = schemas.REPORT_SCHEMA


def render_json(result):
    """Returns the `parity.json` text of a `ParityResult`."""
    return json.dumps(result.to_dict(), indent=2, allow_nan=False, ensure_ascii=False) + "\n"


def schema():
    """The JSON Schema of `parity.json`, as a dict."""
    return schemas.schema(SCHEMA_FILE)


def validate(document):
    """Validates a parsed `parity.json` against the schema (needs `jsonschema`).

    Raises:
        jsonschema.ValidationError: naming the first offending field.
    """
    schemas.validate(document, SCHEMA_FILE)
