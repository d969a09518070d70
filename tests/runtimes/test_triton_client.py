"""The Triton client runtime and load test without a server: their refusals.

Serving itself is tested against a real server in tests/test_triton_server.py.
"""

import numpy as np
import pytest

pytest.importorskip("tritonclient.http", reason="tritonclient is not installed")


def test_unknown_protocol_is_named():
    from edgedet.runtimes.triton_client import TritonRuntime

    with pytest.raises(ValueError, match="protocol 'udp'.*'http', 'grpc'"):
        TritonRuntime("127.0.0.1:8000", "shapes", protocol="udp")


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_no_server_is_a_clear_error(protocol):
    from edgedet.runtimes.triton_client import TritonRuntime
    from edgedet.triton_server import free_port

    url = f"127.0.0.1:{free_port()}"  # nothing listens there
    with pytest.raises(ConnectionError, match=f"Cannot reach Triton at {url}"):
        with TritonRuntime(url, "shapes", protocol=protocol, timeout=5):
            pass


@pytest.mark.parametrize("kwargs, message", [
    ({"clients": 0}, "clients: 0"),
    ({"requests": 0}, "requests: 0"),
    ({"batch_size": 0}, "batch_size: 0"),
    ({"warmup": -1}, "warmup: -1"),
])
def test_load_test_checks_its_counts(kwargs, message):
    from edgedet.benchmark.triton_load import load_test

    image = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match=message):
        load_test("127.0.0.1:1", "shapes", [image], **kwargs)
    with pytest.raises(ValueError, match="No images"):
        load_test("127.0.0.1:1", "shapes", [])


def test_server_needs_a_repository_folder(tmp_path):
    from edgedet.triton_server import TritonServer

    with pytest.raises(FileNotFoundError, match="is not a folder"):
        TritonServer(tmp_path / "missing")


def _lagging_server(monkeypatch, counts):
    """Makes `server_counts` return `counts` one read at a time (then the last)."""
    from edgedet.benchmark import triton_load

    reads = iter(counts)
    last = {}

    def server_counts(runtime):
        last["value"] = next(reads, last.get("value"))
        return {"inference_count": last["value"], "execution_count": last["value"] // 4}

    monkeypatch.setattr(triton_load, "server_counts", server_counts)


def test_counts_wait_for_the_server_to_count_the_last_execution(monkeypatch):
    # Triton counts a request when it releases it, which can be after the
    # client has its answer: the first reads miss the last batch of 4.
    from edgedet.benchmark.triton_load import settled_counts

    _lagging_server(monkeypatch, [12, 12, 12, 16])
    assert settled_counts(None, at_least=16, quiet=0.001)["inference_count"] == 16


def test_counts_return_once_reached_even_while_other_traffic_moves_them(monkeypatch):
    from edgedet.benchmark.triton_load import settled_counts

    _lagging_server(monkeypatch, [12, 16, 20, 24, 28])
    assert settled_counts(None, at_least=16, quiet=0.001)["inference_count"] == 16


def test_counts_without_a_target_wait_until_they_stop_changing(monkeypatch):
    from edgedet.benchmark.triton_load import settled_counts

    _lagging_server(monkeypatch, [4, 8, 12, 12])
    assert settled_counts(None, quiet=0.001)["inference_count"] == 12


def test_counts_that_never_arrive_are_returned_short(monkeypatch):
    # The caller sees the short count (a failing check), never a made-up one.
    from edgedet.benchmark.triton_load import settled_counts

    _lagging_server(monkeypatch, [12])
    assert settled_counts(None, at_least=16, timeout=0.05, quiet=0.001)["inference_count"] == 12


class _ConfigClient:
    def __init__(self, config):
        self.config = config

    def get_model_config(self, model):
        return self.config


@pytest.mark.parametrize("max_batch_size, per_image", [(4, True), (0, False)])
def test_the_unit_triton_counts_in_follows_max_batch_size(max_batch_size, per_image):
    # Triton counts every image of a batched model's request, one per request otherwise.
    from tritonclient.grpc import model_config_pb2, service_pb2

    from edgedet.benchmark.triton_load import counts_images
    from edgedet.runtimes.triton_client import TritonRuntime

    http = TritonRuntime("127.0.0.1:1", "shapes", protocol="http")  # Not connected: a fake client.
    http.client = _ConfigClient({"name": "shapes", "max_batch_size": max_batch_size})
    grpc = TritonRuntime("127.0.0.1:1", "shapes", protocol="grpc")
    grpc.client = _ConfigClient(service_pb2.ModelConfigResponse(
        config=model_config_pb2.ModelConfig(name="shapes", max_batch_size=max_batch_size)))
    assert counts_images(http) is per_image and counts_images(grpc) is per_image
