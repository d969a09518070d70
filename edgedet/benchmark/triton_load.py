"""Load test of a model on a running Triton server: N concurrent clients.

Each client is a thread with its own connection (`TritonRuntime`); all
start together, send `requests` timed requests each (after `warmup`
untimed ones) and record every request's round-trip latency. The result
has the latency percentiles over all requests, the throughput (images
per second of wall time) and the server's own counts, from which the
average batch the dynamic batcher formed follows
(`inference_count / execution_count`). Latency and throughput depend on the
machine and the load; they are measurements, not checks.

Example:

```python
from edgedet.benchmark.triton_load import load_test

result = load_test("127.0.0.1:8000", "shapes", images, clients=4, requests=20)
print(result["latency_ms"]["p90"], result["throughput_images_per_s"])
```
"""

import threading
import time

from edgedet.benchmark.measure import make_batches, stats_ms


def server_counts(runtime):
    """`{"inference_count", "execution_count"}` of the runtime's model, from Triton."""
    from edgedet.runtimes.triton_client import reply_dict

    stats = reply_dict(runtime.protocol, runtime.client.get_inference_statistics(runtime.model))
    entry = (stats.get("model_stats") or [{}])[0]
    return {key: int(entry.get(key, 0)) for key in ("inference_count", "execution_count")}


def settled_counts(runtime, at_least=None, timeout=10.0, quiet=0.1):
    """`server_counts` once Triton has counted what it answered.

    Triton counts a request when it releases it, which can be after the
    client already has the response; read at once, the counts can miss the
    last execution. With `at_least`, this polls until `inference_count`
    reaches it (the caller knows how many it sent); without, until two reads
    `quiet` seconds apart agree (nothing left in flight). After `timeout`
    seconds it returns the last counts, which the caller sees as short.

    Args:
        runtime: an open `TritonRuntime` of the model.
        at_least: int or None. Inferences the server must have counted.
        timeout: float. Seconds to wait at most. Defaults to 10.
        quiet: float. Seconds between reads. Defaults to 0.1.
    """
    deadline = time.monotonic() + timeout
    counts = server_counts(runtime)
    while at_least is None or counts["inference_count"] < at_least:
        if time.monotonic() > deadline:
            break
        time.sleep(quiet)
        latest = server_counts(runtime)
        if at_least is None and latest == counts:
            break
        counts = latest
    return counts


def counts_images(runtime):
    """Whether Triton counts the model's inferences per image (it batches) or per request.

    A model with `max_batch_size > 0` counts every image of a request; one
    with `max_batch_size: 0` (an explicit batch dimension) counts a request as one.
    """
    return int(runtime.model_config().get("max_batch_size", 0)) > 0


def load_test(url, model, images, protocol="http", clients=4, requests=20, batch_size=1,
              warmup=2, keep_detections=False, timeout=60.0):
    """Runs `clients` concurrent clients against a Triton model.

    Args:
        url: str. `host:port` of the HTTP or gRPC endpoint.
        model: str. Model name.
        images: list of uint8 `[H, W, 3]` arrays (batched by size).
        protocol: str. `"http"` or `"grpc"`. Defaults to `"http"`.
        clients: int. Concurrent clients (threads). Defaults to 4.
        requests: int. Timed requests per client. Defaults to 20.
        batch_size: int. Images per request. Defaults to 1.
        warmup: int. Untimed requests per client first. Defaults to 2.
        keep_detections: bool. Return every timed response's detections.
            Defaults to False.
        timeout: float. Seconds per request. Defaults to 60.

    Returns:
        dict: `clients`, `requests` (timed, all clients), `batch_size`,
        `latency_ms` (`median`, `p90`, `p99`, `min`, `max`, `mean`),
        `throughput_images_per_s`, `wall_seconds`, `server`
        (`inference_count` (images; requests for a model without batching),
        `execution_count` during the timed part, `average_batch`), `batches`
        (the request batches) and, with `keep_detections`, `responses`:
        `(client, batch index, detections)`.

    Raises:
        ValueError: invalid counts or no images.
        The first error any client raised (after all clients stopped).
    """
    from edgedet.runtimes.triton_client import TritonRuntime

    for name, value, low in (("clients", clients, 1), ("requests", requests, 1),
                             ("batch_size", batch_size, 1), ("warmup", warmup, 0)):
        if not isinstance(value, int) or value < low:
            raise ValueError(f"Invalid {name}: {value!r}. Expected an int >= {low}.")
    if not images:
        raise ValueError("No images to send.")
    batches = make_batches(list(images), batch_size)
    # One connection per thread, opened in that thread (tritonclient.http's
    # gevent client must stay on the thread that made it).
    runtimes = [TritonRuntime(url, model, protocol=protocol, timeout=timeout)
                for _ in range(clients)]
    latencies = [[] for _ in range(clients)]
    responses, errors = [], []
    lock = threading.Lock()
    warmed = threading.Barrier(clients + 1)
    go = threading.Event()

    def client(index, runtime):
        try:
            try:
                runtime.__enter__()
                for step in range(warmup):
                    runtime.infer(batches[(index + step) % len(batches)])
            except Exception as error:  # noqa: BLE001 - re-raised in the caller.
                errors.append(error)
            warmed.wait()
            go.wait()
            for step in range(0 if errors else requests):
                position = (index + step) % len(batches)
                started = time.perf_counter()
                detections = runtime.predict(batches[position])
                latencies[index].append(time.perf_counter() - started)
                if keep_detections:
                    with lock:
                        responses.append((index, position, detections))
        except Exception as error:  # noqa: BLE001
            errors.append(error)
        finally:
            runtime.__exit__(None, None, None)

    def inferences_sent(steps):
        # What the clients sent in `steps` requests each, in the server's unit.
        return sum(len(batches[(index + step) % len(batches)]) if per_image else 1
                   for index in range(clients) for step in range(steps))

    monitor = TritonRuntime(url, model, protocol=protocol, timeout=timeout)
    with monitor:
        per_image = counts_images(monitor)
        initial = settled_counts(monitor)
        threads = [threading.Thread(target=client, args=(i, r), daemon=True)
                   for i, r in enumerate(runtimes)]
        for thread in threads:
            thread.start()
        try:
            warmed.wait()
            before = settled_counts(
                monitor, 0 if errors else initial["inference_count"] + inferences_sent(warmup))
            started = time.perf_counter()
        finally:
            go.set()  # Never leave a client waiting.
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - started
        after = settled_counts(
            monitor, 0 if errors else before["inference_count"] + inferences_sent(requests))
    if errors:
        raise errors[0]
    seconds = [value for values in latencies for value in values]
    counts = {key: after[key] - before[key] for key in after}
    counts["average_batch"] = round(
        counts["inference_count"] / max(1, counts["execution_count"]), 3)
    result = {
        "url": url, "model": model, "protocol": protocol, "clients": clients,
        "requests": len(seconds), "batch_size": batch_size,
        "latency_ms": stats_ms(seconds),
        "throughput_images_per_s": round(len(seconds) * batch_size / wall, 3),
        "wall_seconds": round(wall, 4), "server": counts, "batches": batches,
    }
    if keep_detections:
        result["responses"] = responses
    return result
