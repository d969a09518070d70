"""`edgedet benchmark`: latency, throughput and memory of artifacts."""

import shlex
import time

import click

from edgedet.cli.common import EXIT_SOME_INPUTS_FAILED, user_errors

DEFAULT_IMAGES = "synthetic:shapes?n=8&seed=0&size=720x1280"  # = edgedet.benchmark.DEFAULT_IMAGES


def _check_artifacts(ctx, param, values):
    from edgedet.benchmark.run import check_artifact

    for value in values:
        try:
            check_artifact(value)
        except (ValueError, FileNotFoundError) as error:
            raise click.BadParameter(str(error), ctx=ctx, param=param) from error
    return values


def _check_images(ctx, param, value):
    from edgedet.benchmark.run import list_inputs

    try:
        list_inputs(value, max_images=1)
    except (ValueError, FileNotFoundError) as error:
        raise click.BadParameter(f"{value!r}: {error}", ctx=ctx, param=param) from error
    return value


def _parse_batch(ctx, param, value):
    from edgedet.benchmark.run import parse_batch_sizes

    try:
        return parse_batch_sizes(value)
    except ValueError as error:
        raise click.BadParameter(str(error), ctx=ctx, param=param) from error


def _command_line(artifacts, images, batch, runs, warmup, threads, max_images):
    parts = ["edgedet", "benchmark", *map(str, artifacts), "--images", images,
             "--batch", ",".join(map(str, batch)), "--runs", str(runs), "--warmup", str(warmup)]
    if threads is not None:
        parts += ["--threads", str(threads)]
    if max_images is not None:
        parts += ["--max-images", str(max_images)]
    return shlex.join(parts)


@click.command("benchmark")
@click.argument("artifacts", nargs=-1, required=True, metavar="ARTIFACT...",
                type=click.Path(exists=True), callback=_check_artifacts)
@click.option("--images", "-i", default=DEFAULT_IMAGES, show_default=True,
              callback=_check_images, metavar="DIR|SPEC",
              help="A folder of images, one image, or a synthetic spec "
                   "'synthetic:shapes?n=8&seed=0&size=720x1280' (size is HxW).")
@click.option("--batch", "-b", default="1", show_default=True, callback=_parse_batch,
              metavar="SIZES", help="Batch sizes, comma-separated, e.g. 1,4.")
@click.option("--runs", "-n", type=click.IntRange(min=1), default=20, show_default=True,
              help="Timed calls per batch size.")
@click.option("--warmup", type=click.IntRange(min=0), default=3, show_default=True,
              help="Untimed calls per batch size before the timed ones.")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="Intra-op threads of each runtime (ONNX Runtime session options, TensorFlow "
                   "threading config, LiteRT num_threads). Default: each runtime's own.")
@click.option("--max-images", type=click.IntRange(min=1), default=None,
              help="Images read from a folder at most. Default: 16.")
@click.option("--timeout", type=click.FloatRange(min=1), default=None,
              help="Seconds one artifact may take before it is stopped and marked failed.")
@click.option("--out", "-o", type=click.Path(file_okay=False), default=None,
              help="Folder for benchmark.json and benchmark.png. Default: print the table only.")
@click.option("--force", is_flag=True, help="Replace benchmark.json / benchmark.png in --out.")
def benchmark_command(artifacts, images, batch, runs, warmup, threads, max_images, timeout, out,
                      force):
    """Measure load time, latency, throughput and memory of ARTIFACT...

    ARTIFACT is a SavedModel folder, an .onnx, .tflite or .keras file. Each is
    measured in its own process: load time, latency per batch (median, p90,
    p99, min) after warm-up, images per second, the process's peak resident
    memory and, for ONNX Runtime, the execution provider. For a .keras model,
    the letterbox, network, decode and NMS stages are also timed separately.

    Batch sizes whose input batches cannot fit in the memory available are
    refused before anything is measured, with the estimate. An image that
    cannot be read is left out and listed (benchmark.json
    settings.images.unreadable); the others are measured.

    Exit code: 0 all measured, 1 an error or an artifact could not be
    measured, 3 some images could not be read (the rest were measured).

    \b
    Examples:
      edgedet benchmark out/model.onnx out/model.tflite --batch 1,4
      edgedet benchmark out/*.onnx --images photos/ --threads 2 --out bench/
    """
    started = time.perf_counter()
    with user_errors():
        from edgedet.benchmark.report import format_table
        from edgedet.benchmark.run import DEFAULT_MAX_IMAGES, check_outputs, run_benchmark

        if out is not None:
            check_outputs(out, force, protected=[*artifacts, images])

        def progress(message):
            click.echo(f"[{time.perf_counter() - started:6.1f}s] {message}", err=True)

        document = run_benchmark(
            list(artifacts), images=images, batch_sizes=batch, runs=runs, warmup=warmup,
            threads=threads, max_images=max_images or DEFAULT_MAX_IMAGES, timeout=timeout,
            progress=progress,
            command=_command_line(artifacts, images, batch, runs, warmup, threads, max_images),
        )
        click.echo(format_table(document))
        if out is not None:
            from edgedet.benchmark.run import write_outputs

            json_path, chart_path = write_outputs(document, out, force)
            click.echo(f"wrote {json_path} and {chart_path}", err=True)
    failed = [r["name"] for r in document["results"] if r["error"]]
    if failed:
        raise click.ClickException(f"{len(failed)} artifact(s) could not be measured: "
                                   f"{', '.join(failed)} (see the errors above).")
    unreadable = document["settings"]["images"]["unreadable"]
    if unreadable:
        click.echo(f"{len(unreadable)} image(s) could not be read and were left out: "
                   + ", ".join(u["image"] for u in unreadable), err=True)
        click.get_current_context().exit(EXIT_SOME_INPUTS_FAILED)
