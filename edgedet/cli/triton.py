"""`edgedet triton`: model repositories, a local server and a load test for Triton."""

import json
import pathlib
import time

import click

from edgedet.cli.common import user_errors


def _sizes(ctx, param, values):
    sizes = []
    for value in values:
        try:
            height, width = (int(v) for v in value.lower().split("x"))
            if min(height, width) < 1:
                raise ValueError
        except ValueError:
            raise click.BadParameter(f"{value!r}: expected HxW, e.g. 480x640.",
                                     ctx=ctx, param=param) from None
        sizes.append((height, width))
    return tuple(sizes)


@click.group("triton")
def triton_group():
    """Serve with NVIDIA Triton Inference Server.

    \b
    Examples:
      edgedet triton repo artifacts/shapes.onnx --out repo/
      edgedet triton serve artifacts/shapes.onnx
      edgedet triton bench 127.0.0.1:8000 --model shapes --clients 4
    """


@triton_group.command("repo")
@click.argument("artifact", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", "-o", required=True, type=click.Path(), help="Repository folder to write.")
@click.option("--name", default=None, help="Model name. Default: the ONNX file's stem.")
@click.option("--engine", type=click.Path(exists=True, dir_okay=False), default=None,
              help="A TensorRT .engine built by edgedet (with its .json sidecar), served as "
                   "<name>_trt (platform tensorrt_plan).")
@click.option("--backend", type=click.Choice(["onnxruntime", "python"]), default="onnxruntime",
              show_default=True,
              help="onnxruntime: Triton's ONNX Runtime backend (NGC container). python: ONNX "
                   "Runtime inside the Python backend (any server, e.g. `edgedet triton serve`).")
@click.option("--accelerator", type=click.Choice(["cpu", "cuda", "tensorrt"]), default="cpu",
              show_default=True,
              help="cpu: CPU instances. cuda: GPU instances. tensorrt: GPU instances with ONNX "
                   "Runtime's TensorRT provider (engine cache on).")
@click.option("--fp16", is_flag=True,
              help="TensorRT provider in FP16 (with --accelerator tensorrt).")
@click.option("--max-batch", type=click.IntRange(min=0), default=8, show_default=True,
              help="max_batch_size: the largest batch the dynamic batcher forms; 0: an "
                   "explicit batch dimension and no Triton batching.")
@click.option("--instances", type=click.IntRange(min=1), default=1, show_default=True,
              help="Model instances per device (instance_group count).")
@click.option("--queue-delay-us", type=click.IntRange(min=0), default=2000, show_default=True,
              help="Dynamic batcher: longest wait for a fuller batch, microseconds.")
@click.option("--warmup", "warmup_sizes", multiple=True, callback=_sizes, metavar="HxW",
              help="Warm-up image size (repeatable). Default: 480x640.")
@click.option("--force", is_flag=True, help="Replace the repository if it exists.")
def repo_command(artifact, out, name, engine, backend, accelerator, fp16, max_batch, instances,
                 queue_delay_us, warmup_sizes, force):
    """Write a Triton model repository for an exported ONNX ARTIFACT.

    The repository holds OUT/NAME/config.pbtxt and OUT/NAME/1/model.onnx
    (and OUT/NAME_trt/ for --engine): input `images` uint8 [-1, -1, 3] with
    dynamic batching (Triton batches requests of equal image size), the four
    contract outputs, warm-up, and the edgedet metadata as parameters.
    """
    with user_errors():
        from edgedet.exporters.triton_repo import RepoOptions, write_repository

        options = RepoOptions(
            max_batch_size=max_batch, instances=instances, backend=backend,
            accelerator=None if accelerator == "cpu" else accelerator, fp16=fp16,
            queue_delay_us=queue_delay_us,
            **({"warmup_sizes": warmup_sizes} if warmup_sizes else {}))
        path = write_repository(artifact, out, name=name, engine=engine, force=force,
                                options=options)
    for config in sorted(path.glob("*/config.pbtxt")):
        click.echo(f"wrote {config.parent}/ (model '{config.parent.name}')")
    click.echo(f"Serve it: docker run --rm -p 8000:8000 -p 8001:8001 -p 8002:8002 "
               f"-v {path.resolve()}:/models nvcr.io/nvidia/tritonserver:<yy.mm>-py3 "
               "tritonserver --model-repository=/models")


@triton_group.command("serve")
@click.argument("source", type=click.Path(exists=True))
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--http-port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option("--grpc-port", type=click.IntRange(1, 65535), default=8001, show_default=True)
@click.option("--metrics-port", type=click.IntRange(1, 65535), default=8002, show_default=True)
@click.option("--max-batch", type=click.IntRange(min=1), default=8, show_default=True,
              help="For an ONNX SOURCE: max_batch_size of the repository written for it.")
@click.option("--timeout", type=click.FloatRange(min=1), default=120, show_default=True,
              help="Seconds to wait for the server to be ready.")
def serve_command(source, host, http_port, grpc_port, metrics_port, max_batch, timeout):
    """Serve SOURCE with the tritonserver bundled in nvidia-pytriton until Ctrl-C.

    SOURCE is a Triton repository written with `--backend python`, or an
    edgedet .onnx (a Python-backend repository is written for it in a
    temporary folder). The bundled server has only the Python backend; on a
    GPU server run NVIDIA's Triton container instead (see the README).
    """
    import signal
    import tempfile

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    # SIGTERM (docker stop, kill) and SIGINT (even when started in the
    # background, where SIGINT is ignored by default) stop the server cleanly.
    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, interrupt)
    with user_errors():
        from edgedet.exporters.triton_repo import RepoOptions, write_repository
        from edgedet.triton_server import TritonServer

        with tempfile.TemporaryDirectory(prefix="edgedet-repo-") as tmp:
            repo = pathlib.Path(source)
            if repo.is_file():
                options = RepoOptions(backend="python", max_batch_size=max_batch)
                repo = write_repository(source, pathlib.Path(tmp) / "repo", options=options)
            server = TritonServer(repo, host=host, http_port=http_port, grpc_port=grpc_port,
                                  metrics_port=metrics_port, startup_timeout=timeout)
            with server:
                models = sorted(p.parent.name for p in repo.glob("*/config.pbtxt"))
                click.echo(f"Triton is serving {models} from {repo}\n"
                           f"  HTTP    {server.http_url}\n  gRPC    {server.grpc_url}\n"
                           f"  metrics {host}:{server.metrics_port}/metrics\n"
                           "Ctrl-C stops it.", err=True)
                try:
                    while server.process is not None and server.process.poll() is None:
                        time.sleep(0.5)
                except KeyboardInterrupt:
                    click.echo("stopping", err=True)
                    return
                raise click.ClickException(f"tritonserver stopped:\n{server.log()[-3000:]}")


@triton_group.command("bench")
@click.argument("url")
@click.option("--model", "-m", required=True, help="Model name on the server.")
@click.option("--protocol", type=click.Choice(["http", "grpc"]), default="http",
              show_default=True, help="URL is the HTTP (8000) or gRPC (8001) endpoint.")
@click.option("--clients", type=click.IntRange(min=1), default=4, show_default=True,
              help="Concurrent clients.")
@click.option("--requests", type=click.IntRange(min=1), default=20, show_default=True,
              help="Timed requests per client.")
@click.option("--batch", type=click.IntRange(min=1), default=1, show_default=True,
              help="Images per request.")
@click.option("--images", default="synthetic:shapes?n=8&seed=0&size=480x640",
              show_default=True, help="A folder of images or a synthetic:shapes spec.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None,
              help="Also write the result as JSON.")
@click.option("--force", is_flag=True, help="Replace the --json file if it exists.")
def bench_command(url, model, protocol, clients, requests, batch, images, json_path, force):
    """Latency percentiles and throughput of a model on a running Triton server."""
    with user_errors():
        from edgedet.benchmark.run import load_inputs
        from edgedet.benchmark.triton_load import load_test
        from edgedet.files import check_writable_output

        if json_path:
            check_writable_output(json_path, force)

        result = load_test(url, model, load_inputs(images), protocol=protocol, clients=clients,
                           requests=requests, batch_size=batch)
    result.pop("batches")
    latency, server = result["latency_ms"], result["server"]
    click.echo(
        f"{model} @ {url} ({protocol}), {clients} clients x {requests} requests of {batch} "
        f"image(s)\n  latency ms: median {latency['median']:.1f}  p90 {latency['p90']:.1f}  "
        f"p99 {latency['p99']:.1f}  max {latency['max']:.1f}\n"
        f"  throughput: {result['throughput_images_per_s']:.1f} images/s\n"
        f"  server: {server['inference_count']} images in {server['execution_count']} "
        f"executions (average batch {server['average_batch']})")
    if json_path:
        from edgedet.files import atomic_write_text

        result.pop("responses", None)
        atomic_write_text(json_path, json.dumps(result, indent=2) + "\n")
