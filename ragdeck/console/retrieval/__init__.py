"""Retrieval: from a question to ranked chunks.

Owns the pipeline (dense, lexical or hybrid candidates, then rerank; ``pipeline``), rank fusion
(``fusion``), named policies of retrieval and generation knobs (``policies``), and what a front shows about
the vector store's collections and hits (``collections``); its ports, the reranker and the run-time
policy overrides, are in ``ports``. Fronts: the Stack and Tune pages, ``ragdeck search`` and
``ragdeck collections``.
"""
