"""Ingestion: documents in, chunks stored.

Owns the corpus data model (``documents``), loaders for folders, files and BEIR corpora (``loaders``),
PII and secret redaction (``redaction``), Markdown-aware chunking with stable ids (``chunking``), the
pipeline that embeds and upserts behind an alias (``pipeline``) and the shipped demo collection (``demo``).
Front: ``ragdeck ingest`` and the first start of ``ragdeck console``.
"""
