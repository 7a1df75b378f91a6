"""Eval360's Streamlit dashboard (entry: dashboard/app.py)."""
