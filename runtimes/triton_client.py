"""Triton client runtime: an edgedet model served by a Triton Inference Server.

The same `predict` interface as the local runtimes, over Triton's HTTP or
gRPC protocol (`tritonclient`, imported on `__enter__`). The metadata
(class names, thresholds, box format) comes from the server: the model
config's `edgedet` parameter written by `edgedet.exporters.triton_repo`.
One runtime holds one client connection; use one runtime per thread.

Example:

```python
from edgedet.runtimes.triton_client import TritonRuntime

with TritonRuntime("127.0.0.1:8000", "shapes") as runtime:
    detections = runtime.predict([image])
```
"""

from edgedet.metadata import ArtifactMetadata, MetadataError
from edgedet.runtimes.base import Runtime

PROTOCOLS = ("http", "grpc")
INPUT_NAME = "images"
OUTPUT_NAMES = ("boxes", "confidence", "classes", "num_detections")


def client_module(protocol):
    """`tritonclient.http` or `tritonclient.grpc`, with a clear error when missing."""
    if protocol not in PROTOCOLS:
        raise ValueError(
            f"Invalid Triton protocol {protocol!r}. Expected one of {list(PROTOCOLS)}.")
    try:
        if protocol == "http":
            import tritonclient.http as module
        else:
            import tritonclient.grpc as module
    except ImportError as error:
        raise ImportError(
            f"Talking to Triton needs tritonclient[{protocol}] ({error}). "
            "pip install 'edgedet[triton]'."
        ) from error
    return module


def reply_dict(protocol, reply):
    """A tritonclient reply as a dict: HTTP replies are dicts already, gRPC ones protobuf."""
    if protocol != "grpc":
        return reply
    from google.protobuf import json_format

    return json_format.MessageToDict(reply, preserving_proto_field_name=True)


class TritonRuntime(Runtime):
    """Runs an edgedet model on a Triton server.

    Args:
        url: str. `host:port` of the server's HTTP (default 8000) or gRPC
            (default 8001) endpoint.
        model: str. Model name in the server's repository.
        protocol: str. `"http"` or `"grpc"`. Defaults to `"http"`.
        timeout: float. Seconds per request. Defaults to 60.
    """

    kind = "triton"

    def __init__(self, url, model, protocol="http", timeout=60.0):
        super().__init__(f"{protocol}://{url}/{model}")
        client_module(protocol)  # Fail early on a bad protocol or a missing package.
        self.url = url
        self.model = model
        self.protocol = protocol
        self.timeout = float(timeout)
        self.client = None

    def _connect(self):
        module = client_module(self.protocol)
        if self.protocol == "http":
            return module.InferenceServerClient(
                self.url, connection_timeout=self.timeout, network_timeout=self.timeout)
        return module.InferenceServerClient(self.url)

    def model_config(self, client=None):
        """The model's config (`ModelConfig` fields) as a dict, over either protocol."""
        reply = (client or self.client).get_model_config(self.model)
        return reply_dict(self.protocol, reply.config if self.protocol == "grpc" else reply)

    def _read_metadata(self):
        try:
            config = self.model_config(self.client or self._connect())
        except Exception as error:  # noqa: BLE001 - the client raises its own type.
            raise MetadataError(
                f"Cannot read the config of model '{self.model}' from Triton at {self.url} "
                f"({self.protocol}): {error}"
            ) from error
        value = (config.get("parameters") or {}).get("edgedet", {}).get("string_value")
        if not value:
            raise MetadataError(
                f"Model '{self.model}' on Triton at {self.url} has no edgedet metadata "
                "(parameters['edgedet']): was its repository written by edgedet?"
            )
        return ArtifactMetadata.from_json(value, source=f"{self.path}")

    def _load(self):
        self.client = self._connect()
        try:
            ready = self.client.is_model_ready(self.model)
        except Exception as error:  # noqa: BLE001
            raise ConnectionError(
                f"Cannot reach Triton at {self.url} ({self.protocol}): {error}") from error
        if not ready:
            raise ValueError(f"Model '{self.model}' is not ready on Triton at {self.url}.")
        self.metadata  # noqa: B018 - fail early without edgedet metadata.

    def _release(self):
        if self.client is not None:
            self.client.close()
        self.client = None

    def _infer(self, batch):
        module = client_module(self.protocol)
        data = module.InferInput(INPUT_NAME, list(batch.shape), "UINT8")
        data.set_data_from_numpy(batch)
        outputs = [module.InferRequestedOutput(name) for name in OUTPUT_NAMES]
        if self.protocol == "http":
            result = self.client.infer(self.model, [data], outputs=outputs)
        else:
            result = self.client.infer(self.model, [data], outputs=outputs,
                                       client_timeout=self.timeout)
        values = {name: result.as_numpy(name) for name in OUTPUT_NAMES}
        # Triton declares num_detections as [B, 1] (a batched model needs a dim).
        values["num_detections"] = values["num_detections"].reshape(len(batch))
        return values
