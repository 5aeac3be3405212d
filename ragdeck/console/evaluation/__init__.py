"""Evaluation: scoring a policy over an eval set, and judging what the scores mean.

Owns retrieval metrics equal to ranx's (``metrics``), answer metrics (``answer_metrics``), confidence
intervals and paired tests (``stats``), the eval runner (``runner``: what a run evaluates in ``plan``, the
set made ready for a collection in ``prepare``, gold the collection lacks in ``missing``, how deep a query is
retrieved to fill k documents in ``depth``, a run's summary in ``summary``), eval runs as background
jobs on ``console.jobs`` (``jobs``), the regression gate (``gate``),
offline A/B comparison of two runs (``compare``), what a run reports (``report``) and a run as a file
(``export``); its ports, the eval
run store and the answer judge, are in ``ports``. Fronts: the Evaluate
and Compare pages, ``ragdeck eval`` and ``ragdeck compare``.
"""
