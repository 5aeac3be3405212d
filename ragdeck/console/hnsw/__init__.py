"""HNSW tuning: what m, ef_construct and search-time ef cost and buy on one collection (``sweep``), and
applying a choice. Fronts: the Tune page and ``ragdeck hnsw``.
"""
