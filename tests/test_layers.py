"""The package's shape (issue 22): subpackages by concern, each with a declared surface imported
lazily; imports only go down the layers (import-linter's contracts in pyproject.toml, run here
too); function-local imports only for start-up cost, each marked `# startup:`."""

from __future__ import annotations

import ast
import importlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "mmlab_bootstrap"
SUBPACKAGES = sorted(
    ".".join(init.parent.relative_to(ROOT).parts) for init in PACKAGE.glob("*/**/__init__.py")
)


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _surface(init: Path) -> list[str]:
    for node in ast.parse(init.read_text()).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "__all__" for target in node.targets
        ):
            return [ast.literal_eval(element) for element in node.value.elts]  # type: ignore[attr-defined]
    return []


def test_at_most_five_modules_stay_directly_under_the_package() -> None:
    flat = sorted(path.name for path in PACKAGE.glob("*.py"))
    assert len(flat) <= 5, flat
    assert len(SUBPACKAGES) >= 10, SUBPACKAGES


@pytest.mark.parametrize("name", SUBPACKAGES)
def test_each_subpackage_declares_its_surface(name: str) -> None:
    """A docstring saying what it may import, `__all__`, each name resolvable, none shadowing
    one of the package's own modules (a submodule, once imported, would win)."""
    init = ROOT / name.replace(".", "/") / "__init__.py"
    package = importlib.import_module(name)
    assert package.__doc__ and "May import:" in package.__doc__
    surface = _surface(init)
    assert surface == sorted(set(surface), key=surface.index)  # no duplicates
    for symbol in surface:
        assert not (init.parent / f"{symbol}.py").exists(), symbol
        assert not (init.parent / symbol).is_dir(), symbol
        assert getattr(package, symbol) is not None
    with pytest.raises(AttributeError):
        _ = package.no_such_name


def test_importing_a_package_imports_none_of_its_modules() -> None:
    """Surfaces are lazy (PEP 562): `inv --list` pays only for the modules it uses."""
    code = (
        "import sys\nimport mmlab_bootstrap\nbefore = set(sys.modules)\n"
        f"for name in {SUBPACKAGES!r}:\n    __import__(name)\n"
        "print([sorted(set(sys.modules) - before), sorted(before)])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    new, before = ast.literal_eval(done.stdout)
    assert new == sorted(set(SUBPACKAGES) - set(before))
    # The root runs first in every process and imports none of the tool's packages.
    assert [name for name in before if name.startswith("mmlab_bootstrap.")] == []


# What `inv --list` may import of the package (bench/startup_bench.py measures the cost): the
# tasks and their support, the variables table (flags and help), the report (broken pipes)
# and the error types. A new module here is a start-up cost: import it in the task body.
LIST_IMPORTS = [
    "mmlab_bootstrap",
    "mmlab_bootstrap.cli",
    "mmlab_bootstrap.cli.support",
    "mmlab_bootstrap.cli.tasks",
    "mmlab_bootstrap.errors",
    "mmlab_bootstrap.output",
    "mmlab_bootstrap.output.report",
    "mmlab_bootstrap.settings",
    "mmlab_bootstrap.settings.variables",
]


def test_listing_the_tasks_imports_only_what_it_needs(tmp_path: Path) -> None:
    """`inv --list` in a workspace imports the task table and what its flags need, no more:
    no HTTP client, no progress bars (requests, urllib3 and tqdm are fetch-checkpoints'),
    none of the download modules."""
    (tmp_path / "tasks.py").write_text((ROOT / "tasks.py").read_text())
    code = (
        "import sys\nfrom invoke.main import program\nsys.argv = ['inv', '--list']\n"
        "try:\n    program.run()\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('mmlab_bootstrap',"
        " 'requests', 'urllib3', 'tqdm')), file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert ast.literal_eval(done.stderr.strip().splitlines()[-1]) == LIST_IMPORTS


def _function_local_imports(tree: ast.AST) -> list[ast.stmt]:
    found: list[ast.stmt] = []
    for function in ast.walk(tree):
        if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found += [
                node
                for node in ast.walk(function)
                if isinstance(node, (ast.Import, ast.ImportFrom))
            ]
    return found


def test_function_local_imports_are_marked_startup() -> None:
    """Only start-up cost justifies an import inside a function; each says so (on its line or
    in a `# startup:` comment just above its group of imports)."""
    unmarked = []
    for path in _modules():
        lines = path.read_text().splitlines()
        starts = {node.lineno - 1 for node in _function_local_imports(ast.parse(path.read_text()))}
        for index in sorted(starts):
            group_start = index
            while group_start - 1 in starts:
                group_start -= 1
            if "# startup:" not in lines[index] and "# startup:" not in lines[group_start - 1]:
                unmarked.append(f"{path.relative_to(ROOT)}:{index + 1}: {lines[index].strip()}")
    assert unmarked == []


def test_other_packages_are_imported_through_their_surface() -> None:
    """`from mmlab_bootstrap.links import link_step`, not `...links.step import link_step`,
    outside `links`."""
    direct = []
    for path in _modules():
        parts = path.relative_to(PACKAGE).parts
        own = parts[0] if len(parts) > 1 else None
        for node in ast.walk(ast.parse(path.read_text())):
            if own is None or not isinstance(node, ast.ImportFrom) or not node.module:
                continue
            names = node.module.split(".")
            if names[0] == "mmlab_bootstrap" and len(names) > 2 and names[1] != own:
                direct.append(f"{path.relative_to(ROOT)}:{node.lineno}: from {node.module}")
    assert direct == []


@pytest.mark.skipif(shutil.which("lint-imports") is None, reason="import-linter not installed")
def test_the_layers_hold() -> None:
    """import-linter's contracts (pyproject.toml): layers, no cycles among a package's
    modules, only cli imports invoke. Function-local and TYPE_CHECKING imports count."""
    lint = shutil.which("lint-imports")
    assert lint is not None
    done = subprocess.run(
        [lint, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "broken" in done.stdout and " 0 broken" in done.stdout
