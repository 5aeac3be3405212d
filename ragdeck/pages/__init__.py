"""The console's Streamlit pages, one per task (listed in ``ragdeck/app.py``): thin fronts."""
