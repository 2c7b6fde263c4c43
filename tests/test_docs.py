"""The documentation stays true: .env.example and the README list every variable and task."""

from __future__ import annotations

from dotenv import dotenv_values

from mmlab_bootstrap.cli.tasks import namespace
from mmlab_bootstrap.settings.variables import VARIABLES

from .conftest import REPO_ROOT


def test_env_example_documents_every_variable_with_its_default() -> None:
    """Each variable is in .env.example with its default, right after its help comment."""
    path = REPO_ROOT / ".env.example"
    assert dotenv_values(path) == {v.name: v.default for v in VARIABLES}
    lines = path.read_text().splitlines()
    for variable in VARIABLES:
        index = next(i for i, line in enumerate(lines) if f"{variable.name}=" in line)
        assert lines[index - 1] == f"# {variable.help}"


def test_readme_names_every_task_and_variable() -> None:
    """The README's tables mention every task and every variable."""
    readme = (REPO_ROOT / "README.md").read_text()
    for name in namespace(root=None).task_names:
        assert f"`inv {name}" in readme, name
    for variable in VARIABLES:
        assert f"| `{variable.name}` |" in readme, variable.name
