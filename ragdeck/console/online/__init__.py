"""Online: live traffic between policies.

Owns stable canary routing (``routing``), the canary guard that sends users back to control
(``guard``), traffic replay against a RAG API (``replay``), the live A/B panel with its audited canary
controls (``panel``) and draft policies from studies tried as the canary in one step (``drafts``); its
ports, the shared routing state, the RAG API's admin client and the draft store, are in ``ports``.
Fronts: the Canary page and ``ragdeck replay``.
"""
