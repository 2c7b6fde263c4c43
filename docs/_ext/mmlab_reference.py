"""Sphinx directives that write reference tables from the package's own tables.

`{mmlab-variables}` renders `mmlab_bootstrap.settings.variables.VARIABLES`, the one source of the
names, defaults, flags and help lines (`.env.example` and `inv env` use it too);
`{mmlab-task-flags} TASK` renders a task's flags with the help `inv --help TASK` prints. Both
are built when the docs are built, so the pages cannot drift from the code.
"""

from __future__ import annotations

from typing import Any

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective

from mmlab_bootstrap.settings.variables import VARIABLES


def escaped(text: str) -> str:
    """Text for a Markdown table cell: the table's pipe escaped."""
    return text.replace("|", "\\|")


def plain(text: str) -> str:
    """Help text shown as it is: Markdown's markup characters escaped, and the pipe."""
    for character in "\\`*_[]<>":
        text = text.replace(character, "\\" + character)
    return escaped(text)


def code(text: str) -> str:
    """A value as a code span in a table cell, or `(none)` when empty."""
    return "`" + escaped(text) + "`" if text else "(none)"


def variables_table() -> str:
    """The variables reference in Markdown: one row per variable, in the table's order."""
    lines = ["| variable | default | flag | meaning |", "|---|---|---|---|"]
    for variable in VARIABLES:
        lines.append(
            f"| `{variable.name}` | {code(variable.default)} | `{variable.flag}` "
            f"| {plain(variable.help)} |"
        )
    return "\n".join(lines) + "\n"


def task_flags_table(task_name: str) -> str:
    """A task's arguments in Markdown, with the help `inv --help TASK` shows for each."""
    from mmlab_bootstrap.cli.tasks import namespace

    task = namespace(root=None)[task_name]
    lines = ["| argument | what it does |", "|---|---|"]
    arguments = task.get_arguments()
    for argument in sorted(arguments, key=lambda a: (not a.positional, a.names[0])):
        name = argument.names[0]
        shown = name.upper() if argument.positional else f"--{name}"
        if not argument.positional and argument.kind is not bool:
            shown += "=" + name.upper().replace("-", "_")
        lines.append(f"| `{shown}` | {plain(argument.help or '')} |")
    if not arguments:
        return "This task takes no arguments.\n"
    return "\n".join(lines) + "\n"


class Generated(SphinxDirective):
    """A directive whose Markdown is generated, then parsed where it stands."""

    def markdown(self) -> str:
        raise NotImplementedError

    def run(self) -> list[nodes.Node]:
        container = nodes.container(classes=["mmlab-generated"])
        text = StringList(self.markdown().splitlines(), source="mmlab_bootstrap")
        self.state.nested_parse(text, self.content_offset, container)
        return [container]


class VariablesTable(Generated):
    """`{mmlab-variables}`: the variables table."""

    def markdown(self) -> str:
        return variables_table()


class TaskFlags(Generated):
    """`{mmlab-task-flags} TASK`: a task's arguments and their help."""

    required_arguments = 1

    def markdown(self) -> str:
        return task_flags_table(self.arguments[0])


def setup(app: Any) -> dict[str, Any]:
    """Register the directives; their output depends only on the package's tables."""
    app.add_directive("mmlab-variables", VariablesTable)
    app.add_directive("mmlab-task-flags", TaskFlags)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1"}
