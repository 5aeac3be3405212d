"""Evaluation: scoring a policy over an eval set, and judging what the scores mean.

Owns retrieval metrics equal to ranx's (``metrics``), answer metrics (``answer_metrics``), confidence
intervals and paired tests (``stats``), the eval runner and its runs as background jobs on
``console.jobs`` (``runner``, ``jobs``), the regression gate (``gate``), offline A/B comparison of two runs
(``compare``) and what a run reports (``report``). Fronts: the Evaluate and Compare pages, ``ragdeck eval``
and ``ragdeck compare``.
"""
