"""What ``ragdeck console`` runs: ``ragdeck/app.py``, from a folder without a ``pages/`` directory.

Streamlit lists a ``pages/`` folder next to the main script as pages of their own until the main script's
``st.navigation`` replaces that list; a click in that first moment ran a page without ``app.py``, and so
without the login. Started from here, only ``app.py``'s navigation exists.
"""

import runpy
from pathlib import Path

runpy.run_path(str(Path(__file__).resolve().parent.parent / "app.py"), run_name="__main__")
