"""The README stays a short front door, and the docs site leaves no page out.

`make test` (hence CI) builds the site itself with Sphinx warnings as errors (`make docs`), which
catches broken cross-references and API entries for code that is gone; these checks cover what that
build does not: the README, which Sphinx never reads, and pages that no toctree reaches.
"""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
README = ROOT / "README.md"
MAX_README_LINES = 150

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
TOCTREE = re.compile(r"```\{toctree\}\n(.*?)```", re.S)


def relative_links(text: str) -> list[str]:
    """Targets of the markdown links that are not URLs or in-page anchors, without their anchor."""
    targets = [m.group(1) for m in LINK.finditer(text)]
    return [t.split("#")[0] for t in targets if not re.match(r"[a-z]+:", t) and not t.startswith("#")]


def toctree_entries(page: Path) -> list[Path]:
    """The pages a page's toctrees list (options and blank lines skipped)."""
    entries = []
    for block in TOCTREE.findall(page.read_text()):
        for line in block.splitlines():
            line = line.strip()
            if line and not line.startswith(":"):
                entries.append((page.parent / line).with_suffix(".md"))
    return entries


def test_readme_is_short():
    lines = README.read_text().splitlines()
    assert len(lines) <= MAX_README_LINES, f"README.md has {len(lines)} lines; move detail into docs/"


def test_every_relative_link_of_the_readme_exists():
    links = relative_links(README.read_text())
    assert links, "the README links to no docs page"
    missing = [t for t in links if not (ROOT / t).exists()]
    assert missing == []


def test_relative_links_are_found_and_urls_skipped():
    text = "[a](docs/x.md#part) [b](https://example.org) [c](#here) [d](Makefile)"
    assert relative_links(text) == ["docs/x.md", "Makefile"]


def test_every_docs_page_is_reachable_from_the_index():
    reachable, todo = set(), [DOCS / "index.md"]
    while todo:
        page = todo.pop()
        if page in reachable:
            continue
        reachable.add(page)
        todo += [p for p in toctree_entries(page) if p.exists()]
    pages = {p for p in DOCS.rglob("*.md") if not ({"_build", "_generated"} & set(p.relative_to(DOCS).parts))}
    assert len(pages) > 10
    assert pages - reachable == set(), "add these pages to a toctree (docs/index.md)"


def test_every_toctree_entry_is_a_page():
    missing = [p for page in DOCS.rglob("*.md") for p in toctree_entries(page) if not p.exists()]
    assert missing == []
