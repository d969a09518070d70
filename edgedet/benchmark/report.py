"""Human-readable views of a `benchmark.json` document: a terminal table and Markdown."""

COLUMNS = ("artifact", "runtime", "precision", "provider", "batch", "load s", "median ms",
           "p90 ms", "p99 ms", "min ms", "img/s", "peak MB")


def rows(document):
    """One row (tuple of str, in `COLUMNS` order) per artifact and batch size."""
    table = []
    for result in document["results"]:
        provider = result["execution_provider"] or "-"
        if provider.endswith("ExecutionProvider"):
            provider = provider[: -len("ExecutionProvider")]
        memory = result["memory"] or {}
        head = (result["name"], result["runtime"] or "-", result["precision"] or "-", provider)
        if result["error"]:
            table.append(head + ("-", "FAILED") + ("-",) * 6)
            continue
        for entry in result["batches"]:
            latency = entry["latency_ms"]
            table.append(head + (
                str(entry["batch_size"]),
                _number(result["load_seconds"], 3),
                _number(latency["median"], 2),
                _number(latency["p90"], 2),
                _number(latency["p99"], 2),
                _number(latency["min"], 2),
                _number(entry["throughput_ips"], 1),
                _number(memory.get("peak_rss_mb"), 0),
            ))
    return table


def stage_rows(document):
    """`(artifact, batch, letterbox, network, decode, nms)` median ms, where measured."""
    table = []
    for result in document["results"]:
        for entry in result["batches"]:
            if entry["stages"]:
                table.append((result["name"], str(entry["batch_size"])) + tuple(
                    _number(entry["stages"][name]["median"], 2)
                    for name in ("letterbox", "network", "decode", "nms")
                ))
    return table


STAGE_COLUMNS = ("artifact", "batch", "letterbox ms", "network ms", "decode ms", "nms ms")


def format_table(document):
    """The terminal table, plus the stage table and errors when there are any."""
    text = _plain_table(rows(document), COLUMNS)
    stages = stage_rows(document)
    if stages:
        text += "\n\nStages (median ms, each stage its own TensorFlow function):\n"
        text += _plain_table(stages, STAGE_COLUMNS)
    errors = [(r["name"], r["error"]) for r in document["results"] if r["error"]]
    for name, error in errors:
        text += f"\n\n{name}: {error}"
    return text


def to_markdown(document, title="Benchmarks", notes=(), level=2):
    """A Markdown section (machine, versions, command, tables) for `docs/benchmarks.md`.

    Args:
        document: the `benchmark.json` dict.
        title: str. The heading. Defaults to `"Benchmarks"`.
        level: int. Markdown level of the heading (2 is `##`). Defaults to 2.
        notes: sequence of str. Extra bullet points under the settings.

    Returns:
        str.
    """
    machine, settings = document["machine"], document["settings"]
    libraries = ", ".join(f"{k} {v}" for k, v in machine["libraries"].items() if v)
    images = settings["images"]
    sizes = ", ".join(f"{w}x{h}" for h, w in images["sizes"])
    lines = [
        f"{'#' * level} {title}",
        "",
        f"Measured {document['created']} with edgedet {document['edgedet_version']}.",
        "",
        f"- Machine: {machine['cpu']}, {machine['physical_cores']} physical / "
        f"{machine['logical_cores']} logical cores ({machine['usable_cores']} usable), "
        f"{_number(machine['memory_total_mb'] / 1024 if machine['memory_total_mb'] else None, 1)}"
        f" GiB RAM, {machine['os']}; load average at start: {machine['load_average']}.",
        f"- INT8 class {machine['cpu_class']}; CPU flags: "
        f"{', '.join(machine['int8_flags']) or 'unknown'}.",
        f"- Python {machine['python']}; {libraries}.",
        f"- Inputs: {images['count']} image(s) of {sizes} (W x H) from `{images['source']}`; "
        f"batch sizes {settings['batch_sizes']}, {settings['warmup']} warm-up + "
        f"{settings['runs']} timed calls per batch size, threads: "
        f"{settings['threads'] if settings['threads'] is not None else 'runtime default'}.",
        "- Latency is the wall time of `runtime.predict(batch)` (letterbox, network, decode, "
        "NMS and un-letterbox all inside the artifact); peak MB is the measuring process's "
        "peak resident memory (each artifact runs in its own process).",
        *[f"- {note}" for note in notes],
    ]
    if document["command"]:
        lines += ["", "Command:", "", "```", document["command"], "```"]
    lines += ["", _markdown_table(rows(document), COLUMNS, 4)]
    stages = stage_rows(document)
    if stages:
        lines += ["", "Stages of the Keras reference (median ms, each stage its own "
                  "TensorFlow function, so they add up to slightly more than the fused graph):",
                  "", _markdown_table(stages, STAGE_COLUMNS, 1)]
    for result in document["results"]:
        if result["error"]:
            lines += ["", f"- `{result['name']}` failed: {result['error']}"]
    return "\n".join(lines) + "\n"


def _number(value, digits):
    return "-" if value is None else f"{value:.{digits}f}"


def _plain_table(table, headers):
    widths = [max(len(str(x)) for x in column) for column in zip(headers, *table)]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join([line.format(*headers), line.format(*("-" * w for w in widths))]
                     + [line.format(*row) for row in table])


def _markdown_table(table, headers, text_columns):
    """Text columns left-aligned, numbers right-aligned."""
    lines = ["| " + " | ".join(headers) + " |",
             "|" + "|".join("---" if i < text_columns else "--:" for i in range(len(headers)))
             + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in table]
    return "\n".join(lines)
