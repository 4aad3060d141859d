"""Why a Runnable could not stamp or report its run, as the `RunTemplateReady` reasons
Cartographer uses.

    RunnableError                      reason (condition RunTemplateReady=False)
    ├── ServiceAccountNotFoundError    ServiceAccountNotFoundError
    ├── RunTemplateNotFoundError       RunTemplateNotFound
    ├── RunStampError                  TemplateStampFailure (also for an unresolvable selector)
    ├── RunRejectedError               StampedObjectRejectedByAPIServer
    ├── ListRunsError                  FailedToListCreatedObjects
    └── OutputPathNotSatisfiedError    OutputPathNotSatisfied
"""

from __future__ import annotations

from reconciler.model.errors import ReconcilerError


class RunnableError(ReconcilerError):
    reason = "UnknownError"

    def __init__(self, message: str) -> None:
        super().__init__(message)


class ServiceAccountNotFoundError(RunnableError):
    reason = "ServiceAccountNotFoundError"


class RunTemplateNotFoundError(RunnableError):
    reason = "RunTemplateNotFound"


class RunStampError(RunnableError):
    reason = "TemplateStampFailure"


class RunRejectedError(RunnableError):
    reason = "StampedObjectRejectedByAPIServer"


class ListRunsError(RunnableError):
    reason = "FailedToListCreatedObjects"


class OutputPathNotSatisfiedError(RunnableError):
    reason = "OutputPathNotSatisfied"
