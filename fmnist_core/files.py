"""Files the commands write: checked before the work starts, written beside their target and renamed into place.

A leaf module (nothing of ours but the error family). A command that would train for minutes and then find it
cannot write its result has lost those minutes, so every writer checks first (`folder_problem`,
`check_output_file`), and every file is written whole or not at all (`atomic_file`): a temporary file in the
target's own folder, renamed over the target, removed if anything fails.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from fmnist_core.errors import ConfigError


def folder_problem(folder: Path) -> str | None:
    """Why files cannot be written in `folder` (created if missing), or None when they can. Creates nothing.

    The nearest part of the path that exists must be a folder we can write in: then the rest can be created.
    """
    existing = folder
    try:
        while not existing.exists():
            if existing.parent == existing:
                return f"{folder} cannot be reached"
            existing = existing.parent
        if not existing.is_dir():
            return f"{existing} is a file, not a folder"
        # Permission bits do not tell the whole truth (root, read-only mounts, network folders): try it.
        handle, probe = tempfile.mkstemp(prefix=".write-check-", dir=existing)
        os.close(handle)
        os.unlink(probe)
    except OSError as error:
        return f"cannot write in {existing}: {error.strerror or error}"
    return None


def check_output_file(path: Path, option: str) -> Path:
    """`path` when a file can be written there; otherwise ConfigError (exit 2) naming the option, before any work."""
    if path.is_dir():
        raise ConfigError(f"{option} {path} is a folder; name a file to write (inside it, or anywhere else).")
    problem = folder_problem(path.parent)
    if problem:
        raise ConfigError(f"Cannot write {option} {path}: {problem}. Pick another path.")
    return path


@contextmanager
def atomic_file(path: Path) -> Iterator[IO[bytes]]:
    """A binary handle whose content replaces `path` when the block ends without error; removed otherwise.

    Raises OSError (after removing the temporary file) when the folder or the rename fails; callers turn it into
    their project error.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_output(path: Path, content: str | bytes, option: str) -> Path:
    """Write a command's output file atomically; ConfigError (exit 2) naming the option when that fails."""
    payload = content.encode("utf-8") if isinstance(content, str) else content
    try:
        with atomic_file(path) as stream:
            stream.write(payload)
    except OSError as error:
        raise ConfigError(f"Cannot write {option} {path} ({error.strerror or error}). Pick another path.") from error
    return path
