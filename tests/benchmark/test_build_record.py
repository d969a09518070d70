"""benchmarks/build_record.py: the record goes between the markers, the rest is kept."""

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "build_record.py"


@pytest.fixture(scope="module")
def build_record():
    spec = importlib.util.spec_from_file_location("build_record", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_splice_replaces_only_the_record(build_record):
    document = "# Title\nbefore\n<!-- record:start -->\nold table\n<!-- record:end -->\nafter\n"
    updated = build_record.splice(document, "new table")
    assert updated == ("# Title\nbefore\n<!-- record:start -->\nnew table\n"
                       "<!-- record:end -->\nafter\n")
    assert build_record.splice(updated, "new table\n") == updated


@pytest.mark.parametrize("document", [
    "no markers\n",
    "<!-- record:end -->\n<!-- record:start -->\n",
    "<!-- record:start -->\n<!-- record:start -->\n<!-- record:end -->\n",
])
def test_splice_refuses_missing_or_misordered_markers(build_record, document):
    with pytest.raises(ValueError, match="record:start"):
        build_record.splice(document, "table")


def test_update_without_markers_is_a_usage_error(build_record, tmp_path, capsys):
    target = tmp_path / "benchmarks.md"
    target.write_text("# no markers\n")
    with pytest.raises(SystemExit) as raised:
        build_record.parse_args(["--update", str(target)])
    assert raised.value.code == 2
    assert "benchmarks.md" in capsys.readouterr().err
    assert target.read_text() == "# no markers\n"


def test_reuse_needs_work(build_record, capsys):
    with pytest.raises(SystemExit):
        build_record.parse_args(["--reuse"])
    assert "--reuse needs --work" in capsys.readouterr().err
