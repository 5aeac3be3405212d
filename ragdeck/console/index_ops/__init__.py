"""Index operations: shadow rebuild, gate, atomic alias swap, rollback, retention and snapshots, audited
(``operations``). Fronts: the Index Ops page and ``ragdeck index``.
"""
