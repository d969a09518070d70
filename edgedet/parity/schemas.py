"""The JSON Schemas of the files a parity check writes, shipped in the package.

- `parity.schema.json`: `parity.json`, the judged report (`report_json`).
- `run.schema.json`: `run.json`, the run record before any threshold
  (`record.save_run`); its boxes are in the `.npz` beside it.

Other tools (a CI gate, a dashboard) can validate the files with any JSON
Schema 2020-12 validator; `validate` uses `jsonschema` (a dev dependency,
not needed to run a check).
"""

import importlib.resources
import json

REPORT_SCHEMA = "parity.schema.json"
RUN_SCHEMA = "run.schema.json"


def schema(name):
    """The JSON Schema `name` (`REPORT_SCHEMA` or `RUN_SCHEMA`), as a dict."""
    text = importlib.resources.files("edgedet.parity").joinpath(name).read_text("utf-8")
    return json.loads(text)


def validate(document, name):
    """Validates a parsed document against the schema `name` (needs `jsonschema`).

    Raises:
        jsonschema.ValidationError: naming the first offending field.
    """
    import jsonschema

    jsonschema.validate(document, schema(name), cls=jsonschema.Draft202012Validator)
