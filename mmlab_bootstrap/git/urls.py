"""Repository URLs: GitHub's prefix, a mirror's rewrite of it, one normal form, a full commit id."""

from __future__ import annotations

FULL_SHA = r"[0-9a-f]{40}"


def mirrored(url: str, mirror: str) -> str:
    """The URL git fetches for `url` when the mirror rewrites `https://github.com/`."""
    return mirror + url[len(GITHUB) :] if mirror and url.startswith(GITHUB) else url


def normal_url(url: str) -> str:
    """A repository URL without surrounding blanks, trailing slashes or `.git`: the one
    answer to "is this the same repository?" (a clone's origin, a mirror's, the cache key).
    `x`, `x/`, `x.git`, `x.git/` and `x/.git` name one repository (servers answer each the
    same, and a local `x/.git` is the git folder of the repository at `x`)."""
    return url.strip().rstrip("/").removesuffix(".git").rstrip("/")


GITHUB = "https://github.com/"
