"""`inv fetch-checkpoints`: the model index read from the sub-projects, and verified,
resumable downloads from a loopback HTTP server that injects faults."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmlab_bootstrap.checkpoints.index import find, hash_prefix, read_index, read_project, search

from .conftest import Cloned, assert_clean_error, guard_paused, inv, mount, scaled, snapshot
from .lib.ckptfixture import MODEL, NO_WEIGHTS, Checkpoint, checkpoint, random_bytes, write_index
from .lib.gitfixture import REAL_MMDET3D
from .lib.httpserve import Faults, Served, serving


def test_hash_prefix_is_anchored_at_the_end() -> None:
    """`-<hex>.pth` at the very end: a `mAP-0.378` earlier in the name never counts."""
    name = "faster_rcnn_r50_fpn_1x_coco-person_bbox_mAP-0.378_20200504_180032-c5925ee5.pth"
    assert hash_prefix(name) == "c5925ee5"
    assert hash_prefix("x_20220331_134606-d42d15ed.pth") == "d42d15ed"
    assert hash_prefix("point_rcnn_2x8_kitti-3d-3classes_20211208_151344.pth") is None
    assert hash_prefix("model_mAP-0.378.pth") is None
    assert hash_prefix("x-d42d15ed.pth.bak") is None
    assert hash_prefix("x-D42D15ED.pth") is None


@settings(max_examples=scaled(200, 1000), deadline=None)
@given(
    stem=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_.-", max_size=40),
    digest=st.text(alphabet="0123456789abcdef", min_size=8, max_size=64),
    metric=st.floats(min_value=0, max_value=1, allow_nan=False),
)
def test_any_name_gives_the_hex_at_its_end(stem: str, digest: str, metric: float) -> None:
    """Whatever comes before (metrics with dots and dashes, dates, more hex), the prefix is
    the hex digits between the last `-` and `.pth`."""
    assert hash_prefix(f"{stem}_mAP-{metric}_{stem}-{digest}.pth") == digest
    assert hash_prefix(f"{stem}_mAP-{metric}.pth") is None  # a metric is never a hash


def test_metafiles_in_the_real_format(tmp_path: Path) -> None:
    """Several models per metafile, a model without Weights, a name with `mAP-0.378`, an
    import the checkout lacks; looked up by name, config path and project:name."""
    mmap = checkpoint("mmdetection", "faster_rcnn_r50_fpn_1x_coco-person", b"x" * 10,
                      stem="faster_rcnn_r50_fpn_1x_coco-person_bbox_mAP-0.378")  # fmt: skip
    items = [
        checkpoint("mmdetection3d", "pointpillars_a", b"a"),
        checkpoint("mmdetection3d", "pointpillars_b", b"b"),
        checkpoint("mmdetection3d", "centerpoint_c", b"c"),
    ]
    odd = MODEL.format(  # a real metafile quirk: a Config without `configs/` in front
        name="free_anchor_odd",
        collection="pointpillars",
        config="free_anchor/free_anchor_odd.py",
        weights="    Weights: https://download.openmmlab.com/x/free_anchor_odd-0123abcd.pth",
    )
    write_index(tmp_path / "mmdetection3d", items, extra=NO_WEIGHTS + odd)
    write_index(tmp_path / "mmdetection", [mmap, checkpoint("mmdetection", "pointpillars_a", b"z")])
    models = read_index(tmp_path, ["mmdetection", "mmdetection3d"])
    assert len(read_project(tmp_path / "mmdetection3d", "mmdetection3d")) == 5
    by_name = {m.label: m for m in models}
    assert by_name["mmdetection3d:pointpillars_no_weights"].weights is None
    assert (
        by_name["mmdetection:faster_rcnn_r50_fpn_1x_coco-person"].hash_prefix
        == (hashlib.sha256(b"x" * 10).hexdigest()[:8])
    )
    projects = ["mmdetection", "mmdetection3d"]
    assert find(models, "centerpoint_c", projects, "inv").project == "mmdetection3d"
    assert find(models, "configs/centerpoint/centerpoint_c.py", projects, "inv").name == (
        "centerpoint_c"
    )
    assert find(models, "mmdetection:pointpillars_a", projects, "inv").project == "mmdetection"
    for path in (
        "configs/free_anchor/free_anchor_odd.py",
        "mmdetection3d/free_anchor/free_anchor_odd.py",
    ):
        assert find(models, path, projects, "inv").name == "free_anchor_odd"
    with pytest.raises(Exception, match="several projects"):
        find(models, "pointpillars_a", projects, "inv")
    assert {m.name for m in search(models, "POINTPILLARS_")} >= {"pointpillars_a", "pointpillars_b"}


@pytest.mark.skipif(not REAL_MMDET3D.is_dir(), reason="no mirror of the real mmdetection3d")
def test_the_real_mmdetection3d_index(tmp_path: Path) -> None:
    """The real model index: every model read; names with a hash give 8 hex digits."""
    archive = subprocess.run(
        ["git", "-C", str(REAL_MMDET3D), "archive", "HEAD", "model-index.yml", "configs"],
        capture_output=True,
        check=True,
    ).stdout
    (tmp_path / "mmdetection3d").mkdir()
    subprocess.run(["tar", "x"], input=archive, cwd=tmp_path / "mmdetection3d", check=True)
    models = read_project(tmp_path / "mmdetection3d", "mmdetection3d")
    assert len(models) > 100
    car = find(models, "pointpillars_hv_secfpn_8xb6-160e_kitti-3d-car", ["mmdetection3d"], "inv")
    assert car.hash_prefix == "d42d15ed"
    assert all(len(m.hash_prefix) >= 8 for m in models if m.hash_prefix)


@dataclass
class Zoo:
    """A workspace whose sub-projects list checkpoints served by a loopback server."""

    root: Path
    served: Served
    items: list[Checkpoint]

    def final(self, item: Checkpoint) -> Path:
        return self.root / "mmlab_checkpoints" / item.project / "checkpoints" / item.file_name

    def folder(self, item: Checkpoint) -> Path:
        return self.final(item).parent

    def leftovers(self, item: Checkpoint) -> list[str]:
        folder = self.folder(item)
        names = os.listdir(folder) if folder.is_dir() else []
        return [n for n in names if ".part-" in n]


SIZE = 3 << 20


@pytest.fixture
def zoo(workspace: Path) -> Iterator[Zoo]:
    items = [
        checkpoint("mmdetection3d", "pointpillars_car", random_bytes(SIZE)),
        checkpoint("mmdetection3d", "pointpillars_3class", random_bytes(SIZE // 2 + 7)),
        checkpoint(
            "mmdetection",
            "faster_rcnn_person",
            random_bytes(1000),
            stem="faster_rcnn_person_bbox_mAP-0.378",
        ),
    ]
    for project in ("mmdetection", "mmdetection3d"):
        write_index(
            workspace / "mmlab_extension" / project,
            [i for i in items if i.project == project],
            extra=NO_WEIGHTS if project == "mmdetection3d" else "",
        )
    with serving() as served:
        served.files = {item.path: item.data for item in items}
        (workspace / ".env").write_text(f"MMLAB_CHECKPOINT_MIRROR='{served.url}'\n")
        yield Zoo(workspace, served, items)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_fetch_verifies_records_and_a_rerun_makes_no_request(zoo: Zoo) -> None:
    """Files land verified under their URL's name with a record; a second run is instant."""
    car, _three, person = zoo.items
    run = inv(zoo.root, "fetch-checkpoints", "--model", "pointpillars_car", "--model",
              "mmdetection:faster_rcnn_person")  # fmt: skip
    assert run.code == 0, run.err
    for item in (car, person):
        assert zoo.final(item).read_bytes() == item.data
        record = json.loads((zoo.folder(item) / f".{item.file_name}.verified.json").read_text())
        assert record["sha256"] == hashlib.sha256(item.data).hexdigest()
        assert not zoo.leftovers(item)
    assert f"downloaded mmdetection3d:pointpillars_car: {zoo.final(car)}" in run.out
    before = len(zoo.served.requests)
    again = inv(zoo.root, "fetch-checkpoints", "--model", "pointpillars_car", "--model",
                "configs/faster/faster_rcnn_person.py")  # fmt: skip
    assert again.code == 0, again.err
    assert len(zoo.served.requests) == before
    assert "up to date: mmdetection3d:pointpillars_car" in again.out


def test_dry_lists_what_and_from_where_and_changes_nothing(zoo: Zoo) -> None:
    car = zoo.items[0]
    before = snapshot(zoo.root)
    run = inv(zoo.root, "--dry", "fetch-checkpoints", "--model", "pointpillars_car")
    assert run.code == 0, run.err
    assert (
        f"would download mmdetection3d:pointpillars_car from {zoo.served.url}{car.path}" in run.out
    )
    assert snapshot(zoo.root) == before
    assert not zoo.served.requests


def test_search_lists_models_and_their_state_without_network(zoo: Zoo) -> None:
    assert inv(zoo.root, "fetch-checkpoints", "--model", "pointpillars_car").code == 0
    count = len(zoo.served.requests)
    run = inv(zoo.root, "fetch-checkpoints", "--search", "pointpillars")
    assert run.code == 0, run.err
    assert (
        "mmdetection3d:pointpillars_car  configs/pointpillars/pointpillars_car.py  [verified]"
        in run.out
    )
    assert "[missing]" in run.out and "[no checkpoint]" in run.out
    assert len(zoo.served.requests) == count


def test_a_dropped_connection_resumes_and_transfers_only_the_missing_part(zoo: Zoo) -> None:
    car = zoo.items[0]
    zoo.served.faults[car.path] = Faults(drop_at=SIZE // 3, drops=1)
    run = inv(zoo.root, "fetch-checkpoints", "--model", "pointpillars_car")
    assert run.code == 0, run.err
    assert sha(zoo.final(car)) == hashlib.sha256(car.data).hexdigest()
    hits = zoo.served.hits(car.path)
    assert [h.range for h in hits] == [None, f"bytes={SIZE // 3}-"]
    assert zoo.served.sent(car.path) == SIZE  # not a byte twice
    assert not zoo.leftovers(car)


def test_a_partial_file_of_an_earlier_run_is_resumed(zoo: Zoo) -> None:
    car = zoo.items[0]
    folder = zoo.folder(car)
    folder.mkdir(parents=True)
    (folder / f".{car.file_name}.part-0123abcd").write_bytes(car.data[:1000])
    run = inv(zoo.root, "fetch-checkpoints", "--model", "pointpillars_car")
    assert run.code == 0, run.err
    assert zoo.final(car).read_bytes() == car.data
    assert zoo.served.sent(car.path) == SIZE - 1000
    assert not zoo.leftovers(car)


def test_a_server_that_ignores_range_starts_over(zoo: Zoo) -> None:
    car = zoo.items[0]
    folder = zoo.folder(car)
    folder.mkdir(parents=True)
    (folder / f".{car.file_name}.part-0123abcd").write_bytes(car.data[:1000])
    zoo.served.faults[car.path] = Faults(ignore_range=True)
    run = inv(zoo.root, "fetch-checkpoints", "--model", "pointpillars_car")
    assert run.code == 0, run.err
    assert "ignores Range; starting over" in run.out
    assert zoo.final(car).read_bytes() == car.data
    assert not zoo.leftovers(car)


def test_a_complete_partial_gets_416_and_is_verified(zoo: Zoo) -> None:
    person = zoo.items[2]
    folder = zoo.folder(person)
    folder.mkdir(parents=True)
    (folder / f".{person.file_name}.part-0123abcd").write_bytes(person.data)
    run = inv(zoo.root, "fetch-checkpoints", "--model", "faster_rcnn_person")
    assert run.code == 0, run.err
    assert [h.status for h in zoo.served.hits(person.path)] == [416]
    assert zoo.final(person).read_bytes() == person.data


def test_server_errors_and_429_are_retried(zoo: Zoo) -> None:
    """500 then OK; 429 with Retry-After: 1 is waited for."""
    car, three, _ = zoo.items
    zoo.served.faults[car.path] = Faults(statuses=[500, 503])
    zoo.served.faults[three.path] = Faults(statuses=[429], retry_after="1")
    started = time.monotonic()
    run = inv(zoo.root, "fetch-checkpoints", "--model", "pointpillars_car", "--model",
              "pointpillars_3class")  # fmt: skip
    assert run.code == 0, run.err
    assert [h.status for h in zoo.served.hits(car.path)] == [500, 503, 200]
    hits = zoo.served.hits(three.path)
    assert [h.status for h in hits] == [429, 200]
    assert hits[1].at - hits[0].at >= 0.9
    assert time.monotonic() - started < 20


def test_wrong_bytes_are_an_error_naming_both_hashes(zoo: Zoo) -> None:
    car = zoo.items[0]
    wrong = random_bytes(SIZE)
    zoo.served.faults[car.path] = Faults(wrong=wrong)
    run = inv(zoo.root, "fetch-checkpoints", "--model", "pointpillars_car")
    assert_clean_error(run, hashlib.sha256(wrong).hexdigest(), car.file_name[-12:-4])
    assert not zoo.final(car).exists() and not zoo.leftovers(car)
    accepted = inv(zoo.root, "fetch-checkpoints", "--model", "pointpillars_car",
                   "--accept-mismatch")  # fmt: skip
    assert accepted.code == 0, accepted.err
    assert "does not match its name: accepted" in accepted.out
    assert zoo.final(car).read_bytes() == wrong


def test_no_content_length_still_verifies(zoo: Zoo) -> None:
    car = zoo.items[0]
    zoo.served.faults[car.path] = Faults(no_length=True)
    run = inv(zoo.root, "fetch-checkpoints", "--model", "pointpillars_car")
    assert run.code == 0, run.err
    assert zoo.final(car).read_bytes() == car.data


def test_404_is_a_clear_error_naming_the_model_and_url(zoo: Zoo) -> None:
    car = zoo.items[0]
    del zoo.served.files[car.path]
    run = inv(zoo.root, "fetch-checkpoints", "--model", "pointpillars_car")
    assert_clean_error(run, "mmdetection3d:pointpillars_car", f"{car.path}' answered 404")
    assert "MMLAB_CHECKPOINT_MIRROR" in run.err
    assert len(zoo.served.hits(car.path)) == 1  # not retried
    assert not zoo.leftovers(car)
    zoo.served.files[car.path] = car.data
    zoo.served.faults[car.path] = Faults(statuses=[403])
    forbidden = inv(zoo.root, "fetch-checkpoints", "--model", "pointpillars_car")
    assert_clean_error(forbidden, "answered 403")
    assert len(zoo.served.hits(car.path)) == 2  # not retried either


def test_a_file_changed_after_it_was_verified_is_corrupt(zoo: Zoo) -> None:
    """status calls a file that no longer matches its record corrupt (no hashing needed);
    fetch-checkpoints hashes it, refuses it by name and changes nothing."""
    car = zoo.items[0]
    env = {"MMLAB_CHECKPOINTS": "pointpillars_car"}
    assert inv(zoo.root, "fetch-checkpoints", env=env).code == 0
    with open(zoo.final(car), "ab") as handle:
        handle.write(b"\0")
    status = inv(zoo.root, "status", "--json", env=env)
    found = json.loads(status.out)
    assert found["checkpoints"][0]["state"] == "corrupt"
    assert "checkpoint mmdetection3d:pointpillars_car is corrupt" in found["problems"]
    before = snapshot(zoo.root)
    run = inv(zoo.root, "fetch-checkpoints", env=env)
    assert_clean_error(run, "is there, but its sha256", "does not match")
    assert snapshot(zoo.root) == before


def test_a_slow_body_shows_a_heartbeat_and_a_stall_resumes(zoo: Zoo) -> None:
    car, three, _ = zoo.items
    zoo.served.faults[car.path] = Faults(rate=SIZE / 1.5)
    run = inv(
        zoo.root, "fetch-checkpoints", "--model", "pointpillars_car", env={"MMLAB_HEARTBEAT": "0.3"}
    )
    assert run.code == 0, run.err
    assert "… still downloading" in run.out
    assert "[1/1] downloading mmdetection3d:pointpillars_car" in run.out
    # A body that stops coming (each answer stalls after its first MiB): the read timeout
    # ends the wait and the download resumes where it stopped.
    zoo.served.faults[three.path] = Faults(stall_after=1000)
    stalled = inv(zoo.root, "fetch-checkpoints", "--model", "pointpillars_3class",
                  env={"MMLAB_HTTP_TIMEOUT": "0.5"})  # fmt: skip
    assert stalled.code == 0, stalled.err
    assert "connection lost at 1048576 bytes" in stalled.out
    assert zoo.final(three).read_bytes() == three.data
    assert zoo.served.sent(three.path) == len(three.data)


def test_verify_hashes_again_and_finds_a_corrupt_file(zoo: Zoo) -> None:
    car = zoo.items[0]
    assert inv(zoo.root, "fetch-checkpoints", "--model", "pointpillars_car").code == 0
    final = zoo.final(car)
    found = os.stat(final)
    with open(final, "r+b") as handle:
        handle.write(b"\0" * 100)
    os.utime(final, ns=(found.st_atime_ns, found.st_mtime_ns))
    assert "up to date" in inv(zoo.root, "fetch-checkpoints", "--model", "pointpillars_car").out
    run = inv(zoo.root, "fetch-checkpoints", "--model", "pointpillars_car", "--verify")
    assert_clean_error(run, "does not match")
    assert "mv " in run.err


def test_the_variable_status_and_bad_names(zoo: Zoo) -> None:
    """MMLAB_CHECKPOINTS is what is fetched without --model; status shows each one."""
    env = {"MMLAB_CHECKPOINTS": "pointpillars_car mmdetection:faster_rcnn_person"}
    car = zoo.items[0]
    run = inv(zoo.root, "status", "--json", env=env)
    states = {c["model"]: c["state"] for c in json.loads(run.out)["checkpoints"]}
    assert states == {"mmdetection3d:pointpillars_car": "missing",
                      "mmdetection:faster_rcnn_person": "missing"}  # fmt: skip
    folder = zoo.folder(car)
    folder.mkdir(parents=True)
    (folder / f".{car.file_name}.part-0123abcd").write_bytes(car.data[:1000])
    partial = json.loads(inv(zoo.root, "status", "--json", env=env).out)["checkpoints"][0]
    assert (partial["state"], partial["bytes"]) == ("partial", 1000)
    assert inv(zoo.root, "fetch-checkpoints", env=env).code == 0
    found = json.loads(inv(zoo.root, "status", "--json", env=env).out)["checkpoints"]
    assert {c["state"] for c in found} == {"verified"}
    lines = inv(zoo.root, "status", env=env).out
    assert "ok checkpoint mmdetection3d:pointpillars_car: verified" in lines
    for wanted, fragment in [
        ("mmdet:pointpillars_car", "names the project 'mmdet', which is not in MMLAB_PROJECTS"),
        ("nosuch", "no model named 'nosuch'"),
        ("pointpillars_no_weights", "publishes no checkpoint file (no Weights)"),
    ]:
        before = snapshot(zoo.root)
        refused = inv(zoo.root, "fetch-checkpoints", "--model", wanted)
        assert_clean_error(refused, fragment)
        assert snapshot(zoo.root) == before
    bad = inv(zoo.root, "fetch-checkpoints", env={"MMLAB_CHECKPOINTS": "-rf"})
    assert_clean_error(bad, "MMLAB_CHECKPOINTS (from environment) is not a model name")


def test_bootstrap_fetches_the_pinned_checkpoints_last(cloned: Cloned) -> None:
    """With MMLAB_CHECKPOINTS set, bootstrap fetches them as its last step, then is healthy;
    a second bootstrap makes no request."""
    item = checkpoint("mmdetection3d", "pointpillars_boot", random_bytes(5000))
    write_index(cloned.ext / "mmdetection3d", [item])
    with serving() as served:
        served.files[item.path] = item.data
        env = {"MMLAB_CHECKPOINTS": "pointpillars_boot", "MMLAB_CHECKPOINT_MIRROR": served.url}
        dry = inv(cloned.root, "--dry", "bootstrap", env=env)
        assert dry.code == 0, dry.err
        assert f"would download mmdetection3d:pointpillars_boot from {served.url}" in dry.out
        run = inv(cloned.root, "bootstrap", env=env)
        assert run.code == 0, run.err
        final = cloned.ckpt / "mmdetection3d" / "checkpoints" / item.file_name
        assert final.read_bytes() == item.data
        assert (cloned.ext / "mmdetection3d" / "checkpoints" / item.file_name).is_file()
        count = len(served.requests)
        again = inv(cloned.root, "bootstrap", env=env)
        assert again.code == 0, again.err
        assert "fetch-checkpoints: up to date" in again.out
        assert len(served.requests) == count


def test_jobs_download_in_parallel_and_one_failure_lets_the_others_finish(zoo: Zoo) -> None:
    car, three, _person = zoo.items
    for item in (car, three):
        zoo.served.faults[item.path] = Faults(rate=SIZE / 0.8)
    run = inv(zoo.root, "fetch-checkpoints", "--jobs", "2", "--model", "pointpillars_car",
              "--model", "pointpillars_3class")  # fmt: skip
    assert run.code == 0, run.err
    assert zoo.served.peak == 2
    for item in (car, three):
        zoo.final(item).unlink()
    del zoo.served.files[three.path]
    failed = inv(zoo.root, "fetch-checkpoints", "--jobs", "2", "--model", "pointpillars_car",
                 "--model", "pointpillars_3class")  # fmt: skip
    assert_clean_error(failed, "pointpillars_3class", "answered 404")
    assert zoo.final(car).read_bytes() == car.data
    assert not zoo.leftovers(car) and not zoo.leftovers(three)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A self-signed certificate for 127.0.0.1 (key and certificate in one PEM file)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed here")
    with guard_paused():
        folder = tmp_path_factory.mktemp("tls")
    pem = folder / "server.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(folder / "key.pem"), "-out", str(pem)],
        check=True, capture_output=True,
    )  # fmt: skip
    return folder


def test_an_untrusted_certificate_is_an_error_never_ignored(zoo: Zoo, certificate: Path) -> None:
    """TLS is verified: a self-signed server is an error naming the CA-bundle and mirror
    variables; with REQUESTS_CA_BUNDLE pointing at its certificate it works."""
    import ssl

    person = zoo.items[2]
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate / "server.pem", certificate / "key.pem")
    with serving(Served(files=dict(zoo.served.files)), tls=context) as secure:
        env = {"MMLAB_CHECKPOINT_MIRROR": secure.url}
        run = inv(zoo.root, "fetch-checkpoints", "--model", "faster_rcnn_person", env=env)
        assert_clean_error(run, "TLS certificate", secure.url)
        assert "REQUESTS_CA_BUNDLE" in run.err and "--checkpoint-mirror" in run.err
        assert not zoo.final(person).exists() and not zoo.leftovers(person)
        env["REQUESTS_CA_BUNDLE"] = str(certificate / "server.pem")
        trusted = inv(zoo.root, "fetch-checkpoints", "--model", "faster_rcnn_person", env=env)
        assert trusted.code == 0, trusted.err
        assert zoo.final(person).read_bytes() == person.data


def test_too_little_space_is_refused_before_downloading(zoo: Zoo, mounts: list[Path]) -> None:
    car = zoo.items[0]
    small = zoo.root.parent / "small"
    mount(mounts, small, "size=2m")
    env = {"MMLAB_CHECKPOINTS_PATH": str(small)}
    run = inv(zoo.root, "fetch-checkpoints", "--model", "pointpillars_car", env=env)
    assert_clean_error(run, "not enough space", "3.0 MiB needed")
    assert "--checkpoints-path" in run.err
    folder = small / "mmdetection3d" / "checkpoints"
    assert os.listdir(folder) == []  # (the server may have sent what the socket buffers)
    assert len(zoo.served.hits(car.path)) == 1


class _Quiet:
    def start(self, label: str, url: str, total: int | None, have: int) -> None:
        pass

    def advance(self, label: str, count: int) -> None:
        pass

    def note(self, text: str) -> None:
        pass

    def waiting(self, label: str, what: str) -> None:
        pass


@pytest.mark.parametrize("delay", [0.0, 0.3])
def test_without_working_locks_two_downloads_still_end_with_one_verified_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, delay: float
) -> None:
    """Where file locks do nothing (some network filesystems), a second download takes over
    the first one's partial file by renaming it; both end well (the first waits for the
    second to put the same bytes in place), with one verified file and nothing else left."""
    import fcntl
    import threading

    from mmlab_bootstrap.checkpoints.download import download_file
    from mmlab_bootstrap.checkpoints.http import Job, http_session

    monkeypatch.setattr(fcntl, "flock", lambda descriptor, operation: None)
    item = checkpoint("mmdetection3d", "pointpillars_nfs", random_bytes(6 << 20))
    final = tmp_path / "storage" / "mmdetection3d" / "checkpoints" / item.file_name
    outcomes: list[object] = []
    with serving() as served:
        served.files[item.path] = item.data
        served.faults[item.path] = Faults(rate=6 << 20)
        job = Job(item.name, served.url + item.path, final, hash_prefix(item.file_name))

        def run(wait: float) -> None:
            time.sleep(wait)
            try:
                outcomes.append(download_file(http_session(1), job, _Quiet(), threading.Event()))
            except Exception as error:  # (kept to assert on)
                outcomes.append(error)

        threads = [threading.Thread(target=run, args=(wait,)) for wait in (0.0, delay)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        if delay:  # the second one took over the first one's partial file and resumed it
            assert [bool(h.range) for h in served.hits(item.path)] == [False, True]
    assert final.read_bytes() == item.data
    assert sorted(os.listdir(final.parent)) == sorted([final.name, f".{final.name}.verified.json"])
    assert all(getattr(o, "sha256", None) == sha(final) for o in outcomes), outcomes


def test_the_proxy_variables_are_honoured(zoo: Zoo) -> None:
    """HTTP_PROXY (as requests reads it) carries the download: the mirror's host is never
    reached directly (it does not exist); the proxy gets the request for it."""
    person = zoo.items[2]
    env = {
        "MMLAB_CHECKPOINT_MIRROR": "http://mirror.invalid/openmmlab/",
        "HTTP_PROXY": zoo.served.url,
        "NO_PROXY": "",
    }
    zoo.served.files["openmmlab/" + person.path] = person.data
    run = inv(zoo.root, "fetch-checkpoints", "--model", "faster_rcnn_person", env=env)
    assert run.code == 0, run.err
    assert zoo.final(person).read_bytes() == person.data
    assert zoo.served.hosts == ["mirror.invalid"]


def test_leftovers_of_killed_runs_are_removed_once_the_file_is_in_place(zoo: Zoo) -> None:
    """Partial files no live run holds go once the file is verified and in place; a record's
    temporary file a killed run left goes when it is over an hour old; look-alikes stay."""
    car = zoo.items[0]
    folder = zoo.folder(car)
    folder.mkdir(parents=True)
    old = folder / f".{car.file_name}.verified.json.tmp-0123abcd"
    young = folder / f".{car.file_name}.verified.json.tmp-4567abcd"
    other = folder / f".{car.file_name}.part-xyz"
    for path in (old, young, other):
        path.write_text("x")
    (folder / f".{car.file_name}.part-89abcdef").write_bytes(car.data[:1000])  # resumed
    (folder / f".{car.file_name}.part-0000abcd").write_bytes(car.data[:10])  # removed
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    run = inv(zoo.root, "fetch-checkpoints", "--model", "pointpillars_car")
    assert run.code == 0, run.err
    assert zoo.final(car).read_bytes() == car.data
    assert sorted(os.listdir(folder)) == sorted(
        [car.file_name, f".{car.file_name}.verified.json", young.name, other.name]
    )
    assert zoo.served.hits(car.path)[0].range == "bytes=1000-"
