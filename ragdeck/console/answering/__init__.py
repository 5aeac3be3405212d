"""Answering: a grounded answer to a question, end to end.

Owns the answer record, prompt and citation markers (``answers``), post-hoc attribution (``attribution``),
the extractive answerer used without an LLM (``extractive``), the answer cache (``cache``), completion costs
(``costs``) and the service that routes, retrieves, generates and falls back (``service``). Fronts: the Ask
page and the RAG API (``ragdeck.api``).
"""
