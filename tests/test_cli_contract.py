"""The CLI's exit-code contract (README, "Exit codes").

Every registered command, found by walking the parser (so a new command is covered the day it is registered), must
refuse a bad argument with exit 2 and no traceback; and each has hostile cases of its own (issue 19): seeds out of
range, an unusable cache folder, output paths that cannot be written, an empty model list. Every case asserts the
exit code, that no traceback reached the user, and that a project error is one line.

The cases call the CLI in this process (`fmnist_core.cli.main(argv)`, as `python -m fmnist_core` does): an exception
that escapes `main` is the traceback a user would see, and fails the case. A few smoke tests run the real
`python -m fmnist_core` in a fresh process, for what only a process shows: the interpreter's exit status and that
nothing prints a traceback on the way out.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from fmnist_core.cli import build_parser, main
from fmnist_core.config import SEED_MAX
from tests.conftest import require_real_data
from tests.test_hostile_round3 import small_disk  # noqa: F401  (a 2 MiB tmpfs, a fixture)

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
UNWRITABLE = "/sys/kernel/fmnist-explorer"  # Refused even to root (sysfs takes no new files).
LANE = ("race-lane", "--backend", "tensorflow", "--device", "CPU", "--threads", "1", "--started-at", "0")


def registered_commands(parser: argparse.ArgumentParser | None = None, prefix: tuple[str, ...] = ()) -> list[str]:
    """Every command the CLI offers, nested ones as "cache list", in registration order."""
    parser = parser or build_parser()
    found = []
    for action in parser._actions:  # argparse keeps sub-commands only here.
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                nested = registered_commands(sub, (*prefix, name))
                found += nested or [" ".join((*prefix, name))]
    return found


@dataclass(frozen=True)
class Case:
    """A command line, the place it runs in, and what the contract says must come of it."""

    arguments: tuple[str, ...]
    exit_code: int
    words: str  # Part of the message on stderr.
    # Set-up in the case's temporary folder: "file" (a regular file), "folder", "cache-races-file" (the cache's
    # races/ is a regular file; likewise any other sub-folder's name between "cache-" and "-file").
    needs: tuple[str, ...] = ()
    cache: str = "{tmp}/cache"  # FMNIST_CACHE_DIR; "{tmp}" anywhere in a case is its temporary folder.
    absent_from_stdout: tuple[str, ...] = field(default=())


def out_cases(command: tuple[str, ...], option: str = "--out") -> list[Case]:
    return [
        Case((*command, option, "{tmp}/folder"), 2, f"{option} {{tmp}}/folder is a folder", ("folder",)),
        Case((*command, option, "{tmp}/file/x.md"), 2, "{tmp}/file is a file, not a folder", ("file",)),
        Case((*command, option, f"{UNWRITABLE}/x.md"), 2, f"cannot write in {Path(UNWRITABLE).parent}"),
    ]


def cache_cases(command: tuple[str, ...], subfolder: str = "") -> list[Case]:
    where = f"/{subfolder}" if subfolder else ""
    cases = [
        Case(command, 4, "{tmp}/file is a file, not a folder", ("file",), cache="{tmp}/file/cache"),
        Case(command, 4, f"cannot write in {Path(UNWRITABLE).parent}", cache=UNWRITABLE),
    ]
    if subfolder:
        cases.append(Case(command, 4, f"{{tmp}}/cache{where} is a file, not a folder", (f"cache-{subfolder}-file",)))
    return cases


def seed_cases(command: tuple[str, ...]) -> list[Case]:
    return [
        Case((*command, "--seed", str(seed)), 2, f"seed must be a whole number from 0 to {SEED_MAX:,} (got {seed})")
        for seed in (-1, SEED_MAX + 1)
    ]


# Each registered command's own bad arguments and bad environments (issue 19). A command missing here fails
# test_every_command_has_hostile_cases: add its cases when you add the command.
CASES: dict[str, list[Case]] = {
    "data": [
        *cache_cases(("data",)),
        Case(("data", "--check"), 4, "{tmp}/file is a file", ("file",), cache="{tmp}/file/cache"),
    ],
    "train": [
        *seed_cases(("train", "--model", "model1")),
        *cache_cases(("train", "--model", "model1", "--epochs", "1", "--train-limit", "64")),
        Case(("train", "--model", "model1", "--epochs", "0"), 2, "epochs must be a whole number"),
        # Digits are ASCII (issue 44): int() alone took the Arabic-Indic three for 3.
        Case(("train", "--model", "model1", "--epochs", "\u0663"), 2, "invalid whole_number value: '\u0663'"),
        Case(("train", "--model", "model1", "--learning-rate", "nan"), 2, "invalid decimal_number value: 'nan'"),
    ],
    "evaluate": [
        *seed_cases(("evaluate", "--model", "model1")),
        Case(("evaluate", "--entry", "../../etc/passwd"), 4, "not a cache entry id"),
        Case(("evaluate", "--model", "model1", "--gallery", "ambiguous", "--top", "0"), 2, "--top must be"),
        Case(("evaluate", "--model", "model1", "--gallery", "weird"), 2, "invalid choice: 'weird'"),
    ],
    "cache list": [Case(("cache", "list"), 4, "is a file, not a folder", ("file",), cache="{tmp}/file")],
    "cache delete": [Case(("cache", "delete"), 2, "Name the entries to delete")],
    "race": [
        *seed_cases(("race",)),
        *out_cases(("race",)),
        *cache_cases(("race",), "races"),
        Case(("race", "--lanes", ","), 2, "Lanes must be distinct"),
        Case(("race", "--backend", ","), 2, "Backends must be distinct names"),
        Case(("race", "--backend", "tensorflow,tensorflow"), 2, "Backends must be distinct names"),
        Case(("race", "--backend", "cobol"), 2, "Unknown backend 'cobol'"),
        Case(("race", "--repeats", "\u0663"), 2, "invalid whole_number value"),
    ],
    "race-lane": [
        Case((*LANE, "--workload", "{"), 2, ""),
        Case((*LANE, "--workload", '{"seed": -1}'), 2, ""),
        Case(("race-lane", "--workload", "{}", "--backend", "cobol"), 2, "invalid choice: 'cobol'"),
    ],
    "race-probe": [Case(("race-probe", "--backend", "cobol"), 2, "invalid choice: 'cobol'")],
    "report": [
        *out_cases(("report", "--no-latency")),
        *[
            Case(case.arguments, case.exit_code, case.words, case.needs, absent_from_stdout=("# ",))
            for case in out_cases(("report", "--no-latency"), "--csv")
        ],
    ],
    "explain": [
        Case(("explain", "--model", "model4", "--image", "test:1", "--out", "{tmp}/x"), 2, "invalid choice: 'model4'"),
        Case(("explain", "--model", "model1", "--image", "test:1", "--out", "{tmp}/file/x"), 2, "is a file", ("file",)),
        Case(("explain", "--model", "model1", "--image", "test:1", "--out", f"{UNWRITABLE}/x"), 2, "cannot write in"),
        Case(("explain", "--model", "model1", "--image", "test:1", "--class", "Sock", "--out", "{tmp}/x"), 2, "Sock"),
        Case(("explain", "--model", "model1", "--image", "test:1", "--out", "{tmp}/x"), 4, "train"),
        Case(
            ("explain", "--model", "model1", "--image", "test:1", "--class", "\u0663", "--out", "{tmp}/x"),
            2,
            "not a class",
        ),
    ],
    "attack": [
        Case(("attack", "--model", "model4", "--robustness"), 2, "invalid choice: 'model4'"),
        Case(("attack", "--model", "model1", "--robustness", "--epsilons", "0,-0.1"), 2, "'-0.1' is not a number"),
        Case(("attack", "--model", "model1", "--robustness", "--epsilons", "0,1.5"), 2, "'1.5' is not a number"),
        Case(("attack", "--model", "model1", "--robustness", "--epsilons", "0,0"), 2, "distinct numbers"),
        Case(("attack", "--model", "model1", "--robustness", "--images", "0"), 2, "--images must be"),
        Case(("attack", "--model", "model1", "--robustness", "--images", "10001"), 2, "--images must be"),
        Case(("attack", "--model", "model1", "--image", "test:1"), 2, "--image test:N --out DIR"),
        Case(("attack", "--model", "model1", "--image", "test:1", "--out", "{tmp}/file/x"), 2, "is a file", ("file",)),
        Case(("attack", "--model", "model1", "--image", "test:1", "--out", f"{UNWRITABLE}/x"), 2, "cannot write in"),
        Case(("attack", "--model", "model1", "--robustness"), 4, "is not cached"),
        Case(("attack", "--model", "model1", "--image", "test:1", "--out", "{tmp}/x"), 4, "is not cached"),
        Case(("attack", "--entry", "../../etc/passwd", "--robustness"), 4, "not a cache entry id"),
    ],
    "sweep": [
        *seed_cases(("sweep", "--models", "model1")),
        *cache_cases(("sweep", "--models", "model1", "--epochs", "1", "--train-limit", "64"), "sweeps"),
        *out_cases(("sweep", "--models", "model1", "--epochs", "1", "--train-limit", "64")),
        Case(("sweep", "--seeds", "0"), 2, "at least one seed"),
        Case(("sweep", "--models", "model1,model1"), 2, "--models needs distinct model names"),
        Case(("sweep", "--models", "model4"), 2, "Unknown model 'model4'"),
        # Counted before anything is built or printed (issue 44): the range once filled the memory, and the header
        # came before the refusal (the one-line check below).
        Case(("sweep", "--models", "model1", "--seeds", "99999999999"), 2, "at most 1,000 per model"),
        Case(("sweep", "--models", "model1", "--seeds", "2", "--seed", str(SEED_MAX)), 2, "past the largest seed"),
        Case(("sweep", "--models", "model1", "--worker-wait", "-1"), 2, "--worker-wait must be more than 0 seconds"),
        Case(("sweep", "--models", "model1", "--seeds", "\u0663"), 2, "invalid whole_number value"),
    ],
    "bench": [
        Case(("bench", "--models", ","), 2, "--models needs one or more distinct model names"),
        Case(("bench", "--models", "model1,model1"), 2, "--models needs one or more distinct model names"),
        Case(("bench", "--models", "model4"), 2, "Unknown model 'model4'"),
        Case(("bench", "--images", "\u0661\u0660"), 2, "invalid whole_number value"),
        Case(("bench", "--precision", "float64"), 2, "invalid choice: 'float64'"),
        *out_cases(("bench",)),
    ],
}


def run_cli(arguments, cache: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """`python -m fmnist_core ARGUMENTS` in a fresh process."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "FMNIST_CACHE_DIR": cache}
    return subprocess.run(
        [sys.executable, "-m", "fmnist_core", *arguments], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


@pytest.fixture
def run_here(capsys, monkeypatch):
    """`fmnist_core.cli.main(ARGUMENTS)` in this process, read as a finished process would be."""

    def run(arguments, cache: str) -> subprocess.CompletedProcess:
        monkeypatch.setenv("FMNIST_CACHE_DIR", cache)
        capsys.readouterr()
        try:
            code = main(list(arguments))
        except SystemExit as exit:  # argparse refuses a bad command line by exiting, as the real process does.
            code = exit.code if isinstance(exit.code, int) else 1
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(list(arguments), code, out, err)

    return run


def prepare(tmp_path: Path, needs: tuple[str, ...]) -> None:
    for need in needs:
        if need == "file":
            (tmp_path / "file").write_text("a regular file, in the way")
        elif need == "folder":
            (tmp_path / "folder").mkdir()
        elif need.startswith("cache-") and need.endswith("-file"):
            (tmp_path / "cache").mkdir()
            (tmp_path / "cache" / need.removeprefix("cache-").removesuffix("-file")).write_text("a file, not a folder")


def fill(text: str, tmp_path: Path) -> str:
    """A case's text with its temporary folder in place of `{tmp}` (str.format would trip on JSON's braces)."""
    return text.replace("{tmp}", str(tmp_path))


def assert_no_traceback(result: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout, result.stderr[-3000:]


def test_the_walk_finds_nested_and_internal_commands():
    """The control for the next test: the walk sees the nested `cache` actions and the internal `race-lane`."""
    commands = registered_commands()
    assert {"data", "train", "evaluate", "cache list", "cache delete", "race", "race-lane", "report", "bench"} <= set(
        commands
    )
    assert "cache" not in commands


@pytest.mark.parametrize("command", registered_commands())
def test_every_command_refuses_an_unknown_option_with_exit_2(command, run_here):
    result = run_here([*command.split(), "--no-such-option"], cache="/nonexistent-cache-never-created")
    assert result.returncode == 2, result.stderr
    assert "usage:" in result.stderr and "error:" in result.stderr
    assert_no_traceback(result)


def test_every_command_has_hostile_cases():
    missing = [command for command in registered_commands() if command not in CASES]
    assert missing == [], f"add hostile cases for {missing} to CASES in {Path(__file__).name}"


@pytest.mark.parametrize(
    "case", [case for cases in CASES.values() for case in cases], ids=lambda case: " ".join(case.arguments)
)
def test_hostile_cases_keep_the_exit_code_contract(case, tmp_path, run_here):
    # A race lane speaks JSON lines on its process's own stdout (it duplicates the file descriptor): a process.
    check_case(case, tmp_path, run_cli if case.arguments[0] == "race-lane" else run_here)


# One case per exit code and a refused option, in a real process: what the in-process cases cannot see.
SMOKE = [
    Case(("train", "--model", "model1", "--no-such-option"), 2, "unrecognized arguments: --no-such-option"),
    CASES["train"][-1],
    CASES["cache list"][0],
    CASES["evaluate"][-1],
]


@pytest.mark.parametrize("case", SMOKE, ids=lambda case: " ".join(case.arguments))
def test_a_real_process_keeps_the_contract_too(case, tmp_path):
    check_case(case, tmp_path, run_cli)


def check_case(case: Case, tmp_path: Path, run) -> None:
    prepare(tmp_path, case.needs)
    listed_before = sorted(path.name for path in tmp_path.iterdir())
    arguments = [fill(argument, tmp_path) for argument in case.arguments]
    result = run(arguments, cache=fill(case.cache, tmp_path))
    assert result.returncode == case.exit_code, result.stderr[-3000:]
    assert_no_traceback(result)
    assert fill(case.words, tmp_path) in result.stderr
    if not result.stderr.startswith("usage:") and case.arguments[0] != "race-lane":
        assert len(result.stderr.strip().splitlines()) == 1, f"one line, not:\n{result.stderr}"
    for text in case.absent_from_stdout:
        assert text not in result.stdout, "nothing is printed before the refusal"
    # Refused before the work: nothing was created where it ran (no temporary file, no half-written output).
    assert sorted(path.name for path in tmp_path.iterdir()) == listed_before
    assert "File exists" not in result.stderr


# The damaged array cache on the real data (the loader itself is tested on a tiny stand-in in test_array_cache.py).


@pytest.fixture
def damaged_array_cache(tmp_path) -> Path:
    require_real_data()
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "fashion-mnist.npz").write_bytes(b"PK\x03\x04 a zip that stops here")
    return cache


@pytest.mark.realdata
def test_data_rebuilds_a_damaged_array_cache_and_says_so(damaged_array_cache):
    result = run_cli(["data"], cache=str(damaged_array_cache))
    assert result.returncode == 0, result.stderr[-3000:]
    assert_no_traceback(result)
    assert f"note: The array cache {damaged_array_cache / 'fashion-mnist.npz'} was damaged" in result.stderr
    assert "second load" in result.stdout and "(array cache)" in result.stdout
    again = run_cli(["data", "--json"], cache=str(damaged_array_cache))
    assert '"first_load_from_array_cache": true' in again.stdout and "note:" not in again.stderr


@pytest.mark.realdata
def test_train_rebuilds_a_damaged_array_cache_and_says_so(damaged_array_cache):
    result = run_cli(
        ["train", "--model", "model1", "--epochs", "1", "--train-limit", "64", "--seed", str(SEED_MAX), "--json"],
        cache=str(damaged_array_cache),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert_no_traceback(result)
    assert "note: The array cache" in result.stderr and "rebuilt from the verified .gz files" in result.stderr
    assert f'"seed": {SEED_MAX}' in result.stdout


@pytest.mark.realdata
def test_a_full_disk_while_saving_keeps_the_cache_exit_code(small_disk):  # noqa: F811
    """The issue-44 probe as a user ran it: a 2 MiB disk for the cache, a Model 1 training that cannot be saved.
    Exit 4 (not 1, a bug), one line saying what to free, and nothing half-written left on the disk."""
    require_real_data()
    cache = small_disk / "cache"
    result = run_cli(["train", "--model", "model1", "--epochs", "1", "--train-limit", "100"], cache=str(cache))
    assert result.returncode == 4, result.stderr[-3000:]
    assert_no_traceback(result)
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert "is full" in line and "free at least" in line and "cache delete" in line
    assert [path.name for path in cache.iterdir()] == [".locks"]
