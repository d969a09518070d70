"""tools/device_check.sh: argument handling, and (dry run) that every edgedet command it
runs on the device exists with the options it passes."""

import pathlib
import shlex
import subprocess

import pytest

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "tools" / "device_check.sh"


def _run(*args, cwd=None):
    return subprocess.run(["bash", str(SCRIPT), *map(str, args)], capture_output=True,
                          text=True, timeout=60, cwd=cwd)


@pytest.fixture()
def to_device(tmp_path):
    """What `edgedet export --target trt` (fp32 and int8) leaves for the device."""
    folder = tmp_path / "to_device"
    (folder / "m_parity" / "images").mkdir(parents=True)
    (folder / "m_parity" / "reference.json").write_text("{}")
    for name in ("m_trt.onnx", "m_int8_trt.onnx", "m_int8_fp32_trt.onnx", "m_int8.calib.cache"):
        (folder / name).write_bytes(b"")
    return folder


def test_dry_run_prints_real_edgedet_commands(to_device, tmp_path):
    from edgedet.cli.main import cli

    result = _run(to_device, "--out", tmp_path / "report", "--dry-run", "--batch", "1,2")
    assert result.returncode == 0, result.stderr
    assert "skip fp16: " in result.stdout and "m_fp16_trt.onnx is missing" in result.stdout
    commands = [shlex.split(line[2:]) for line in result.stdout.splitlines()
                if line.startswith("+ ")]
    assert [c[1] for c in commands] == ["engine", "engine", "parity", "benchmark"]
    assert commands[0][2:5] == [str(to_device / "m_trt.onnx"), "--precision", "fp32"]
    assert commands[1][2:5] == [str(to_device / "m_int8_trt.onnx"), "--precision", "int8"]
    assert commands[2][2:4] == ["--reference", str(to_device / "m_parity")]
    assert commands[3][-6:] == ["--batch", "1,2", "--runs", "50", "--out",
                                str(tmp_path / "report" / "benchmark")]
    for command in commands:
        click_command = cli.get_command(None, command[1])
        known = {opt for param in click_command.params for opt in param.opts}
        used = {arg for arg in command[2:] if arg.startswith("--")}
        assert used <= known, (command[1], used - known)
    assert not (tmp_path / "report").exists()  # A dry run writes nothing.


@pytest.mark.parametrize("args, message", [
    ((), "DIR is missing"),
    (("nowhere",), "'nowhere' is not a folder"),
    (("{dir}", "--runs", "0"), "--runs must be a positive integer"),
    (("{dir}", "--batch", "1,x"), "--batch must be like 1,4"),
    (("{dir}", "--frobnicate"), "unknown option --frobnicate"),
    (("{dir}", "--stem", "other"), "other_trt.onnx' is missing"),
])
def test_bad_arguments_exit_2_with_a_reason(to_device, args, message):
    result = _run(*(a.format(dir=to_device) for a in args), cwd=to_device.parent)
    assert result.returncode == 2
    assert message in result.stderr


def test_a_missing_bundle_or_existing_report_is_refused(to_device, tmp_path):
    (tmp_path / "report").mkdir()
    result = _run(to_device, "--out", tmp_path / "report")
    assert result.returncode == 2 and "exists" in result.stderr
    (to_device / "m_parity" / "reference.json").unlink()
    result = _run(to_device, "--dry-run")
    assert result.returncode == 2 and "parity bundle" in result.stderr


@pytest.mark.skipif(__import__("importlib").util.find_spec("tensorrt") is not None,
                    reason="TensorRT is installed here")
def test_engine_command_without_tensorrt_says_how_to_get_it(to_device):
    from click.testing import CliRunner

    from edgedet.cli.main import cli

    result = CliRunner().invoke(cli, ["engine", str(to_device / "m_trt.onnx"), "--out", "x"])
    assert result.exit_code == 1
    assert "needs TensorRT's Python package" in result.output
    assert "--system-site-packages" in result.output
