"""Fashion-MNIST CNN Explorer: the router. Each page lives in pages/; start with `streamlit run streamlit_app.py`."""

import streamlit as st

from fmnist_app import streamlit_fixes
from fmnist_app.first_imports import import_first

streamlit_fixes.apply()  # Once per server: a page run finished under load reaches the browser (see the module).
import_first("fmnist_app.visitor")  # One session at a time the first time: see fmnist_app/first_imports.py.
from fmnist_app.visitor import keep_visitor_in_browser  # noqa: E402

st.set_page_config(page_title="Fashion-MNIST CNN Explorer", page_icon="👕", layout="wide")
# On every run: this browser's visitor id lives in its cookie, not in the address, so a reload still finds its
# training request in the queue and a shared address grants nothing.
keep_visitor_in_browser()

SCRIPTS: dict[str, str] = {}  # Page address → its script, for import_first.


def page(script: str, title: str, icon: str, **options):
    chosen = st.Page(script, title=title, icon=icon, **options)
    SCRIPTS[chosen.url_path] = script
    return chosen


PAGES = {
    "Explore": [
        page("pages/home.py", title="Home", icon="🏠", default=True),
        page("pages/dataset.py", title="Dataset", icon="🖼️"),
    ],
    "Models": [
        page("pages/train.py", title="Train", icon="🏋️"),
        page("pages/evaluate.py", title="Evaluate", icon="🔍"),
        page("pages/compare.py", title="Compare & report", icon="📊"),
        page("pages/inside.py", title="Inside the model", icon="🔬"),
    ],
    "Try it": [
        page("pages/race.py", title="GPU vs CPU race", icon="🏁"),
        page("pages/predict.py", title="Predict a sketch", icon="✏️"),
        page("pages/fool.py", title="Fool the model", icon="🎭"),
    ],
}

current = st.navigation(PAGES)
import_first(SCRIPTS[current.url_path])
current.run()
