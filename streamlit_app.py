"""Fashion-MNIST CNN Explorer: the router. Each page lives in pages/; start with `streamlit run streamlit_app.py`."""

import streamlit as st

from pages.visitor import visitor_id

st.set_page_config(page_title="Fashion-MNIST CNN Explorer", page_icon="👕", layout="wide")
# On every run, because page links drop it: the address carries this browser's visitor id, so a reload still
# finds its training request in the queue.
visitor_id()

PAGES = {
    "Explore": [
        st.Page("pages/home.py", title="Home", icon="🏠", default=True),
        st.Page("pages/dataset.py", title="Dataset", icon="🖼️"),
    ],
    "Models": [
        st.Page("pages/train.py", title="Train", icon="🏋️"),
        st.Page("pages/evaluate.py", title="Evaluate", icon="🔍"),
        st.Page("pages/compare.py", title="Compare & report", icon="📊"),
        st.Page("pages/inside.py", title="Inside the model", icon="🔬"),
    ],
    "Try it": [
        st.Page("pages/race.py", title="GPU vs CPU race", icon="🏁"),
        st.Page("pages/predict.py", title="Predict a sketch", icon="✏️"),
    ],
}

st.navigation(PAGES).run()
