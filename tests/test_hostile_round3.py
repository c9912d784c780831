"""Hostile input, round 3 (issue 44): a full disk while saving, huge seed counts, a restart that must bring back the
request's own settings, a killed race, oversized and repeated `explain` calls, two sweeps on one cache, and small
ones (symlinked entries, non-ASCII digits, a negative wait, a one-model sweep). Each ends in a clear message and the
README's exit code, with nothing half-written left behind."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from fmnist_core.errors import CacheError, ConfigError, ExplainError
from fmnist_core.store.cache import TEMPORARY_PREFIX, ModelCache
from tests.conftest import require_real_data

# A full disk while saving -------------------------------------------------------------------------------------


def disk_full(*arguments, **keywords):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def cache_files(root: Path) -> dict[str, bytes]:
    """Every file under the cache but its lock files, with its content: what a failed save must leave alone."""
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and ".locks" not in path.parts
    }


@pytest.mark.parametrize("failing", ["model", "record"])
def test_a_full_disk_while_saving_is_a_cache_error_that_says_what_to_free(failing, trained_cache, monkeypatch):
    """ENOSPC while the model file or its record is written: exit 4 with what to free, and the entry already there
    (the save was a retrain) left exactly as it was, with no temporary folder beside it."""
    import fmnist_core.store.cache as cache_module

    cache = ModelCache()
    (entry,) = cache.list()
    model = cache.load_model(entry.entry_id)
    before = cache_files(cache.root)
    if failing == "model":
        monkeypatch.setattr(model, "save", disk_full)
    else:
        monkeypatch.setattr(cache_module, "_write_durably", disk_full)
    with pytest.raises(CacheError) as caught:
        cache.save(model, entry.record, replace=True)
    message = str(caught.value)
    assert caught.value.exit_code == 4
    assert "\n" not in message and "is full" in message and "not saved" in message
    assert "free at least" in message and "cache delete" in message and "FMNIST_CACHE_DIR" in message
    assert cache_files(cache.root) == before
    assert not list(cache.root.glob(f"{TEMPORARY_PREFIX}*"))


def test_an_unwritable_cache_while_saving_says_so(trained_cache, monkeypatch):
    """Any other OSError of the save (a folder turned read-only) is a cache error too, never a traceback."""
    cache = ModelCache()
    (entry,) = cache.list()
    model = cache.load_model(entry.entry_id)

    def read_only(*arguments, **keywords):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(model, "save", read_only)
    with pytest.raises(CacheError, match="cannot write in the model cache .*Read-only file system"):
        cache.save(model, entry.record, replace=True)


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MiB tmpfs, as the issue's probe mounted it; skipped where this process may not mount (not root)."""
    folder = tmp_path / "small-disk"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2M", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode(errors='replace').strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


@pytest.mark.slow
def test_a_really_full_disk_while_saving(small_disk, trained_cache_dir):
    """The probe on a real full file system: the disk filled but for a few kB, then a model saved there."""
    source = ModelCache(trained_cache_dir)
    (entry,) = source.list()
    model = source.load_model(entry.entry_id)
    cache = ModelCache(small_disk / "cache")
    cache.root.mkdir()
    filler = small_disk / "filler"
    with filler.open("wb", buffering=0) as handle, pytest.raises(OSError) as full:
        while True:
            handle.write(b"\0" * 4096)
    assert full.value.errno == errno.ENOSPC
    with pytest.raises(CacheError, match="is full. The model takes about"):
        cache.save(model, entry.record)
    assert [path.name for path in cache.root.iterdir()] == [".locks"]
    filler.unlink()
    saved = cache.save(model, entry.record)
    assert saved.ok, "once space is freed the same save works"


# Seeds: counted and checked before the work -------------------------------------------------------------------


def cli_outcome(arguments: list[str], capsys) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of the CLI run in this process, argparse's own refusals included."""
    from fmnist_core.cli import main

    try:
        code = main(arguments)
    except SystemExit as stopped:
        code = stopped.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize(
    ("arguments", "words"),
    [
        (["--seeds", "99999999999"], "at most 1,000 per model (got 99,999,999,999)"),
        (["--seeds", "2", "--seed", "4294967295"], "would end at 4,294,967,296, past the largest seed"),
        (["--worker-wait", "-1"], "--worker-wait must be more than 0 seconds (got -1)"),
        (["--worker-wait", "nan"], "invalid decimal_number value: 'nan'"),
    ],
)
def test_a_sweep_refuses_impossible_seeds_and_waits_before_printing_anything(arguments, words, cache_dir, capsys):
    code, out, err = cli_outcome(["sweep", "--models", "model1", *arguments], capsys)
    assert code == 2 and words in err and out == "" and "Sweep:" not in err
    assert len([line for line in err.splitlines() if "error:" in line]) == 1
    assert not cache_dir.exists() or not any(cache_dir.rglob("*.json")), "nothing trained or saved"


@pytest.mark.parametrize(
    "arguments",
    [
        ["train", "--model", "model1", "--epochs", "\u0663"],  # Arabic-Indic three.
        ["train", "--model", "model1", "--epochs", "\uff13"],  # Full-width three.
        ["train", "--model", "model1", "--epochs", "1_0"],
        ["train", "--model", "model1", "--learning-rate", "\u0660.\u0660\u0660\u0661"],
        ["sweep", "--models", "model1", "--seeds", "\u0663"],
        ["race", "--repeats", "\u0663"],
        ["bench", "--images", "\u0663"],
    ],
)
def test_numbers_in_other_scripts_are_refused(arguments, cache_dir, capsys):
    code, out, err = cli_outcome(arguments, capsys)
    assert code == 2 and "invalid" in err and "value" in err and out == ""


def test_a_class_or_image_number_in_other_scripts_is_refused(trained_cache, tmp_path, capsys):
    from fmnist_core.cli.explain_command import class_index

    assert class_index("3") == 3 and class_index(" 3 ") == 3
    for text in ("\u0663", "\uff13", "-1", "10"):
        with pytest.raises(ExplainError, match="is not a class"):
            class_index(text)
    code, out, err = cli_outcome(
        ["explain", "--model", "model1", "--image", "test:\u0663", "--out", str(tmp_path)], capsys
    )
    assert code == 2 and "is neither test:N / train:N nor a picture file" in err


def test_whole_and_decimal_numbers_are_ascii():
    from fmnist_core.config import decimal_number, whole_number

    assert whole_number("42") == 42 and whole_number("-1") == -1 and whole_number("+7") == 7
    assert decimal_number("1e-5") == 1e-5 and decimal_number(".5") == 0.5 and decimal_number("3.") == 3.0
    for text in ("\u0663", "1_000", " 3", "3 ", "", "0x10", "1.5"):
        with pytest.raises(ValueError):
            whole_number(text)
    for text in ("nan", "inf", "-Infinity", "1_0.5", "\u0663.5", "1e", "."):
        with pytest.raises(ValueError):
            decimal_number(text)


def test_classroom_numbers_from_the_environment_are_ascii(monkeypatch, tmp_path):
    from fmnist_core.jobs.classroom import _parse_variable

    assert _parse_variable("FMNIST_X", "12", boolean=False) == 12
    with pytest.raises(ConfigError, match="must be a whole number"):
        _parse_variable("FMNIST_X", "\u0661\u0662", boolean=False)


# A one-model sweep ---------------------------------------------------------------------------------------------


def test_a_one_model_sweep_prints_no_empty_pairing_and_counts_its_seed(capsys):
    from fmnist_core.cli.sweep_command import print_tables
    from tests.sweep_support import synthetic_sweep

    one_model = synthetic_sweep(models=("model1",), seeds=(42,))
    print_tables(one_model)
    out = capsys.readouterr().out
    assert "1 seed per model (42)" in out and "1 seeds" not in out and "Paired differences" not in out
    print_tables(synthetic_sweep())
    out = capsys.readouterr().out
    assert "3 seeds per model (42, 43, 44)" in out and "Paired differences" in out


# A symlinked entry -------------------------------------------------------------------------------------------


def linked_entry(cache_root: Path, elsewhere: Path) -> str:
    """Move the cache's one entry to `elsewhere` and link it back in, as a user short of space might."""
    (entry,) = [path for path in cache_root.iterdir() if path.name.startswith("model")]
    shutil.move(entry, elsewhere)
    entry.symlink_to(elsewhere, target_is_directory=True)
    return entry.name


def test_deleting_a_linked_entry_removes_the_link_and_leaves_no_temporary_link(trained_cache, tmp_path, capsys):
    elsewhere = tmp_path / "elsewhere"
    entry_id = linked_entry(trained_cache, elsewhere)
    code, out, err = cli_outcome(["cache", "delete", entry_id], capsys)
    assert code == 0 and f"deleted {entry_id}" in out
    assert [path.name for path in trained_cache.iterdir() if path.name != ".locks"] == []
    assert (elsewhere / "model.keras").is_file(), "what the link pointed at is not the cache's to delete"


def test_cache_list_removes_temporary_links_a_dead_process_left(trained_cache, tmp_path, capsys):
    elsewhere, gone = tmp_path / "elsewhere", tmp_path / "gone"
    gone.mkdir()
    entry_id = linked_entry(trained_cache, elsewhere)
    # As an older `cache delete` left them: one link still pointing at its folder, one dangling.
    dead_pid = 4_194_305  # Above Linux's largest pid.
    (trained_cache / f"{TEMPORARY_PREFIX}deleted-{entry_id}-{dead_pid}-1").symlink_to(elsewhere)
    (trained_cache / f"{TEMPORARY_PREFIX}deleted-{entry_id}-{dead_pid}-2").symlink_to(gone)
    gone.rmdir()
    code, out, err = cli_outcome(["cache", "list"], capsys)
    assert code == 0 and entry_id in out
    assert not list(trained_cache.glob(f"{TEMPORARY_PREFIX}*"))
    assert (elsewhere / "model.keras").is_file()


# explain: a huge picture file, and a second call into the same folder ----------------------------------------


def test_explain_refuses_a_huge_picture_file_without_reading_it(trained_cache, tmp_path, capsys):
    import tracemalloc

    huge = tmp_path / "huge.png"
    with huge.open("wb") as handle:
        handle.truncate(1536 * 2**20)  # Sparse: 1.5 GB to stat, nothing on the disk.
    tracemalloc.start()
    try:
        code, out, err = cli_outcome(
            ["explain", "--model", "model1", "--image", str(huge), "--out", str(tmp_path)], capsys
        )
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert code == 2 and "The file is too large (1536.0 MB; the limit is 20 MB)" in err
    assert peak < 100 * 2**20, f"{peak / 2**20:.0f} MB allocated: the file was read"


@pytest.mark.realdata  # The filter redundancy is measured on real images.
def test_a_second_explain_into_the_same_folder_keeps_none_of_the_first_ones_pictures(trained_cache, tmp_path, capsys):
    from tests.test_predict import garment_png

    require_real_data()
    picture, out = tmp_path / "garment.png", tmp_path / "slides"
    picture.write_bytes(garment_png())
    out.mkdir()
    (out / "mine.png").write_bytes(b"the teacher's own picture")
    (out / "notes.txt").write_text("the teacher's notes")

    def explain(*extra: str) -> dict:
        code, printed, err = cli_outcome(
            ["explain", "--model", "model1", "--image", str(picture), "--out", str(out), "--json", *extra], capsys
        )
        assert code == 0, err
        return json.loads(printed)

    predicted = explain()["predicted_class"]
    from fmnist_core.data.fashion_mnist import CLASS_NAMES

    first_class, second_class = ((CLASS_NAMES.index(predicted) + step) % 10 for step in (1, 2))
    first = explain("--class", str(first_class))
    assert f"saliency-{first_class}.png" in first["files"]
    second = explain("--class", str(second_class))
    assert f"saliency-{first_class}.png" not in second["files"]
    assert {path.name for path in out.iterdir()} == set(second["files"]) | {"mine.png", "notes.txt"}


def test_an_edited_explanation_list_never_removes_anything_but_bare_picture_names(tmp_path):
    from fmnist_core.cli.explain_command import earlier_pictures

    (tmp_path / "explanation.json").write_text(
        json.dumps({"files": ["input.png", "../outside.png", "/etc/passwd", "notes.txt", 3, "saliency-2.png"]})
    )
    assert earlier_pictures(tmp_path) == {"input.png", "saliency-2.png"}
    (tmp_path / "explanation.json").write_text("[1, 2]")
    assert earlier_pictures(tmp_path) == set()
    assert earlier_pictures(tmp_path / "missing") == set()


# Two sweeps (or trainings) of one run at once -----------------------------------------------------------------


def test_a_run_being_trained_elsewhere_is_waited_for_and_reused(
    trained_cache_dir, cache_dir, tiny_spec, tiny_config, tiny_data
):
    """While another process holds the run's training lock, train_and_cache waits; once that one has saved the
    entry, it is reused, not trained again."""
    import threading

    from fmnist_core.training.pipeline import train_and_cache

    cache = ModelCache(cache_dir)
    (finished,) = [path for path in trained_cache_dir.iterdir() if path.name.startswith("model")]
    trained_batches, outcome = [], {}

    def second_training() -> None:
        outcome["value"] = train_and_cache(
            tiny_spec, tiny_config, cache=cache, data=tiny_data, progress=trained_batches.append
        )

    with cache.training_lock(tiny_spec, tiny_config, while_waiting=lambda: None):
        waiting = threading.Thread(target=second_training)
        waiting.start()
        waiting.join(timeout=3)
        assert waiting.is_alive() and trained_batches == [], "it waits, and trains nothing meanwhile"
        shutil.copytree(finished, cache.root / finished.name)  # The other process saves its model.
    waiting.join(timeout=120)
    assert outcome["value"].reused and outcome["value"].entry.entry_id == finished.name
    assert trained_batches == []


def test_stop_pressed_while_waiting_for_another_training_stops_the_wait(cache_dir, tiny_spec, tiny_config, tiny_data):
    from fmnist_core.training.loop import TrainingCancelled
    from fmnist_core.training.pipeline import train_and_cache

    cache = ModelCache(cache_dir)
    stopping = pytest.raises(TrainingCancelled, match="another process trained the same run")
    with cache.training_lock(tiny_spec, tiny_config, while_waiting=lambda: None), stopping:
        train_and_cache(tiny_spec, tiny_config, cache=cache, data=tiny_data, should_stop=lambda: True)


def test_the_local_cluster_binds_no_fixed_port(monkeypatch):
    """Port 8787 taken (by a first sweep's scheduler, or anything else): a sweep's scheduler says nothing about it,
    and serves no dashboard."""
    import logging
    import socket
    import urllib.error
    import urllib.request
    import warnings

    from distributed import LocalCluster

    from fmnist_core.engine.cluster import QUIET_SCHEDULER

    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        holder.bind(("", 8787))
    except OSError:
        pass  # Taken already, which is the case under test.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cluster = LocalCluster(
            n_workers=0,
            processes=False,
            dashboard_address=None,
            scheduler_kwargs=QUIET_SCHEDULER,
            silence_logs=logging.ERROR,
        )
    try:
        assert not [warning for warning in caught if "already in use" in str(warning.message)]
        port = cluster.scheduler.http_server.port
        assert port != 8787
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=10)
    finally:
        cluster.close()
        holder.close()


@pytest.mark.slow
def test_two_sweeps_at_once_train_each_run_once(cache_dir):
    """Two sweeps of the same run on one cache, started together: one trains it, the other reports it reused."""
    import threading

    from fmnist_core.sweep.runner import run_sweep
    from tests.sweep_support import TINY_CONFIG, TINY_SPECS, load_tiny_data

    results, errors = [], []

    def sweep() -> None:
        try:
            results.append(
                run_sweep(TINY_SPECS[:1], TINY_CONFIG, (5,), cache=ModelCache(cache_dir), load_data=load_tiny_data)
            )
        except BaseException as error:  # Reported below, on the test's thread.
            errors.append(error)

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    assert errors == [] and len(results) == 2
    runs = [result.runs[0] for result in results]
    assert sorted(run.reused for run in runs) == [False, True]
    assert runs[0].entry_id == runs[1].entry_id and runs[0].test_accuracy == runs[1].test_accuracy


# A race ended by a signal takes its lane with it --------------------------------------------------------------

# Long enough that the lane is still training when the test signals the race (it signals within seconds).
LONG_RACE = (
    "race",
    "--backend",
    "tensorflow",
    "--lanes",
    "cpu-1",
    "--repeats",
    "1",
    "--train-batches",
    "1800",
    "--batch-size",
    "32",
)


def running(pid: int) -> bool:
    """Whether `pid` is a live process (a zombie nobody reaped yet counts as ended)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def lane_of(race: subprocess.Popen, timeout: float = 300) -> int:
    """The pid of the race's lane process, once it has started."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert race.poll() is None, race.communicate()[1][-3000:]
        for status in Path("/proc").glob("[0-9]*/status"):
            try:
                fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
                command = (status.parent / "cmdline").read_bytes()
            except OSError:
                continue  # It ended meanwhile.
            if int(fields.get("PPid", "0")) == race.pid and b"race-lane" in command:
                return int(status.parent.name)
        time.sleep(0.2)
    raise AssertionError("the race never started its lane")


def ended_within(pid: int, seconds: float) -> bool:
    import time

    deadline = time.monotonic() + seconds
    while running(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not running(pid)


@pytest.mark.slow
@pytest.mark.realdata
@pytest.mark.parametrize("signal_name", ["SIGTERM", "SIGKILL"])
def test_a_race_ended_by_a_signal_takes_its_lane_with_it(signal_name, cache_dir):
    """SIGTERM to the race alone (not its group): the race stops its lane, says so and exits 130. SIGKILL, which
    nothing can handle: the kernel ends the lane with it (PR_SET_PDEATHSIG). Before, the lane ran on for ~20 s."""
    import signal
    import sys

    require_real_data()
    race = subprocess.Popen(
        [sys.executable, "-m", "fmnist_core", *LONG_RACE],
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lane = lane_of(race)
        race.send_signal(getattr(signal, signal_name))
        _, err = race.communicate(timeout=60)
        # Signalled while the lane starts its backend and writes nothing: without dying with its parent it ran on
        # until its first write hit the closed pipe (seconds here, ~20 s on the machine).
        assert ended_within(lane, 3), f"the lane {lane} outlived the race"
        if signal_name == "SIGTERM":
            assert race.returncode == 130 and "interrupted; nothing half-written was kept" in err
            assert "Traceback" not in err
        assert not (cache_dir / "races").exists() or not list((cache_dir / "races").glob("*.json"))
    finally:
        race.kill()
        race.wait()


# What a lane runs first: ends with its parent, silent or not.
QUIET_LANE = """
import pathlib, sys, time
from fmnist_core.race.lane import die_with_parent
die_with_parent()
pathlib.Path(sys.argv[1]).write_text("ready")
time.sleep(120)  # A lane starting its backend: nothing written, so no broken pipe would end it.
"""
# The race's part: start the lane with its own pid in the lane's environment, as lane_process does, and wait.
QUIET_RACE = """
import os, subprocess, sys
from fmnist_core.race.lane import RACE_PARENT_VARIABLE
environment = {**os.environ, RACE_PARENT_VARIABLE: str(os.getpid())}
lane = subprocess.Popen([sys.executable, "-c", sys.argv[1], sys.argv[2]], env=environment)
print(lane.pid, flush=True)
lane.wait()
"""


@pytest.mark.slow
def test_a_silent_lane_dies_with_its_killed_parent(tmp_path):
    """The lane's own guarantee, apart from pipes: SIGKILL its parent while it writes nothing, and it ends."""
    import signal
    import sys
    import time

    ready = tmp_path / "ready"
    race = subprocess.Popen(
        [sys.executable, "-c", QUIET_RACE, QUIET_LANE, str(ready)], stdout=subprocess.PIPE, text=True
    )
    try:
        lane = int(race.stdout.readline())
        deadline = time.monotonic() + 120
        while not ready.exists():
            assert time.monotonic() < deadline and running(lane), "the lane never got ready"
            time.sleep(0.1)
        race.send_signal(signal.SIGKILL)
        race.wait()
        assert ended_within(lane, 30), f"the lane {lane} outlived its parent"
    finally:
        race.kill()
        race.wait()


@pytest.mark.slow
def test_a_lane_whose_parent_is_gone_already_ends_at_once(tmp_path):
    import sys

    from fmnist_core.race.lane import RACE_PARENT_VARIABLE

    gone = {**os.environ, RACE_PARENT_VARIABLE: "4194305"}  # Not its parent (above Linux's largest pid).
    lane = subprocess.run(
        [sys.executable, "-c", QUIET_LANE, str(tmp_path / "ready")], env=gone, timeout=120, capture_output=True
    )
    assert lane.returncode == 1 and not (tmp_path / "ready").exists()


# A restart brings back the request's own settings -------------------------------------------------------------


def custom_request() -> dict:
    """The issue's student request: Model 1 on 8,000 images, 1 epoch, seed 9 (as the Train page submits it)."""
    from fmnist_core.config import PRESETS, for_this_machine

    config = for_this_machine(PRESETS["quick"]).replace(epochs=1, train_limit=8000, seed=9)
    return {"model": "model1", "config": config.to_dict()}


def test_a_server_that_stops_leaves_each_request_in_its_marker(tmp_path):
    """What a job was asked to do survives the server: the next server's interrupted status carries it."""
    import threading

    from fmnist_core.jobs.queue import INTERRUPTED, JobManager

    release = threading.Event()
    first = JobManager(marker_dir=tmp_path)
    asked = {**custom_request(), "live": object()}  # Whatever JSON cannot write stays behind.
    status = first.submit("train", "Training Model 1 (custom)", lambda context: release.wait(60), details=asked)
    try:
        # The marker names this process, so a second manager here adopts it as a dead server's.
        (interrupted,) = JobManager(marker_dir=tmp_path).interrupted
    finally:
        release.set()
        first.wait(status.job_id, timeout=60)
    assert interrupted.state == INTERRUPTED and interrupted.details == custom_request()
