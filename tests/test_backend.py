"""edgedet insists on the TensorFlow backend and says so clearly."""

import subprocess
import sys


def _run(code, **env):
    import os

    environ = {**os.environ, **env}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=environ)


def test_other_backend_fails_with_a_clear_message(monkeypatch):
    # Another backend can't be imported here (jax is not installed), so
    # pretend Keras reports one.
    import keras
    import pytest

    import edgedet.backend

    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    with pytest.raises(edgedet.backend.BackendError) as info:
        edgedet.backend.keras()
    message = str(info.value)
    assert "'jax'" in message and "KERAS_BACKEND=tensorflow" in message


def test_tensorflow_backend_is_the_default():
    result = _run("import os\nos.environ.pop('KERAS_BACKEND', None)\n"
                  "import edgedet, edgedet.backend\n"
                  "print(edgedet.backend.keras().backend.backend())")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "tensorflow"


def test_importing_edgedet_and_cli_help_do_not_import_tensorflow():
    result = _run("import sys\nfrom click.testing import CliRunner\n"
                  "from edgedet.cli.main import cli\n"
                  "r = CliRunner().invoke(cli, ['--help'])\nassert r.exit_code == 0, r.output\n"
                  "print(sorted(m for m in ('tensorflow', 'keras', 'onnx', 'onnxruntime') "
                  "if m in sys.modules))")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
