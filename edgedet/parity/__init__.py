"""Parity: detection-level agreement of exported artifacts with the Keras reference.

```python
from edgedet.parity import run_parity, write_reports

result = run_parity(model, ["out/model.onnx", "out/model.tflite"], "images/")
write_reports(result, "parity/")
assert result, result.summary_text()
```

Modules: `matching` (the matching rule), `metrics` (agreement numbers,
COCO mAP via pycocotools), `thresholds` (defaults per precision and
overrides), `run` (`run_parity`), `result` (`ParityResult`), and one
module per report (`report_json`, `report_md`, `report_junit`,
`report_html`; `reports.write_reports` writes them all).
"""

from edgedet.parity.inputs import ParityInputError
from edgedet.parity.matching import ImageMatch, match_detections
from edgedet.parity.metrics import coco_map, summarize_matches
from edgedet.parity.reports import write_reports
from edgedet.parity.result import ArtifactResult, ParityResult
from edgedet.parity.run import run_parity
from edgedet.parity.thresholds import DEFAULTS, Thresholds

__all__ = [
    "DEFAULTS",
    "ArtifactResult",
    "ImageMatch",
    "ParityInputError",
    "ParityResult",
    "Thresholds",
    "coco_map",
    "match_detections",
    "run_parity",
    "summarize_matches",
    "write_reports",
]
