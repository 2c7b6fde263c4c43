"""Dataset trees with tiny files, laid out as mmdetection3d's and mmdetection's docs describe,
and info `.pkl` files in the old and the current format (written with `pickle`)."""

from __future__ import annotations

import pickle
from pathlib import Path

KITTI_SPLITS = ("train", "val", "trainval", "test")
KITTI_INFOS = tuple(f"kitti_infos_{split}.pkl" for split in KITTI_SPLITS)


def touch(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def current_infos(dataset: str, count: int = 50) -> dict[str, object]:
    """The format mmdetection3d 1.1+ reads (update_infos_to_v2.py writes it)."""
    return {
        "metainfo": {"categories": {"Car": 0}, "dataset": dataset, "info_version": "1.1"},
        "data_list": [
            {"sample_idx": i, "lidar_points": {"num_pts_feats": 4}} for i in range(count)
        ],
    }


def old_kitti_infos(count: int = 50) -> list[dict[str, object]]:
    """The format mmdetection3d up to 1.0 wrote for KITTI: a list of infos."""
    return [{"image": {"image_idx": i}, "point_cloud": {"num_features": 4}} for i in range(count)]


def old_nuscenes_infos(count: int = 50) -> dict[str, object]:
    """The format mmdetection3d up to 1.0 wrote for nuScenes: `infos` and `metadata`."""
    return {"infos": [{"token": f"{i:032x}"} for i in range(count)],
            "metadata": {"version": "v1.0-trainval"}}  # fmt: skip


def write_pickle(path: Path, value: object, protocol: int = pickle.DEFAULT_PROTOCOL) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(value, protocol=protocol))


def kitti(root: Path, ids: int = 7, *, generated: bool = True, infos: object = None) -> Path:
    """A complete KITTI folder at `root` (`data/kitti`) with `ids` training ids; with
    `generated`, everything `create_data.py kitti` makes (info files in the current format
    unless `infos` is given)."""
    names = [f"{i:06d}" for i in range(ids)]
    for split in KITTI_SPLITS:
        touch(root / "ImageSets" / f"{split}.txt", "".join(f"{n}\n" for n in names).encode())
    for name in names:
        touch(root / "training" / "velodyne" / f"{name}.bin")
        touch(root / "training" / "image_2" / f"{name}.png")
        touch(root / "training" / "calib" / f"{name}.txt")
        touch(root / "training" / "label_2" / f"{name}.txt")
    for part in ("calib", "image_2", "velodyne"):
        touch(root / "testing" / part / "000000.x")
    if generated:
        for name in KITTI_INFOS:
            write_pickle(root / name, current_infos("kitti") if infos is None else infos)
        write_pickle(root / "kitti_dbinfos_train.pkl", {"Car": [{"num_points_in_gt": 3}]})
        touch(root / "kitti_gt_database" / "0_Car_0.bin")
        touch(root / "training" / "velodyne_reduced" / "000000.bin")
        touch(root / "testing" / "velodyne_reduced" / "000000.bin")
    return root


def nuscenes(root: Path, version: str = "v1.0-trainval", *, infos: object = None) -> Path:
    """A complete nuScenes folder at `root` (`data/nuscenes`), with its generated files."""
    for part in ("maps", "samples", "sweeps", version):
        touch(root / part / "a")
    for split in ("train", "val"):
        write_pickle(root / f"nuscenes_infos_{split}.pkl",
                     current_infos("nuscenes") if infos is None else infos)  # fmt: skip
    write_pickle(root / "nuscenes_dbinfos_train.pkl", {"car": []})
    touch(root / "nuscenes_gt_database" / "0_car_0.bin")
    return root


def coco(root: Path) -> Path:
    """A complete COCO folder at `root` (`data/coco`)."""
    for split in ("train", "val"):
        touch(root / "annotations" / f"instances_{split}2017.json", b"{}")
        touch(root / f"{split}2017" / "000000000009.jpg")
    return root


def new_checkout(project: Path) -> Path:
    """A sub-project folder shaped like mmdetection3d 1.1+ (it reads the current format)."""
    touch(project / "tools" / "create_data.py")
    touch(project / "tools" / "dataset_converters" / "update_infos_to_v2.py")
    return project


def old_checkout(project: Path) -> Path:
    """A sub-project folder shaped like mmdetection3d 1.0 (it reads the old format)."""
    touch(project / "tools" / "create_data.py")
    touch(project / "tools" / "data_converter" / "kitti_converter.py")
    return project
