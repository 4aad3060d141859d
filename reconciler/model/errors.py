"""The one error tree of the product.

    ReconcilerError
    ├── InputError            bad input a real cluster would refuse; `simulate` exits 2
    │   ├── LoadError         a file cannot be read or parsed (file, line)
    │   ├── EnvExpansionError an unset ${VAR} (file, line, variable)
    │   └── ValidationError   an object violates its kind's schema (file, object, field)
    ├── Stalled               permanent: retrying will not help until the input changes
    ├── Waiting               not an error of the user: try again after `retry_after` seconds
    ├── Transient             a temporary failure (network, conflict): retry with backoff
    └── BackendError          the cluster refused an operation
        ├── NotFound
        ├── Conflict
        └── Rejected          the API server rejected an object (unknown kind, invalid field)
"""

from __future__ import annotations

from typing import TypeVar

E = TypeVar("E", bound=BaseException)


class ReconcilerError(Exception):
    """Base of every error the product raises on purpose."""


class InputError(ReconcilerError):
    """Input that a real cluster would refuse."""


class LoadError(InputError):
    def __init__(self, path: str, message: str, line: int | None = None) -> None:
        self.path = path
        self.line = line
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {message}")


class EnvExpansionError(LoadError):
    def __init__(self, path: str, line: int, variable: str) -> None:
        self.variable = variable
        super().__init__(
            path,
            f"environment variable ${{{variable}}} is not set "
            f"(set it, or write $${{{variable}}} for a literal)",
            line,
        )


class ValidationError(InputError):
    def __init__(self, source: str, obj: str, field: str, message: str) -> None:
        self.source = source
        self.obj = obj
        self.field = field
        super().__init__(f"{source}: {obj}: field {field}: {message}")


class Stalled(ReconcilerError):
    """A permanent failure: report it and do not retry until the input changes."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


class Waiting(ReconcilerError):
    """Not ready yet; retry after `retry_after` seconds."""

    def __init__(self, reason: str, message: str, retry_after: float = 5.0) -> None:
        self.reason = reason
        self.retry_after = retry_after
        super().__init__(message)


class Transient(ReconcilerError):
    """A temporary failure; retry with backoff."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


class BackendError(ReconcilerError):
    """The cluster refused an operation."""


class NotFound(BackendError):
    pass


class Conflict(BackendError):
    pass


class Rejected(BackendError):
    """The API server rejected an object; `field` names the offending field when known."""

    def __init__(self, message: str, field: str | None = None) -> None:
        self.field = field
        super().__init__(message)


def without_tracebacks(exc: E) -> E:
    """`exc` with its traceback, and those of the exceptions it was raised from or during,
    dropped; returns `exc`.

    An exception kept past its `except` block (in a result, a record) holds its traceback,
    which holds the frames it went through, whose locals hold what keeps the exception: a
    reference cycle, with everything those frames referenced, that only the cycle collector
    frees. A reconcile that ended in an expected error left one per call (issue 14: the
    collector took 29% of a first install of 10,000 workloads). Call it once the traceback has
    been logged or is not wanted."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        current.__traceback__ = None
        pending.extend((current.__cause__, current.__context__))
    return exc
