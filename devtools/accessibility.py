"""Where the browser tests find axe-core, the accessibility checker: installed from npm by `make axe` (part of
`make test`) into devtools/axe/, which git ignores."""

from __future__ import annotations

from pathlib import Path

AXE_CORE_VERSION = "4.14.1"  # The Makefile installs this version (AXE_CORE_VERSION there).
AXE_SCRIPT = Path(__file__).resolve().parent / "axe" / "node_modules" / "axe-core" / "axe.min.js"
AXE_MISSING = f"{AXE_SCRIPT} is missing: run `make axe` (npm install axe-core@{AXE_CORE_VERSION})"
