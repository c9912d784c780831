"""The races shipped in recorded_races/: each one loads through the race file reader (schema, sizes, finite
numbers) and holds what the Race page replays, so a fresh clone has a race to show. Never a skip: the folder's
README promises at least one recorded race."""

from __future__ import annotations

import pytest

from fmnist_core.paths import PROJECT_ROOT, RECORDED_RACES_FOLDER
from fmnist_core.race.file import load_race

# The repository's own folder, asked for by name (the tests' FMNIST_SHIPPED_DIR hides it everywhere else).
RECORDED = sorted((PROJECT_ROOT / RECORDED_RACES_FOLDER).glob("*.json"))


def test_the_repository_ships_a_recorded_race():
    assert RECORDED, f"no race file in {PROJECT_ROOT / RECORDED_RACES_FOLDER}: record one (see its README.md)"


@pytest.mark.parametrize("path", RECORDED, ids=[path.name for path in RECORDED])
def test_a_recorded_race_loads_with_every_lane_that_ran_complete(path):
    race = load_race(path)
    ran = [lane for lane in race.lanes if lane.available]
    assert ran, "a recorded race must have at least one lane that ran"
    for lane in ran:
        assert len(lane.repeats) == race.repeats, lane.label
    for lane in race.lanes:
        if not lane.available:
            assert lane.unavailable_reason, lane.label  # The page says why a lane did not run.
