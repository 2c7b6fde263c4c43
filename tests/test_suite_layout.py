"""The suite's own shape: helpers shared by tests live in tests/lib/, no test file imports
another test file (a builder two files need moves to tests/lib/)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent


def imported_modules(source: str, package: tuple[str, ...]) -> list[str]:
    """Every module a file imports (at any depth, function-local too), relative ones resolved
    against `package` (the file's package, as its parts below the repository)."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = list(package[: len(package) - node.level + 1]) if node.level else []
            module = [*base, *(node.module.split(".") if node.module else [])]
            if node.module:
                found.append(".".join(module))
            else:  # `from . import x`: each name may be a module
                found.extend(".".join([*module, alias.name]) for alias in node.names)
    return found


def names_a_test_module(module: str) -> bool:
    return any(part.startswith("test_") for part in module.split("."))


@pytest.mark.parametrize(
    ("source", "package", "expected"),
    [
        ("from .test_clone import clone", ("tests",), True),
        ("def f():\n    from .test_links import TRACKED", ("tests",), True),
        ("from .. import test_links", ("tests", "lib"), True),
        ("import tests.test_seam", ("tests",), True),
        ("from .lib.clonecheck import clone", ("tests",), False),
        ("from .conftest import inv", ("tests",), False),
        ("from ..conftest import inv", ("tests", "lib"), False),
        ("from mmlab_bootstrap.run.step import unlink_step", ("tests",), False),
    ],
)
def test_the_import_check_sees_test_modules(
    source: str, package: tuple[str, ...], expected: bool
) -> None:
    assert any(names_a_test_module(m) for m in imported_modules(source, package)) is expected


def test_no_test_file_imports_another_test_file() -> None:
    offenders = []
    for path in sorted(TESTS.rglob("*.py")):
        package = ("tests", *path.parent.relative_to(TESTS).parts)
        for module in imported_modules(path.read_text(encoding="utf-8"), package):
            if names_a_test_module(module):
                offenders.append(f"{path.relative_to(TESTS.parent)} imports {module}")
    assert not offenders, "move shared builders to tests/lib/: " + "; ".join(offenders)


def test_shared_helpers_live_in_tests_lib() -> None:
    """Only test files, conftest.py and the package marker sit directly in tests/."""
    loose = sorted(
        path.name
        for path in TESTS.glob("*.py")
        if not path.name.startswith("test_") and path.name not in ("conftest.py", "__init__.py")
    )
    assert not loose, f"helpers belong in tests/lib/: {loose}"


def test_ci_runs_the_readmes_test_command_and_the_slow_tier() -> None:
    """.ci/run runs literally what the README says (`pytest`) and `pytest -m slow`, the tier
    the README's command leaves out; there are slow tests, so that run never collects none
    (pytest's exit 5)."""
    import re

    readme = (TESTS.parent / "README.md").read_text(encoding="utf-8")
    found = re.search(r"\npip install -e '\.\[test\]' && (.+)\n```", readme)
    assert found is not None, "the README's test command is not where it was"
    command = found.group(1)
    ci = (TESTS.parent / ".ci/run").read_text(encoding="utf-8").splitlines()
    assert f"MMLAB_TEST_PROFILE=thorough {command}" in ci
    assert any(line.startswith(f"MMLAB_TEST_PROFILE=thorough {command} -m slow") for line in ci)
    project = (TESTS.parent / "pyproject.toml").read_text(encoding="utf-8")
    assert re.search(r"^addopts = \".*-m 'not slow'.*\"$", project, re.M)
    assert re.search(r'^    "slow: ', project, re.M)
    marked = [
        path.name
        for path in TESTS.glob("test_*.py")
        if re.search(r"pytest\.mark\.slow\b|\bslow = pytest\.mark", path.read_text("utf-8"))
    ]
    assert marked, "no test is marked slow: `pytest -m slow` would collect nothing"
