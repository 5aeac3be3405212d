"""Importing a test collection: a corpus, its queries and graded judgements (qrels), in one step.

Owns the collection read from its files (``collection``: documents, queries, judgements, and the rows of
tables mapped to them by field names), readers per format (``readers``: a BEIR folder, TREC topics and
qrels, CSV tables; ``hf``: a Hugging Face dataset through the optional ``datasets`` package) and the import
itself (``build``): the checks that need no embedding, the eval set with document-level graded gold, and a
report of what is odd in the collection (empty documents, queries without judgements, judged documents the
corpus lacks). Building the vector collection is the ingest pipeline's (``console.ingest``); publishing the
eval set is ``console.evalsets``'. Front: ``ragdeck import``.
"""

from ragdeck.console.imports.build import ImportReport, evalset_from, import_collection
from ragdeck.console.imports.collection import FieldMap, Judgement, TestCollection

__all__ = ["FieldMap", "ImportReport", "Judgement", "TestCollection", "evalset_from", "import_collection"]
