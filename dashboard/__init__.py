"""Streamlit dashboard: a thin face over :mod:`pipeline` (run ``streamlit run dashboard/app.py``)."""
