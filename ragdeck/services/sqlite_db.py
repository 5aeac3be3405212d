"""Short-lived SQLite connections to the shared state database (WAL), with errors that say what to do.

Each call opens its own connection, so one object is safe across threads and processes. Writes take the
write lock up front (``BEGIN IMMEDIATE``) and commit with ``synchronous=FULL`` (a write that returned is on
disk) unless the caller asks for ``durable=False``. A lock held past the busy timeout raises
``StoreBusy``; an unusable file raises ``ServiceUnavailable``.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from ragdeck.errors import ServiceUnavailable, StoreBusy

_LOCK_CODES = (5, 6)  # SQLITE_BUSY, SQLITE_LOCKED (primary result codes)


class SqliteFile:
    """One SQLite file used by a named component (the name goes into every error message)."""

    def __init__(self, path: Path | str, component: str, *, busy_timeout_s: float = 10.0) -> None:
        self.path = Path(path)
        self.component = component
        self.busy_timeout_s = busy_timeout_s
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise self.unavailable(exc) from exc
        with self.connect() as db:
            mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        # Kept open for the object's life: closing the last connection to a WAL database checkpoints and
        # syncs it (measured 1.6 ms per short-lived call), which this makes the automatic checkpoint's job.
        self._anchor = sqlite3.connect(self.path, check_same_thread=False)
        self._anchor.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()  # opens the file and its WAL
        if str(mode).lower() != "wal":
            raise ServiceUnavailable(
                f"{component} {self.path} cannot use WAL mode (got {mode!r}): put the data directory "
                "(RAGDECK_DATA_DIR) on a local file system"
            )

    def unavailable(self, exc: Exception) -> ServiceUnavailable:
        """The error for a file that cannot be opened or read."""
        return ServiceUnavailable(
            f"{self.component} {self.path} cannot be used ({exc}): check that the data directory "
            "(RAGDECK_DATA_DIR) exists, is writable and is on a local file system"
        )

    def busy(self, exc: Exception) -> StoreBusy:
        """The error for a write lock held by someone else past the busy timeout."""
        return StoreBusy(
            f"{self.component} {self.path} stayed locked by another writer for more than "
            f"{self.busy_timeout_s:g} s ({exc}): nothing was saved; retry, and if it persists look for a "
            "process holding the file open in a transaction"
        )

    @contextlib.contextmanager
    def connect(
        self, write: bool = False, read_tx: bool = False, *, durable: bool = True
    ) -> Iterator[sqlite3.Connection]:
        """A connection; ``write``: in BEGIN IMMEDIATE with synchronous=FULL (``durable=False``: NORMAL,
        which in WAL mode survives a killed process but not a power cut); ``read_tx``: one snapshot."""
        try:
            db = sqlite3.connect(self.path, timeout=self.busy_timeout_s, isolation_level=None)
        except sqlite3.Error as exc:
            raise self.unavailable(exc) from exc
        try:
            if write:
                db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
                db.execute("BEGIN IMMEDIATE")
            elif read_tx:
                db.execute("BEGIN")
            yield db
            if db.in_transaction:
                db.execute("COMMIT")
        except sqlite3.Error as exc:
            if db.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
            if isinstance(exc, sqlite3.OperationalError) and (exc.sqlite_errorcode & 0xFF) in _LOCK_CODES:
                raise self.busy(exc) from exc
            raise self.unavailable(exc) from exc
        except BaseException:
            if db.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
            raise
        finally:
            db.close()
