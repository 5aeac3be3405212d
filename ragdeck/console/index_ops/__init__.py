"""Index operations on the versions ``{alias}_v{N}`` behind the serving alias, each audited and role-checked.

Owns: what stands behind the alias (``catalog``), the shadow rebuild with its journal, cancel, resume and
cleanup (``rebuild``), the gate of a shadow against the live version (``gate``), the atomic alias swap
(``swap``; every move, swap, rollback or restore, is a compare-and-set of the version the caller expects
live: AliasConflict when it moved), rollback and retention (``rollback``), snapshots (``snapshots``), the
shared records (``records``) and ``IndexOps``, which composes them for the fronts (``operations``; built by
``wiring.build_index_ops``); the port of the index registry is in ``ports``. Fronts: the Index Ops page
and ``ragdeck index``.
"""
