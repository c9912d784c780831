"""axe-core over every page in Chromium: no critical violation anywhere, and no serious one outside Streamlit's own
widgets (each allowed one listed below with the reason). axe-core comes from npm (`make axe`, part of `make test`).
"""

from __future__ import annotations

import json

import pytest

from devtools.accessibility import AXE_MISSING, AXE_SCRIPT
from devtools.browser_support import ARTIFACTS, PAGE_PATHS, VIEWPORT, chromium, open_page
from tests.test_browser import server  # noqa: F401  (one server with a tiny trained model, as the browser tests)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# Serious violations that come from Streamlit's own markup, not from this app: (rule, the data-testid of the
# Streamlit widget the node is in) → why it is not ours to fix.
STREAMLIT_OWN = {
    ("list", "stSidebarNavItems"): "Streamlit's sidebar page list puts <div>s between its <ul> and its <li>s",
    ("listitem", "stSidebarNavItems"): "the same list, seen from its items",
}
# axe's violations, each node with the data-testids of itself and its ancestors (which Streamlit widget it is in).
AXE_RUN = """async () => {
    const violations = (await axe.run(document, {resultTypes: ['violations']})).violations;
    for (const violation of violations) {
        for (const node of violation.nodes) {
            let element = document.querySelector(node.target[0]);
            node.within = [];
            for (; element; element = element.parentElement) {
                if (element.dataset && element.dataset.testid) node.within.push(element.dataset.testid);
            }
        }
    }
    return violations;
}"""


def streamlit_own(violation: dict) -> bool:
    """Whether every node of a violation is in one of Streamlit's own widgets listed in STREAMLIT_OWN."""
    return all(
        any(rule == violation["id"] and widget in node["within"] for rule, widget in STREAMLIT_OWN)
        for node in violation["nodes"]
    )


def test_no_page_has_a_critical_or_an_app_made_serious_violation(server):  # noqa: F811
    assert AXE_SCRIPT.is_file(), AXE_MISSING
    found = {}
    with chromium() as browser:
        page = browser.new_context(viewport=VIEWPORT).new_page()
        for path in PAGE_PATHS:
            open_page(page, server, path)
            page.add_script_tag(path=str(AXE_SCRIPT))
            violations = page.evaluate(AXE_RUN)
            found[path or "home"] = violations
    (ARTIFACTS / "axe.json").write_text(json.dumps(found, indent=1), encoding="utf-8")
    failing = [
        f"{page_name}: {violation['impact']} {violation['id']} ({violation['help']}) at "
        + "; ".join(" ".join(map(str, node["target"])) for node in violation["nodes"][:3])
        for page_name, violations in found.items()
        for violation in violations
        if violation["impact"] == "critical" or (violation["impact"] == "serious" and not streamlit_own(violation))
    ]
    assert not failing, "\n".join(failing)
