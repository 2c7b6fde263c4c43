"""No-op near start-up: a no-op `inv bootstrap` and `inv status` against `inv --list`.

Goal (issue 15): a no-op `bootstrap` and `status` <= 1.25x `inv --list`, with at most 2 git
processes per repository; no `git submodule` shell script on the no-op path.

Sets up a workspace as a user does (a copy of this checkout's `tasks.py`, `inv env ...`, then
`inv bootstrap`), then:

1. times `inv --list`, the no-op `inv bootstrap` and `inv status` in it, alternating, and
   prints the medians of --repeat runs and the ratios to `inv --list` (bytecode cached: one
   `inv --write-pyc` warm-up run of each first, since invoke writes none by default);
2. lists the modules each imports beyond `inv --list` (`python -X importtime`), which
   grows as start-up gets lazier;
3. runs each once more with a `git` wrapper that logs every git process: the wrapper is
   first on PATH and is also the `git` of a GIT_EXEC_PATH folder that links everything
   else to git's own exec path, so the git processes that git itself or its shell scripts
   start (which find `git` through the exec path, not through PATH) are logged as well. It
   prints the git processes per repository (the superproject and each submodule; a process
   counts for the repository its working folder, after `-C`, lies in), each command the
   tool started with the number of git processes under it, and flags every `git submodule`
   (the shell script) with everything it started. Each read-only command the tool started is
   also run alone (median of 5) for its time, so the git share of a no-op is visible;
4. with strace installed (skip: --no-strace), counts every program each command started,
   git or not, as a check of the wrapper's count.

The workspace is the fixture of tests/lib/gitfixture.py (mmlab_extension with mmdetection and
mmdetection3d, which nests spconv) served over file://, or with --real the mirror of the real
repositories (MMLAB_GIT_MIRROR=file:///work/real/gh/, MMLAB_PROJECTS='mmdetection3d mmdeploy',
the default superproject https://github.com/windzu/mmlab_extension.git).

    python bench/noop_bench.py [--repeat 15] [--real [--mirror file:///work/real/gh/]] [--keep]

Uses only the command line (`inv ...`), never the package's internals.
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchtools import inv_command  # noqa: E402  (bench/ is on the path)

from tests.lib.gitfixture import build_superproject  # noqa: E402

TIME_GOAL = 1.25
GIT_GOAL = 2  # git processes per repository
COMMANDS = {"--list": ["--list"], "bootstrap": ["bootstrap"], "status": ["status"]}
REAL_MIRROR = "file:///work/real/gh/"
REAL_PROJECTS = "mmdetection3d mmdeploy"

WRAPPER = """#!/bin/sh
# Written by bench/noop_bench.py: log this git process, then run the real git.
parent=${BENCH_GIT_PARENT:-0}
BENCH_GIT_PARENT=$$
export BENCH_GIT_PARENT
{ pwd -P; printf '%s\\n' "$parent"; for arg in "$@"; do printf '%s\\000' "$arg"; done; } \\
    > 'LOG_DIR'/$$
exec REAL_GIT "$@"
"""

# git's options before the command, and those of them that take the next argument.
GLOBAL_WITH_VALUE = {
    "-C",
    "-c",
    "--git-dir",
    "--work-tree",
    "--namespace",
    "--config-env",
    "--super-prefix",
}


def clean_env(home: Path) -> dict[str, str]:
    """The caller's environment without the tool's, invoke's, git's and Python's variables;
    stock git settings (no user or system config), a private HOME."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("MMLAB_", "INVOKE_", "GIT_", "PYTHON", "BENCH_GIT_"))
    }
    env.update(
        HOME=str(home),
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_CONFIG_NOSYSTEM="1",
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
    )
    return env


def inv(
    args: list[str], workspace: Path, env: dict[str, str], check: bool = True
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [*inv_command(), *args],
        cwd=workspace,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )
    if check and done.returncode != 0:
        sys.exit(f"`inv {' '.join(args)}` failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return done


def timed(args: list[str], workspace: Path, env: dict[str, str]) -> tuple[float, int]:
    started = time.perf_counter()
    done = subprocess.run(
        [*inv_command(), *args],
        cwd=workspace,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    return time.perf_counter() - started, done.returncode


# --- counting git processes -----------------------------------------------------------------


def install_wrapper(folder: Path, env: dict[str, str]) -> dict[str, str]:
    """A folder whose `git` logs and runs the real git and whose other entries link to git's
    exec path; return the environment that puts it first on PATH and as GIT_EXEC_PATH."""
    real_git = shutil.which("git", path=env["PATH"])
    if real_git is None:
        sys.exit("git is not on PATH")
    exec_path = subprocess.run(
        [real_git, "--exec-path"], capture_output=True, text=True, check=True, env=env
    ).stdout.strip()
    folder.mkdir()
    for entry in os.listdir(exec_path):
        if entry != "git":
            os.symlink(os.path.join(exec_path, entry), folder / entry)
    log = folder.parent / "git-log"  # named in the wrapper: it works without our variables
    log.mkdir()
    if "'" in str(log) + real_git:
        sys.exit(f"a quote in {log} or {real_git}: choose another temporary folder")
    wrapper = folder / "git"
    wrapper.write_text(WRAPPER.replace("REAL_GIT", f"'{real_git}'").replace("LOG_DIR", str(log)))
    wrapper.chmod(0o755)
    return {
        **env,
        "PATH": f"{folder}{os.pathsep}{env['PATH']}",
        "GIT_EXEC_PATH": str(folder),
        "BENCH_GIT_LOG": str(log),
    }


@dataclass
class GitProcess:
    pid: int
    parent: int  # the git process that started it (through any shell), 0: the tool
    cwd: str
    argv: list[str]
    children: list[GitProcess] = field(default_factory=list)

    @property
    def command(self) -> str:
        """git's command word (`status`, `submodule`, ...), or an option such as --version."""
        index = 0
        while index < len(self.argv):
            arg = self.argv[index]
            if arg in GLOBAL_WITH_VALUE:
                index += 2
            elif arg.startswith("-") and "=" not in arg and arg in ("--version", "--exec-path"):
                return arg
            elif arg.startswith("-"):
                index += 1
            else:
                return arg
        return "(none)"

    @property
    def from_command(self) -> list[str]:
        """The command word and what follows it (git's own options before it left out)."""
        if self.command not in self.argv:
            return self.argv
        return self.argv[self.argv.index(self.command) :]

    @property
    def short(self) -> str:
        """The command word and its first argument when that is an option (`describe --all`)."""
        if self.command not in self.argv:
            return self.command
        rest = self.argv[self.argv.index(self.command) + 1 :]
        return f"{self.command} {rest[0]}" if rest and rest[0].startswith("-") else self.command

    @property
    def folder(self) -> str:
        """The folder git works in: the working folder after every `-C`."""
        folder = self.cwd
        for index, arg in enumerate(self.argv[:-1]):
            if arg == self.command:
                break
            if arg == "-C":
                folder = os.path.normpath(os.path.join(folder, self.argv[index + 1]))
        return folder

    def subtree(self) -> list[GitProcess]:
        found, waiting = [], [self]
        while waiting:
            process = waiting.pop()
            found.append(process)
            waiting.extend(process.children)
        return found


def read_log(log: Path) -> list[GitProcess]:
    """Every logged git process, linked to the git process that started it."""
    processes: dict[int, GitProcess] = {}
    for entry in log.iterdir():
        raw = entry.read_bytes()
        cwd, parent, rest = raw.split(b"\n", 2)
        argv = [arg.decode(errors="replace") for arg in rest.split(b"\0")[:-1]]
        processes[int(entry.name)] = GitProcess(
            int(entry.name), int(parent), cwd.decode(errors="replace"), argv
        )
    for process in processes.values():
        if process.parent in processes:
            processes[process.parent].children.append(process)
    return sorted(processes.values(), key=lambda process: process.pid)


def repositories(extension: Path) -> list[Path]:
    """The superproject and every checked-out submodule (folders holding a `.git`)."""
    found = []
    for folder, dirs, files in os.walk(extension):
        if ".git" in dirs or ".git" in files:
            found.append(Path(folder).resolve())
        dirs[:] = [name for name in dirs if name != ".git"]
    return sorted(found)


def repository_of(folder: str, repos: list[Path]) -> Path | None:
    """The innermost repository that holds `folder` (None: outside every one)."""
    path = Path(os.path.realpath(folder))
    holders = [repo for repo in repos if path == repo or repo in path.parents]
    return max(holders, key=lambda repo: len(repo.parts)) if holders else None


def shorten(argv: list[str], workspace: Path, limit: int = 110) -> str:
    text = " ".join(
        arg.replace(str(workspace.resolve()) + "/", "").replace(str(workspace.resolve()), ".")
        for arg in argv
    )
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass
class Count:
    """What one counted run showed."""

    processes: list[GitProcess]
    per_repo: dict[Path | None, int]
    submodule_processes: int  # `git submodule` and everything under it

    def worst(self, repos: list[Path]) -> int:
        return max([self.per_repo.get(repo, 0) for repo in repos], default=0)


def count_run(
    args: list[str], workspace: Path, env: dict[str, str], repos: list[Path]
) -> tuple[Count, subprocess.CompletedProcess[str]]:
    log = Path(env["BENCH_GIT_LOG"])
    for entry in log.iterdir():
        entry.unlink()
    done = inv(args, workspace, env, check=False)
    processes = read_log(log)
    per_repo: dict[Path | None, int] = collections.Counter(
        repository_of(process.folder, repos) for process in processes
    )
    under_submodule: set[int] = set()
    for process in processes:
        if process.command == "submodule":
            under_submodule |= {child.pid for child in process.subtree()}
    return Count(processes, dict(per_repo), len(under_submodule)), done


def label(repo: Path | None, workspace: Path) -> str:
    if repo is None:
        return "(outside every repository)"
    return os.path.relpath(repo, workspace.resolve())


READ_ONLY = {
    "rev-parse", "ls-files", "ls-tree", "cat-file", "status", "describe", "for-each-ref",
    "show-ref", "log", "diff", "diff-index", "diff-files", "merge-base", "rev-list", "var",
    "--version", "--exec-path",
}  # fmt: skip
CONFIG_WRITES = {"--unset", "--unset-all", "--add", "--replace-all", "--rename-section",
                 "--remove-section", "-e", "--edit"}  # fmt: skip


def read_only(process: GitProcess) -> bool:
    """Whether re-running this git command surely changes nothing (to time it alone)."""
    command = process.command
    rest = process.argv[process.argv.index(command) + 1 :] if command in process.argv else []
    words = [arg for arg in rest if not arg.startswith("-")]
    if command in READ_ONLY:
        return True
    if command == "config":
        return not CONFIG_WRITES & set(rest) and (
            len(words) <= 1 or any(arg.startswith("--get") for arg in rest)
        )
    if command == "symbolic-ref":
        return len(words) <= 1 and "-d" not in rest and "--delete" not in rest
    if command == "submodule":
        return words[:1] == ["status"]
    return False


def git_ms(process: GitProcess, env: dict[str, str], repeat: int) -> float | None:
    """Median wall time of the command run alone (read-only ones only; None otherwise)."""
    if not read_only(process):
        return None
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(
            ["git", *process.argv],
            cwd=process.cwd,
            env={**env, "GIT_OPTIONAL_LOCKS": "0"},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
        )
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def report_git(
    counts: dict[str, Count], repos: list[Path], workspace: Path, env: dict[str, str]
) -> bool:
    names = list(counts)
    print(f"\ngit processes per repository (goal: at most {GIT_GOAL} each)")
    print(f"  {'repository':<52}" + "".join(f"{name:>11}" for name in names))
    rows: list[Path | None] = [*repos]
    if any(None in count.per_repo for count in counts.values()):
        rows.append(None)
    for repo in rows:
        cells = "".join(f"{counts[name].per_repo.get(repo, 0):>11}" for name in names)
        print(f"  {label(repo, workspace):<52}{cells}")
    print(f"  {'total':<52}" + "".join(f"{len(counts[name].processes):>11}" for name in names))
    print(
        f"  {'of them `git submodule` and what it started':<52}"
        + "".join(f"{counts[name].submodule_processes:>11}" for name in names)
    )
    passed = True
    for name in names:
        if name == "--list":
            continue
        count = counts[name]
        outside = count.per_repo.get(None, 0)
        ok = (
            count.worst(repos) <= GIT_GOAL
            and len(count.processes) <= GIT_GOAL * len(repos)
            and count.submodule_processes == 0
        )
        passed = passed and ok
        print(
            f"  {name}: most in one repository {count.worst(repos)}, total"
            f" {len(count.processes)} for {len(repos)} repositories"
            f" ({outside} outside any), `git submodule` processes"
            f" {count.submodule_processes}: {'PASS' if ok else 'FAIL'}"
        )
    for name in names:
        count = counts[name]
        if not count.processes:
            continue
        print(
            f"\n`inv {name}`: the git commands it started, in order: git processes under each,"
            " its median ms run alone (read-only ones), where, what (git's"
            " options before the command, such as -C and -c, left out)"
        )
        total_ms = 0.0
        for process in count.processes:
            if process.parent != 0:
                continue
            tree = process.subtree()
            flag = "  <-- git submodule (shell script)" if process.command == "submodule" else ""
            ms = git_ms(process, env, 5)
            total_ms += ms or 0.0
            print(
                f"  {len(tree):>4}{'-' if ms is None else f'{ms:.1f}':>7}"
                f"  [{label(repository_of(process.folder, repos), workspace)}]"
                f" git {shorten(process.from_command, workspace)}{flag}"
            )
            if len(tree) > 1:
                inner = collections.Counter(child.short for child in tree[1:])
                summary = ", ".join(f"{n}x {what}" for what, n in inner.most_common())
                print(f"          under it: {summary}")
        by_command = collections.Counter(process.command for process in count.processes)
        print(f"  git time, these commands run one after another: {total_ms:.0f} ms")
        print(
            "  all git processes by command: "
            + ", ".join(f"{n}x {what}" for what, n in by_command.most_common())
        )
    return passed


def imported(args: list[str], workspace: Path, env: dict[str, str]) -> dict[str, int]:
    """Module -> own microseconds, from one `python -X importtime <inv> ARGS` run."""
    command = inv_command()
    if command[0] != sys.executable:
        command = [sys.executable, *command]
    done = subprocess.run(
        [command[0], "-X", "importtime", *command[1:], *args],
        cwd=workspace,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )
    found: dict[str, int] = {}
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            own, _, name = line[len("import time:") :].split("|", 2)
            if own.strip().isdigit():
                found[name.strip()] = int(own)
    return found


def report_imports(workspace: Path, env: dict[str, str], top: int = 12) -> None:
    """What the no-op commands import beyond `inv --list` (bytecode cached)."""
    listing = imported(["--list"], workspace, env)
    print("\nmodules imported beyond `inv --list` (-X importtime, own time)")
    for name in ("bootstrap", "status"):
        extra = {
            module: own for module, own in imported([name], workspace, env).items()
            if module not in listing
        }  # fmt: skip
        heaviest = sorted(extra.items(), key=lambda item: -item[1])[:top]
        print(
            f"  inv {name}: {len(extra)} modules, {sum(extra.values()) / 1000:.1f} ms: "
            + ", ".join(f"{module} {own / 1000:.1f}" for module, own in heaviest)
        )


def programs_started(
    args: list[str], workspace: Path, env: dict[str, str], scratch: Path
) -> collections.Counter[str] | None:
    """Every program the command started, by name (from `strace -f`), the `inv` itself left
    out; None when strace is missing or may not trace here."""
    strace = shutil.which("strace")
    if strace is None:
        return None
    trace = scratch / "strace.txt"
    done = subprocess.run(
        [strace, "-f", "-qq", "-z", "-e", "trace=execve", "-e", "signal=none", "-o", str(trace),
         *inv_command(), *args],
        cwd=workspace,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        check=False,
    )  # fmt: skip
    if not trace.exists() or done.returncode not in (0, 1):
        return None
    started: collections.Counter[str] = collections.Counter()
    for line in trace.read_text(errors="replace").splitlines():
        if 'execve("' in line and line.rstrip().endswith("= 0"):
            program = line.split('execve("', 1)[1].split('"', 1)[0]
            started["git" if os.path.basename(program) == "git" else program] += 1
    trace.unlink()
    if not started:
        return None
    started[inv_command()[-1]] -= 1
    return +started


def report_programs(
    programs: dict[str, collections.Counter[str] | None], counts: dict[str, Count]
) -> None:
    print("\nevery program started (strace -f, without the wrapper; a check of the counts above)")
    for name, started in programs.items():
        if started is None:
            print(f"  inv {name}: strace is not available here")
            continue
        others = ", ".join(
            f"{n}x {os.path.basename(what)}" for what, n in started.most_common() if what != "git"
        )
        agrees = "" if started["git"] == len(counts[name].processes) else "  (DIFFERS: check)"
        print(
            f"  inv {name}: {sum(started.values())} programs: {started['git']} git{agrees}"
            + (f"; {others}" if others else "")
        )


# --- the workspace --------------------------------------------------------------------------


def set_up(args: argparse.Namespace, base: Path, env: dict[str, str]) -> Path:
    """A bootstrapped workspace, as the README sets one up."""
    workspace = base / "ws"
    workspace.mkdir()
    shutil.copy(ROOT / "tasks.py", workspace / "tasks.py")
    if args.real:
        inv(["env", "--mirror", args.mirror, "--projects", args.projects], workspace, env)
        print(f"workspace: real repositories from {args.mirror}, projects {args.projects!r}")
    else:
        fixture = build_superproject(base / "served")
        inv(["env", "--repo", fixture.url()], workspace, env)
        print("workspace: tests/lib/gitfixture.py's superproject (file://), nested submodules")
    started = time.perf_counter()
    inv(["bootstrap"], workspace, env)
    print(f"first `inv bootstrap`: {time.perf_counter() - started:.1f} s")
    return workspace


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=15, help="timed runs of each command")
    parser.add_argument("--real", action="store_true", help="use the real-repository mirror")
    parser.add_argument("--mirror", default=REAL_MIRROR, help="MMLAB_GIT_MIRROR with --real")
    parser.add_argument("--projects", default=REAL_PROJECTS, help="MMLAB_PROJECTS with --real")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument(
        "--no-strace", action="store_true", help="skip the strace count of every program started"
    )
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="noop-bench-"))
    try:
        (base / "home").mkdir()
        env = clean_env(base / "home")
        workspace = set_up(args, base, env)
        extension = workspace / "mmlab_extension"
        repos = repositories(extension)
        print(f"repositories: {len(repos)} (the superproject and its checked-out submodules)")
        for name, command in COMMANDS.items():  # bytecode for what each command imports
            inv(["--write-pyc", *command], workspace, env, check=name != "status")
        outputs = {name: inv(command, workspace, env, check=False) for name, command in
                   COMMANDS.items()}  # fmt: skip
        times: dict[str, list[float]] = {name: [] for name in COMMANDS}
        codes: dict[str, set[int]] = {name: set() for name in COMMANDS}
        order = list(COMMANDS)
        for index in range(args.repeat):
            rotated = order[index % len(order) :] + order[: index % len(order)]
            for name in rotated:
                seconds, code = timed(COMMANDS[name], workspace, env)
                times[name].append(seconds)
                codes[name].add(code)
        print(f"\nmedian of {args.repeat} runs each, commands alternating; bytecode cached")
        print(f"{'command':<16}{'median s':>10}{'min s':>8}{'vs --list':>11}{'goal':>7}  result")
        listing = statistics.median(times["--list"])
        passed = True
        for name in COMMANDS:
            median = statistics.median(times[name])
            ratio = median / listing
            exits = ",".join(str(code) for code in sorted(codes[name]))
            if name == "--list":
                verdict, goal = "", ""
            else:
                ok = ratio <= TIME_GOAL and codes[name] == {0}
                passed = passed and ok
                verdict, goal = ("PASS" if ok else "FAIL"), f"{TIME_GOAL:.2f}"
            print(
                f"inv {name:<12}{median:>10.3f}{min(times[name]):>8.3f}{ratio:>11.3f}{goal:>7}"
                f"  {verdict}{'' if exits == '0' else f' (exit {exits})'}"
            )
        if "up to date" not in outputs["bootstrap"].stdout:
            print("note: the no-op bootstrap printed no `up to date` line:")
            print(outputs["bootstrap"].stdout + outputs["bootstrap"].stderr)
        if outputs["status"].returncode != 0:
            print("note: status says the workspace is not healthy:")
            print(outputs["status"].stdout + outputs["status"].stderr)
        report_imports(workspace, env)
        counting = install_wrapper(base / "gitwrap", env)
        counts: dict[str, Count] = {}
        for name, command in COMMANDS.items():
            counts[name], _ = count_run(command, workspace, counting, repos)
        git_ok = report_git(counts, repos, workspace, env)
        if not args.no_strace:
            programs = {
                name: programs_started(command, workspace, env, base)
                for name, command in COMMANDS.items()
            }
            report_programs(programs, counts)
        print(
            f"\nno-op goal (<= {TIME_GOAL:.2f}x `inv --list`): {'PASS' if passed else 'FAIL'};"
            f" git goal (<= {GIT_GOAL} per repository, no `git submodule`):"
            f" {'PASS' if git_ok else 'FAIL'}"
        )
    finally:
        if args.keep:
            print(f"kept: {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
