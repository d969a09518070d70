"""`edgedet benchmark`: latency, throughput and memory of artifacts.

Each artifact is measured in its own Python process
(`python -m edgedet.benchmark.measure`), so one runtime's memory and thread
pools never affect the next. The result is a `benchmark.json` document (its
fields are documented in `edgedet.benchmark.schema`), a terminal table and a
PNG bar chart.

Importing this package is cheap: TensorFlow, ONNX Runtime, LiteRT and
matplotlib are imported only where they are used.

Example:

```python
from edgedet.benchmark import run_benchmark, write_outputs, format_table

document = run_benchmark(["out/model.onnx", "out/model.tflite"], batch_sizes=[1, 4])
print(format_table(document))
write_outputs(document, "bench/")
```
"""

from edgedet.benchmark.report import format_table, to_markdown
from edgedet.benchmark.run import (
    DEFAULT_IMAGES,
    check_outputs,
    parse_batch_sizes,
    run_benchmark,
    write_outputs,
)
from edgedet.benchmark.schema import SCHEMA_VERSION, schema, validate

__all__ = [
    "DEFAULT_IMAGES",
    "SCHEMA_VERSION",
    "check_outputs",
    "format_table",
    "parse_batch_sizes",
    "run_benchmark",
    "schema",
    "to_markdown",
    "validate",
    "write_outputs",
]
