"""The domain: pure Python, testable without Streamlit. Fronts call this; this calls services."""
