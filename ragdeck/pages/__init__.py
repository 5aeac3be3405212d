"""The console's Streamlit pages, one per task (``ragdeck/app.py`` lists them): widgets, domain calls, charts."""
