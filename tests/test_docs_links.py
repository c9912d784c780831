"""The documents hold together: every relative link in README.md and docs/ points at a file that exists (and at a
heading that exists, when it names one), the README stays a five-minute read, and docs/README.md indexes every
document under docs/."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
INDEX = DOCS / "README.md"
README_MOST_LINES = 250  # What a teacher reads in five minutes (issue 37).
NOT_INDEXED = ("screenshots",)  # Folders under docs/ the index need not list file by file.

LINK = re.compile(r"\]\(([^)\s]+)\)")
FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")


def documents() -> list[Path]:
    """The project's Markdown documents: the README, everything under docs/, and the data folders' READMEs."""
    return [ROOT / "README.md", *sorted(DOCS.rglob("*.md")), *sorted(ROOT.glob("*/README.md"))]


def prose_lines(path: Path) -> list[str]:
    """The file's lines outside fenced code blocks (a `# comment` in a shell block is not a heading)."""
    lines, fenced = [], False
    for line in path.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            lines.append(line)
    return lines


def anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation and symbols dropped (underscores kept), each space a
    hyphen."""
    text = re.sub(r"[`*]|\[|\]\([^)]*\)", "", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors_of(path: Path) -> set[str]:
    found: set[str] = set()
    for line in prose_lines(path):
        match = HEADING.match(line)
        if match:
            slug = base = anchor(match.group(1))
            count = 0
            while slug in found:  # GitHub numbers repeated headings: name, name-1, name-2 …
                count += 1
                slug = f"{base}-{count}"
            found.add(slug)
    return found


def relative_links(path: Path) -> list[str]:
    targets = [target for line in prose_lines(path) for target in LINK.findall(line)]
    return [target for target in targets if not re.match(r"^[a-z][a-z0-9+.-]*:", target)]


@pytest.mark.parametrize("document", documents(), ids=lambda path: str(path.relative_to(ROOT)))
def test_every_relative_link_leads_somewhere(document: Path):
    broken = []
    for target in relative_links(document):
        file_part, _, heading = target.partition("#")
        linked = (document.parent / file_part).resolve() if file_part else document
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif heading and linked.suffix == ".md" and heading not in anchors_of(linked):
            broken.append(f"{target}: no heading with that anchor in {linked.relative_to(ROOT)}")
    assert not broken, f"{document.relative_to(ROOT)} links to what is not there: {broken}"


def test_the_readme_is_a_five_minute_read():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MOST_LINES, f"README.md has {len(lines)} lines: move detail to docs/"


def test_the_readme_keeps_the_exit_code_table_under_its_heading():
    # tests/test_cli_contract.py and the code's docstrings point at README, "Exit codes".
    headings = [HEADING.match(line).group(1) for line in prose_lines(ROOT / "README.md") if HEADING.match(line)]
    assert "Exit codes" in headings


def test_the_docs_index_links_every_document():
    indexed = {(INDEX.parent / target.partition("#")[0]).resolve() for target in relative_links(INDEX)}
    missing = [
        str(path.relative_to(ROOT))
        for path in sorted(DOCS.rglob("*"))
        if path.is_file()
        and path != INDEX
        and not any(part in NOT_INDEXED for part in path.relative_to(DOCS).parts)
        and path.resolve() not in indexed
    ]
    assert not missing, f"docs/README.md does not link {missing}"


def test_anchors_follow_githubs_rule():
    assert anchor("The three models × 5 seeds, full preset") == "the-three-models--5-seeds-full-preset"
    assert anchor("Which saliency, and is it faithful?") == "which-saliency-and-is-it-faithful"
    assert anchor("Float32 speed: TensorFlow's pooling allocator") == "float32-speed-tensorflows-pooling-allocator"
    assert anchor("`fmnist_core/` layout") == "fmnist_core-layout"
