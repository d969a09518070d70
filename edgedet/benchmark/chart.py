"""`benchmark.png`: median latency per batch, by artifact and batch size.

One group of bars per artifact, one bar per batch size; the whisker reaches
the p90 latency. Drawn with matplotlib's object API (no pyplot global state)
on the Agg backend, so it works without a display.
"""

import io


def render_chart(document, dpi=120):
    """Renders the bar chart of a `benchmark.json` document as PNG bytes.

    Args:
        document: dict. The document `run_benchmark` returns.
        dpi: int. Resolution. Defaults to 120.

    Returns:
        bytes of a PNG image.

    Raises:
        ImportError: matplotlib is not installed (naming the package).
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ImportError(
            "The benchmark chart needs matplotlib: pip install matplotlib"
        ) from error

    results = document["results"]
    batch_sizes = document["settings"]["batch_sizes"]
    width = 0.8 / max(1, len(batch_sizes))
    figure = Figure(figsize=(max(6.0, 1.6 * len(results) + 2.0), 4.5), dpi=dpi)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    top = 0.0
    for slot, batch_size in enumerate(batch_sizes):
        xs, medians, whiskers = [], [], []
        for position, result in enumerate(results):
            entry = next((b for b in result["batches"] if b["batch_size"] == batch_size), None)
            if entry is None:
                continue
            latency = entry["latency_ms"]
            xs.append(position + (slot - (len(batch_sizes) - 1) / 2) * width)
            medians.append(latency["median"])
            whiskers.append(max(0.0, latency["p90"] - latency["median"]))
            top = max(top, latency["p90"])
        if xs:
            axes.bar(xs, medians, width=width * 0.95, label=f"batch {batch_size}",
                     yerr=[[0.0] * len(whiskers), whiskers], capsize=3)
    for position, result in enumerate(results):
        if result["error"]:
            axes.text(position, 0, "failed", ha="center", va="bottom", color="tab:red")
    axes.set_xticks(range(len(results)))
    axes.set_xticklabels([_label(r) for r in results], fontsize=8)
    axes.set_ylabel("latency per batch (ms): median, whisker to p90")
    axes.set_ylim(0, top * 1.1 if top > 0 else 1.0)
    machine = document["machine"]
    axes.set_title(
        f"edgedet benchmark: {machine['cpu']} ({machine['usable_cores']} usable cores)",
        fontsize=9,
    )
    if batch_sizes and any(r["batches"] for r in results):
        axes.legend(fontsize=8)
    axes.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _label(result):
    details = " ".join(str(v) for v in (result["runtime"], result["precision"]) if v)
    return f"{result['name']}\n{details}" if details else result["name"]
