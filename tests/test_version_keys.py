"""Version ranges through `packaging` (issue 22): version_key orders every version the
sub-projects and their wheels name exactly as the hand-written parser it replaced did (kept
here as the oracle), and says "not a version" for the same texts."""

from __future__ import annotations

import itertools
import re

import pytest

from mmlab_bootstrap.pythonenv.version_ranges import Bound, Range, version_key

_VERSION = re.compile(
    r"^v?(\d+(?:\.\d+)*)(?:[-_.]?(a|alpha|b|beta|c|rc|pre|preview)[-_.]?(\d*))?"
    r"(?:[-_.]?post[-_.]?(\d*))?(?:[-_.]?dev[-_.]?(\d*))?(?:\+[\w.]*)?$",
    re.IGNORECASE,
)
_PRE = {"a": 0, "alpha": 0, "b": 1, "beta": 1, "c": 2, "rc": 2, "pre": 2, "preview": 2}


def old_version_key(text: str) -> tuple[int, ...] | None:
    """The hand-written parser version_ranges had before packaging (the oracle)."""
    match = _VERSION.match(text.strip())
    if match is None:
        return None
    release = [int(part) for part in match.group(1).split(".")][:6]
    release += [0] * (6 - len(release))
    if match.group(2):
        pre = (0, _PRE[match.group(2).lower()], int(match.group(3) or 0))
    elif match.group(5) is not None and not match.group(4):
        pre = (-1, 0, 0)
    else:
        pre = (1, 0, 0)
    post = int(match.group(4) or 0) if match.group(4) is not None else -1
    return (*release, *pre, post)


VERSIONS = [
    "1.7.0",
    "1.7.1",
    "2.0.0a1",
    "2.0.0b2",
    "2.0.0c3",
    "2.0.0pre1",
    "2.0.0preview2",
    "2.0.0rc1",
    "2.0.0rc4",
    "2.0.0rc10",
    "2.0.0",
    "2.0",
    "2",
    "v2.0.0",
    " 2.0.0 \n",
    "2.0.0.post1",
    "2.0.0-post2",
    "2.0.0.dev3",
    "2.1",
    "2.1.0",
    "2.1.2+cu118",
    "2.1.2+cpu",
    "2.2.0",
    "2.1.0+pt2.1.0cu121",
    "3.0.0rc0",
    "1.10.0",
    "1.9.99",
    "0.1",
    "1.0.0RC1",
    "1.0.0ALPHA1",
    "10.0",
]
NOT_VERSIONS = ["parrots", "", "latest", "2.x", "=2.0", "2.0.0 rc", "two"]


@pytest.mark.parametrize(("a", "b"), list(itertools.combinations(VERSIONS, 2)))
def test_versions_order_as_the_hand_written_parser_did(a: str, b: str) -> None:
    old_a, old_b = old_version_key(a), old_version_key(b)
    new_a, new_b = version_key(a), version_key(b)
    assert old_a is not None and old_b is not None and new_a is not None and new_b is not None
    assert (old_a < old_b, old_a == old_b) == (new_a < new_b, new_a == new_b)


@pytest.mark.parametrize("text", NOT_VERSIONS)
def test_texts_that_are_no_version_stay_no_version(text: str) -> None:
    assert old_version_key(text) is None and version_key(text) is None


def test_a_release_candidate_is_inside_an_excluding_upper_bound() -> None:
    """As the sub-projects' digit_version checks say (PEP 440's `<2.2.0` would not)."""
    below = Range("mmcv", "mmdet/__init__.py", Bound("2.0.0rc4", True), Bound("2.2.0", False))
    assert below.accepts("2.2.0rc1") is True
    assert below.accepts("2.1.0+cu118") is True
    assert below.accepts("2.2.0") is False and below.accepts("2.0.0rc3") is False
    assert below.accepts("parrots") is None


def test_the_one_difference_dev_numbers_now_count() -> None:
    """The old parser took 2.0.dev0 and 2.0.dev3 for one version; PEP 440 orders them (no
    sub-project names a dev release in its bounds)."""
    assert old_version_key("2.0.dev0") == old_version_key("2.0.dev3")
    assert version_key("2.0.dev0") < version_key("2.0.dev3")  # type: ignore[operator]
    assert version_key("2.0.dev3") < version_key("2.0a1")  # type: ignore[operator]
