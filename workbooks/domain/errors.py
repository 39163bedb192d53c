"""The ways an operation can be refused. Each carries the contract's error code."""


class OperationError(Exception):
    code = "invalid"

    def __init__(self, message):
        super().__init__(message)
        self.message = message


class Invalid(OperationError):
    code = "invalid"


class Forbidden(OperationError):
    code = "forbidden"


class NotFound(OperationError):
    code = "not_found"


class TooLarge(OperationError):
    code = "too_large"


class RateLimited(OperationError):
    code = "rate_limited"


class HistoryTruncated(OperationError):
    """What was asked for needs revisions below the history floor (or more changes than a reply
    holds): the client needs a fresh snapshot."""

    code = "history_truncated"


class Conflict(OperationError):
    """The request contradicts the state it meets: nothing to undo, the owner's own role."""

    code = "conflict"


# Each error by its code (to give a remembered refusal again).
ERRORS = {error.code: error for error in (Invalid, Forbidden, NotFound, TooLarge, RateLimited, HistoryTruncated, Conflict)}
