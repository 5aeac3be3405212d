"""Eval sets: the gold that evaluations score against.

Owns the record and its checks and content hash (``model``), reading and writing JSONL, CSV and TREC qrels
(``io``), where the console finds set files (``files``), publishing versions from the annotation store
(``publish``), and mapping gold across chunkings by source span (``gold_mapping``). Front: the Publish page
and ``ragdeck evalset``.
"""
