"""Why a blueprint resource could not be realized, as the condition reasons Cartographer uses."""

from __future__ import annotations

from reconciler.model.conditions import FALSE, UNKNOWN
from reconciler.model.errors import ReconcilerError


class ResourceError(ReconcilerError):
    reason = "UnknownError"
    status = FALSE

    def __init__(self, message: str) -> None:
        super().__init__(message)


class TemplateRetrievalError(ResourceError):
    reason = "TemplateObjectRetrievalFailure"


class TemplateStampError(ResourceError):
    reason = "TemplateStampFailure"


class TemplateRejectedError(ResourceError):
    reason = "TemplateRejectedByAPIServer"


class MissingValueAtPathError(ResourceError):
    reason = "MissingValueAtPath"
    status = UNKNOWN


class ResolveTemplateOptionsError(ResourceError):
    reason = "ResolveTemplateOptionsError"


class TemplateOptionsMatchError(ResourceError):
    reason = "TemplateOptionsMatchError"


class UnknownResourceError(ResourceError):
    reason = "UnknownError"


class DeploymentConditionNotMetError(ResourceError):
    """The deployment has not finished yet (observedMatches/observedCompletion not satisfied)."""

    reason = "ConditionNotMet"
    status = UNKNOWN


class DeploymentFailedConditionMetError(ResourceError):
    reason = "FailedConditionMet"
