"""The torch/CUDA pair of `inv python-env`: chosen from what a PyTorch-style index and
download.openmmlab.com-style pages (served on 127.0.0.1) really list, for the interpreter;
the newest pair wins; every pair looked at says why it lost."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet

from mmlab_bootstrap.checkpoints.http import http_session
from mmlab_bootstrap.proc.bounded import run_bounded
from mmlab_bootstrap.pythonenv import pages as wheelpages
from mmlab_bootstrap.pythonenv import pairs as torchpairs
from mmlab_bootstrap.pythonenv.pages import Interpreter, page_reader, page_wheels
from mmlab_bootstrap.pythonenv.pairs import Pair, accelerator_tags, choose_pair, driver_version
from mmlab_bootstrap.pythonenv.plan import PythonEnvError

from .conftest import assert_clean_error, inv
from .lib.httpserve import Served, serving
from .lib.wheelfixture import Indexes, mmcv_files, torch_files, wheel

PY38 = Interpreter("/usr/bin/python3.8", 3, 8, "x86_64", "linux")
PY311 = Interpreter("/usr/bin/python3.11", 3, 11, "x86_64", "linux")
RC4_MMCV = SpecifierSet(">=1.5.2,<=1.6.0")
NOTES: list[str] = []  # what the page readers say (a retry)


def stand_ins(folder: Path) -> Indexes:
    """cu113: torch 1.12.1 and 1.11.0 for cp38; mmcv's torch1.12 page lists mmcv-full 1.7.0
    only (outside rc4's range) and mmcv 2.0.0, its torch1.11.0 page mmcv-full 1.6.0 (cp38)."""
    indexes = Indexes()
    torches = [
        wheel(folder, "torch", f"{v}+cu113", torch_files(v, "11.3"), tag=f"{cp}-{cp}-linux_x86_64")
        for v in ("1.12.1", "1.12.0", "1.11.0")
        for cp in ("cp38", "cp39")
    ]
    indexes.simple("whl/cu113", torches)
    tag38 = "cp38-cp38-manylinux1_x86_64"
    indexes.openmmlab(
        "cu113",
        "1.12",
        [
            wheel(folder / "a", "mmcv-full", "1.7.0", mmcv_files("1.7.0"), tag=tag38),
            wheel(folder / "a", "mmcv", "2.0.0", mmcv_files("2.0.0"), tag=tag38),
        ],
        dotted=False,
    )
    indexes.openmmlab(
        "cu113",
        "1.11",
        [
            wheel(folder / "b", "mmcv-full", "1.6.0", mmcv_files("1.6.0"), tag=tag38),
            wheel(folder / "b", "mmcv-full", "1.5.3", mmcv_files("1.5.3"), tag=tag38),
        ],
        dotted=True,
    )
    return indexes


def choose(served: Served, interpreter: Interpreter, tags: tuple[str, ...] = ("cu113",)) -> Pair:
    read = page_reader(http_session(1), "MMLAB_TORCH_INDEX", (5.0, 5.0), NOTES.append)
    return choose_pair(
        tags,
        torch_spec=SpecifierSet(),
        mmcv_name="mmcv-full",
        mmcv_spec=RC4_MMCV,
        interpreter=interpreter,
        read=read,
        torch_base=served.url + "whl/",
        mmcv_base=served.url,
    )


def test_the_newest_pair_with_a_wheel_wins(tmp_path: Path) -> None:
    with serving(stand_ins(tmp_path).served()) as served:
        pair = choose(served, PY38)
    assert (pair.tag, str(pair.torch), str(pair.mmcv.version)) == ("cu113", "1.11.0+cu113", "1.6.0")
    assert pair.mmcv_page.endswith("/mmcv/dist/cu113/torch1.11.0/index.html")
    whys = [(c.torch, c.why) for c in pair.considered]
    assert whys[0] == ("1.12", "only mmcv-full 1.7.0, outside <=1.6.0,>=1.5.2")
    assert whys[1] == ("1.11", "chosen: torch 1.11.0+cu113, mmcv-full 1.6.0")


def test_no_wheel_for_the_interpreter_names_the_pairs_that_exist(tmp_path: Path) -> None:
    indexes = stand_ins(tmp_path)
    with serving(indexes.served()) as served, pytest.raises(PythonEnvError) as raised:
        choose(served, PY311)
    # torch has no cp311 wheel here: no pair at all, and the hint names the variables
    assert "Python 3.11" in raised.value.message and "MMLAB_CUDA" in raised.value.hint
    extra = Indexes()  # the torch index with a cp311 wheel (mmcv still cp38 only)
    extra.simple(
        "whl/cu113",
        [wheel(tmp_path / "c", "torch", "1.11.0+cu113", torch_files("1.11.0", "11.3"),
               tag="cp311-cp311-linux_x86_64")],
    )  # fmt: skip
    indexes.files.update(extra.files)
    indexes.types.update(extra.types)
    with serving(indexes.served()) as served, pytest.raises(PythonEnvError) as raised:
        choose(served, PY311)
    assert "cu113 + torch 1.11 (1.6.0, 1.5.3)" in raised.value.hint
    assert "MMLAB_PYTHON" in raised.value.hint


def test_a_tag_the_index_lacks_is_passed_over(tmp_path: Path) -> None:
    with serving(stand_ins(tmp_path).served()) as served:
        pair = choose(served, PY38, ("cu117", "cu113"))
    assert pair.tag == "cu113"
    assert pair.considered[0].why == "the torch index has no cu117"


def test_an_unreachable_index_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MMLAB_HTTP_WAIT_MAX", "0.01")  # (the tries' waits, kept short)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        port = holder.getsockname()[1]  # nothing listens there once closed
    read = page_reader(http_session(1), "MMLAB_TORCH_INDEX", (2.0, 2.0), NOTES.append)
    with pytest.raises(PythonEnvError) as raised:
        read(f"http://127.0.0.1:{port}/whl/cu113/torch/")
    assert "refused the connection; 6 tries in a row failed" in raised.value.message
    assert "MMLAB_TORCH_INDEX" in raised.value.hint


@pytest.mark.parametrize(
    ("status", "said"), [(500, "answered 500"), (403, "answered 403")]
)  # fmt: skip
def test_an_index_that_fails_names_the_variable(
    status: int, said: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from .lib.httpserve import Faults

    monkeypatch.setenv("MMLAB_HTTP_WAIT_MAX", "0.01")

    served = Served(files={"p/": b"x"}, faults={"p/": Faults(statuses=[status] * 9)})
    with serving(served):
        read = page_reader(http_session(1), "MMLAB_MMCV_INDEX", (5.0, 5.0), NOTES.append)
        with pytest.raises(PythonEnvError) as raised:
            read(served.url + "p/")
    assert said in raised.value.message and "MMLAB_MMCV_INDEX" in raised.value.hint
    assert len(served.requests) == (6 if status == 500 else 1)  # bounded retries


def test_a_page_too_large_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wheelpages, "PAGE_LIMIT", 1000)
    with serving(Served(files={"big/": b"<a href='x.whl'>x</a>" * 500})) as served:
        read = page_reader(http_session(1), "MMLAB_PYPI_INDEX", (5.0, 5.0), NOTES.append)
        with pytest.raises(PythonEnvError) as raised:
            read(served.url + "big/")
    assert "larger than 1000 bytes" in raised.value.message


HOSTILE_LINKS = [
    ("<a href='torch-1.12.1%2Bcu113-cp38-cp38-linux_x86_64.whl#sha256=00'>t</a>", ["1.12.1+cu113"]),
    ("<a href='https://x/y/mmcv_full-1.6.0-cp38-cp38-manylinux1_x86_64.whl'>m</a>", ["1.6.0"]),
    ("<a href='../../etc/passwd'>p</a><a href='not a wheel.whl'>n</a>", []),
    ("<a href='torch-1.0-cp38-cp38-linux_x86_64.whl%2F..%2Fx'>slash</a>", []),
    ("<a>no href</a><a href=''>empty</a><A HREF='torch-2.0.0-py3-none-any.whl'>up</A>", ["2.0.0"]),
    ("<a href='torch-1.2.3-cp38-cp38-linux_x86_64.whl", []),  # an unclosed tag
    ("<a href='torch-zz-cp38-cp38-linux_x86_64.whl'>bad version</a>", []),
    ("\x00\xff<a href='torch-1.0.0-cp38-cp38-linux_x86_64.whl'>t</a>", ["1.0.0"]),
]


@pytest.mark.parametrize(("text", "versions"), HOSTILE_LINKS)
def test_hostile_listings(text: str, versions: list[str]) -> None:
    found = page_wheels(text, "http://127.0.0.1/whl/cu113/torch/")
    assert [str(w.version) for w in found] == versions


@pytest.mark.parametrize(
    ("filename", "interpreter", "fits"),
    [
        ("torch-1.12.1-cp38-cp38-linux_x86_64.whl", PY38, True),
        ("torch-1.12.1-cp38-cp38-linux_x86_64.whl", PY311, False),
        ("x-1-cp38-abi3-manylinux2014_x86_64.whl", PY311, True),
        ("x-1-cp312-abi3-manylinux2014_x86_64.whl", PY311, False),
        ("x-1-cp38-cp38-manylinux2014_aarch64.whl", PY38, False),
        ("x-1-cp38-cp38-win_amd64.whl", PY38, False),
        ("x-1-py3-none-any.whl", PY311, True),
        ("x-1-py2.py3-none-any.whl", PY38, True),
        ("x-1-pp38-pypy38_pp73-manylinux2014_x86_64.whl", PY38, False),
    ],
)
def test_which_wheels_an_interpreter_installs(
    filename: str, interpreter: Interpreter, fits: bool
) -> None:
    (found,) = page_wheels(f"<a href='{filename}'>w</a>", "http://127.0.0.1/")
    assert interpreter.installs(found) is fits


def test_accelerator_tags_from_the_variable_or_the_driver(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert accelerator_tags("cu113", "535.1") == (("cu113",), "MMLAB_CUDA=cu113")
    assert accelerator_tags("", None)[0] == ("cpu",)
    tags, why = accelerator_tags("", "470.57.02")
    assert tags[0] == "cu118" and "cu121" not in tags and "11.x" in why
    assert accelerator_tags("", "535.104.05")[0][0] == "cu128"
    assert accelerator_tags("", "390.1")[0] == ("cpu",)
    # The driver: no kernel module here; an nvidia-smi on PATH answers (bounded)
    monkeypatch.setattr(torchpairs, "DRIVER_FILE", tmp_path / "none" / "version")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    smi = bin_dir / "nvidia-smi"
    smi.write_text("#!/bin/sh\necho 470.57.02\necho 470.57.02\n")
    smi.chmod(0o755)
    assert driver_version(str(bin_dir)) == "470.57.02"
    smi.write_text("#!/bin/sh\necho 'NVIDIA-SMI has failed'\nexit 9\n")
    assert driver_version(str(bin_dir)) is None
    module = tmp_path / "module" / "version"
    module.parent.mkdir()
    module.write_text("535.104.05\n")
    monkeypatch.setattr(torchpairs, "DRIVER_FILE", module)
    assert driver_version(os.devnull) == "535.104.05"


HOSTILE_VARIABLES = [
    ("--cuda", "cuda11", "is not cpu or a CUDA tag"),
    ("--cuda", "cu113;rm", "is not cpu or a CUDA tag"),
    ("--cuda", "CPU", "is not cpu or a CUDA tag"),
    ("--python", "-c", "is not a program name or a path"),
    ("--python", "python3 -I", "is not a program name or a path"),
    ("--python", "py\x1bthon", "contains"),
    ("--torch-index", "ftp://mirror/whl/", "is not an http:// or https:// URL"),
    ("--mmcv-index", "-https://x/", "must not start with '-'"),
    ("--pypi-index", "file:///etc/", "is not an http:// or https:// URL"),
    ("--python-env", "yes", "must be 0 or 1"),
    ("--venvs-path", "-x", "must not start with '-'"),
]


@pytest.mark.parametrize(("flag", "value", "said"), HOSTILE_VARIABLES)
def test_hostile_variable_values(workspace: Path, flag: str, value: str, said: str) -> None:
    run = inv(workspace, "env", flag, value)
    assert_clean_error(run, said)
    assert not (workspace / ".env").exists()


HOSTILE_SMI = [
    ("echo 470.57.02", "470.57.02"),
    ("printf '\\033[31m470.57.02\\n'", None),  # an escape sequence: no version
    ("echo '470.57.02; rm -rf /'", None),
    ("echo", None),
    ("yes 470.57.02", None),  # endless output: killed past 4 KiB
    ("echo 470.57.02; exit 1", None),
    ("echo 'NVIDIA-SMI has failed because it could not communicate with the NVIDIA driver'", None),
]


@pytest.mark.parametrize(("script", "found"), HOSTILE_SMI)
def test_hostile_nvidia_smi(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, script: str, found: str | None
) -> None:
    monkeypatch.setattr(torchpairs, "DRIVER_FILE", tmp_path / "none" / "version")
    smi = tmp_path / "bin" / "nvidia-smi"
    smi.parent.mkdir()
    smi.write_text(f"#!/bin/sh\n{script}\n")
    smi.chmod(0o755)
    assert driver_version(str(smi.parent)) == found


def test_a_silent_child_is_killed_at_the_deadline(tmp_path: Path) -> None:
    """(run_bounded) A child that never answers, or floods its output, costs its deadline
    and `max_bytes` at most."""
    answer = run_bounded(["sleep", "30"], seconds=0.2, max_bytes=10)
    assert answer.code is None and answer.out == b"" and not answer.flooded
    flood = run_bounded(["yes"], seconds=30, max_bytes=10)  # killed once past the limit
    assert flood.code is None and flood.out == b"y\ny\ny\ny\ny\n" and flood.flooded


@pytest.mark.parametrize(
    ("script", "said"),
    [
        ("print('not json')", "is not a Python interpreter"),
        ("import json; print(json.dumps({'version': [2, 7]}))", "is not a Python interpreter"),
        ("import sys; sys.exit(3)", "is not a Python interpreter"),
    ],
)
def test_hostile_base_interpreters(tmp_path: Path, script: str, said: str) -> None:
    fake = tmp_path / "python3"
    fake.write_text(f"#!{sys.executable}\n{script}\n")
    fake.chmod(0o755)
    with pytest.raises(PythonEnvError) as raised:
        wheelpages.probe_interpreter(str(fake), "MMLAB_PYTHON")
    assert said in raised.value.message and "MMLAB_PYTHON" in raised.value.hint


def test_the_search_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """At most MAX_PAGES mmcv pages are read; then the error says so and how to narrow it."""
    monkeypatch.setattr(torchpairs, "MAX_PAGES", 1)
    with serving(stand_ins(tmp_path).served()) as served, pytest.raises(PythonEnvError) as raised:
        choose(served, PY38)
    assert "stopped after 1 pages" in raised.value.message
    assert "MMLAB_CUDA" in raised.value.hint
    mmcv_reads = [r for r in served.requests if r.path.startswith("mmcv/")]
    assert len(mmcv_reads) <= 2  # one minor: its page under both names at most
