"""A Sphinx directive that writes the variables table from the package's own table.

`mmlab_bootstrap.variables.VARIABLES` is the one source of the names, defaults, flags and
help lines (`.env.example` and `inv env` use it too), so the reference cannot drift from it.
"""

from __future__ import annotations

from typing import Any

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective

from mmlab_bootstrap.variables import VARIABLES


def cell(text: str) -> str:
    """Text as one Markdown table cell: code, with the table's pipe escaped."""
    return "`" + text.replace("|", "\\|") + "`" if text else "(none)"


def variables_table() -> str:
    """The reference table in Markdown: one row per variable, in the table's order."""
    lines = ["| variable | default | flag | meaning |", "|---|---|---|---|"]
    for variable in VARIABLES:
        help_text = variable.help.replace("|", "\\|")
        lines.append(
            f"| `{variable.name}` | {cell(variable.default)} | `{variable.flag}` | {help_text} |"
        )
    return "\n".join(lines) + "\n"


class VariablesTable(SphinxDirective):
    """`{mmlab-variables}`: the variables table, parsed as Markdown where it stands."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        container = nodes.container(classes=["mmlab-variables"])
        text = StringList(variables_table().splitlines(), source="mmlab_bootstrap/variables.py")
        self.state.nested_parse(text, self.content_offset, container)
        return [container]


def setup(app: Any) -> dict[str, Any]:
    """Register the directive; the output depends only on the package's table."""
    app.add_directive("mmlab-variables", VariablesTable)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1"}
