"""A real Triton Inference Server serving an exported model.

The `tritonserver` bundled with `nvidia-pytriton` is started on 127.0.0.1
with free ports (`edgedet.triton_server.TritonServer`), on a repository
that `edgedet export --target triton` wrote for the shipped `shapes` model
and re-packed for the Python backend (the bundled server has no ONNX
Runtime backend). Requests go through `tritonclient` over HTTP and gRPC;
every detection must equal what the artifact's own ONNX Runtime session
returns for the same images. The module fixture stops the server (its
whole process group) even when a test fails.
"""

import numpy as np
import pytest

pytest.importorskip("tritonclient.http", reason="tritonclient is not installed "
                    "(pip install 'edgedet[triton]')")
pytest.importorskip("tritonclient.grpc", reason="tritonclient[grpc] is not installed")

CLIENTS = 4
IMAGES = 8
SIZE = (240, 320)  # one size: Triton's dynamic batcher merges equal shapes only


def _bundled_server_or_skip():
    from edgedet.triton_server import bundled_server

    try:
        return bundled_server()
    except FileNotFoundError as error:
        pytest.skip(f"no Triton server to start: {error}")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """`edgedet export --target triton` of the shipped model: the repository folder."""
    _bundled_server_or_skip()
    from edgedet.export import export
    from edgedet.models.weights import load_trained

    out = tmp_path_factory.mktemp("export")
    (result,) = export(load_trained("shapes"), "triton", out, stem="shapes")
    return result.path


@pytest.fixture(scope="module")
def images():
    from edgedet.data.synthetic import SyntheticShapes

    dataset = SyntheticShapes(num_images=IMAGES, image_size=SIZE, seed=11, min_objects=1)
    return np.stack([dataset[i]["image"] for i in range(IMAGES)])


@pytest.fixture(scope="module")
def reference(exported, images):
    """The artifact's own detections: its model.onnx in edgedet's ONNX Runtime runtime."""
    from edgedet.runtimes.onnxrt import OnnxRuntime

    with OnnxRuntime(exported / "shapes" / "1" / "model.onnx") as runtime:
        return runtime.predict(images)


@pytest.fixture(scope="module")
def server(exported, tmp_path_factory):
    """The bundled tritonserver on a Python-backend repository of the exported ONNX."""
    from edgedet.exporters.triton_repo import RepoOptions, write_repository
    from edgedet.triton_server import TritonServer

    # A long queue delay with a preferred batch of CLIENTS: requests sent
    # together by the clients are merged into one execution.
    options = RepoOptions(backend="python", max_batch_size=CLIENTS,
                          preferred_batch_sizes=(CLIENTS,), queue_delay_us=200_000,
                          warmup_sizes=(SIZE,), intra_op_threads=1)
    repo = write_repository(exported / "shapes" / "1" / "model.onnx",
                            tmp_path_factory.mktemp("serve") / "repo", name="shapes",
                            options=options)
    server = TritonServer(repo, startup_timeout=120)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        assert server.process is None


def _assert_same(served, expected):
    assert len(served) == len(expected)
    for got, want in zip(served, expected):
        assert len(got) == len(want)
        np.testing.assert_array_equal(got.classes, want.classes)
        np.testing.assert_allclose(got.boxes, want.boxes, atol=1e-3)
        np.testing.assert_allclose(got.confidence, want.confidence, atol=1e-5)


def test_exported_repository(exported):
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2

    config = text_format.Parse((exported / "shapes" / "config.pbtxt").read_text(),
                               model_config_pb2.ModelConfig())
    assert config.platform == "onnxruntime_onnx" and config.max_batch_size == 8
    assert sorted(p.name for p in (exported / "shapes" / "1").iterdir()) == ["model.onnx"]


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_batch_detections_equal_the_artifacts(server, images, reference, protocol):
    from edgedet.runtimes.triton_client import TritonRuntime

    url = server.http_url if protocol == "http" else server.grpc_url
    with TritonRuntime(url, "shapes", protocol=protocol) as runtime:
        assert runtime.metadata.class_names == ("circle", "square", "triangle", "ring", "cross")
        assert runtime.metadata.target == "triton"
        served = runtime.predict(images[:CLIENTS]) + runtime.predict(images[CLIENTS:])
    assert sum(len(d) for d in reference) > IMAGES  # real detections, not empty rows
    _assert_same(served, reference)


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_concurrent_clients_with_dynamic_batching(server, images, reference, protocol):
    from edgedet.benchmark.triton_load import load_test

    url = server.http_url if protocol == "http" else server.grpc_url
    requests = 4
    result = load_test(url, "shapes", list(images), protocol=protocol, clients=CLIENTS,
                       requests=requests, batch_size=1, warmup=1, keep_detections=True)
    assert result["requests"] == CLIENTS * requests
    assert len(result["responses"]) == CLIENTS * requests
    for _, position, served in result["responses"]:
        (image,) = result["batches"][position]
        index = next(i for i in range(IMAGES) if np.array_equal(images[i], image))
        _assert_same(served, [reference[index]])
    server_counts = result["server"]
    assert server_counts["inference_count"] == CLIENTS * requests
    # The dynamic batcher merged requests of different clients.
    assert server_counts["execution_count"] < server_counts["inference_count"]
    assert result["latency_ms"]["p99"] >= result["latency_ms"]["median"] > 0


def test_bad_requests_get_clear_errors(server):
    import tritonclient.http as httpclient
    from tritonclient.utils import InferenceServerException

    client = httpclient.InferenceServerClient(server.http_url)
    try:
        data = httpclient.InferInput("images", [1, 8, 8, 3], "FP32")
        data.set_data_from_numpy(np.zeros((1, 8, 8, 3), np.float32))
        with pytest.raises(InferenceServerException, match="(?i)data.?type|datatype|FP32"):
            client.infer("shapes", [data])
        too_wide = httpclient.InferInput("images", [1, 1, 16385, 3], "UINT8")
        too_wide.set_data_from_numpy(np.zeros((1, 1, 16385, 3), np.uint8))
        with pytest.raises(InferenceServerException, match="16384"):
            client.infer("shapes", [too_wide])
    finally:
        client.close()


def test_serve_command_serves_an_onnx_until_interrupted(exported, images, reference):
    """`edgedet triton serve MODEL.onnx` in a process of its own, stopped by SIGINT."""
    import contextlib
    import os
    import selectors
    import signal
    import subprocess
    import sys
    import time

    from edgedet.runtimes.triton_client import TritonRuntime
    from edgedet.triton_server import free_port

    ports = [free_port() for _ in range(3)]
    command = [sys.executable, "-m", "edgedet.cli.main", "triton", "serve",
               str(exported / "shapes" / "1" / "model.onnx"), "--http-port", str(ports[0]),
               "--grpc-port", str(ports[1]), "--metrics-port", str(ports[2]), "--max-batch", "4"]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                               stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        selector = selectors.DefaultSelector()
        selector.register(process.stderr, selectors.EVENT_READ)
        output, deadline = b"", time.monotonic() + 120
        while b"Ctrl-C stops it" not in output:
            assert time.monotonic() < deadline, f"server not ready: {output.decode()}"
            assert process.poll() is None, f"serve exited: {output.decode()}"
            if selector.select(timeout=1):
                output += os.read(process.stderr.fileno(), 65536)
        with TritonRuntime(f"127.0.0.1:{ports[0]}", "model") as runtime:
            _assert_same(runtime.predict(images[:2]), reference[:2])
        process.send_signal(signal.SIGINT)
        assert process.wait(60) == 0
    finally:
        if process.poll() is None:  # The test failed: end the CLI and its server.
            import psutil

            children = psutil.Process(process.pid).children(recursive=True)
            for child in children:
                with contextlib.suppress(psutil.Error, ProcessLookupError):
                    os.killpg(child.pid, signal.SIGKILL)  # the server's own group
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
        process.stderr.close()
