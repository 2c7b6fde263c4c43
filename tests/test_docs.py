"""The documentation stays true: .env.example, the README and the docs site under docs/."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from dotenv import dotenv_values

from mmlab_bootstrap.cli.tasks import namespace
from mmlab_bootstrap.settings.variables import VARIABLES

from .conftest import REPO_ROOT

DOCS = REPO_ROOT / "docs"
README_LIMIT = 12 * 1024  # a README read in five minutes; the rest belongs in docs/
LINK = re.compile(r"\]\(([^)\s]+)\)")


def task_names() -> list[str]:
    return list(namespace(root=None).task_names)


def generator() -> ModuleType:
    """The docs extension that writes the variables table (docs/_ext/mmlab_reference.py)."""
    path = DOCS / "_ext" / "mmlab_reference.py"
    spec = importlib.util.spec_from_file_location("mmlab_reference", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_env_example_documents_every_variable_with_its_default() -> None:
    """Each variable is in .env.example with its default, right after its help comment."""
    path = REPO_ROOT / ".env.example"
    assert dotenv_values(path) == {v.name: v.default for v in VARIABLES}
    lines = path.read_text().splitlines()
    for variable in VARIABLES:
        index = next(i for i, line in enumerate(lines) if f"{variable.name}=" in line)
        assert lines[index - 1] == f"# {variable.help}"


def test_readme_is_short_and_names_every_task() -> None:
    """The README stays a five-minute read and has one line for every task."""
    readme = (REPO_ROOT / "README.md").read_bytes()
    assert len(readme) <= README_LIMIT, f"README.md is {len(readme)} bytes; move text to docs/"
    text = readme.decode()
    for name in task_names():
        assert f"| `inv {name}" in text, name


def test_every_task_has_its_page() -> None:
    """docs/tasks/<task>.md exists for each task, is titled with it and listed in the index."""
    index = (DOCS / "tasks" / "index.md").read_text()
    for name in task_names():
        page = DOCS / "tasks" / f"{name}.md"
        assert page.is_file(), f"no page for task {name}: {page}"
        assert page.read_text().startswith(f"# `inv {name}"), page
        assert f"]({name}.md)" in index, name
        assert f"```{{mmlab-task-flags}} {name}\n```" in page.read_text(), page
    pages = {p.stem for p in (DOCS / "tasks").glob("*.md")} - {"index", "linking"}
    assert pages == set(task_names()), "a page for a task that does not exist"


def test_every_variable_is_in_the_generated_reference() -> None:
    """The reference page holds the generated table; the table has every variable's row."""
    page = (DOCS / "reference" / "variables.md").read_text()
    assert "```{mmlab-variables}" in page
    table = generator().variables_table()
    rows = [line for line in table.splitlines() if line.startswith("| `MMLAB_")]
    assert len(rows) == len(VARIABLES)
    for variable, row in zip(VARIABLES, rows, strict=True):
        assert row.startswith(f"| `{variable.name}` |"), row
        assert f"`{variable.flag}`" in row, row
        if variable.default:
            assert f"`{variable.default}`" in row, row
        assert generator().plain(variable.help) in row, row  # as Markdown shows it


def slug(heading: str) -> str:
    """The anchor MyST gives a heading (myst_heading_anchors), as GitHub makes it."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    lines = page.read_text().splitlines()
    return {slug(line.lstrip("#")) for line in lines if re.match(r"#{1,3} ", line)}


def markdown_files() -> list[Path]:
    return [
        REPO_ROOT / "README.md",
        *sorted(p for p in DOCS.rglob("*.md") if "_build" not in p.parts),
    ]


@pytest.mark.parametrize("page", markdown_files(), ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_links_between_pages_resolve(page: Path) -> None:
    """Every relative link of the README and the docs leads to a file (and heading) that exists."""
    for target in LINK.findall(page.read_text()):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        assert resolved.exists(), f"{page.name}: {target}"
        if anchor and resolved.suffix == ".md":
            assert anchor in anchors(resolved), f"{page.name}: {target}"


def test_the_docs_build_without_a_warning(tmp_path: Path) -> None:
    """The site builds with warnings as errors (as .ci/run does), where Sphinx is installed."""
    pytest.importorskip("sphinx")
    pytest.importorskip("myst_parser")
    html, doctrees = tmp_path / "html", tmp_path / "doctrees"
    command = [sys.executable, "-m", "sphinx", "-q", "-W", "--keep-going", "-b", "html"]
    build = subprocess.run(
        [*command, "-d", str(doctrees), str(DOCS), str(html)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr
    reference = (html / "reference" / "variables.html").read_text()
    for variable in VARIABLES:
        assert variable.name in reference, variable.name
    flags = (html / "tasks" / "link-data.html").read_text()
    assert "--move-data" in flags
