"""The docs stand alone: every relative link in README.md and docs/ points to a file in the
repository, and no file cites design notes that are not in it."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
OUTSIDE_NOTES = re.compile(r"\b(DESIGN|STYLE)\.md\b")


def markdown_files() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def test_relative_links_in_the_docs_point_to_files_that_exist():
    broken = []
    for page in markdown_files():
        for target in LINK.findall(page.read_text(encoding="utf-8")):
            if "://" in target or target.startswith("mailto:"):
                continue
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(REPO)} -> {target}")
    assert not broken, broken


def test_no_file_cites_design_notes_outside_the_repository():
    cited = []
    for path in [*markdown_files(), *REPO.glob("mlops_tui/**/*.py"), *REPO.glob("tests/*.py"),
                 *REPO.glob("benchmarks/*.py")]:
        if path == Path(__file__).resolve():
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if OUTSIDE_NOTES.search(line):
                cited.append(f"{path.relative_to(REPO)}:{number}")
    assert not cited, cited
