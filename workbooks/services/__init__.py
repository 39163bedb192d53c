"""Writes. Workbook content changes one way: lock the workbook, check the role, apply, log the change at the
next revision, commit, then broadcast. HTTP views call ``apply_operation``; sockets
``submit_operation``, which queues and batches.

- ``operations``: every operation but ``set``, one at a time (``commit_operation``), and the way in for
  synchronous callers (``apply_operation``: commit, then broadcast).
- ``sets``: group commit of ``set`` operations (``commit_sets``), the hot path.
- ``batching``: the sockets' way in, a queue per workbook and process (``submit_operation``).
- ``lifecycle``: workbooks created and deleted, members given and taken roles.
- ``access``: the workbook locked with the writer's role; staff through the admin site.
- ``store``: the SQL, and nothing else knows it.
"""

from workbooks.services.batching import WorkbookQueues, submit_operation
from workbooks.services.lifecycle import create_workbook, delete_workbook, remove_member, set_member
from workbooks.services.operations import apply_operation, commit_operation
from workbooks.services.outcomes import Applied, Conflict
from workbooks.services.sets import commit_sets

__all__ = [
    "Applied",
    "Conflict",
    "WorkbookQueues",
    "apply_operation",
    "commit_operation",
    "commit_sets",
    "create_workbook",
    "delete_workbook",
    "remove_member",
    "set_member",
    "submit_operation",
]
