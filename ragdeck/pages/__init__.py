"""The console's Streamlit pages, one per task; ``ragdeck/app.py`` lists them. Thin: widgets, domain calls,
charts."""
