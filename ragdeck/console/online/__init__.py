"""Online: live traffic between policies.

Owns stable canary routing (``routing``), the canary guard that sends users back to control
(``guard``), traffic replay against a RAG API (``replay``) and the live A/B panel with its audited canary
controls (``panel``). Fronts: the Canary page and ``ragdeck replay``.
"""
