"""Retrieval studies: a search space of retrieval knobs tried on tune questions, the best configuration
scored once on held-out test questions against the baseline policy (``study``), with cheap trials that
reuse each question's candidates (``cache``), a recorded split (``split``) and its reports (``report``)."""
