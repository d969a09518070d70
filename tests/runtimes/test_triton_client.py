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
