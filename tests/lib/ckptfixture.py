"""Model indexes in the real OpenMMLab format, and checkpoint files whose names carry the
first 8 hex digits of their sha256, for the fetch-checkpoints tests."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

BASE = "https://download.openmmlab.com/"


@dataclass(frozen=True)
class Checkpoint:
    """A model and the bytes its checkpoint holds."""

    project: str
    name: str
    config: str
    file_name: str
    data: bytes
    path: str  # its URL's path under the download host

    @property
    def url(self) -> str:
        return BASE + self.path


def checkpoint(
    project: str, name: str, data: bytes, *, stem: str = "", good: bool = True
) -> Checkpoint:
    digest = hashlib.sha256(data).hexdigest()[:8]
    if not good:
        digest = "%08x" % (int(digest, 16) ^ 0xFFFF)
    file_name = f"{stem or name}_20220331_134606-{digest}.pth"
    collection = name.split("_")[0]
    config = f"configs/{collection}/{name}.py"
    return Checkpoint(
        project,
        name,
        config,
        file_name,
        data,
        f"{project}/v1.0.0_models/{collection}/{name}/{file_name}",
    )


METAFILE_HEAD = """Collections:
  - Name: {collection}
    Metadata:
      Training Techniques:
        - AdamW
    Paper:
      URL: https://arxiv.org/abs/1812.05784
      Title: 'A paper: with a colon'
    README: configs/{collection}/README.md

Models:
"""

MODEL = """  - Name: {name}
    In Collection: {collection}
    Config: {config}
    Metadata:
      Training Data: KITTI
      Training Memory (GB): 5.4
    Results:
      - Task: 3D Object Detection
        Dataset: KITTI
        Metrics:
          AP: 77.6
{weights}
"""


def write_index(project_dir: Path, checkpoints: list[Checkpoint], extra: str = "") -> None:
    """`model-index.yml` importing one `configs/<collection>/metafile.yml` per collection
    (several models each); `extra` is added to the first metafile (e.g. a model without
    Weights)."""
    by_collection: dict[str, list[Checkpoint]] = {}
    for item in checkpoints:
        by_collection.setdefault(item.config.split("/")[1], []).append(item)
    imports = []
    for number, (collection, items) in enumerate(by_collection.items()):
        folder = project_dir / "configs" / collection
        folder.mkdir(parents=True, exist_ok=True)
        text = METAFILE_HEAD.format(collection=collection)
        for item in items:
            text += MODEL.format(
                name=item.name,
                collection=collection,
                config=item.config,
                weights=f"    Weights: {item.url}",
            )
        if number == 0:
            text += extra
        (folder / "metafile.yml").write_text(text)
        imports.append(f"  - configs/{collection}/metafile.yml")
    imports.append("  - configs/not_checked_out/metafile.yml")
    (project_dir / "model-index.yml").write_text("Import:\n" + "\n".join(imports) + "\n")


NO_WEIGHTS = MODEL.format(
    name="pointpillars_no_weights", collection="pointpillars", config="configs/x.py", weights=""
)


def random_bytes(size: int, seed: int = 0) -> bytes:
    """Bytes that do not compress (os.urandom is fine: the names carry their hash)."""
    del seed
    return os.urandom(size)
