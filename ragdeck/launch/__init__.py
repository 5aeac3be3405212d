"""The file ``ragdeck console`` hands to ``streamlit run`` (see ``console.py``)."""
