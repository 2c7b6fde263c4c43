"""What every task shares: its session, the one place where errors become exits, and the
variable flags built from the variables table."""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import os
import sys
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from invoke.context import Context
from invoke.exceptions import Exit

from mmlab_bootstrap.errors import BootstrapError
from mmlab_bootstrap.output import Reporter, silence
from mmlab_bootstrap.settings import BY_NAME

if TYPE_CHECKING:
    from mmlab_bootstrap.run import Session

CONFIG_KEY = "mmlab_bootstrap"


@contextlib.contextmanager
def session_for(
    c: Context, task: str, *, changes: bool = True, looks_only: bool = False
) -> Iterator[Session]:
    """Open a session for a task; turn domain errors into one `Exit`, with no traceback.

    A task that changes things takes the workspace lock once its input is checked
    (not under --dry), and holds it to the end. A task that `looks_only` (status, doctor)
    never says a re-run finishes anything.
    """
    from mmlab_bootstrap.run import Session  # startup: settings, .env, dotenv

    report = Reporter(program=c.config[CONFIG_KEY].get("program") or "inv")
    dry = bool(c.config.run.dry)
    try:
        root = _root(c, report)
        with contextlib.ExitStack() as held:
            lock_task = task if changes and not dry else None
            yield Session(root, dry=dry, report=report, lock_task=lock_task, held=held)
    except BootstrapError as error:
        _traceback_when_debugging()
        report.error(error.message, error.hint)
        raise Exit(code=1) from None
    except BrokenPipeError:  # only from writing output the reader no longer wants
        silence(sys.stdout)
        raise Exit(code=1) from None
    except KeyboardInterrupt:
        _traceback_when_debugging()
        report.error("interrupted", LOOK_AGAIN if looks_only else AGAIN)
        raise Exit(code=130) from None
    except PermissionError as error:  # whose file or folder, its mode, what to do
        _traceback_when_debugging()
        # startup: the file helpers only once the OS refused something
        from mmlab_bootstrap.fs import denied

        denial = denied(error)
        report.error(denial.message, denial.hint)
        raise Exit(code=1) from None
    except OSError as error:
        _traceback_when_debugging()
        where = f" ({error.filename})" if error.filename else ""
        report.error(
            f"{error.strerror or error}{where}",
            f"fix the cause, then {LOOK_AGAIN if looks_only else AGAIN}",
        )
        raise Exit(code=1) from None


# A task that changes things is finished by a re-run; one that only looks (status, doctor)
# has nothing to finish.
AGAIN = "run the same command again: it finishes what was started"
LOOK_AGAIN = "run the same command again to see it all (it changed nothing)"


_ANNOUNCED: set[tuple[str, str]] = set()


def _root(c: Context, report: Reporter) -> Path:
    """The workspace root: the folder of the `tasks.py` invoke found (walking up) under `inv`;
    for the console script the nearest workspace from the current folder up (when there is
    none, from the folder as the shell spells it: `cd workspace/…/data/kitti` goes through a
    link into storage, which is no new workspace). Named once, in a note, when it is not the
    current folder."""
    given = c.config[CONFIG_KEY]["root"]
    try:
        here: Path | None = Path(os.getcwd())
    except OSError:
        if not given:
            raise
        here = None
    if given:
        root = Path(given)
    else:
        from mmlab_bootstrap.run import find_root  # startup: as above

        assert here is not None
        root = find_root(here)
        logical = _as_the_shell_spells(here)
        if logical is not None and root == here:  # no workspace up the real path
            up = find_root(logical)
            root = up if up != logical else root
    elsewhere = here is not None and os.path.realpath(root) != os.path.realpath(here)
    if elsewhere and (str(here), str(root)) not in _ANNOUNCED:
        _ANNOUNCED.add((str(here), str(root)))
        report.note(f"using the workspace {root} (not the current folder)")
    return root


def _as_the_shell_spells(here: Path) -> Path | None:
    """The current folder as the shell's `$PWD` spells it, when that is another spelling of
    `here` (a path through a symlink), else None."""
    logical = os.environ.get("PWD", "")
    if not os.path.isabs(logical) or os.path.normpath(logical) == str(here):
        return None
    try:
        return Path(os.path.normpath(logical)) if os.path.samefile(logical, here) else None
    except OSError:
        return None


def _traceback_when_debugging() -> None:
    """Under invoke's `--debug` (or INVOKE_DEBUG=1), the full traceback for a bug report."""
    if logging.getLogger("invoke").isEnabledFor(logging.DEBUG):
        with contextlib.suppress(OSError):
            traceback.print_exc(file=sys.stderr)


def variable_flags(*names: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Give a task body `(c, flags, …)` one `--flag` per named variable (from the variables
    table), placed before its own flags; the body receives their values in `flags`."""
    by_param = {BY_NAME[name].param: name for name in names}

    def decorate(body: Callable[..., None]) -> Callable[..., None]:
        own = list(inspect.signature(body).parameters.values())
        added = [
            inspect.Parameter(param, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None)
            for param in by_param
        ]

        @functools.wraps(body)
        def run(c: Context, **given: Any) -> None:
            flags = {name: given.pop(param, None) for param, name in by_param.items()}
            body(c, flags, **given)

        run.__signature__ = inspect.Signature([own[0], *added, *own[2:]])  # type: ignore[attr-defined]
        return run

    return decorate
