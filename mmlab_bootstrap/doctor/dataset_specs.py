"""The datasets doctor knows: their folder under `data/`, what must be in it, what
`create_data.py` makes, and which info format the sub-project's checkout reads.

The layouts are the ones mmdetection3d's and mmdetection's documentation describe (the 1.0
pages `docs/en/datasets/*_det.md` and the 1.1+ pages `docs/en/advanced_guides/datasets/*.md`
give the same folders and files).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mmlab_bootstrap.doctor.pickles import CURRENT, OLD
from mmlab_bootstrap.doctor.scan import Scan

# mmdetection3d 1.1 moved its converters here, with the one that updates old info files.
CONVERTER = "tools/dataset_converters/update_infos_to_v2.py"
OLD_CONVERTERS = "tools/data_converter"  # mmdetection3d up to 1.0: writes the old format


@dataclass(frozen=True)
class Layout:
    """A dataset's folder under `data/`: what must be there (a trailing `/`: a non-empty
    folder), what `create_data.py` makes, and the page of the docs that describes it."""

    name: str
    title: str
    required: tuple[str, ...]
    generated: tuple[str, ...]
    guides: tuple[str, ...]  # the page of each version of the docs, newest first

    def guide(self, project_dir: Path, scan: Scan) -> str:
        """The page of the sub-project's docs (at its checkout) that describes the layout."""
        found = next((g for g in self.guides if scan.is_regular(project_dir / g)), self.guides[0])
        return f"{project_dir.name}/{found}"


KITTI = Layout(
    "kitti",
    "KITTI",
    (
        *(f"ImageSets/{split}.txt" for split in ("train", "val", "trainval", "test")),
        *(f"training/{part}/" for part in ("calib", "image_2", "label_2", "velodyne")),
        *(f"testing/{part}/" for part in ("calib", "image_2", "velodyne")),
    ),
    (
        *(f"kitti_infos_{split}.pkl" for split in ("train", "val", "trainval", "test")),
        "kitti_dbinfos_train.pkl",
        "kitti_gt_database/",
        "training/velodyne_reduced/",
        "testing/velodyne_reduced/",
    ),
    ("docs/en/advanced_guides/datasets/kitti.md", "docs/en/datasets/kitti_det.md"),
)
NUSCENES = Layout(
    "nuscenes",
    "nuScenes",
    ("maps/", "samples/", "sweeps/"),
    (
        "nuscenes_infos_train.pkl",
        "nuscenes_infos_val.pkl",
        "nuscenes_dbinfos_train.pkl",
        "nuscenes_gt_database/",
    ),
    ("docs/en/advanced_guides/datasets/nuscenes.md", "docs/en/datasets/nuscenes_det.md"),
)
COCO = Layout(
    "coco",
    "COCO",
    (
        "annotations/instances_train2017.json",
        "annotations/instances_val2017.json",
        "train2017/",
        "val2017/",
    ),
    (),
    ("docs/en/user_guides/dataset_prepare.md", "docs/en/1_exist_data_model.md"),
)
LAYOUTS = (KITTI, NUSCENES, COCO)
# Per sampled KITTI id, the files of it that must exist.
KITTI_SAMPLES = ("velodyne/{}.bin", "image_2/{}.png", "calib/{}.txt", "label_2/{}.txt")


def create_data_command(
    layout: Layout, folder: Path, project_dir: Path, versions: list[str], scan: Scan
) -> str:
    """The `create_data.py` line (run in the sub-project) that makes a dataset's files."""
    data = f"./data/{folder.name}"
    extra = ""
    if layout is KITTI and scan.is_dir(folder / "training" / "planes"):
        extra = " --with-plane"
    if layout is NUSCENES and versions and "v1.0-trainval" not in versions:
        extra = f" --version {versions[0]}"
    return (
        f"cd {project_dir} && python tools/create_data.py {layout.name} --root-path {data}"
        f" --out-dir {data} --extra-tag {layout.name}{extra}"
    )


def expected_format(project_dir: Path, scan: Scan) -> str:
    """The info format the sub-project's checkout reads: the current one (a dict with
    `metainfo` and `data_list`) from mmdetection3d 1.1, the old one before."""
    if scan.is_regular(project_dir / CONVERTER):
        return CURRENT
    if scan.is_dir(project_dir / OLD_CONVERTERS):
        return OLD
    return CURRENT


def convert_command(layout: Layout, folder: Path, project_dir: Path, part: str) -> str:
    """The line that updates an old info file in place (mmdetection3d 1.1+)."""
    data = f"./data/{folder.name}"
    return (
        f"cd {project_dir} && python {CONVERTER} --dataset {layout.name}"
        f" --pkl-path {data}/{part} --out-dir {data}"
    )
