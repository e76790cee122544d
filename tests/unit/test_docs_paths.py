"""Every source path the documentation names exists: docs/*.md and README.md, in backticks or plain text; and
every one a comment or docstring of the code names."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# A path under one of the code packages, ending in .py or .sql: from the repository's root, or a link's ../,
# never the tail of a longer path or URL.
SOURCE_PATH = re.compile(r"(?:(?<=\.\./)|(?<![\w./-]))(?:engine|api|webui|tests|config)/[\w./-]*?\w\.(?:py|sql)\b")


def documents() -> list[Path]:
    return [*sorted((REPO / "docs").glob("*.md")), REPO / "README.md"]


def source_paths(text: str) -> list[tuple[int, str]]:
    """The (line number, path) of every source path written in ``text``."""
    return [(number, match.group(0)) for number, line in enumerate(text.splitlines(), 1)
            for match in SOURCE_PATH.finditer(line)]


def test_source_paths_are_found_in_backticks_links_and_plain_text():
    text = ("see `engine/core/runtx.py` and engine/worker/sql/claim.sql,\n"
            "[the guard](../tests/support/transition_guard.py) (api/views/steps.py); webui/consumers.py.\n"
            "not /static/webui/build/weft.js, not https://example.com/engine/x.py, not tests/e2e/\n")
    assert source_paths(text) == [(1, "engine/core/runtx.py"), (1, "engine/worker/sql/claim.sql"),
                                  (2, "tests/support/transition_guard.py"), (2, "api/views/steps.py"),
                                  (2, "webui/consumers.py")]


def test_every_source_path_in_the_docs_exists():
    named, missing = 0, []
    for document in documents():
        for number, path in source_paths(document.read_text(encoding="utf-8")):
            named += 1
            if not (REPO / path).is_file():
                missing.append(f"{document.relative_to(REPO)}:{number}: {path}")
    assert named > 20, "the docs name hardly any source path: is the pattern still finding them?"
    assert not missing, "paths in the docs that do not exist:\n" + "\n".join(missing)


def test_every_source_path_in_a_comment_or_docstring_exists():
    missing = []
    for package in ("engine", "api", "webui", "config", "tests"):
        for module in sorted((REPO / package).rglob("*.py")):
            for number, path in source_paths(module.read_text(encoding="utf-8")):
                if not (REPO / path).is_file():
                    missing.append(f"{module.relative_to(REPO)}:{number}: {path}")
    assert not missing, "paths in the code's comments and docstrings that do not exist:\n" + "\n".join(missing)
