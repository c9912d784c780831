"""One figure per quantity: every accuracy reads as `display.format_accuracy` writes it, in every view, and where
two views must differ (a subset, the picture without its mirror) they say why."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from fmnist_core.display import format_accuracy, styled_accuracies
from fmnist_core.report import comparison as report
from fmnist_core.report.commentary import mirror_note, picture_alone_note
from tests.records import make_record

ROOT = Path(__file__).resolve().parent.parent
# An accuracy formatted in place (`{…accuracy…:.1%}`) instead of by format_accuracy.
FORMATTED_IN_PLACE = re.compile(r"\{[^{}]*accuracy[^{}]*:[^{}]*%\}")


def test_an_accuracy_reads_to_a_hundredth_of_a_point():
    assert format_accuracy(0.9381) == "93.81%" and format_accuracy(0.94) == "94.00%"
    assert format_accuracy(None) == format_accuracy(float("nan")) == "—"


def test_a_styled_table_shows_the_formatters_text_and_keeps_the_numbers():
    table = pd.DataFrame({"model": ["Model 1", "Model 2"], "test_accuracy": [0.9381, None], "epochs": [3, 3]})
    styled = styled_accuracies(table, ("test_accuracy", "single_view_accuracy"))
    assert styled.data["test_accuracy"].iloc[0] == 0.9381
    html = styled.to_html()
    assert ">93.81%<" in html and ">—<" in html and ">3<" in html


def test_the_report_and_the_pages_format_accuracies_one_way():
    record = make_record(test_accuracy=0.9381, single_view_accuracy=0.9275)
    assert report._format_cell("test_accuracy", 0.9381) == format_accuracy(0.9381)
    assert format_accuracy(0.9275) in mirror_note(record)
    offenders = [
        f"{path.relative_to(ROOT)}: {match.group(0)}"
        for folder in ("pages", "fmnist_app", "fmnist_core/report", "fmnist_core/store", "fmnist_core/explain")
        for path in sorted((ROOT / folder).rglob("*.py"))
        for match in FORMATTED_IN_PLACE.finditer(path.read_text(encoding="utf-8"))
    ]
    assert not offenders, offenders


def test_explanations_of_a_mirror_averaged_model_say_why_their_confidence_differs_from_predict():
    assert picture_alone_note(make_record(test_accuracy=0.9)) is None  # One answer: Predict and Inside agree.
    note = picture_alone_note(make_record(test_accuracy=0.9381, single_view_accuracy=0.9275))
    assert "mirror image" in note and "picture alone" in note and "Predict" in note
