"""Ingestion: documents in, chunks stored.

Owns the corpus data model (``documents``), loaders for folders, files and BEIR corpora (``loaders``),
PII and secret redaction (``redaction``), Markdown-aware chunking with stable ids (``chunking``), the
pipeline that embeds and upserts behind an alias (``pipeline``), the in-progress markers that let a retry
clear the partial collection of a killed ingest (``journal``; its port ``IngestJournal`` in ``ports``),
deleting a collection by hand (``cleanup``) and the shipped demo collection (``demo``).
Fronts: ``ragdeck ingest``, ``ragdeck collection delete`` and the first start of ``ragdeck console``.
"""
