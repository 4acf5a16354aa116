"""The documentation stays inside the repository: every link resolves here, none leaves."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINK = re.compile(r"\]\(([^)\s]+)\)")
URL = re.compile(r"https?://[^\s)>`\"']+")
# Not links to other sites: the local server, and reserved example domains (RFC 2606).
LOCAL_URL = re.compile(r"https?://(127\.0\.0\.1|localhost)[:/]|https?://[\w.-]+\.example[:/]")


def documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def outside_links(paths: list[Path]) -> list[str]:
    problems = []
    for path in paths:
        text = path.read_text()
        where = path.relative_to(ROOT)
        problems += [f"{where}: {url}" for url in URL.findall(text) if not LOCAL_URL.match(url)]
        for target in LINK.findall(text):
            if URL.match(target):
                continue  # reported above when it leaves the machine
            resolved = (path.parent / target.split("#")[0]).resolve()
            if not resolved.is_relative_to(ROOT) or not resolved.exists():
                problems.append(f"{where}: {target} is not a file of the repository")
    return problems


def test_the_documentation_links_only_inside_the_repository():
    assert outside_links(documents()) == []


def test_it_detects_an_outside_or_broken_link(tmp_path, monkeypatch):
    monkeypatch.setattr("tests.test_docs.ROOT", tmp_path)
    page = tmp_path / "guide.md"
    page.write_text(
        "[ok](guide.md) http://127.0.0.1:8000/ [gone](missing.md) "
        "[up](../elsewhere.md) see https://example.org/x\n"
    )
    assert outside_links([page]) == [
        "guide.md: https://example.org/x",
        "guide.md: missing.md is not a file of the repository",
        "guide.md: ../elsewhere.md is not a file of the repository",
    ]
