"""One validator for every JSON file the project reads (fmnist_core.json_checks): a model record, a race file, a
sweep and a benchmark's result lines, damaged the same way, are refused with the same clear sentence by each
format's own reader (its project error), never a traceback or a bare JSONDecodeError."""

from __future__ import annotations

from pathlib import Path

import pytest

from devtools.results_lines import read_rows
from fmnist_core import json_checks as check
from fmnist_core.errors import CacheError
from fmnist_core.race.file import RaceFileError, load_race
from fmnist_core.store.cache import ModelCache
from fmnist_core.sweep.result import read_sweep

DAMAGE = {
    "not JSON": (b'{"format": 2,', "is not valid JSON (Expecting property name enclosed in double quotes at line 1"),
    "not text": (b"\xff\xfe\x00{}", "is not text, so it is not a JSON file"),
    "nested": (b"[" * 100_000, "nests its values too deeply"),
}


def read_record(path: Path) -> str:
    """The cache's reading of an entry whose meta.json holds the file: the entry's damage reason."""
    entry = path.parent / "model1-0123456789ab"
    entry.mkdir()
    path.rename(entry / "meta.json")
    found = ModelCache(path.parent, shipped_root=path.parent / "none").inspect(entry.name)
    assert found.record is None
    return found.problem


def read_race(path: Path) -> str:
    with pytest.raises(RaceFileError) as raised:
        load_race(path)
    return str(raised.value)


def read_sweep_file(path: Path) -> str:
    with pytest.raises(CacheError) as raised:
        read_sweep(path)
    return str(raised.value)


def read_benchmark_lines(path: Path) -> str:
    path.write_bytes(b'{"images_per_second": 1.0}\n' + path.read_bytes())
    with pytest.raises(check.FieldError) as raised:
        read_rows(path)
    return str(raised.value)


READERS = {"model record": read_record, "race": read_race, "sweep": read_sweep_file, "benchmark": read_benchmark_lines}


@pytest.mark.parametrize("damage", DAMAGE)
@pytest.mark.parametrize("reader", READERS)
def test_every_format_refuses_a_damaged_file_with_the_same_sentence(reader, damage, tmp_path):
    payload, expected = DAMAGE[damage]
    path = tmp_path / "file.json"
    path.write_bytes(payload)
    message = READERS[reader](path)
    assert expected in message


def test_the_benchmark_lines_name_the_damaged_line(tmp_path):
    path = tmp_path / "results.jsonl"
    path.write_text('{"a": 1}\n\n{"b": 2}\n[3]\n')
    with pytest.raises(check.FieldError, match=r"results\.jsonl:4` should be an object, but it is a list"):
        read_rows(path)
    path.write_text('{"a": 1}\n\n{"b": 2}\n')
    assert read_rows(path) == [{"a": 1}, {"b": 2}]


def test_a_file_over_its_size_limit_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "huge.json"
    path.write_bytes(b" " * (3 * 2**20))
    with pytest.raises(check.FieldError, match=r"huge\.json is 3\.0 MB; this kind of file is at most 2 MB"):
        check.read_file(path, max_bytes=2 * 2**20)
