"""Hostile input for the checkpoint tasks: files planted at the names of the tool's records
and partial downloads (a FIFO, a link to /dev/zero or to another model's checkpoint, a
folder, a record far too large), and hostile metafiles (an alias bomb, fields of the wrong
type, deep nesting, a huge file, file names with `%00`, `../`, a leading `.`, another model's
partial name, 250 bytes). Each runs `status`, `fetch-checkpoints --search`,
`fetch-checkpoints` and `bootstrap` in a process of its own, bounded in time and memory, so a
hang or a read without end fails the test instead of blocking the suite or the machine."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest

from mmlab_bootstrap.checkpoints.index import Model
from mmlab_bootstrap.checkpoints.store import name_problem

from .conftest import Cloned, Run, inv, snapshot
from .lib.ckptfixture import MODEL, Checkpoint, checkpoint, random_bytes, write_index
from .lib.httpserve import Served, serving

TIMEOUT = 60  # seconds for one command: every one here takes about one
MEMORY = 2 << 30  # bytes of address space for one command: a run reading /dev/zero stops here


def bounded(root: Path, *args: str, env: dict[str, str] | None = None) -> Run:
    """`inv ARGS` in a process of its own, limited in time and memory; never a traceback."""
    executable = shutil.which("inv", path=os.environ["PATH"]) or "inv"
    done = subprocess.run(
        ["prlimit", f"--as={MEMORY}", executable, *args],
        cwd=root,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        stdin=subprocess.DEVNULL,
    )
    assert "Traceback" not in done.stdout + done.stderr, (args, done.stderr[-3000:])
    return Run(done.returncode, done.stdout, done.stderr)


@dataclass
class Store:
    """A cloned workspace whose mmdetection3d lists two models served on loopback: `victim`,
    fetched and verified before each case, and `target`, at whose names things are planted."""

    cloned: Cloned
    served: Served
    victim: Checkpoint
    target: Checkpoint

    @property
    def root(self) -> Path:
        return self.cloned.root

    def final(self, item: Checkpoint) -> Path:
        return self.cloned.ckpt / item.project / "checkpoints" / item.file_name

    def record(self, item: Checkpoint) -> Path:
        return self.final(item).with_name(f".{item.file_name}.verified.json")

    def victims_files(self) -> dict[str, bytes]:
        return {str(p): p.read_bytes() for p in (self.final(self.victim), self.record(self.victim))}


@pytest.fixture
def store(cloned: Cloned) -> Iterator[Store]:
    victim = checkpoint("mmdetection3d", "pointpillars_victim", random_bytes(200_000))
    target = checkpoint("mmdetection3d", "pointpillars_target", random_bytes(300_000))
    write_index(cloned.ext / "mmdetection3d", [victim, target])
    with serving() as served:
        served.files = {item.path: item.data for item in (victim, target)}
        with open(cloned.root / ".env", "a") as env:
            env.write(f"MMLAB_CHECKPOINT_MIRROR='{served.url}'\n")
        fetched = inv(cloned.root, "fetch-checkpoints", "--model", victim.name)
        assert fetched.code == 0, fetched.err
        yield Store(cloned, served, victim, target)


def _fifo(path: Path, store: Store) -> None:
    os.mkfifo(path)


def _zero(path: Path, store: Store) -> None:
    path.symlink_to("/dev/zero")


def _other(path: Path, store: Store) -> None:
    path.symlink_to(store.final(store.victim))  # another model's verified checkpoint


def _folder(path: Path, store: Store) -> None:
    path.mkdir()
    (path / "keep").write_bytes(b"not the tool's")


def _oversized(path: Path, store: Store) -> None:
    path.write_bytes(b'{"sha256": "' + b"0" * (8 << 20) + b'"}')


PLANTS: dict[str, Callable[[Path, Store], None]] = {
    "fifo": _fifo,
    "link to /dev/zero": _zero,
    "link to another model's checkpoint": _other,
    "folder": _folder,
    "oversized": _oversized,
}
CASES = [
    *[("record", plant) for plant in PLANTS],
    *[("partial", plant) for plant in PLANTS if plant != "oversized"],  # (a partial may be big)
]


def _kind(path: Path) -> tuple[bool, bool, bool, str | None]:
    return (path.is_symlink(), path.is_dir(), path.is_fifo(), os.readlink(path) if
            path.is_symlink() else None)  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize(("place", "plant"), CASES)
def test_a_planted_file_is_never_read_followed_or_waited_on(
    store: Store, place: str, plant: str
) -> None:
    """status, --search, fetch-checkpoints and bootstrap each end (no hang, no memory eaten),
    name the planted file in a warning (or, for a folder where the record goes, in an error
    naming the fix), fetch the target into a partial file of their own, and leave the victim's
    files and the planted one as they were."""
    target = store.target
    folder = store.final(target).parent
    planted = (
        store.record(target) if place == "record" else folder / f".{target.file_name}.part-0badc0de"
    )
    PLANTS[plant](planted, store)
    kind = _kind(planted)
    victims = store.victims_files()
    env = {"MMLAB_CHECKPOINTS": f"{target.name} {store.victim.name}"}
    blocks = place == "record" and plant == "folder"  # the record cannot be written there

    status = bounded(store.root, "status", "--json", env=env)
    found = json.loads(status.out)
    assert any(planted.name in warning for warning in found["warnings"]), found["warnings"]
    states = {c["model"]: c["state"] for c in found["checkpoints"]}
    assert states[f"mmdetection3d:{store.victim.name}"] == "verified"
    assert states[f"mmdetection3d:{target.name}"] in ("missing", "partial")

    listed = bounded(store.root, "fetch-checkpoints", "--search", "pointpillars")
    assert listed.code == 0, listed.err
    assert planted.name in listed.err
    assert f"mmdetection3d:{store.victim.name}  " in listed.out and "[verified]" in listed.out

    dry = bounded(store.root, "--dry", "fetch-checkpoints", "--model", target.name)
    boot = bounded(store.root, "bootstrap", env=env)
    for run in (dry, boot):
        assert planted.name in run.err, run.err
        if blocks:
            assert run.code == 1 and "is a folder, where the record" in run.err, run.err
            assert "hint: move it aside (mv " in run.err
        else:
            assert run.code == 0, run.err
    again = bounded(store.root, "fetch-checkpoints", env=env)
    assert again.code == (1 if blocks else 0), again.err

    assert store.victims_files() == victims
    if place == "partial" or blocks:  # left where it was (a record's name is the tool's own:
        assert _kind(planted) == kind  # what was there is replaced by the record, not followed)
    if blocks:
        assert (planted / "keep").read_bytes() == b"not the tool's"
        assert not store.final(target).exists()
        return
    assert store.final(target).read_bytes() == target.data
    record = json.loads(store.record(target).read_text())
    assert record["sha256"] == hashlib.sha256(target.data).hexdigest()
    assert "up to date: mmdetection3d:pointpillars_target" in again.out


# ---- hostile metafiles -------------------------------------------------------------------

BOMB = """Models:
  - Name: bomb
    Weights: https://download.openmmlab.com/x/bomb-0123abcd.pth
    Config: &a0 [x, x, x, x, x, x, x, x, x]
    Metadata:
      a1: &a1 [*a0, *a0, *a0, *a0, *a0, *a0, *a0, *a0, *a0]
      a2: &a2 [*a1, *a1, *a1, *a1, *a1, *a1, *a1, *a1, *a1]
      a3: &a3 [*a2, *a2, *a2, *a2, *a2, *a2, *a2, *a2, *a2]
      a4: &a4 [*a3, *a3, *a3, *a3, *a3, *a3, *a3, *a3, *a3]
      a5: &a5 [*a4, *a4, *a4, *a4, *a4, *a4, *a4, *a4, *a4]
      a6: &a6 [*a5, *a5, *a5, *a5, *a5, *a5, *a5, *a5, *a5]
      a7: &a7 [*a6, *a6, *a6, *a6, *a6, *a6, *a6, *a6, *a6]
      a8: &a8 [*a7, *a7, *a7, *a7, *a7, *a7, *a7, *a7, *a7]
    In Collection: *a8
"""


def _model(name: str, weights: str, config: str = "configs/hostile/x.py") -> str:
    return "Models:\n" + MODEL.format(
        name=name, collection="hostile", config=config, weights=f"    Weights: '{weights}'"
    )


HOST = "https://download.openmmlab.com/mmdetection3d/hostile/"

# (case, metafile text, what the warning or the model's state says, the model's name or None
# when the whole metafile is refused)
METAFILES: list[tuple[str, str | bytes, str, str | None]] = [
    ("alias bomb", BOMB, "uses YAML aliases or anchors", None),
    ("anchors only", "Models: &m\n  - Name: anchored\n", "uses YAML aliases or anchors", None),
    ("deep nesting", "Models: " + "[" * 100 + "]" * 100 + "\n", "nests deeper than 64", None),
    ("huge", "Models:\n" + "# padding\n" * 120_000, "holds more than 1048576 bytes", None),
    ("not YAML", "Models: [\n  - : :\n", "is refused:", None),
    ("python tag", "Models: !!python/object/apply:os.system [true]\n", "is refused:", None),
    ("not UTF-8", b"Models:\n  - Name: \xff\xfe\n", "is refused:", None),
    ("5000 digits", "Models:\n  - Name: " + "1" * 5000 + "\n", "is refused: Exceeds", None),
    ("bad date", "Models:\n  - Name: x\n    Date: 2020-13-45\n", "month must be", None),
    ("odd tag", "Models:\n  - Name: !!timestamp 99999-01-01\n", "is refused:", None),
    ("%00", _model("nul_name", HOST + "x%00y-0123abcd.pth"), "holds a NUL byte", "nul_name"),
    ("../", _model("dotdot", HOST + "a/..%2F..%2Fevil-0123abcd.pth"), "holds a '/'", "dotdot"),
    ("ends in ..", _model("dots", HOST + ".."), "is '..'", "dots"),
    ("leading .", _model("hidden", HOST + ".hidden-0123abcd.pth"), "starts with '.'", "hidden"),
    ("another's partial", "", "starts with '.'", "thief"),  # (made from the victim's name)
    ("a record's name", _model("rec", HOST + "x.pth.verified.json"), "ends like", "rec"),
    ("250 bytes", _model("long", HOST + "l" * 246 + ".pth"), "250 bytes long", "long"),
    ("300 bytes", _model("longer", HOST + "l" * 296 + ".pth"), "300 bytes long", "longer"),
    ("escape", _model("esc", HOST + "x%1b[31m-0123abcd.pth"), "control character", "esc"),
    ("space", _model("space", HOST + "a b-0123abcd.pth"), "space or control", "space"),
    ("not a URL", _model("v6", "http://[::1/x-0123abcd.pth"), "is not a URL", "v6"),
    ("not http", _model("file", "file:///etc/passwd"), "not an http(s) URL", "file"),
    ("not UTF-8 name", _model("latin", HOST + "x%ff-0123abcd.pth"), "not valid UTF-8", "latin"),
]
# The models whose Weights give no name a file can have at all (no URL, NUL, `/`, over 255
# bytes): they publish no checkpoint file; the others a name this tool refuses.
NO_FILE = {"nul_name", "dotdot", "dots", "space", "v6", "file", "longer"}

FIELDS = """Models:
  - Name: typed
    Config: [configs/a.py, configs/b.py]
    In Collection: {Name: nested, More: [1, 2, 3]}
    Alias: [typed_alias, 7, [x], {y: z}]
    Weights: https://download.openmmlab.com/mmdetection3d/hostile/typed-0123abcd.pth
  - Name: [not, a, name]
    Weights: https://download.openmmlab.com/mmdetection3d/hostile/list-0123abcd.pth
  - Name: 2020
  - Name: numbers
    Config: 3.5
    Weights: 12345
  - just a string
  - null
"""


@dataclass
class Zoo:
    root: Path
    good: Checkpoint
    victim: Checkpoint
    served: Served

    @property
    def storage(self) -> Path:
        return self.root / "mmlab_checkpoints"

    def add_metafile(self, text: str | bytes) -> Path:
        project = self.root / "mmlab_extension" / "mmdetection3d"
        metafile = project / "configs" / "hostile" / "metafile.yml"
        metafile.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            metafile.write_bytes(text)
        else:
            metafile.write_text(text)
        index = project / "model-index.yml"
        index.write_text(index.read_text() + "  - configs/hostile/metafile.yml\n")
        return metafile


@pytest.fixture
def zoo(workspace: Path) -> Iterator[Zoo]:
    good = checkpoint("mmdetection3d", "pointpillars_good", random_bytes(100_000))
    victim = checkpoint("mmdetection3d", "pointpillars_victim", random_bytes(100_000))
    write_index(workspace / "mmlab_extension" / "mmdetection3d", [good, victim])
    with serving() as served:
        served.files = {item.path: item.data for item in (good, victim)}
        (workspace / ".env").write_text(
            f"MMLAB_CHECKPOINT_MIRROR='{served.url}'\nMMLAB_PROJECTS='mmdetection3d'\n"
        )
        fetched = inv(workspace, "fetch-checkpoints", "--model", victim.name)
        assert fetched.code == 0, fetched.err
        yield Zoo(workspace, good, victim, served)


@pytest.mark.parametrize(
    ("text", "fragment", "name"),
    [pytest.param(text, fragment, name, id=case) for case, text, fragment, name in METAFILES],
)
def test_a_hostile_metafile_is_refused_by_name_and_the_rest_goes_on(
    zoo: Zoo, text: str | bytes, fragment: str, name: str | None
) -> None:
    """A metafile refused whole is named in a warning; a model whose Weights give no usable
    file name is listed as such and refused by name when asked for. Either way the other
    models are listed, fetched and shown as before, and no other model's file changes."""
    if name == "thief":  # a name that is the victim's partial (or record) name
        text = _model("thief", HOST + f".{zoo.victim.file_name}.part-0badc0de")
    metafile = zoo.add_metafile(text)
    victims = snapshot(zoo.storage)
    env = {"MMLAB_CHECKPOINTS": " ".join(filter(None, [zoo.good.name, zoo.victim.name, name]))}

    listed = bounded(zoo.root, "fetch-checkpoints", "--search", "")
    assert listed.code == 0, listed.err
    assert f"mmdetection3d:{zoo.victim.name}  " in listed.out
    status = bounded(zoo.root, "status", "--json", env=env)
    found = json.loads(status.out)
    states = {c["model"]: c["state"] for c in found["checkpoints"]}
    assert states[f"mmdetection3d:{zoo.victim.name}"] == "verified"
    if name is None:
        for run in (listed.err, "\n".join(found["warnings"])):
            assert str(metafile) in run and fragment in run, run
    else:
        line = next(li for li in listed.out.splitlines() if li.startswith(f"mmdetection3d:{name} "))
        no_file = name in NO_FILE
        assert line.endswith("[no checkpoint]" if no_file else "[no usable checkpoint file name]")
        assert states[f"mmdetection3d:{name}"] == "without a checkpoint file"
        headline = "no checkpoint file (" if no_file else "no usable checkpoint file name ("
        said = f"mmdetection3d:{name} publishes {headline}"
        assert any(w.startswith(said) and fragment in w for w in found["warnings"]), found
        asked = bounded(zoo.root, "fetch-checkpoints", "--model", name)
        assert asked.code == 1 and asked.err.startswith(f"error: {said}"), asked.err
        assert fragment in asked.err and len(asked.err.splitlines()) == 2, asked.err
    assert snapshot(zoo.storage) == victims
    good = bounded(zoo.root, "fetch-checkpoints", "--model", zoo.good.name)
    assert good.code == 0, good.err
    assert (zoo.storage / "mmdetection3d" / "checkpoints" / zoo.good.file_name).read_bytes() == (
        zoo.good.data
    )
    assert {k: v for k, v in snapshot(zoo.storage).items() if k in victims} == victims


def test_fields_of_the_wrong_type_count_as_absent(zoo: Zoo) -> None:
    """A list where a config goes, a mapping where a collection goes, numbers where a name
    or a URL goes: the model is read without them (never their `str()`); no Name, no model."""
    zoo.add_metafile(FIELDS)
    listed = bounded(zoo.root, "fetch-checkpoints", "--search", "")
    assert listed.code == 0, listed.err
    lines = [li for li in listed.out.splitlines() if li.startswith("mmdetection3d:")]
    names = {li.split()[0].split(":", 1)[1] for li in lines}
    assert names == {zoo.good.name, zoo.victim.name, "typed", "numbers"}
    assert "mmdetection3d:typed    [missing]" in lines
    assert "mmdetection3d:numbers    [no checkpoint]" in lines
    assert "[" not in "".join(li.split("  ")[1] for li in lines)  # no str() of a list
    assert not listed.err
    by_alias = bounded(zoo.root, "--dry", "fetch-checkpoints", "--model", "typed_alias")
    assert by_alias.code == 0 and "would download mmdetection3d:typed from" in by_alias.out


def test_too_many_metafiles_and_models_are_cut_with_a_warning(zoo: Zoo) -> None:
    zoo.add_metafile("Models:\n" + "".join(f"  - Name: m{n}\n" for n in range(25_000)))
    index = zoo.root / "mmlab_extension" / "mmdetection3d" / "model-index.yml"
    many = "".join(f"  - configs/none/{n}/metafile.yml\n" for n in range(1500))
    index.write_text(index.read_text() + many)
    listed = bounded(zoo.root, "fetch-checkpoints", "--search", "pointpillars")
    assert listed.code == 0, listed.err
    assert "only the first 1000 are read" in listed.err
    assert "lists more than 20000 models; only the first 20000 are read" in listed.err
    assert f"mmdetection3d:{zoo.victim.name}  " in listed.out


def test_an_index_refused_whole_says_so_not_clone_first(zoo: Zoo) -> None:
    """model-index.yml itself an alias bomb: the index is named as refused, and the error's
    hint says the files are refused (restore them), not "clone the workspace first"."""
    index = zoo.root / "mmlab_extension" / "mmdetection3d" / "model-index.yml"
    index.write_text(BOMB)
    listed = bounded(zoo.root, "fetch-checkpoints", "--search", "")
    assert listed.code == 1, listed.err
    lines = listed.err.splitlines()
    assert any(str(index) in line and "aliases or anchors" in line for line in lines), lines
    error = next(line for line in lines if line.startswith("error:"))
    hint = next(line for line in lines if line.startswith("hint:"))
    assert "refused" in error and "clone the workspace first" not in hint, lines


def test_imports_that_name_no_metafile_of_the_checkout_are_skipped(zoo: Zoo) -> None:
    """Absolute, `..`, NUL, too long for a file name, not text: skipped, the rest is read."""
    index = zoo.root / "mmlab_extension" / "mmdetection3d" / "model-index.yml"
    odd = ["/etc/passwd", "../../.env", "x\0y", "a" * 300 + "/metafile.yml", "{a: b}", "[1]", "7"]
    index.write_text(index.read_text() + "".join(f"  - {json.dumps(o)}\n" for o in odd[:4]))
    index.write_text(index.read_text() + "".join(f"  - {o}\n" for o in odd[4:]))
    listed = bounded(zoo.root, "fetch-checkpoints", "--search", "pointpillars")
    assert listed.code == 0 and not listed.err, listed.err
    assert f"mmdetection3d:{zoo.victim.name}  " in listed.out


def test_a_metafile_that_is_a_fifo_or_a_link_to_dev_zero_is_not_read(zoo: Zoo) -> None:
    project = zoo.root / "mmlab_extension" / "mmdetection3d"
    (project / "configs" / "fifo").mkdir()
    os.mkfifo(project / "configs" / "fifo" / "metafile.yml")
    (project / "configs" / "zero").mkdir()
    (project / "configs" / "zero" / "metafile.yml").symlink_to("/dev/zero")
    index = project / "model-index.yml"
    index.write_text(
        index.read_text() + "  - configs/fifo/metafile.yml\n  - configs/zero/metafile.yml\n"
    )
    listed = bounded(zoo.root, "fetch-checkpoints", "--search", "pointpillars")
    assert listed.code == 0, listed.err
    assert f"mmdetection3d:{zoo.victim.name}  " in listed.out


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("x_20220331-0123abcd.pth", None),
        ("a" * 223 + ".pth", None),  # 227 bytes: room for `.<name>.verified.json.tmp-<8>`
        ("a" * 224 + ".pth", "228 bytes long"),
        ("é" * 113 + ".pth", "230 bytes long"),  # bytes, not characters
        ("x.pth.part-0badc0de", "ends like"),
        ("x.pth.tmp-0badc0de", "ends like"),
        ("\udcff.pth", "not valid UTF-8"),
        ("x\x7f.pth", "control character"),
        ("x\u0085.pth", "control character"),
    ],
)
def test_the_names_a_checkpoint_may_have(name: str, fragment: str | None) -> None:
    """At most 255 bytes with the longest suffix the tool adds; nothing that ends like the
    tool's own files; UTF-8 without control characters. The same from a Weights URL."""
    problem = name_problem(name)
    assert problem is None if fragment is None else fragment in (problem or ""), problem
    model = Model("p", "m", "", HOST + quote(name.encode("utf-8", "surrogateescape")))
    assert model.file_name == (name if fragment is None else None), model.file_problem


@pytest.mark.parametrize("commit", ["HEAD", "9556958fe1c6fe432d55a9f98781b8fdd90f4e9c"])
def test_the_real_mmdetection3d_models_are_all_listed_as_before(
    tmp_path: Path, commit: str
) -> None:
    """Against the recorded mmdetection3d (its newest and the 1.0.0rc4 the superproject
    pins): every model has a usable file name and no metafile is refused (see also
    test_checkpoints.test_the_real_mmdetection3d_index)."""
    from .lib.gitfixture import REAL_MMDET3D

    if not REAL_MMDET3D.is_dir():
        pytest.skip("no mirror of the real mmdetection3d")
    from mmlab_bootstrap.checkpoints.index import read_project

    archive = subprocess.run(
        ["git", "-C", str(REAL_MMDET3D), "archive", commit, "model-index.yml", "configs"],
        capture_output=True,
        check=True,
    ).stdout
    (tmp_path / "mmdetection3d").mkdir()
    subprocess.run(["tar", "x"], input=archive, cwd=tmp_path / "mmdetection3d", check=True)
    skipped: list[str] = []
    models = read_project(tmp_path / "mmdetection3d", "mmdetection3d", skipped)
    assert not skipped
    assert len(models) > 80
    refused = [m.file_problem for m in models if m.weights and not m.file_name]
    assert all(" is empty" in problem for problem in refused), refused  # (a folder's URL)
