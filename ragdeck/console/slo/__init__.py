"""Service level objectives: definitions, error budgets, burn rates and alert states (``objectives``), their
evaluation on live data (``live``), and which component to blame (``components``). Front: the SLOs page and
``ragdeck slo``.
"""
