"""The CLI: commands, exit codes and messages for bad arguments and bad environments."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fmnist_core.cli import main
from tests.conftest import require_real_data

ROOT = Path(__file__).resolve().parent.parent


def run_cli(*arguments: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    """The CLI in a fresh process, as a user runs it."""
    import os

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env_extra or {})}
    return subprocess.run(
        [sys.executable, "-m", "fmnist_core", *arguments],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_help_lists_the_commands():
    result = run_cli("--help")
    assert result.returncode == 0
    for command in ("data", "train", "evaluate", "cache"):
        assert command in result.stdout


@pytest.mark.parametrize(
    "arguments, code, words",
    [
        (["train", "--model", "model9"], 2, "invalid choice: 'model9'"),
        (["train", "--model", "model1", "--epochs", "-3"], 2, "epochs must be a whole number"),
        (["train", "--model", "model1", "--batch-size", "0"], 2, "batch size must be between"),
        (["train", "--model", "model1", "--preset", "turbo"], 2, "invalid choice: 'turbo'"),
        (["evaluate", "--entry", "../../etc/passwd"], 4, "not a cache entry id"),
        (["cache", "delete"], 2, "Name the entries to delete"),
    ],
)
def test_bad_arguments_exit_with_clear_messages(arguments, code, words, cache_dir, capsys):
    try:
        returned = main(arguments)
    except SystemExit as exit_:  # argparse's own usage errors.
        returned = exit_.code
    assert returned == code
    assert words in capsys.readouterr().err


def test_cache_path_that_is_a_file(tmp_path, monkeypatch, capsys):
    target = tmp_path / "afile"
    target.write_text("")
    monkeypatch.setenv("FMNIST_CACHE_DIR", str(target))
    assert main(["cache", "list"]) == 4
    assert "is a file, not a folder" in capsys.readouterr().err


@pytest.mark.parametrize("value, words", [("/nowhere/at/all", "is not a folder"), ("{tmp}", "lacks")])
def test_data_dir_pointing_nowhere(value, words, tmp_path, cache_dir, monkeypatch, capsys):
    monkeypatch.setenv("FMNIST_DATA_DIR", value.format(tmp=tmp_path))
    assert main(["data", "--check"]) == 3
    assert words in capsys.readouterr().err


def test_cache_list_and_delete_damaged(trained_cache, capsys):
    assert main(["cache", "list", "--json"]) == 0
    entries = json.loads(capsys.readouterr().out)
    assert len(entries) == 1 and entries[0]["ok"] and entries[0]["test_accuracy"] is not None
    model_file = trained_cache / entries[0]["entry_id"] / "model.keras"
    model_file.write_bytes(model_file.read_bytes()[:-10])
    assert main(["cache", "list"]) == 0
    assert "DAMAGED" in capsys.readouterr().out
    assert main(["cache", "delete", "--damaged"]) == 0
    assert f"deleted {entries[0]['entry_id']}" in capsys.readouterr().out
    assert main(["cache", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


@pytest.mark.realdata
def test_evaluate_a_cached_entry(trained_cache, capsys):
    entry_id = next(p.name for p in trained_cache.iterdir() if p.name.startswith("model1-"))
    require_real_data()
    assert main(["evaluate", "--entry", entry_id, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert sum(map(sum, result["confusion_matrix"])) == 10000
    assert 0 <= result["test_accuracy"] <= 1


@pytest.mark.realdata
def test_data_command_reports_source_and_timings(cache_dir):
    require_real_data()
    result = run_cli("data", "--json", env_extra={"FMNIST_CACHE_DIR": str(cache_dir)})
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["train"]["images"] == [60000, 28, 28]
    assert summary["first_load_from_array_cache"] is False
    assert summary["class_counts_train"] == [6000] * 10


@pytest.mark.slow
def test_train_reuses_cache_in_a_fresh_process(trained_cache):
    """A tiny real training run through the CLI, then the same request is answered from the cache."""
    require_real_data()
    arguments = ("train", "--model", "model1", "--epochs", "1", "--train-limit", "512", "--json")
    env = {"FMNIST_CACHE_DIR": str(trained_cache)}
    first = run_cli(*arguments, env_extra=env)
    assert first.returncode == 0, first.stderr
    trained = json.loads(first.stdout)
    assert trained["reused"] is False and trained["provenance"] == "trained on this machine"
    meta = json.loads((trained_cache / trained["entry_id"] / "meta.json").read_text(encoding="utf-8"))
    # The command that reproduces it (the closest preset plus the flags that differ from it).
    assert meta["command"].startswith("python -m fmnist_core train --model model1 --preset ")
    assert "--epochs 1" in meta["command"] and "--train-limit 512" in meta["command"]
    second = run_cli(*arguments, env_extra=env)
    assert json.loads(second.stdout)["reused"] is True
