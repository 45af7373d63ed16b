"""Storage errors. Messages name the URI and the reason, never credentials."""

from __future__ import annotations


class StorageError(Exception):
    """Any storage failure; `uri` is the location concerned."""

    def __init__(self, uri: str, reason: str) -> None:
        super().__init__(f"{uri}: {reason}")
        self.uri = uri
        self.reason = reason


class BucketNotFound(StorageError):
    """The bucket or container does not exist."""


class ObjectNotFound(StorageError):
    """No object at this key."""


class AccessDenied(StorageError):
    """The credentials (or workload identity) in use may not do this."""


class TransientError(StorageError):
    """Throttling, a dropped connection or a server error that outlived the retries."""


class IntegrityError(StorageError):
    """What was downloaded does not match the size or checksum the store reports."""
