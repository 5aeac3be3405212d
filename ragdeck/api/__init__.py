"""The RAG API service (FastAPI): thin over ``ragdeck.console.answering``; app state holds the adapters."""
