"""Parity: detection-level agreement of exported artifacts with the Keras reference.

```python
from edgedet.parity import collect, compare, load_run, run_parity, save_run, write_reports

result = run_parity(model, ["out/model.onnx", "out/model.tflite"], "images/")
write_reports(result, "parity/")
assert result, result.summary_text()

# The same in two steps, the record saved to compare again with other thresholds:
record = collect(model, ["out/model.onnx"], "images/")
save_run(record, "parity/run.json")
strict = compare(load_run("parity/run.json"), thresholds={"*": {"min_recall": 0.99}})
```

Modules: `run` (`collect`, `run_parity`), `record` (`RunRecord`,
`save_run`, `load_run`), `compare` (`compare`: matching, metrics and
thresholds on a record), `result` (`ParityResult`, plain data), and one
module per report (`report_json`, `report_md`, `report_junit`,
`report_html`; `reports.write_reports` writes them all). The matching
rule, the metrics and the thresholds live in `edgedet.matching`,
`edgedet.metrics` and `edgedet.thresholds` (training and calibration use
them too); their main names are re-exported here.
"""

from edgedet.matching import ImageMatch, match_detections
from edgedet.metrics import coco_map, summarize_matches
from edgedet.parity.compare import compare
from edgedet.parity.inputs import ParityInputError
from edgedet.parity.record import RunRecord, load_run, save_run
from edgedet.parity.reports import write_reports
from edgedet.parity.result import ArtifactResult, ParityResult
from edgedet.parity.run import collect, run_parity
from edgedet.thresholds import DEFAULTS, Thresholds

__all__ = [
    "DEFAULTS",
    "ArtifactResult",
    "ImageMatch",
    "ParityInputError",
    "ParityResult",
    "RunRecord",
    "Thresholds",
    "coco_map",
    "collect",
    "compare",
    "load_run",
    "match_detections",
    "run_parity",
    "save_run",
    "summarize_matches",
    "write_reports",
]
