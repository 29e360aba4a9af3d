"""The evaluation's report.html: one self-contained page, figures embedded as PNG.

Readable offline: no script, no stylesheet or font from the network; every figure
is a ``data:image/png;base64`` image drawn with matplotlib's Agg backend. Text from
the inputs (county names) reaches the page HTML-escaped.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import numpy as np
import pandas as pd

from coverage.files import atomic_output
from coverage.layout import ALL_OPERATORS
from coverage.schema import TECH_BY_ID

_STYLE = """body{font-family:sans-serif;margin:1.5em;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #bbb;padding:2px 6px;text-align:right}
th{background:#eee}td:first-child,th:first-child{text-align:left}img{max-width:100%}
.note{color:#555;font-size:90%}"""


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _figures(bins: pd.DataFrame, tech: str) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    used = bins[bins["enough_samples"] & (bins["tech"] == tech) & np.isfinite(bins["error_db"])]
    if used.empty:
        return []
    error = used["error_db"].to_numpy()
    figures = []
    fig, ax = plt.subplots(figsize=(5, 3.4))
    ax.hist(error, bins=np.arange(np.floor(error.min()) - 1, np.ceil(error.max()) + 2, 1.0), color="#4878a8")
    ax.axvline(0, color="k", lw=0.8)
    ax.set_xlabel("error = predicted − measured (dB)")
    ax.set_ylabel("bins")
    ax.set_title(f"Error histogram (mean {error.mean():.2f} dB, σ {error.std():.2f} dB)")
    figures.append(("Error histogram", _png(fig)))

    fig, ax = plt.subplots(figsize=(5, 3.4))
    km = used["distance_m"].to_numpy() / 1000.0
    ok = np.isfinite(km) & (km > 0)
    ax.scatter(np.log10(km[ok]), error[ok], s=4, alpha=0.4, color="#4878a8")
    if ok.sum() >= 2:
        slope, intercept = np.polyfit(np.log10(km[ok]), error[ok], 1)
        xs = np.array([np.log10(km[ok]).min(), np.log10(km[ok]).max()])
        ax.plot(xs, intercept + slope * xs, color="#c44", label=f"fit: {slope:.1f} dB/decade")
        ax.legend()
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xlabel("log10(distance to the nearest site / 1 km)")
    ax.set_ylabel("error (dB)")
    ax.set_title("Error against log-distance")
    figures.append(("Error against log-distance", _png(fig)))

    fig, ax = plt.subplots(figsize=(4.2, 4.2))
    measured, predicted = used["measured_dbm"].to_numpy(), used["predicted_dbm"].to_numpy()
    ax.scatter(measured, predicted, s=4, alpha=0.4, color="#4878a8")
    low, high = float(min(measured.min(), predicted.min())), float(max(measured.max(), predicted.max()))
    ax.plot([low, high], [low, high], color="k", lw=0.8)
    threshold = used["threshold_dbm"].median()
    if np.isfinite(threshold):
        ax.axvline(threshold, color="#c44", lw=0.6, ls="--")
        ax.axhline(threshold, color="#c44", lw=0.6, ls="--")
    ax.set_xlabel("measured (dBm)")
    ax.set_ylabel("predicted (dBm)")
    ax.set_title("Predicted against measured")
    figures.append(("Predicted against measured", _png(fig)))

    by_county = used[used["county_code"] != ""].groupby("county_code")["error_db"].mean()
    fig, ax = plt.subplots(figsize=(5, 4))
    if len(by_county):
        points = ax.scatter(used["x_m"] / 1000.0, used["y_m"] / 1000.0, c=used["error_db"], s=3,
                            cmap="RdBu_r", vmin=-15, vmax=15)
        for code, mean in by_county.items():
            where = used[used["county_code"] == code]
            ax.annotate(f"{code}\n{mean:+.1f} dB", (where["x_m"].median() / 1000.0, where["y_m"].median() / 1000.0),
                        ha="center", fontsize=7, bbox={"fc": "white", "alpha": 0.7, "lw": 0})
        fig.colorbar(points, ax=ax, label="error (dB)")
    else:
        ax.scatter(used["x_m"] / 1000.0, used["y_m"] / 1000.0, c=used["error_db"], s=3, cmap="RdBu_r", vmin=-15,
                   vmax=15)
    ax.set_aspect("equal")
    ax.set_xlabel("x (km, China Albers)")
    ax.set_ylabel("y (km)")
    ax.set_title("Error by county (bins, mean per county code)")
    figures.append(("Error by county", _png(fig)))
    return figures


def _table(frame: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape('' if pd.isna(v) else str(v))}</td>" for v in row) + "</tr>"
                   for row in frame.itertuples(index=False))
    return f"<table><tr>{head}</tr>{body}</table>"


def write_report(path: str | Path, evaluation, run_name: str = "") -> Path:
    """Write report.html for an :class:`~coverage.measure.evaluate.Evaluation`, atomically."""
    bins, summary = evaluation.bins, evaluation.summary
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>Evaluation {html.escape(run_name)}"
             f"</title><style>{_STYLE}</style></head><body>",
             f"<h1>Prediction against measurements: {html.escape(run_name)}</h1>",
             f"<p>{len(bins)} bins ({int(bins['enough_samples'].sum())} with enough samples). "
             "Error = predicted − measured; precision = share of bins predicted covered that the measurement "
             "finds covered; recall = share of bins measured covered that the prediction covers.</p>"]
    techs = [t for t in dict.fromkeys(summary["tech"])]
    if not techs:
        parts.append("<p>No bin with enough samples: nothing to compare.</p>")
    for tech in techs:
        label = TECH_BY_ID[tech].label if tech in TECH_BY_ID else tech
        parts.append(f"<h2>{html.escape(label)}</h2>")
        rows = summary[(summary["tech"] == tech) & (summary["group"] == "all")]
        parts.append(_table(rows))
        confusion = evaluation.confusion
        parts.append("<h3>Confusion matrix at the coverage threshold (±3 dB uncertain), all operators</h3>")
        parts.append(_table(confusion[(confusion["tech"] == tech) & (confusion["operator"] == ALL_OPERATORS)]
                            .drop(columns=["tech", "operator"])))
        for title, src in _figures(bins, tech):
            parts.append(f"<figure><img alt='{html.escape(title)}' src='{src}'><figcaption>{html.escape(title)}"
                         "</figcaption></figure>")
        parts.append("<h3>By group</h3>")
        parts.append(_table(summary[(summary["tech"] == tech) & (summary["operator"] == ALL_OPERATORS)]))
    parts.append("<p class='note'>Operator site positions and distances are internal: this report is not for "
                 "publication.</p></body></html>")
    with atomic_output(path) as tmp:
        tmp.write_text("\n".join(parts), encoding="utf-8")
    return Path(path)
