"""Compare & report: Model 1, 2 and 3 side by side, their learning curves overlaid, the races, and a report
to download (the same one `python -m fmnist_core report` writes)."""

import altair as alt
import pandas as pd
import streamlit as st

from fmnist_app import views
from fmnist_app.common import (
    cache_entries,
    damaged_entries,
    dataset_or_stop,
    history_table,
    job_manager,
    link_to_page,
    load_model,
    model_cache,
    plain_text,
    race_summary,
)
from fmnist_core.cli.train_command import command_line
from fmnist_core.display import styled_accuracies
from fmnist_core.models.registry import MODEL_SPECS
from fmnist_core.paths import recorded_sweeps_dir
from fmnist_core.race.summary import load_races
from fmnist_core.report import comparison as report
from fmnist_core.report.commentary import learning_curve_summary
from fmnist_core.store.cache import entries_by_model
from fmnist_core.sweep import report as sweep_report
from fmnist_core.sweep.result import SweepResult, load_sweeps

COLUMN_FORMATS = {
    "first_filters": "%d",
    "parameters": "localized",
    "forward_flops": "compact",
    "epochs": "%d",
    "train_images": "localized",
    "training_seconds": "%.1f s",
    "training_images_per_second": "%,.0f",
    "test_loss": "%.3f",
    "macro_f1": "%.3f",
    "inference_images_per_second": "%,.0f",
    "latency_ms": "%.2f ms",
}
# Read as every view reads an accuracy (display.format_accuracy, through the table's Styler): a column format
# would take precedence over it, and Streamlit's "percent" rounds to '94%' where other views say '93.81%'.
ACCURACY_COLUMNS = ("test_accuracy", "single_view_accuracy")
SWEEP_KEY = "compare_sweep"
COLUMN_HELP = {"single_view_accuracy": report.SINGLE_VIEW_MEANING.capitalize()}


@st.cache_data(show_spinner=False, max_entries=32)
def latency_seconds(entry_id: str, model_sha256: str, _model, _test_images) -> float:
    """Measured once per entry; the checksum in the key makes a re-trained entry count as new."""
    return report.measure_latency(_model, _test_images)


def follow_link(by_model: dict[str, list], sweeps: list[SweepResult]) -> None:
    """A link sets each model's picker (?model1=<entry id>&…) and the sweep (?sweep=<sweep id>)."""
    fields = [
        views.Field(name, f"compare_{name}", views.one_of([entry.entry_id for entry in candidates], f"cached {name}"))
        for name, candidates in by_model.items()
    ]
    sweep_ids = {sweep.sweep_id: index for index, sweep in enumerate(sweeps)}
    views.arrive("compare", [*fields, views.Field(views.SWEEP, SWEEP_KEY, views.one_of(sweep_ids, "sweep"))])


def pick_entries(sweeps: list[SweepResult]) -> dict:
    """One cache entry per registry model (most accurate first in each box); damaged or None where none is usable."""
    entries = cache_entries()
    damaged_entries(entries)
    by_model = entries_by_model(entries)
    if not any(by_model.values()):
        st.info("No trained model yet: train Model 1, 2 and 3 first (the quick preset is the shortest run).", icon="ℹ️")
        link_to_page("pages/train.py", label="Train", icon="🏋️")
        st.stop()
    follow_link(by_model, sweeps)
    usable = {entry.entry_id: entry for candidates in by_model.values() for entry in candidates}
    picked = {}
    for column, (name, candidates) in zip(st.columns(len(by_model)), by_model.items(), strict=True):
        spec = MODEL_SPECS[name]
        heading = f"{spec.title} ({spec.first_filters} first-layer filters)"
        if not candidates:
            column.markdown(f"**{heading}**")
            # The command as plain text: Streamlit's inline code in small print fails axe's contrast check (2.98
            # against 4.5), a code block its contrast and keyboard checks (tests/test_accessibility_browser.py).
            column.caption(f"No usable model — use the Train page or run {plain_text(command_line(name))}")
            continue
        choice = column.selectbox(
            heading,
            [entry.entry_id for entry in candidates],
            format_func=lambda entry_id: usable[entry_id].label,
            key=f"compare_{name}",
        )
        column.caption(usable[choice].provenance.capitalize())
        picked[name] = usable[choice]
    return report.chosen_entries(entries, picked)


def trained(chosen: dict) -> list:
    """The chosen entries that can be used (not the damaged stand-ins, not the untrained models)."""
    return [entry for entry in chosen.values() if entry is not None and entry.ok]


def measure_latencies(chosen: dict) -> dict[str, float] | None:
    """Single-image latency of each chosen model on this machine, or None when the user turns it off."""
    toggle, again = st.columns([4, 1], vertical_alignment="center")
    if not toggle.toggle(
        "Time single-image predictions on this machine",
        value=True,
        key="compare_latency",
        help="Loads each model and takes the median of 50 warm single-image predictions.",
    ):
        return None
    if again.button("Time again", key="compare_retime", help="Timings are kept; measure them afresh."):
        latency_seconds.clear()
    if job_manager().busy():
        st.caption("A training job is running, so these timings are slower than on an idle machine.")
    (_, _), (x_test, _) = dataset_or_stop()
    latencies = {}
    with st.spinner("Timing single-image predictions…"):
        for entry in trained(chosen):
            model = load_model(entry)
            if model is not None:
                latencies[entry.entry_id] = latency_seconds(entry.entry_id, entry.record.model_sha256, model, x_test)
    return latencies


def curves_chart(chosen: dict) -> alt.FacetChart:
    """Loss and accuracy per epoch, one colour per model, dashed for validation."""
    table = pd.concat(
        [history_table(entry.record.history).assign(model=entry.title) for entry in trained(chosen)],
        ignore_index=True,
    )
    return (
        alt.Chart(table)
        .mark_line()
        .encode(
            x=alt.X("epoch:Q", title="Epoch", axis=alt.Axis(tickMinStep=1)),
            y=alt.Y("value:Q", title=None, scale=alt.Scale(zero=False)),
            color=alt.Color("model:N", title="Model"),
            strokeDash=alt.StrokeDash(
                "split:N",
                title=None,
                legend=alt.Legend(symbolType="stroke", symbolStrokeColor="gray", symbolStrokeWidth=2),
                scale=alt.Scale(domain=["train", "validation"], range=[[1, 0], [6, 3]]),
            ),
            tooltip=["model:N", "split:N", "epoch:Q", alt.Tooltip("value:Q", format=".4f")],
        )
        .properties(width=340, height=240)
        .facet(column=alt.Column("metric:N", title=None, sort=["accuracy", "loss"]))
        .resolve_scale(y="independent")
    )


def error_bars_chart(sweep: SweepResult) -> alt.HConcatChart:
    """Per measure: every seed's result as a dot, the mean as a tick, and its 95 % interval as an error bar."""
    summaries, runs = sweep_report.summary_table(sweep), sweep_report.runs_table(sweep)
    panels = []
    for label in sweep_report.MEASURES.values():
        x = alt.X("model:N", title=None)
        y = alt.Y("value:Q", title=label, scale=alt.Scale(zero=False))
        dots = (
            alt.Chart(runs[runs.measure == label])
            .mark_circle(size=45, opacity=0.55)
            .encode(
                x=x,
                y=y,
                color=alt.Color("model:N", legend=None),
                tooltip=["model:N", "seed:Q", alt.Tooltip("value:Q", format=",.2f", title=label)],
            )
        )
        summary = alt.Chart(summaries[summaries.measure == label])
        tooltip = ["model:N", "seeds:Q"] + [
            alt.Tooltip(f"{field}:Q", format=",.2f") for field in ("mean", "low", "high", "standard_deviation")
        ]
        bars = summary.mark_errorbar(ticks=True, thickness=2).encode(
            x=x, y=alt.Y("low:Q", title=label, scale=alt.Scale(zero=False)), y2="high:Q", tooltip=tooltip
        )
        means = summary.mark_tick(size=26, thickness=2, color="black").encode(x=x, y="mean:Q", tooltip=tooltip)
        panels.append(alt.layer(dots, bars, means).properties(width=210, height=240))
    return alt.hconcat(*panels)


def seeds_section(chosen: dict, sweeps: list[SweepResult], problems: list[str]) -> SweepResult | None:
    """The sweep's error bars and verdicts when one was run, else a plain "one seed" note; returns the sweep shown."""
    st.header("🎲 Seeds: is the difference real?")
    for problem in problems:
        st.warning(problem, icon="⚠️")
    if not sweeps:
        st.info(sweep_report.ONE_SEED_NOTE, icon="🎲")
        return None
    if st.session_state.get(SWEEP_KEY) not in range(len(sweeps)):
        suggested = sweep_report.pick_sweep(sweeps, [entry.record.config for entry in trained(chosen)])
        st.session_state[SWEEP_KEY] = sweeps.index(suggested)
    sweep = sweeps[
        st.selectbox(
            "Sweep",
            range(len(sweeps)),
            format_func=lambda index: sweep_report.describe(sweeps[index]),
            key=SWEEP_KEY,
            help="Saved by `python -m fmnist_core sweep`; the one with the table's settings is chosen first.",
        )
    ]
    st.altair_chart(error_bars_chart(sweep))
    st.caption(
        f"Each dot is one seed; the black tick is the mean and the bar its 95 % confidence interval "
        f"(Student t, {sweep.seed_count} seeds). Training times depend on what else the machine was doing."
    )
    for comparison in sweep.comparisons:
        st.markdown(f"- {comparison.verdict}")
    return sweep


def races_section(races: list) -> None:
    st.header("🏁 GPU vs CPU race")
    if not races:
        st.info(
            "No races yet. Race the same training on the GPU and on the CPU cores, or copy a race recorded "
            "on a GPU machine into `recorded_races/`.",
            icon="ℹ️",
        )
        link_to_page("pages/race.py", label="GPU vs CPU race", icon="🏁")
        return
    labels = [f"[{stored.origin}] {stored.label}" for stored in races]
    result = races[st.selectbox("Race", range(len(races)), format_func=labels.__getitem__, key="compare_race")].result
    race_summary(result)
    link_to_page("pages/race.py", label="Replay it on the race page", icon="🏁")


st.title("📊 Compare & report")
st.write(
    "Model 1, 2 and 3 differ only in the width of their first layer. Here they are side by side — accuracy, "
    "size, speed — with a report to hand out."
)

link_slot = st.container()
all_sweeps, sweep_problems = load_sweeps(model_cache().root, recorded_sweeps_dir())
chosen = pick_entries(all_sweeps)
latencies = measure_latencies(chosen)
races = load_races()

st.header("Side by side")
st.dataframe(
    styled_accuracies(report.comparison_table(chosen, latencies), ACCURACY_COLUMNS),
    hide_index=True,
    width="stretch",
    column_order=report.column_order(),
    column_config={
        column: (
            st.column_config.NumberColumn(label, format=COLUMN_FORMATS.get(column), help=COLUMN_HELP.get(column))
            if column in COLUMN_FORMATS or column in ACCURACY_COLUMNS
            else st.column_config.TextColumn(label)
        )
        for column, label in report.COLUMN_LABELS.items()
    },
)
st.caption(
    "Training figures come from the machine that trained each model; latency is measured here and now. "
    "The report below says exactly how each number was measured."
)
sweep = seeds_section(chosen, all_sweeps, sweep_problems)
views.keep_view(
    "compare",
    {
        **{name: st.session_state.get(f"compare_{name}") for name in MODEL_SPECS},
        views.SWEEP: sweep.sweep_id if sweep is not None else None,
    },
    link_slot,
)
result = report.build_report(chosen, command_line, latencies, races, sweep=sweep)

st.header("Learning curves")
st.altair_chart(curves_chart(chosen))
for entry in trained(chosen):
    st.markdown(f"**{entry.title}** — {learning_curve_summary(entry.record.history)}")

races_section(races)

st.header("📄 Report")
st.write(
    "A Markdown hand-out (the models, the table, each model's accuracy and worst confusions, the learning "
    "curves in words, the races, how everything was measured and how to reproduce it) and the table as CSV."
)
markdown_column, csv_column = st.columns(2)
markdown_column.download_button(
    "Download report (Markdown)",
    result.markdown,
    file_name="fmnist-report.md",
    mime="text/markdown",
    on_click="ignore",
    icon=":material/download:",
    key="download_report",
)
csv_column.download_button(
    "Download table (CSV)",
    result.csv,
    file_name="fmnist-models.csv",
    mime="text/csv",
    on_click="ignore",
    icon=":material/table:",
    key="download_csv",
)
with st.expander("Preview the report"):
    st.markdown(result.markdown)
