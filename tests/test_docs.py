"""The documentation stays small, linked and inside the repository.

* README.md is read in five minutes: at most 180 lines; the rest lives in docs/ and
  CONTRIBUTING.md.
* Every relative link of README.md, CONTRIBUTING.md and docs/*.md names a file or folder of the
  repository (and, for `file.md#anchor`, a heading of that file).
* Nothing in the repository points outside it (see `OUTSIDE_ALLOWED`).
* CONTRIBUTING.md walks through adding an attention layer, a model and a task in numbered
  steps, and the files those steps name exist.
"""

import re
import subprocess
from pathlib import Path

import pytest

from tests.support import REPO

README = REPO / "README.md"
CONTRIBUTING = REPO / "CONTRIBUTING.md"
DOCS = sorted((REPO / "docs").glob("*.md"))
README_MAX_LINES = 180

# The sibling directory the corpora live in. Spelled in two parts so that this file does not
# match itself.
OUTSIDE = "../" + "shared"
# Where the repository may name that directory: the defaults of $ZOO_DATA_DIR, and nowhere
# else (docs and configs describe it in words instead).
OUTSIDE_ALLOWED = {
    "Makefile",  # `export ZOO_DATA_DIR ?= ...`: the default of `make demo` / `make test`
    ".ci/run",  # the CI entry point's default, and its comment saying so
    # The hint of DataDirError when $ZOO_DATA_DIR is unset (behaviour, not docs), and the test
    # that asserts the hint. tests/conftest.py builds its default from REPO.parent instead.
    "zoo/data/paths.py",
    "tests/zoo/data/test_data_readers.py",
}

LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
WALKTHROUGHS = ("Adding an attention layer", "Adding a model", "Adding a task")
# Names a walkthrough tells the reader to create: not expected to exist.
PLACEHOLDERS = ("my_layer", "my_task", "<")


def repository_files():
    """Tracked files plus untracked ones git does not ignore (a new doc counts before its
    commit); build outputs, the venv and MLflow stores are ignored."""
    try:
        listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                                cwd=REPO, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: cannot tell the repository's files from build outputs")
    return [path for path in listed.splitlines() if (REPO / path).is_file()]


def slug(heading):
    """GitHub's anchor of a Markdown heading: lower case, punctuation dropped, spaces → '-'."""
    text = re.sub(r"[`*_]{2,}|`", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path):
    found, in_code = set(), False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and line.startswith("#"):
            found.add(slug(line.lstrip("#")))
    return found


def relative_links(path):
    """`(target, anchor)` of every link that is not a URL (code blocks skipped)."""
    links, in_code = [], False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_code = not in_code
            continue
        if in_code:
            continue
        for target in LINK.findall(line):
            if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:, ...
                continue
            file_part, _, anchor = target.partition("#")
            links.append((file_part, anchor))
    return links


def test_readme_is_short():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, (
        f"README.md has {len(lines)} lines (at most {README_MAX_LINES}): move detail to docs/")


@pytest.mark.parametrize("doc", [README, CONTRIBUTING, *DOCS], ids=lambda p: p.name)
def test_relative_links_name_files_of_the_repository(doc):
    assert DOCS, "docs/ has no Markdown files"
    broken = []
    for file_part, anchor in relative_links(doc):
        target = (doc.parent / file_part).resolve() if file_part else doc
        if not target.is_relative_to(REPO):
            broken.append(f"{file_part}: outside the repository")
        elif not target.exists():
            broken.append(f"{file_part}: no such file")
        elif anchor and target.suffix == ".md" and anchor not in anchors(target):
            broken.append(f"{file_part}#{anchor}: no such heading")
    assert not broken, f"{doc.relative_to(REPO)}: " + "; ".join(broken)


def test_nothing_points_outside_the_repository():
    needle = OUTSIDE.encode()
    offenders = sorted(path for path in repository_files()
                       if path not in OUTSIDE_ALLOWED and needle in (REPO / path).read_bytes())
    assert not offenders, (f"{offenders} mention {OUTSIDE!r}; describe the data directory in "
                           f"words (docs/data.md) or add the file to OUTSIDE_ALLOWED with why")


def walkthrough_sections():
    text = CONTRIBUTING.read_text(encoding="utf-8")
    sections = re.split(r"^## ", text, flags=re.MULTILINE)[1:]
    return {section.splitlines()[0].strip(): section for section in sections}


@pytest.mark.parametrize("title", WALKTHROUGHS)
def test_contributing_walkthrough_has_numbered_steps(title):
    sections = walkthrough_sections()
    assert title in sections, f"CONTRIBUTING.md lacks the section '## {title}'"
    steps = [int(number) for number in
             re.findall(r"^(\d+)\. ", sections[title], flags=re.MULTILINE)]
    assert len(steps) >= 3 and steps == list(range(1, len(steps) + 1)), (
        f"'{title}': steps must be numbered 1, 2, 3, ... (got {steps})")


@pytest.mark.parametrize("title", WALKTHROUGHS)
def test_contributing_names_existing_files(title):
    top_level = {Path(path).parts[0] for path in repository_files()}
    section = walkthrough_sections()[title]
    named = set()
    for code in re.findall(r"`([^`]+)`", section):
        for word in code.split():
            word = word.strip("\"'(),;:")
            first = word.split("/")[0]
            if first in top_level and "/" in word and not any(p in word for p in PLACEHOLDERS):
                named.add(word)
    assert named, f"'{title}' names no file of the repository"
    missing = sorted(word for word in named if not (REPO / word).exists())
    assert not missing, f"'{title}' names files that do not exist: {missing}"
