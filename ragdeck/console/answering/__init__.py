"""Answering: a grounded answer to a question, end to end.

Owns the answer record, prompt and citation markers (``answers``), post-hoc attribution (``attribution``),
the extractive answerer used without an LLM (``extractive``), the answer cache (``cache``), completion costs
(``costs``) and the service that routes, retrieves, generates and falls back (``service``); its ports, the
cache's key-value store and the local LLM server's state, are in ``ports``. Fronts: the Ask page and the RAG
API (``ragdeck.api``).
"""
