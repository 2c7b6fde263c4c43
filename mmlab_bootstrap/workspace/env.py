"""The `env` task's step: `.env` written with every variable resolved, and `env --rc`."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Mapping
from pathlib import Path

from mmlab_bootstrap.errors import BootstrapError, redacted, shown
from mmlab_bootstrap.output import some_names
from mmlab_bootstrap.run import Counted, Session, StepResult
from mmlab_bootstrap.settings import (
    IDENTITY_HELP,
    VARIABLES,
    Settings,
    identity,
    override_warnings,
    render,
)
from mmlab_bootstrap.workspace.rcfile import check_rc, update_envrc, update_rc

ENV_HEADER = (
    "mmlab-bootstrap workspace settings. `inv env` rewrites the MMLAB_ lines"
    " and keeps everything else. Load: set -a; . ./.env; set +a"
)


def env_step(
    session: Session, flags: Mapping[str, str | None], *, load_line: bool = True
) -> StepResult:
    """Write `.env` with every variable resolved; print the line that loads it."""
    counted = Counted(session)
    settings = session.settings(flags)
    envfile = session.read_env()  # read under the lock
    for warning in override_warnings(settings, session.overrides(envfile), envfile.values()):
        session.report.warn(warning)
    wanted = settings.as_env()
    # startup: only the tasks that write `.env` import the checkpoints package
    from mmlab_bootstrap.checkpoints import exported

    extra, extra_help = exported(settings)
    owned = {**wanted, **identity(session.env_path, wanted), **extra}
    descriptions = {**{v.name: v.help for v in VARIABLES}, **IDENTITY_HELP, **extra_help}
    text = render(envfile, owned, descriptions, ENV_HEADER)
    if text == envfile.text:
        session.report.unchanged(f"up to date: {session.env_path}")
    else:
        old = envfile.values()
        lines = [
            f"set {name}={value!r} (from {settings.values[name].source.label})"
            for name, value in wanted.items()
            if old.get(name) != value
        ]
        if not lines and any(old.get(name) != value for name, value in owned.items()):
            lines = [f"record which .env this is ({', '.join(IDENTITY_HELP)})"]
        session.changes.write_file(session.env_path, text, would=lines)
    for line in unset_config_variables(settings, session.report.warn):
        session.report.warn(line)
    exposed = _credential_exposed(session.env_path, wanted)
    if exposed:
        session.report.warn(exposed)
    if load_line:
        session.report.info(f"load it in a shell: {session.load_line()}")
    return counted.result(settings)


def _credential_exposed(path: Path, values: Mapping[str, str]) -> str | None:
    """A warning when `.env` holds a credential (a URL's user and password) and users other
    than its owner may read it; None otherwise. Its mode is the user's to set."""
    holding = [name for name, value in values.items() if redacted(value) != value]
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    if not holding or not mode & 0o077:
        return None
    return (
        f"{shown(str(path))} holds a credential ({', '.join(holding)}) and others may read it"
        f" (mode {stat.filemode(mode)}): chmod 600 {shown(str(path))}, or keep the login in"
        " ~/.netrc (see the checkpoints guide)"
    )


def unset_config_variables(settings: Settings, warn: Callable[[str], None]) -> list[str]:
    """The variables the configs of MMLAB_CHECKPOINTS read that `.env` does not set, named;
    read as fetch-checkpoints reads them (the training interpreter's loader when there is
    one, else statically; `warn` gets why it fell back)."""
    if not any(name.endswith(".py") for name in settings.checkpoint_models):
        return []
    # startup: only the tasks that write `.env` import the checkpoints package
    from mmlab_bootstrap.checkpoints import configs_status

    # startup: the status checks (and the environment builder) only when configs are named
    from mmlab_bootstrap.workspace.status import training_python

    try:
        configs, _ = configs_status(settings, training_python(settings), None, warn)
    except BootstrapError:
        return []
    lines: list[str] = []
    for config in configs:
        unknown = config.get("unknown")
        if isinstance(unknown, list) and unknown:
            lines.append(
                f"{config['config']} reads {some_names([str(n) for n in unknown])}, which .env"
                f" does not set: add your own line for it to {settings.root / '.env'} (it is kept)"
            )
    return lines


def env_rc_step(
    session: Session,
    flags: Mapping[str, str | None],
    rc: str | None,
    *,
    remove: bool,
    envrc: bool = False,
) -> StepResult:
    """`env`, and with `rc` the marked block in a shell rc file that loads this `.env`; with
    `envrc`, an `.envrc` for direnv that loads it."""
    if remove and not rc:
        raise BootstrapError("--remove goes with --rc", "run: inv env --rc ~/.bashrc --remove")
    rc_path = Path(os.path.expanduser(rc)) if rc else None
    if rc_path is not None:
        check_rc(rc_path, session.root, remove=remove)  # before .env is written
    counted = Counted(session)
    settings = env_step(session, flags).settings
    if rc_path is not None:
        update_rc(rc_path, session.root, session.env_path, session.changes, remove=remove)
    if envrc:
        update_envrc(session.root, session.changes)
    return counted.result(settings)
