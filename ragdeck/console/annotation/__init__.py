"""Annotation: what annotators do to build gold.

Owns candidate chunks and keyword filtering for a question (``candidates``), LLM-drafted questions that a
person reviews (``drafts``), and inter-annotator agreement (``agreement``). Labels themselves are kept by the
annotation store (``ragdeck.services.annotation_store``); the Annotate and Review pages are its fronts.
"""
