"""One workspace, one truth: a shell that sourced `.env`, several workspaces on one account,
and a team's defaults files (issue 21, points 1, 2 and 7). Real shells source real `.env`
files and run the real `inv` from them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from dotenv import dotenv_values
from hypothesis import given
from hypothesis import strategies as st

from mmlab_bootstrap.settings.sourced import fingerprint, identity, overrides
from mmlab_bootstrap.settings.variables import (
    DATASET_PATH,
    IDENTITY_DIGEST,
    IDENTITY_FILE,
    VARIABLES,
)

from .conftest import REPO_ROOT, inv, shell_or_skip
from .lib.gitfixture import Fixture

SHELLS = ("bash", "dash", "zsh")
LOAD = "set -a; . ./.env; set +a"


def sh(shell: str, cwd: Path, script: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run a script in a real shell started in `cwd` (errors stop it)."""
    return subprocess.run(
        [shell_or_skip(shell), "-c", "set -e; " + script],
        cwd=cwd,
        env={**os.environ, "PWD": str(cwd), **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def dataset(workspace: Path) -> str | None:
    return dotenv_values(workspace / ".env").get(DATASET_PATH)


def second_workspace(tmp_path: Path, name: str = "other") -> Path:
    root = tmp_path / name
    root.mkdir()
    shutil.copy(REPO_ROOT / "tasks.py", root / "tasks.py")
    return root


# -- point 1: a sourced .env -------------------------------------------------------------


@pytest.mark.parametrize("shell", SHELLS)
def test_a_sourced_env_does_not_revert_the_next_change(
    workspace: Path, tmp_path: Path, shell: str
) -> None:
    """Source `.env` as printed, change a value with `inv env`, run again from the same shell:
    the new value sticks, and the run says once that the shell holds an older copy."""
    old, new = tmp_path / "old", tmp_path / "new"
    done = sh(
        shell,
        workspace,
        f"inv env --dataset-path {old} >/dev/null; {LOAD};"
        f" inv env --dataset-path {new} >/dev/null 2>&1; inv env;"
        " inv status --json > status.json || true",
    )
    assert done.returncode == 0, done.stderr
    assert dataset(workspace) == str(new)
    notes = [line for line in done.stderr.splitlines() if line.startswith("note:")]
    assert len(notes) == 2, done.stderr  # once for `inv env`, once for `inv status`
    assert "older copy of this workspace's .env (MMLAB_DATASET_PATH" in notes[0]
    assert "set -a; ." in notes[0] and "overrides" not in done.stderr
    status = json.loads((workspace / "status.json").read_text())
    assert status["variables"][DATASET_PATH] == {
        "value": str(new),
        "source": ".env",
        "environment_differs_from_dotenv": False,
    }


@pytest.mark.parametrize("shell", SHELLS)
def test_bootstrap_from_a_sourced_shell_follows_the_new_path(
    workspace: Path, tmp_path: Path, fixture: Fixture, shell: str
) -> None:
    """The issue's report: bootstrap, source `.env`, `inv env --dataset-path NEW`, bootstrap:
    `.env` keeps NEW and the data links follow it."""
    new = tmp_path / "new-data"
    done = sh(
        shell,
        workspace,
        f"inv bootstrap --repo {fixture.url()} >/dev/null; {LOAD};"
        f" inv env --dataset-path {new} >/dev/null; inv bootstrap",
    )
    assert done.returncode == 0, done.stderr
    assert dataset(workspace) == str(new)
    link = workspace / "mmlab_extension" / "mmdetection3d" / "data"
    assert os.readlink(link) == str(new / "mmdetection3d" / "data")


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize("how", ["export", "prefix"])
def test_a_value_set_after_sourcing_still_overrides(
    workspace: Path, tmp_path: Path, shell: str, how: str
) -> None:
    """An `export` typed after sourcing, or `MMLAB_X=… inv …`, is deliberate: it wins, is
    written to `.env` and is warned about, while the sourced copies of the other values give
    way to the current `.env` (each value is recognised on its own)."""
    new, typed = tmp_path / "new", tmp_path / "typed"
    setting = f"MMLAB_CHECKPOINTS_PATH={typed}"
    run = f"export {setting}; inv env" if how == "export" else f"{setting} inv env"
    done = sh(shell, workspace, f"inv env >/dev/null; {LOAD}; inv env --dataset-path {new}; {run}")
    assert done.returncode == 0, done.stderr
    values = dotenv_values(workspace / ".env")
    assert values[DATASET_PATH] == str(new)
    assert values["MMLAB_CHECKPOINTS_PATH"] == str(typed)
    assert "MMLAB_CHECKPOINTS_PATH in the environment" in done.stderr


def test_the_override_warning_never_suggests_the_stale_value(workspace: Path) -> None:
    """The hint of the override warning names `.env`'s value, never the environment's."""
    assert inv(workspace, "env", "--dataset-path", "/kept").code == 0
    run = inv(workspace, "status", env={DATASET_PATH: "/stale"})
    warning = next(line for line in run.err.splitlines() if "overrides" in line)
    assert "inv env --dataset-path /kept" in warning and "run: inv env)" not in warning
    assert warning.count("/stale") == 1  # only where it names the environment's value


def test_an_old_env_without_identity_keeps_todays_rule(workspace: Path) -> None:
    """A `.env` written before these lines, sourced: its values override, as before."""
    (workspace / ".env").write_text(f"export {DATASET_PATH}='/from-file'\n")
    run = inv(workspace, "env", env={DATASET_PATH: "/from-shell"})
    assert run.code == 0, run.err
    assert dataset(workspace) == "/from-shell" and "overrides" in run.err
    assert dotenv_values(workspace / ".env")[IDENTITY_FILE] == str(workspace / ".env")


def test_a_sourced_copy_of_a_deleted_env_is_kept(workspace: Path) -> None:
    """When this workspace's `.env` is gone, the shell's copy is the best record of it left:
    its values apply (and are written back), nothing is reset to the defaults."""
    assert inv(workspace, "env", "--dataset-path", "/mine").code == 0
    sourced = {k: v for k, v in dotenv_values(workspace / ".env").items() if v is not None}
    (workspace / ".env").unlink()
    run = inv(workspace, "env", env=sourced)
    assert run.code == 0, run.err
    assert dataset(workspace) == "/mine"


@pytest.mark.parametrize("shell", SHELLS)
def test_identity_lines_read_the_same_in_shells_and_python_dotenv(
    workspace: Path, shell: str
) -> None:
    """The two new lines follow the `.env` format: every reader gets the same text."""
    assert inv(workspace, "env").code == 0
    text = (workspace / ".env").read_text()
    assert f"export {IDENTITY_FILE}='{workspace / '.env'}'\n" in text
    values = dotenv_values(workspace / ".env")
    done = sh(shell, workspace, f'{LOAD}; printf "%s|%s" "${IDENTITY_FILE}" "${IDENTITY_DIGEST}"')
    assert done.stdout == f"{values[IDENTITY_FILE]}|{values[IDENTITY_DIGEST]}", done.stderr
    assert inv(workspace, "env").lines[0].startswith("up to date:")  # idempotent


HOSTILE_IDENTITY = [
    ("empty file", {IDENTITY_FILE: ""}),
    ("garbage digest", {IDENTITY_DIGEST: "zz ' $(touch X) \\"}),
    ("no digest", {IDENTITY_DIGEST: ""}),
    ("relative file", {IDENTITY_FILE: ".env"}),
    ("a fifo", {IDENTITY_FILE: "FIFO"}),
    ("a newline", {IDENTITY_FILE: "/x\n/y"}),
    ("a huge digest", {IDENTITY_DIGEST: "ab " * 100_000}),
    ("undecodable", {IDENTITY_FILE: "/x\udcff"}),
]


@pytest.mark.parametrize(("name", "change"), HOSTILE_IDENTITY, ids=[n for n, _ in HOSTILE_IDENTITY])
def test_hostile_identity_in_the_environment(
    workspace: Path, tmp_path: Path, name: str, change: dict[str, str]
) -> None:
    """Whatever the shell holds in MMLAB_ENV_FILE/DIGEST, a run neither fails nor takes an
    unrecognised value for a copy: a value set on purpose still overrides."""
    os.mkfifo(tmp_path / "FIFO")
    assert inv(workspace, "env", "--dataset-path", "/a").code == 0
    environ = {k: v for k, v in dotenv_values(workspace / ".env").items() if v is not None}
    environ[DATASET_PATH] = "/typed"
    environ.update({k: (str(tmp_path / "FIFO") if v == "FIFO" else v) for k, v in change.items()})
    found = overrides(environ, workspace / ".env", {DATASET_PATH: "/a"}, exists=True)
    assert found.environ[DATASET_PATH] == "/typed", name
    assert (found.warning is not None) == (name == "a fifo")  # (another file: its copies go)


NAMES = [variable.name for variable in VARIABLES]
VALUE = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)


@given(
    sourced=st.dictionaries(st.sampled_from(NAMES), VALUE, min_size=1),
    typed=st.dictionaries(st.sampled_from(NAMES), VALUE),
    current=st.dictionaries(st.sampled_from(NAMES), VALUE),
    here=st.booleans(),
)
def test_the_override_rule(
    sourced: dict[str, str], typed: dict[str, str], current: dict[str, str], here: bool
) -> None:
    """Property: after sourcing a `.env` (of this workspace or another) and typing some
    values, exactly the typed values that differ from the sourced copy count as overrides;
    the copies give way, and the note or warning names only copies that differ from `.env`."""
    env_path = Path("/ws/.env")
    environ = {**sourced, **identity(env_path if here else Path("/other/.env"), sourced)}
    environ.update(typed)
    found = overrides(environ, env_path, current, exists=True)
    for name in NAMES:
        if name in typed and typed[name] != sourced.get(name):
            assert found.environ[name] == typed[name]
        else:
            assert name not in found.environ
    said = found.note if here else found.warning
    differing = [
        n for n in NAMES if n in sourced and n not in found.environ and current.get(n) != environ[n]
    ]
    assert (said is not None) == bool(differing)
    assert (found.warning if here else found.note) is None


def test_a_value_equal_to_the_sourced_one_is_taken_for_the_copy() -> None:
    """The documented edge of the rule: only the fingerprint tells, so a value typed again
    that equals what the sourced copy held counts as that copy."""
    environ = {
        IDENTITY_FILE: "/ws/.env",
        IDENTITY_DIGEST: fingerprint(DATASET_PATH, "/a"),
        DATASET_PATH: "/a",
    }
    found = overrides(environ, Path("/ws/.env"), {DATASET_PATH: "/b"}, exists=True)
    assert DATASET_PATH not in found.environ and found.note is not None


# -- point 2: several workspaces -------------------------------------------------------------


@pytest.mark.parametrize("shell", SHELLS)
def test_two_workspaces_with_rc_blocks_do_not_cross_wire(
    workspace: Path, tmp_path: Path, shell: str
) -> None:
    """Both workspaces add a block to one rc file. A shell started in either gets its own
    values, one started elsewhere none; a shell started in the first that runs the tool in
    the second changes nothing there and says whose values it ignored."""
    other = second_workspace(tmp_path)
    rc = tmp_path / "home" / ".shrc"
    first_data, other_data = tmp_path / "data-a", tmp_path / "data-b"
    assert inv(workspace, "env", "--rc", str(rc), "--dataset-path", str(first_data)).code == 0
    assert inv(other, "env", "--rc", str(rc), "--dataset-path", str(other_data)).code == 0
    assert rc.read_text().count("# >>> mmlab-bootstrap") == 2
    show = f'. "{rc}"; printf %s "${DATASET_PATH}"'
    assert sh(shell, workspace, show).stdout == str(first_data)
    assert sh(shell, other, show).stdout == str(other_data)
    assert sh(shell, tmp_path, show).stdout == ""
    before = (other / ".env").read_text()
    done = sh(
        shell, workspace, f'. "{rc}"; cd "{other}"; inv env; inv status --json > s.json || true'
    )
    assert done.returncode == 0, done.stderr
    assert (other / ".env").read_text() == before
    warnings = [line for line in done.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 2, done.stderr  # once per run
    assert f"another workspace's .env ({workspace / '.env'})" in warnings[0]
    status = json.loads((other / "s.json").read_text())
    assert status["variables"][DATASET_PATH]["value"] == str(other_data)
    assert status["variables"]["MMLAB_EXTENSION_PATH"]["value"] == str(other / "mmlab_extension")


def test_a_bootstrap_in_the_other_workspace_plans_its_own_paths(
    workspace: Path, tmp_path: Path
) -> None:
    """`bootstrap --dry` in B from a shell holding A's `.env` plans B's clone and storage."""
    other = second_workspace(tmp_path)
    assert inv(workspace, "env").code == 0
    assert inv(other, "env").code == 0
    environ = {k: v for k, v in dotenv_values(workspace / ".env").items() if v is not None}
    run = inv(other, "--dry", "bootstrap", env=environ)
    assert run.code == 0, run.err
    assert f"datasets:    {other / 'mmlab_dataset'}" in run.lines
    assert str(workspace) not in run.out, run.out
    assert f"another workspace's .env ({workspace / '.env'})" in run.err


def test_a_value_exported_on_purpose_applies_in_any_workspace(
    workspace: Path, tmp_path: Path
) -> None:
    """Only the copies of the other `.env` are ignored; a value typed after it still wins."""
    other = second_workspace(tmp_path)
    assert inv(workspace, "env").code == 0
    environ = {k: v for k, v in dotenv_values(workspace / ".env").items() if v is not None}
    environ[DATASET_PATH] = "/typed"
    assert inv(other, "env", env=environ).code == 0
    assert dataset(other) == "/typed"
    assert dotenv_values(other / ".env")["MMLAB_EXTENSION_PATH"] == str(other / "mmlab_extension")


@pytest.mark.parametrize("shell", SHELLS)
def test_a_block_added_through_a_symlinked_folder_loads_there(
    workspace: Path, tmp_path: Path, shell: str
) -> None:
    """`inv env --rc` run where the shell's `$PWD` goes through a symlink: shells started
    there (the same spelling) load the workspace too."""
    link = tmp_path / "link"
    link.symlink_to(workspace)
    rc = tmp_path / "home" / ".shrc"
    assert inv(workspace, "env", "--rc", str(rc), env={"PWD": str(link)}).code == 0
    show = f'. "{rc}"; printf %s "${DATASET_PATH}"'
    assert sh(shell, link, show).stdout == str(workspace / "mmlab_dataset")
    assert sh(shell, workspace, show).stdout == str(workspace / "mmlab_dataset")


@pytest.mark.parametrize("shell", SHELLS)
def test_a_block_loads_through_a_symlink_made_after_it(
    workspace: Path, tmp_path: Path, shell: str
) -> None:
    """The block was added from the workspace's real path; a symlink to it made later (say
    `~/work -> /data/me/work`) and a folder deep inside reached through it load the
    workspace too, while a sibling whose name merely starts like the workspace's does not."""
    rc = tmp_path / "home" / ".shrc"
    assert inv(workspace, "env", "--rc", str(rc), env={"PWD": str(workspace)}).code == 0
    link = tmp_path / "later"
    link.symlink_to(workspace)
    deep = workspace / "mmlab_extension" / "deep"
    deep.mkdir(parents=True)
    sibling = workspace.parent / (workspace.name + "x")
    sibling.mkdir()
    show = f'. "{rc}"; printf %s "${DATASET_PATH}"'
    assert sh(shell, link, show).stdout == str(workspace / "mmlab_dataset")
    assert sh(shell, link / "mmlab_extension" / "deep", show).stdout == str(
        workspace / "mmlab_dataset"
    )
    assert sh(shell, sibling, show).stdout == ""


HOSTILE_ROOTS = [
    ("space", "a b", "a"),
    ("star", "a*b", "axxb"),
    ("brackets", "[ab]", "a"),
    ("question", "a?", "ab"),
    ("dollar", "$HOME", "home"),
    ("operators", "a;b|c&d", "a"),
    ("backtick", "a`touch RAN`b", "a"),
    ("unicode", "é😀", "e"),
]


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize(
    ("name", "folder", "lookalike"), HOSTILE_ROOTS, ids=[n for n, _, _ in HOSTILE_ROOTS]
)
def test_hostile_workspace_names_in_the_rc_block(
    tmp_path: Path, shell: str, name: str, folder: str, lookalike: str
) -> None:
    """A workspace folder named with glob characters, `$`, operators or unicode: the block
    loads it inside and nowhere else (not in a folder its name would match as a pattern),
    and sourcing the rc file runs nothing."""
    root = second_workspace(tmp_path, folder)
    (tmp_path / lookalike).mkdir(exist_ok=True)
    rc = tmp_path / "home" / ".shrc"
    run = inv(root, "env", "--rc", str(rc))
    assert run.code == 0, run.err
    show = f'. "{rc}"; printf %s "${DATASET_PATH}"'
    inside = sh(shell, root, show)
    assert (inside.stdout, inside.stderr) == (str(root / "mmlab_dataset"), ""), name
    assert sh(shell, tmp_path / lookalike, show).stdout == "", name
    assert not list(tmp_path.rglob("RAN")), name


def old_block(root: Path) -> str:
    """A block as the versions before the per-workspace guard wrote it."""
    return (
        f"# >>> mmlab-bootstrap {root} >>>\n"
        f"if [ -f '{root}/.env' ]; then set -a; . '{root}/.env'; set +a; fi\n"
        f"# <<< mmlab-bootstrap {root} <<<\n"
    )


def test_an_older_block_is_replaced_and_another_workspaces_is_pointed_out(
    workspace: Path, tmp_path: Path
) -> None:
    """`--rc` replaces this workspace's unguarded block; another workspace's is named, with
    the command that updates it, and left as it is."""
    other = tmp_path / "other"
    rc = tmp_path / "home" / ".bashrc"
    rc.write_text("# mine\n" + old_block(other) + old_block(workspace))
    run = inv(workspace, "env", "--rc", str(rc))
    assert run.code == 0, run.err
    text = rc.read_text()
    assert text.startswith("# mine\n" + old_block(other)) and text.count("if [ -f") == 2
    assert 'case "$(pwd -P)/" in' in text
    assert f"the block of {other} (an older version's) loads its .env in every" in run.err
    assert f"cd {other} && inv env --rc {rc}" in run.err


def test_an_env_of_an_older_version_gets_its_identity(workspace: Path) -> None:
    """A `.env` with every value but no identity lines: `--dry` says what it would add."""
    assert inv(workspace, "env").code == 0
    path = workspace / ".env"
    lines = path.read_text().splitlines(True)
    path.write_text("".join(line for line in lines if "MMLAB_ENV_" not in line))
    run = inv(workspace, "--dry", "env")
    assert "would record which .env this is (MMLAB_ENV_FILE, MMLAB_ENV_DIGEST)" in run.out


def test_envrc_for_direnv(workspace: Path) -> None:
    """`--envrc` writes a `dotenv` line once; a user's `.envrc` keeps its lines."""
    run = inv(workspace, "env", "--envrc")
    assert run.code == 0, run.err
    assert (workspace / ".envrc").read_text().splitlines()[-1] == "dotenv"
    assert f"up to date: {workspace / '.envrc'}" in inv(workspace, "env", "--envrc").lines
    (workspace / ".envrc").write_text("export OTHER=1")
    assert inv(workspace, "env", "--envrc").code == 0
    assert (workspace / ".envrc").read_text().startswith("export OTHER=1\n# mmlab-bootstrap")


def test_envrc_that_is_a_fifo_is_refused(workspace: Path) -> None:
    os.mkfifo(workspace / ".envrc")
    run = inv(workspace, "env", "--envrc")
    assert run.code == 1 and "error:" in run.err and "FIFO" in run.err.upper()


# -- point 7: a team's defaults files --------------------------------------------------------


@pytest.fixture
def system_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "etc" / "mmlab-bootstrap" / "defaults.env"
    path.parent.mkdir(parents=True)
    monkeypatch.setattr("mmlab_bootstrap.settings.values.SYSTEM_DEFAULTS_FILE", path)
    return path


def user_file(tmp_path: Path) -> Path:
    path = tmp_path / "home" / ".config" / "mmlab-bootstrap" / "defaults.env"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def test_defaults_files_rank_below_env_and_are_named_in_status(
    workspace: Path, tmp_path: Path, system_file: Path
) -> None:
    """user > system > built-in; `.env` above both; status names the file."""
    system_file.write_text(
        "export MMLAB_GIT_MIRROR='file:///srv/gh/'\n"
        "export MMLAB_CHECKPOINT_MIRROR='https://sys.example/'\n"
        "export MMLAB_GIT_CACHE_MODE='share'\n"
    )
    user_file(tmp_path).write_text(
        "MMLAB_CHECKPOINT_MIRROR='https://user.example/'\nMMLAB_GIT_CACHE_MODE=''\n"
    )
    run = inv(workspace, "status", "--json")
    variables = json.loads(run.out)["variables"]
    assert variables["MMLAB_GIT_MIRROR"]["source"] == str(system_file)
    assert variables["MMLAB_CHECKPOINT_MIRROR"] == {
        "value": "https://user.example/",
        "source": str(user_file(tmp_path)),
        "environment_differs_from_dotenv": False,
    }
    assert variables["MMLAB_GIT_CACHE_MODE"]["source"] == str(system_file)  # empty: unset
    human = inv(workspace, "status")
    assert f"MMLAB_GIT_MIRROR='file:///srv/gh/' ({system_file})" in human.out
    (workspace / ".env").write_text("export MMLAB_GIT_MIRROR='file:///mine/'\n")
    variables = json.loads(inv(workspace, "status", "--json").out)["variables"]
    assert variables["MMLAB_GIT_MIRROR"] == {
        "value": "file:///mine/",
        "source": ".env",
        "environment_differs_from_dotenv": False,
    }


def test_xdg_config_home_is_honoured_when_absolute(workspace: Path, tmp_path: Path) -> None:
    config = tmp_path / "xdg" / "mmlab-bootstrap" / "defaults.env"
    config.parent.mkdir(parents=True)
    config.write_text("MMLAB_GIT_MIRROR='file:///x/'\n")
    user_file(tmp_path).write_text("MMLAB_GIT_MIRROR='file:///home-config/'\n")
    found = json.loads(
        inv(workspace, "status", "--json", env={"XDG_CONFIG_HOME": str(tmp_path / "xdg")}).out
    )
    assert found["variables"]["MMLAB_GIT_MIRROR"]["value"] == "file:///x/"
    relative = json.loads(inv(workspace, "status", "--json", env={"XDG_CONFIG_HOME": "xdg"}).out)
    assert relative["variables"]["MMLAB_GIT_MIRROR"]["value"] == "file:///home-config/"


def test_env_writes_the_defaults_into_env(workspace: Path, tmp_path: Path) -> None:
    """A workspace's `.env` records what the defaults gave it (a later edit of the team file
    does not move an existing workspace)."""
    user_file(tmp_path).write_text("MMLAB_GIT_MIRROR='file:///team/'\n")
    run = inv(workspace, "env")
    assert "MMLAB_GIT_MIRROR='file:///team/' (from " in run.out
    assert dotenv_values(workspace / ".env")["MMLAB_GIT_MIRROR"] == "file:///team/"


HOSTILE_DEFAULTS = [
    ("ext transport", "MMLAB_GIT_MIRROR='ext::sh -c id'\n", "MMLAB_GIT_MIRROR (from"),
    ("control char", "MMLAB_PROJECTS='a\x01b'\n", "MMLAB_PROJECTS (from"),
    ("dollar", 'MMLAB_DATASET_PATH="$HOME/d"\n', "reads differently"),
    ("interpolation", "MMLAB_DATASET_PATH='${HOME}'\n", "reads differently"),
    ("unbalanced", "MMLAB_DATASET_PATH='/x\n", "line 1"),
    ("bom", "\ufeffMMLAB_GIT_MIRROR='file:///x/'\n", "byte-order mark"),
    ("huge", "# " + "x" * 70_000 + "\n", "holds more than"),
    ("nesting", "MMLAB_DATASET_PATH='./mmlab_extension/d'\n", "lie inside one another"),
]


@pytest.mark.parametrize(
    ("name", "text", "said"), HOSTILE_DEFAULTS, ids=[n for n, _, _ in HOSTILE_DEFAULTS]
)
def test_hostile_defaults_file(
    workspace: Path, tmp_path: Path, name: str, text: str, said: str
) -> None:
    """A defaults file gets the checks `.env` gets: one error naming the file, nothing
    written."""
    path = user_file(tmp_path)
    path.write_text(text)
    run = inv(workspace, "env")
    assert run.code == 1, (name, run.err)
    assert said in run.err and str(path) in run.err, run.err
    assert "Traceback" not in run.err and not (workspace / ".env").exists()


def test_a_defaults_file_that_is_a_fifo_is_refused_at_once(
    workspace: Path, system_file: Path
) -> None:
    os.mkfifo(system_file)
    run = inv(workspace, "status")
    assert run.code == 1 and str(system_file) in run.err


def test_an_unknown_key_in_a_defaults_file_is_pointed_out(workspace: Path, tmp_path: Path) -> None:
    user_file(tmp_path).write_text("MMLAB_GIT_MIROR='file:///x/'\nOTHER=1\n")
    run = inv(workspace, "status")
    assert "MMLAB_GIT_MIROR is not a variable of this tool" in run.err
    assert "OTHER" not in run.err
