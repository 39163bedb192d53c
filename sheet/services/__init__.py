"""Writes. Sheet content changes one way: lock the sheet, check the role, apply, log the change at the
next revision, commit, then broadcast. HTTP views call ``apply_operation``; sockets
``submit_operation``, which queues and batches.

- ``operations``: every operation but ``set``, one at a time (``commit_operation``), and the way in for
  synchronous callers (``apply_operation``: commit, then broadcast).
- ``sets``: group commit of ``set`` operations (``commit_sets``), the hot path.
- ``batching``: the sockets' way in, a queue per sheet and process (``submit_operation``).
- ``lifecycle``: sheets created and deleted, members given and taken roles.
- ``access``: the sheet locked with the writer's role; staff through the admin site.
- ``store``: the SQL, and nothing else knows it.
"""

from sheet.services.batching import SheetQueues, submit_operation
from sheet.services.lifecycle import create_sheet, delete_sheet, remove_member, set_member
from sheet.services.operations import apply_operation, commit_operation
from sheet.services.outcomes import Applied, Conflict
from sheet.services.sets import commit_sets

__all__ = [
    "Applied",
    "Conflict",
    "SheetQueues",
    "apply_operation",
    "commit_operation",
    "commit_sets",
    "create_sheet",
    "delete_sheet",
    "remove_member",
    "set_member",
    "submit_operation",
]
