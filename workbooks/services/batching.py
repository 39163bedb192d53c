"""The sockets' way in: operations queued per workbook in each server process and committed in batches, in
the order they came, then broadcast."""

from __future__ import annotations

import asyncio
import collections
import logging
import weakref

from channels.db import database_sync_to_async
from django.db import InterfaceError, OperationalError

from workbooks import broadcast
from workbooks.domain.errors import OperationError
from workbooks.domain.values import Operation, SetCells
from workbooks.services.operations import commit_operation
from workbooks.services.outcomes import Applied
from workbooks.services.sets import commit_sets

logger = logging.getLogger(__name__)


def submit_operation(*, workbook_id: int, user, operation: Operation) -> asyncio.Future:
    """The write path for consumers: queues the operation and returns the future of its ``Applied``
    (or its error), committed in the database thread and then broadcast. Operations are committed in
    the order they were submitted, so a socket may submit its next one before the last is done."""
    return _queues().submit(workbook_id, user, operation)


class WorkbookQueues:
    """The operations waiting to be committed, per workbook, in one server process.

    While one commit is in the database thread, the operations arriving meanwhile wait; then the
    ``set`` operations at the head of the queue go together (commit_sets: one transaction and one
    broadcast for all of them), or the one operation of another kind goes alone. A lone edit goes at
    once; under load the batches grow instead of the queue, so the workbook's lock is taken once per
    batch rather than once per edit.
    """

    def __init__(self):
        self.waiting: dict[int, collections.deque] = {}

    def submit(self, workbook_id: int, user, operation: Operation) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        queue = self.waiting.get(workbook_id)
        if queue is None:
            queue = self.waiting[workbook_id] = collections.deque()
            asyncio.create_task(self.run(workbook_id, queue))
        queue.append((user, operation, future))
        return future

    async def run(self, workbook_id: int, queue: collections.deque) -> None:
        try:
            while queue:
                batch = [queue.popleft()]
                if isinstance(batch[0][1], SetCells):
                    cells = len(batch[0][1].cells)
                    while queue and isinstance(queue[0][1], SetCells) and len(batch) < MAX_BATCH:
                        cells += len(queue[0][1].cells)
                        if cells > MAX_BATCH_CELLS:
                            break
                        batch.append(queue.popleft())
                await self.commit(workbook_id, batch)
        finally:
            del self.waiting[workbook_id]

    async def commit(self, workbook_id: int, batch) -> None:
        requests = [(user, operation) for user, operation, _ in batch]
        results = await self.results(workbook_id, requests)
        new = [r.change for r in results if isinstance(r, Applied) and not r.duplicate]
        sent = not new or await broadcast.changes(workbook_id, new)
        for (_, _, future), result in zip(batch, results, strict=True):
            if future.done():  # its socket went away meanwhile
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result if sent or result.duplicate else Applied(result.change, duplicate=False, broadcast=False))

    @staticmethod
    async def results(workbook_id: int, requests) -> list[Applied | Exception]:
        """Each operation's outcome. When the batch's transaction fails while the database is up (data
        it refused, a bug), every operation commits again on its own, so the one at fault fails
        alone and the others, often other people's, are applied. When the database is down, every
        operation of the batch learns it (their sockets close; their clients resend later)."""
        commit = database_sync_to_async(_commit_batch)
        try:
            return await commit(workbook_id, requests)
        except Exception as exc:
            if len(requests) == 1 or isinstance(exc, DATABASE_UNAVAILABLE):
                return [exc] * len(requests)
            logger.warning("workbook %s: a batch of %s operations failed; committing them one by one", workbook_id, len(requests), exc_info=True)
        results: list[Applied | Exception] = []
        for request in requests:
            try:
                results += await commit(workbook_id, [request])
            except Exception as exc:
                if not isinstance(exc, DATABASE_UNAVAILABLE):
                    logger.exception("workbook %s: operation %s failed", workbook_id, request[1].op)
                results.append(exc)
        return results


# The database is not there (down, restarting, the connection lost), as opposed to refusing what one
# operation asked of it.
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError)


def _commit_batch(workbook_id: int, requests) -> list[Applied | OperationError]:
    if isinstance(requests[0][1], SetCells):
        return commit_sets(workbook_id=workbook_id, requests=requests)
    ((user, operation),) = requests
    try:
        return [commit_operation(workbook_id=workbook_id, user=user, operation=operation)]
    except OperationError as exc:
        return [exc]


# Operations per transaction, and their cells (the first operation always goes, whatever its size):
# more wait for the next one. Bounds how long the workbook stays locked, and the parameters of a statement.
MAX_BATCH = 500


MAX_BATCH_CELLS = 10_000


_loop_queues: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _queues() -> WorkbookQueues:
    """This event loop's WorkbookQueues (one per server process; one per test in the tests)."""
    loop = asyncio.get_running_loop()
    queues = _loop_queues.get(loop)
    if queues is None:
        queues = _loop_queues[loop] = WorkbookQueues()
    return queues
