"""Online: live traffic between policies.

Owns stable canary routing (``routing``), the canary guard that sends users back to control
(``guard``), traffic replay against a RAG API (``replay``) and the live A/B panel with its audited canary
controls (``panel``); its ports, the shared routing state and the RAG API's admin client, are in
``ports``. Fronts: the Canary page and ``ragdeck replay``.
"""
