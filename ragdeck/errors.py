"""One error hierarchy for ragdeck. Messages say what happened and what to do.

Fronts (CLI, pages) render these as one line; anything else is a bug and keeps its traceback.
"""


class RagdeckError(Exception):
    """Base of every error a user can cause or fix."""


class ConfigError(RagdeckError):
    """A setting is missing, malformed or points at something unusable."""


class InputError(RagdeckError):
    """A file or value the user gave cannot be read; the message names the file, line and field."""


class CollectionNotFound(RagdeckError):
    """A collection or alias does not exist."""


class CollectionExists(RagdeckError):
    """A collection to be created already exists."""


class DimensionMismatch(RagdeckError):
    """The embedder's vector size differs from the collection's."""


class ServiceUnavailable(RagdeckError):
    """A remote component (Qdrant, TEI, ...) did not answer or answered with an error."""


class StoreBusy(RagdeckError):
    """The embedded store is held by another process."""


class PermissionDenied(RagdeckError):
    """The user's role does not allow an action; the message names the role needed and how to get it."""
