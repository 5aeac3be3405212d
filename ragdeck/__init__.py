"""ragdeck: the evaluation and operations console for self-hosted RAG stacks."""

__version__ = "0.1.0"
