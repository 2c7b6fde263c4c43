"""Files and folders, safely: regular-file reads and atomic writes (`files`), the tool's
temporary names and a killed run's leftovers (`temporaries`), verified copies (`copy`,
`transfer`), trees moved into a target (`move`), iterative walks (`walk`), path checks
(`paths`), the workspace lock (`lock`) and the lease lock of a shared repository (`lease`).

Plan/apply: no plan/apply pair: the primitives appliers use.
May import: errors (enforced by `lint-imports`).

The names below are imported on first use (PEP 562), so importing the package costs
nothing at start-up.
"""

from __future__ import annotations

from mmlab_bootstrap import lazy_surface

TYPE_CHECKING = False  # (not typing's: importing typing costs start-up time)

if TYPE_CHECKING:
    from mmlab_bootstrap.fs.files import (
        FileRefused,
        NotRegularFile,
        denied,
        fsync_folder,
        kind,
        make_folders,
        owner_of,
        read_head,
        read_regular,
        replace_atomically,
        room_for,
        share_like_folder,
        shared_with_group,
        writable_problem,
        write_atomically,
    )
    from mmlab_bootstrap.fs.lease import TOOL_FOLDER, LeaseLock, LockRoom, holding
    from mmlab_bootstrap.fs.lock import LOCK_FILE, workspace_lock
    from mmlab_bootstrap.fs.move import move_tree, remove_if_unchanged
    from mmlab_bootstrap.fs.paths import creatable_problem, is_inside, typo_problem
    from mmlab_bootstrap.fs.temporaries import (
        DEAD,
        HELD,
        OLD,
        UNLOCKED,
        Rule,
        hold,
        leftovers,
        pattern_of,
        remove_stale_temporaries,
        sweep,
        temporary_beside,
        temporary_folder,
    )
    from mmlab_bootstrap.fs.transfer import (
        LEFTOVER,
        TRANSFER_TEMPORARY,
        TransferError,
        copy_verified,
        remove_empty_tree,
        remove_leftovers,
        same_file_content,
    )
    from mmlab_bootstrap.fs.walking import walk

__all__ = [
    "DEAD",
    "HELD",
    "LEFTOVER",
    "LOCK_FILE",
    "OLD",
    "TOOL_FOLDER",
    "TRANSFER_TEMPORARY",
    "UNLOCKED",
    "FileRefused",
    "LeaseLock",
    "LockRoom",
    "NotRegularFile",
    "Rule",
    "TransferError",
    "copy_verified",
    "creatable_problem",
    "denied",
    "fsync_folder",
    "hold",
    "holding",
    "is_inside",
    "kind",
    "leftovers",
    "make_folders",
    "move_tree",
    "owner_of",
    "pattern_of",
    "read_head",
    "read_regular",
    "remove_empty_tree",
    "remove_if_unchanged",
    "remove_leftovers",
    "remove_stale_temporaries",
    "replace_atomically",
    "room_for",
    "same_file_content",
    "share_like_folder",
    "shared_with_group",
    "sweep",
    "temporary_beside",
    "temporary_folder",
    "typo_problem",
    "walk",
    "workspace_lock",
    "writable_problem",
    "write_atomically",
]

_WHERE = {
    "DEAD": "temporaries",
    "HELD": "temporaries",
    "LEFTOVER": "transfer",
    "LOCK_FILE": "lock",
    "OLD": "temporaries",
    "TOOL_FOLDER": "lease",
    "TRANSFER_TEMPORARY": "transfer",
    "UNLOCKED": "temporaries",
    "FileRefused": "files",
    "LeaseLock": "lease",
    "LockRoom": "lease",
    "NotRegularFile": "files",
    "Rule": "temporaries",
    "TransferError": "transfer",
    "copy_verified": "transfer",
    "creatable_problem": "paths",
    "denied": "files",
    "fsync_folder": "files",
    "holding": "lease",
    "is_inside": "paths",
    "kind": "files",
    "leftovers": "temporaries",
    "make_folders": "files",
    "move_tree": "move",
    "owner_of": "files",
    "pattern_of": "temporaries",
    "read_head": "files",
    "read_regular": "files",
    "remove_empty_tree": "transfer",
    "remove_if_unchanged": "move",
    "remove_leftovers": "transfer",
    "remove_stale_temporaries": "temporaries",
    "replace_atomically": "files",
    "room_for": "files",
    "same_file_content": "transfer",
    "share_like_folder": "files",
    "shared_with_group": "files",
    "hold": "temporaries",
    "sweep": "temporaries",
    "temporary_beside": "temporaries",
    "temporary_folder": "temporaries",
    "typo_problem": "paths",
    "walk": "walking",
    "workspace_lock": "lock",
    "writable_problem": "files",
    "write_atomically": "files",
}


__getattr__ = lazy_surface(__name__, _WHERE)
