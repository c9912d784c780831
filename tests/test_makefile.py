"""`make test` does its own set-up: the `browser` step installs Chromium and its driver with apt-get (as root), or
stops with one line saying what to install, before any test runs; CI only calls `make test`.

The Chromium path, the driver's name and apt-get are Makefile variables, so these tests stand in for them and never
install anything.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
INSTALL_LINE = (
    "make test needs Chromium and its driver for the browser tests: sudo apt-get install chromium chromium-driver"
)

pytestmark = pytest.mark.slow  # Runs make in its own process.


def fake_apt_get(folder: Path, installs: bool) -> tuple[Path, Path]:
    """A stand-in apt-get that logs its arguments and, when `installs`, puts a Chromium and a driver in `folder`;
    returns (its path, its log)."""
    log = folder / "apt-get.log"
    script = folder / "apt-get"
    action = f'touch "{folder}/chromium" "{folder}/chromedriver"; chmod +x "{folder}/chromium" "{folder}/chromedriver"'
    script.write_text(f'#!/bin/sh\necho "$@" >> "{log}"\n' + (f"{action}\nexit 0\n" if installs else "exit 100\n"))
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script, log


def make_browser(folder: Path, apt_get: Path) -> subprocess.CompletedProcess:
    variables = [f"CHROMIUM={folder / 'chromium'}", f"CHROMEDRIVER={folder / 'chromedriver'}", f"APT_GET={apt_get}"]
    # As a user's top-level make: under `make test` (CI) the inherited MAKELEVEL would make it report as make[1].
    environment = {key: value for key, value in os.environ.items() if key not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS")}
    return subprocess.run(
        ["make", "--no-print-directory", "-s", "browser", *variables],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=environment,
    )


def test_chromium_missing_and_not_installable_stops_with_one_line_saying_what_to_install(tmp_path):
    apt_get, _ = fake_apt_get(tmp_path, installs=False)
    finished = make_browser(tmp_path, apt_get)
    assert finished.returncode != 0
    ours = [line for line in finished.stderr.splitlines() if not line.startswith("make: ***")]
    assert ours == [INSTALL_LINE], finished.stderr


def test_chromium_missing_is_installed_with_apt_get_when_run_as_root(tmp_path):
    apt_get, log = fake_apt_get(tmp_path, installs=True)
    finished = make_browser(tmp_path, apt_get)
    if os.geteuid() == 0:
        assert finished.returncode == 0, finished.stderr
        assert log.read_text().splitlines() == ["install -y -q chromium chromium-driver"]
        assert "Installing Debian packages chromium chromium-driver" in finished.stdout
    else:  # Without root it installs nothing and says what to run.
        assert finished.returncode != 0 and INSTALL_LINE in finished.stderr and not log.exists()


def test_nothing_is_installed_when_chromium_and_its_driver_are_there(tmp_path):
    apt_get, log = fake_apt_get(tmp_path, installs=True)
    for name in ("chromium", "chromedriver"):
        (tmp_path / name).write_text("#!/bin/sh\n")
        (tmp_path / name).chmod(0o755)
    finished = make_browser(tmp_path, apt_get)
    assert finished.returncode == 0 and finished.stdout == finished.stderr == ""
    assert not log.exists()


def test_make_test_sets_up_the_browser_and_ci_only_calls_make_test():
    dry_run = subprocess.run(["make", "-n", "-s", "test"], cwd=ROOT, capture_output=True, text=True)
    assert dry_run.returncode == 0, dry_run.stderr
    # The browser step runs before the tests do.
    assert 0 <= dry_run.stdout.find(INSTALL_LINE) < dry_run.stdout.find("-m pytest"), dry_run.stdout
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    commands = [line for line in ci.splitlines() if line.strip() and not line.startswith("#")]
    assert commands == ["set -euo pipefail", 'cd "$(dirname "$0")/.."', "make test"]


@pytest.mark.slow
def test_the_installed_fmnist_command_is_the_cli():
    """`pip install -e .` (what `make` does) puts `fmnist` beside the interpreter: the same parser as
    `python -m fmnist_core`."""
    command = Path(sys.executable).parent / "fmnist"
    assert command.is_file(), f"{command} is missing: the project is not installed (pip install -e .)"
    finished = subprocess.run([str(command), "--help"], capture_output=True, text=True, timeout=120, check=False)
    assert finished.returncode == 0, finished.stderr
    assert "train" in finished.stdout and "sweep" in finished.stdout
