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


class AliasConflict(RagdeckError):
    """An alias moved since it was read: a swap, rollback or restore expected it elsewhere and did nothing.

    ``alias``, ``expected`` and ``actual`` (None: the alias did not exist) say where it was expected and
    where it points now.
    """

    def __init__(self, alias: str, expected: str | None, actual: str | None, hint: str = "") -> None:
        super().__init__(alias, expected, actual, hint)
        self.alias, self.expected, self.actual = alias, expected, actual
        self.hint = hint or "reload to see the current version and retry"

    def __str__(self) -> str:
        now = f"now points at '{self.actual}'" if self.actual else "no longer exists"
        was = f"'{self.expected}'" if self.expected else "no alias"
        return f"alias '{self.alias}' {now}, not {was} as expected (someone moved it meanwhile); {self.hint}"
