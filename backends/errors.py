"""Errors raised by the backends: permanent ones derive from ValueError, transient ones from RuntimeError."""

from __future__ import annotations


class BackendError(RuntimeError):
    """Base class for failures talking to an external system."""


class TransientBackendError(BackendError):
    """A failure worth retrying (a timeout, a 5xx, a connection refused)."""

    retryable = True


class SettingsError(ValueError):
    """A missing or malformed setting; the message names it."""


class NotFoundError(LookupError):
    """The thing asked for does not exist (a job, a model version, a blob)."""


class TrainingJobFailed(BackendError):
    """The training job ended in failure; carries the job id and the tail of its log."""

    def __init__(self, job_id: str, message: str, log_tail: str = "") -> None:
        super().__init__(f"training job {job_id} failed: {message}")
        self.job_id = job_id
        self.log_tail = log_tail


class DeploymentFailed(BackendError):
    """A model could not be deployed to an endpoint."""


class BlobChangedError(ValueError):
    #: another writer got there first: reading again and retrying resolves it
    retryable = True

    """A conditional write (``if_match``) found the blob changed by someone else: re-read and retry."""


class BlobExistsError(ValueError):
    """A create-only write (``overwrite=False``) found the blob already there."""


class InvalidMetadataError(ValueError):
    """A blob metadata key is not a valid identifier (values are encoded, never rejected)."""


class StageTransitionError(ValueError):
    """A model version's stage may not move from its current stage to the one asked (``ports.STAGE_TRANSITIONS``)."""

    def __init__(self, name: str, version: str, current: str, wanted: str) -> None:
        super().__init__(f"model {name} version {version}: stage cannot move from {current!r} to {wanted!r}")
        self.current = current
        self.wanted = wanted


class OperationRefused(ValueError):
    """An endpoint change that must not happen as asked (traffic to a deployment that is not ready, removing the
    slot that serves); retrying cannot help."""


class BatchInputChanged(ValueError):
    """The file a batch run scores was replaced while it ran: the new version has a run of its own (no retry)."""

    retryable = False
