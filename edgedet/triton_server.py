"""A local Triton Inference Server: the `tritonserver` bundled with `nvidia-pytriton`.

The `nvidia-pytriton` wheel ships a working `tritonserver` binary, its
Python backend and one Python-backend stub per Python version (the stub
runs `model.py` files in this Python environment). `TritonServer` starts
that binary on 127.0.0.1 with free ports, waits until the server is ready
and stops it (its whole process group) on exit, as `edgedet triton serve`
and the tests do. The bundled server has no ONNX Runtime or TensorRT
backend, so it serves repositories written with `backend="python"` (see
`edgedet.exporters.triton_repo`); a GPU server runs NVIDIA's container.

Example:

```python
from edgedet.triton_server import TritonServer

with TritonServer("repo/") as server:
    print(server.http_url, server.grpc_url)
```
"""

import contextlib
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

INSTALL_HINT = "pip install 'edgedet[triton]' (it brings nvidia-pytriton and tritonclient)"


class TritonServerError(RuntimeError):
    """The server could not start, or stopped; the message has the end of its log."""


def bundled_server():
    """Paths of the server bundled with `nvidia-pytriton`.

    Returns:
        dict: `binary` (the `tritonserver` executable), `python_backend`
        (its Python backend folder), `stub` (the Python-backend stub for
        this Python), `libs` (the wheel's shared libraries).

    Raises:
        FileNotFoundError: `nvidia-pytriton` is not installed, or has no
            server or stub for this Python version (naming what is missing).
    """
    spec = importlib.util.find_spec("pytriton")  # Located, never imported (needs pyzmq).
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"No Triton server found: nvidia-pytriton is not installed. {INSTALL_HINT}.")
    root = Path(spec.submodule_search_locations[0])
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    paths = {
        "binary": root / "tritonserver" / "bin" / "tritonserver",
        "python_backend": root / "tritonserver" / "backends" / "python",
        "stub": (root / "tritonserver" / "python_backend_stubs" / version
                 / "triton_python_backend_stub"),
        "libs": root.parent / "nvidia_pytriton.libs",
    }
    missing = [f"{key} ({path})" for key, path in paths.items() if not path.exists()]
    if missing:
        raise FileNotFoundError(
            f"The nvidia-pytriton install at '{root}' lacks {', '.join(missing)} (Python "
            f"{version}); reinstall it, or run NVIDIA's Triton container instead."
        )
    return paths


def free_port(host="127.0.0.1"):
    """A TCP port that is free on `host` now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _ready(url, timeout=1.0):
    try:
        with urllib.request.urlopen(f"{url}/v2/health/ready", timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


class TritonServer:
    """Runs the bundled `tritonserver` on a model repository (a context manager).

    Args:
        repo: str or path. The model repository.
        host: str. Address the server listens on. Defaults to `"127.0.0.1"`.
        http_port: int or None. Defaults to a free port.
        grpc_port: int or None. Defaults to a free port.
        metrics_port: int or None. Defaults to a free port.
        startup_timeout: float. Seconds to wait for readiness. Defaults to 120.
        log_path: str, path or None. Server log file. Defaults to a file in
            the server's temporary folder (its end is quoted on errors).
    """

    def __init__(self, repo, host="127.0.0.1", http_port=None, grpc_port=None,
                 metrics_port=None, startup_timeout=120.0, log_path=None):
        self.repo = Path(repo)
        if not self.repo.is_dir():
            raise FileNotFoundError(f"Triton model repository '{self.repo}' is not a folder.")
        self.host = host
        self.http_port = http_port or free_port(host)
        self.grpc_port = grpc_port or free_port(host)
        self.metrics_port = metrics_port or free_port(host)
        self.startup_timeout = float(startup_timeout)
        self.log_path = Path(log_path) if log_path else None
        self.process = None
        self._workdir = None

    @property
    def http_url(self):
        """`host:port` of the HTTP endpoint (what `tritonclient.http` takes)."""
        return f"{self.host}:{self.http_port}"

    @property
    def grpc_url(self):
        """`host:port` of the gRPC endpoint."""
        return f"{self.host}:{self.grpc_port}"

    def command(self, backends_dir):
        """The `tritonserver` command line."""
        return [
            str(bundled_server()["binary"]),
            f"--model-repository={self.repo.resolve()}",
            f"--backend-directory={backends_dir}",
            f"--http-address={self.host}", f"--http-port={self.http_port}",
            f"--grpc-address={self.host}", f"--grpc-port={self.grpc_port}",
            f"--metrics-address={self.host}", f"--metrics-port={self.metrics_port}",
            "--allow-metrics=true", "--allow-gpu-metrics=false",
            "--strict-readiness=true", "--exit-on-error=true", "--log-verbose=0",
        ]

    def _environment(self, paths):
        env = dict(os.environ)
        libs = [str(paths["libs"])]
        # The stub links libpython3.X: prefer this interpreter's own.
        libdir = sysconfig.get_config_var("LIBDIR")
        soname = sysconfig.get_config_var("INSTSONAME")
        if libdir and soname and (Path(libdir) / soname).exists():
            libs.insert(0, libdir)
        env["LD_LIBRARY_PATH"] = ":".join(libs + [env.get("LD_LIBRARY_PATH", "")]).rstrip(":")
        # The stub's embedded Python finds its environment (site-packages) from
        # the first `python3` on PATH: make that this interpreter.
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        return env

    def start(self):
        """Starts the server and waits until it is ready.

        Raises:
            FileNotFoundError: no bundled server (see `bundled_server`).
            TritonServerError: the server exited or was not ready in time
                (with the end of its log).
        """
        paths = bundled_server()
        self._workdir = Path(tempfile.mkdtemp(prefix="edgedet-triton-"))
        backend = self._workdir / "backends" / "python"
        shutil.copytree(paths["python_backend"], backend,
                        ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copy2(paths["stub"], backend / "triton_python_backend_stub")
        log_path = self.log_path or self._workdir / "tritonserver.log"
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop().
        self.process = subprocess.Popen(
            self.command(self._workdir / "backends"), stdout=self._log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, env=self._environment(paths), cwd=self._workdir,
            start_new_session=True,  # Own process group: stop() ends the stubs too.
        )
        self._log_path = log_path
        deadline = time.monotonic() + self.startup_timeout
        url = f"http://{self.http_url}"
        while not _ready(url):
            if self.process.poll() is not None:
                code = self.process.returncode
                self.stop()
                raise TritonServerError(f"tritonserver exited with code {code}:\n{self._tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise TritonServerError(
                    f"tritonserver was not ready after {self.startup_timeout:.0f}s:\n"
                    f"{self._tail()}")
            time.sleep(0.25)
        return self

    def _tail(self, lines=30):
        with contextlib.suppress(OSError):
            return "\n".join(Path(self._log_path).read_text(errors="replace").splitlines()[-lines:])
        return "(no log)"

    def log(self):
        """The server's log so far (kept after `stop`)."""
        with contextlib.suppress(OSError, AttributeError):
            return Path(self._log_path).read_text(errors="replace")
        return getattr(self, "_log_text", "")

    def stop(self, timeout=15.0):
        """Stops the server's process group (SIGTERM, then SIGKILL after `timeout`)."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)
        if process is not None:
            # Stubs left behind by a crashed server are in the same group.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
        if getattr(self, "_log", None) is not None:
            self._log.close()
            self._log = None
        if self._workdir is not None:
            self._log_text = self.log()
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()
