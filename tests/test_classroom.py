"""Sharing one server with a class: the settings file and its overrides, visitor ids, who may do what, queue
estimates from this machine's measurements, and the server listening on localhost unless told otherwise."""

from __future__ import annotations

import dataclasses
import socket
from pathlib import Path

import pytest

from devtools.browser_support import PROJECT_ROOT, start_server
from fmnist_core.config import PRESETS
from fmnist_core.errors import ConfigError
from fmnist_core.jobs.classroom import (
    SETTINGS_FILE,
    ClassroomSettings,
    is_visitor_id,
    load_settings,
    may_delete_in_app,
    may_replace,
    may_stop,
    new_visitor_id,
)
from fmnist_core.machine import cpu_model, usable_cores
from fmnist_core.store.cache import CacheEntry
from fmnist_core.training.time_estimate import estimate_training_seconds, images_per_epoch
from tests.records import make_entry, make_record

ALICE, BOB = "a" * 32, "b" * 32
CLASSROOM, LAPTOP = ClassroomSettings(classroom=True), ClassroomSettings()


# Settings ------------------------------------------------------------------------------------------------------


def test_the_shipped_settings_file_is_valid_and_means_a_laptop():
    assert SETTINGS_FILE == PROJECT_ROOT / ".streamlit" / "classroom.toml" and SETTINGS_FILE.is_file()
    assert load_settings(environment={}) == ClassroomSettings(classroom=False, training_workers=1, queue_limit=30)


def test_settings_file_and_environment_overrides(tmp_path):
    path = tmp_path / "classroom.toml"
    assert load_settings(path, {}) == ClassroomSettings(), "no file: the defaults"
    path.write_text("classroom = true\ntraining_workers = 2\nqueue_limit = 12\n")
    assert load_settings(path, {}) == ClassroomSettings(True, 2, 12)
    overrides = {"FMNIST_CLASSROOM": "off", "FMNIST_TRAINING_WORKERS": "4", "FMNIST_QUEUE_LIMIT": " 40 "}
    assert load_settings(path, overrides) == ClassroomSettings(False, 4, 40)
    assert load_settings(path, {"FMNIST_CLASSROOM": ""}).classroom is True, "an empty variable changes nothing"


@pytest.mark.parametrize(
    ("text", "environment", "words"),
    [
        ("classroom = maybe", {}, ["not valid toml"]),
        ("clasroom = true", {}, ["unknown setting", "clasroom"]),
        ("training_workers = 0", {}, ["training_workers", "1 to 64"]),
        ("queue_limit = -1", {}, ["queue_limit", "0 to 1000"]),
        ('classroom = "yes"', {}, ["classroom must be true or false"]),
        ("", {"FMNIST_CLASSROOM": "perhaps"}, ["FMNIST_CLASSROOM", "perhaps"]),
        ("", {"FMNIST_TRAINING_WORKERS": "two"}, ["FMNIST_TRAINING_WORKERS", "whole number"]),
    ],
)
def test_bad_settings_are_named_with_what_to_do(tmp_path, text, environment, words):
    path = tmp_path / "classroom.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as raised:
        load_settings(path, environment)
    assert all(word.lower() in str(raised.value).lower() for word in words), str(raised.value)


# Visitors and rules ----------------------------------------------------------------------------------------------


def test_visitor_ids_are_random_hex_and_nothing_else_passes():
    first, second = new_visitor_id(), new_visitor_id()
    assert first != second and is_visitor_id(first) and is_visitor_id(second)
    for hostile in ("../../etc/passwd", "", "A" * 32, "a" * 31, "a" * 33, f"{'a' * 31}/", None, ["a" * 32], 7):
        assert not is_visitor_id(hostile), hostile


def test_classroom_mode_rules():
    assert may_delete_in_app(LAPTOP) and not may_delete_in_app(CLASSROOM)
    # Retraining replaces an entry: in classroom mode only its own trainer may.
    assert may_replace(ALICE, ALICE, CLASSROOM)
    assert not may_replace(BOB, ALICE, CLASSROOM), "another visitor's model"
    assert not may_replace(None, ALICE, CLASSROOM), "a shipped or teacher-trained model"
    assert may_replace(None, ALICE, LAPTOP) and may_replace(BOB, ALICE, LAPTOP)
    # Stopping: one's own always, anyone's only on a laptop.
    assert may_stop(ALICE, ALICE, CLASSROOM) and not may_stop(BOB, ALICE, CLASSROOM)
    assert not may_stop(None, ALICE, CLASSROOM) and may_stop(None, ALICE, LAPTOP)


# Estimates -------------------------------------------------------------------------------------------------------


def measured_entry(
    model: str, seconds: float, *, images=18_000, epochs=3, precision="mixed_bfloat16", machine=None, batch_size=None
) -> CacheEntry:
    """An entry as the cache reads it: `epochs` epochs of `images` images took `seconds` on `machine`."""
    config = PRESETS["quick"].replace(precision=precision)
    config = config.replace(batch_size=batch_size) if batch_size else config
    record = make_record(model, config, history={"loss": [1.0] * epochs})
    record = dataclasses.replace(
        record,
        epoch_seconds=(seconds / epochs,) * epochs,
        wall_seconds=seconds,
        train_images=images,
        best_epoch=epochs,
        machine=machine or {"cpu_model": cpu_model(), "cpu_cores": usable_cores()},
    )
    return make_entry(record)


def test_estimates_come_from_this_machines_measurements_of_the_same_model():
    quick, full = PRESETS["quick"], PRESETS["full"]
    assert images_per_epoch(quick) == 18_000 and images_per_epoch(full) == 54_000
    entries = [measured_entry("model1", 27.0), measured_entry("model1", 54.0), measured_entry("model3", 270.0)]
    # Median of 0.5 ms and 1 ms per image: 0.75 ms × 18,000 images × 3 epochs.
    assert estimate_training_seconds("model1", quick, entries) == pytest.approx(40.5)
    assert estimate_training_seconds("model1", full, entries) == pytest.approx(0.00075 * 54_000 * full.epochs)
    assert estimate_training_seconds("model3", quick, entries) == pytest.approx(270.0)


def test_estimates_prefer_trainings_with_the_same_batch_size():
    quick = PRESETS["quick"]
    entries = [measured_entry("model1", 54.0), measured_entry("model1", 13.5, batch_size=quick.batch_size * 4)]
    assert estimate_training_seconds("model1", quick, entries) == pytest.approx(54.0), "small batches: slower"
    other = quick.replace(batch_size=quick.batch_size * 4)
    assert estimate_training_seconds("model1", other, entries) == pytest.approx(13.5)
    # No training with this batch size yet: the median of the others, rather than no estimate.
    assert estimate_training_seconds("model1", quick.replace(batch_size=100), entries) == pytest.approx(33.75)


def test_no_estimate_without_a_measurement_from_this_machine():
    quick = PRESETS["quick"]
    elsewhere = measured_entry("model1", 27.0, machine={"cpu_model": "Some other CPU", "cpu_cores": 64})
    float32 = measured_entry("model1", 27.0, precision="float32")
    damaged = make_entry(measured_entry("model1", 27.0).record, problem="model.keras does not match its checksum")
    assert estimate_training_seconds("model1", quick, [elsewhere, float32, damaged]) is None
    assert estimate_training_seconds("model2", quick, [measured_entry("model1", 27.0)]) is None
    # A training of the same model running now gives its live speed instead.
    assert estimate_training_seconds("model2", quick, [], live_images_per_second=1800) == pytest.approx(30.0)


# The server's address ----------------------------------------------------------------------------------------------


def listening_addresses(port: int) -> set[str]:
    """Local addresses with a socket listening on `port`, read from /proc/net/tcp and tcp6."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            address, port_hex = local.split(":")
            if state == "0A" and int(port_hex, 16) == port:  # 0A: LISTEN
                raw = bytes.fromhex(address)
                # The kernel prints each 32-bit word in host byte order (little-endian here).
                words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
                family = socket.AF_INET if len(words) == 4 else socket.AF_INET6
                found.add(socket.inet_ntop(family, words))
    return found


def outward_address() -> str | None:
    """This machine's address towards the network (no packet is sent), or None without a network."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))
            address = probe.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


@pytest.mark.slow
@pytest.mark.parametrize("lan", [False, True], ids=["default: localhost only", "STREAMLIT_SERVER_ADDRESS=0.0.0.0"])
def test_the_app_listens_on_localhost_unless_opened_to_the_lan(lan, cache_dir, tmp_path):
    """Started as `make run` starts it (the project's config.toml, no --server.address), then with the LAN switch."""
    switch = {"STREAMLIT_SERVER_ADDRESS": "0.0.0.0"} if lan else {}
    server = start_server(cache_dir, tmp_path / "server.log", address=None, environment=switch)
    try:
        addresses = listening_addresses(server.port)
        if lan:
            assert addresses == {"0.0.0.0"}, addresses
            return
        assert addresses and addresses <= {"127.0.0.1", "::1"}, addresses
        outward = outward_address()
        if outward is not None:  # Where the machine has a network address, connecting to it is refused.
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection((outward, server.port), timeout=5).close()
    finally:
        server.stop()
