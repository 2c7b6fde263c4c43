"""The shared git cache: its repositories, bringing a commit in and lending it to a
workspace (`store`), the superproject cloned through it (`superproject`),
share-mode repositories (`borrowing`: their problems and the refills and dissociations
`clone` plans), their applier (`refill`), and git's object files (`objectfiles`).

Plan/apply: `borrowing` plans, `refill` applies.
May import: run, git, output, fs, errors (enforced by `lint-imports`).

The names below are imported on first use (PEP 562), so importing the package costs
nothing at start-up.
"""

from __future__ import annotations

from mmlab_bootstrap import lazy_surface

TYPE_CHECKING = False  # (not typing's: importing typing costs start-up time)

if TYPE_CHECKING:
    from mmlab_bootstrap.gitcache.borrowing import (
        Borrower,
        Refill,
        borrowing_problems,
        plan_dissociations,
        plan_refills,
    )
    from mmlab_bootstrap.gitcache.refill import repair_borrowing
    from mmlab_bootstrap.gitcache.store import GitCache, cache_for
    from mmlab_bootstrap.gitcache.superproject import (
        clone_through_cache,
        describe,
        fetch_through_cache,
    )

__all__ = [
    "Borrower",
    "GitCache",
    "Refill",
    "borrowing_problems",
    "cache_for",
    "clone_through_cache",
    "describe",
    "fetch_through_cache",
    "plan_dissociations",
    "plan_refills",
    "repair_borrowing",
]

_WHERE = {
    "Borrower": "borrowing",
    "GitCache": "store",
    "Refill": "borrowing",
    "borrowing_problems": "borrowing",
    "cache_for": "store",
    "clone_through_cache": "superproject",
    "describe": "superproject",
    "fetch_through_cache": "superproject",
    "plan_dissociations": "borrowing",
    "plan_refills": "borrowing",
    "repair_borrowing": "refill",
}


__getattr__ = lazy_surface(__name__, _WHERE)
