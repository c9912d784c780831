"""axe-core over every page in Chromium: no critical violation anywhere, and no serious one outside Streamlit's own
widgets (each allowed one listed below with the reason). axe-core comes from npm (`make axe`, part of `make test`).
"""

from __future__ import annotations

import json
import shutil

import pytest

from devtools.accessibility import AXE_MISSING, AXE_SCRIPT
from devtools.browser_support import ARTIFACTS, PAGE_PATHS, VIEWPORT, chromium, open_page, start_server
from tests.conftest import require_real_data

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# Serious violations that come from Streamlit's own markup, not from this app: (rule, a CSS fragment of the node).
STREAMLIT_OWN = {
    # The sidebar's page list is a <ul> whose items Streamlit wraps in extra <div>s.
    ("list", "stSidebarNavItems"): "Streamlit's sidebar navigation",
    ("listitem", "stSidebarNav"): "Streamlit's sidebar navigation",
}
AXE_RUN = "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"


@pytest.fixture(scope="module")
def server(trained_cache_dir, tmp_path_factory):
    require_real_data()
    cache = tmp_path_factory.mktemp("axe") / "cache"
    shutil.copytree(trained_cache_dir, cache)
    running = start_server(cache, ARTIFACTS / "axe-server.log")
    yield running
    running.stop()


def streamlit_own(violation: dict) -> bool:
    """Whether every node of a violation is in one of Streamlit's own widgets listed in STREAMLIT_OWN."""
    targets = [" ".join(map(str, node["target"])) + node.get("html", "") for node in violation["nodes"]]
    return all(
        any(rule == violation["id"] and fragment in target for rule, fragment in STREAMLIT_OWN) for target in targets
    )


def test_no_page_has_a_critical_or_an_app_made_serious_violation(server):
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
