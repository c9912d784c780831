"""What the Streamlit pages share: session and visitor identity, widgets, charts, and the Streamlit workarounds
(applied once, visibly, by `streamlit_app.py`). Imports `fmnist_core` and Streamlit; the core never imports this.
"""
