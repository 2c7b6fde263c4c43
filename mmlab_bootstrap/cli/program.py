"""The `mmlab-bootstrap` console script: the same tasks, with the current folder as workspace."""

from __future__ import annotations

import ast
import re
import sys

from mmlab_bootstrap import hold_interrupts, release_interrupts

# Importing invoke and the tasks takes a noticeable time: a Ctrl-C then is only noted (see
# `hold_interrupts`; the console script holds it from the package's first lines), and ends
# the program right after.
hold_interrupts()
try:
    from invoke.exceptions import ParseError
    from invoke.parser.argument import Argument
    from invoke.parser.context import ParserContext
    from invoke.program import Program
    from invoke.vendor.lexicon import Lexicon

    from mmlab_bootstrap import __version__
    from mmlab_bootstrap.cli.tasks import namespace
    from mmlab_bootstrap.errors import close_match, shown
finally:
    interrupted = release_interrupts()
if interrupted:
    sys.stderr.write("error: interrupted\nhint: nothing was done yet: run the same command again\n")
    raise SystemExit(130)

# invoke's core flags that mean something here; the others (`--pty`, `--echo`,
# `--prompt-for-sudo-password`, …) are about running shell commands, which no task does.
CORE_FLAGS = ("complete", "debug", "dry", "help", "list", "print-completion-script", "version")
CORE_HELP = {
    "debug": "show invoke's debug log, and the full traceback of an error (for a bug report)",
    "dry": "show every change, make none",
}


class BootstrapProgram(Program):
    """invoke's `Program`, with only the core flags that apply to this tool."""

    def core_args(self) -> list[Argument]:
        kept = [arg for arg in super().core_args() if arg.name in CORE_FLAGS]
        for arg in kept:
            arg.help = CORE_HELP.get(str(arg.name), arg.help)
        return kept

    def parse_tasks(self) -> None:
        """invoke's parsing; an unknown task or flag is one `error:` and a `hint:` that
        suggests the closest name (`did you mean`)."""
        try:
            super().parse_tasks()
        except ParseError as error:
            raise ParseError(self.unknown(str(error), error.context), error.context) from None

    def unknown(self, message: str, context: ParserContext | None) -> str:
        """invoke's "No idea what 'x' is!" as an error and a hint; other messages as they are."""
        found = re.fullmatch(r"No idea what (['\"].*['\"]) is!", message)
        if found is None:
            return message
        word = str(ast.literal_eval(found.group(1)))
        task = context.name if context is not None and context.name else ""
        if word.startswith("-"):
            flags = list(context.flags) if context is not None else []
            names = [*flags, *(f"--{arg.name}" for arg in self.core_args())]
            where = f"the task {task}" if task else self.name
            error = f"{where} has no flag {shown(word)}"
            more = f"{self.name} --help {task} lists its flags" if task else f"{self.name} --help"
        else:
            names = list(self.collection.task_names)
            error = f"{self.name} has no task {shown(word)}"
            more = f"{self.name} --list shows every task"
        meant = close_match(word, names)
        hint = f"did you mean {meant}? ({more})" if meant is not None else more
        return f"error: {error}\nhint: {hint}"

    @property
    def args(self) -> Lexicon:
        """The parsed core flags, plus the left-out ones at their defaults (invoke reads them)."""
        args: Lexicon = super().args
        for arg in super().core_args():
            if arg.name not in args:
                args[arg.name] = arg
        return args


program = BootstrapProgram(
    namespace=namespace(root=None, program="mmlab-bootstrap"),
    version=__version__,
    name="mmlab-bootstrap",
    binary="mmlab-bootstrap",
    binary_names=["mmlab-bootstrap"],
)
