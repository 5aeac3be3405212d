"""Plotly figures of the fronts (pages and reports): presentation only, no domain rules and no Streamlit.

``evaluation`` (an eval run), ``ab`` (A/B comparisons and the live panel), ``hnsw`` (a sweep), ``slo``
(burn rates and SLIs).
"""
