"""Opening a tab of a page's lazy tabs (fmnist_app.common.lazy_tabs) in an AppTest run.

AppTest cannot click a tab; a click sets the tabs' state to the tab's label and reruns the page, and so does this.
"""

from __future__ import annotations

DATASET_TABS, PREDICT_TABS = "dataset_tab", "predict_tab"  # The keys the Dataset and Predict pages give them.


def open_tab(app, key: str, label: str):
    """Open the one tab whose label contains `label`, rerun, and check the page raised nothing; returns the app."""
    [app.session_state[key]] = [tab.label for tab in app.tabs if label in tab.label]
    app.run()
    assert not app.exception, [error.value for error in app.exception]
    return app
