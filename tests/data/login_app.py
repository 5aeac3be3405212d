"""A one-file Streamlit app for AppTest: who is the user (login.py), shown in the main area."""

import streamlit as st

from ragdeck.login import sidebar_identity

user = sidebar_identity()
st.markdown(f"user={user.name} role={user.role.label} source={user.source}")
