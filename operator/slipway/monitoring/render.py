"""The dashboard drawn as a PNG from Prometheus data captured in the integration tests (query_range of every
panel's queries), laid out like the Grafana dashboard, so the picture in the docs shows what the operator
really emits. Needs matplotlib (the dev extra): `python -m slipway.monitoring.render CAPTURE PNG`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from slipway.monitoring.dashboard import PANELS, grid

Series = list[dict[str, Any]]  # [{"legend": str, "points": [[unix seconds, value], ...]}]


def legend_text(template: str, labels: dict[str, str]) -> str:
    text = template
    for key, value in labels.items():
        text = text.replace("{{" + key + "}}", value)
    return text


def series_from_matrix(result: list[dict[str, Any]], template: str) -> Series:
    """Prometheus' query_range `matrix` result as legend-named series."""
    return [
        {
            "legend": legend_text(template, item["metric"]),
            "points": [[float(t), float(v)] for t, v in item["values"]],
        }
        for item in result
    ]


def render(capture: dict[str, Any], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = max(grid(i)["y"] for i in range(len(PANELS))) // 8 + 1
    figure, axes = plt.subplots(rows, 3, figsize=(18, 3.6 * rows), squeeze=False)
    figure.patch.set_facecolor("#111217")
    start = capture["start"]
    for index, panel in enumerate(PANELS):
        position = grid(index)
        ax = axes[position["y"] // 8][position["x"] // 8]
        ax.set_facecolor("#181b1f")
        for spine in ax.spines.values():
            spine.set_color("#2c3235")
        ax.tick_params(colors="#9fa7b3", labelsize=7)
        ax.set_title(panel.title, color="#d8d9da", fontsize=10, loc="left")
        drawn = capture["panels"].get(panel.title, [])
        for series in drawn:
            times = [(t - start) / 60 for t, _ in series["points"]]
            ax.plot(times, [v for _, v in series["points"]], linewidth=1.6, label=series["legend"][:40])
        if drawn:
            ax.legend(fontsize=6.5, loc="upper left", frameon=False, labelcolor="#c7d0d9", ncol=2)
            ax.set_xlim(0, (capture["end"] - start) / 60)
            ax.set_ylim(bottom=0, top=max(v for s in drawn for _, v in s["points"]) * 1.35 or 1)
        else:
            ax.text(0.5, 0.5, "No data", color="#6e7580", ha="center", va="center", transform=ax.transAxes)
        unit = "" if panel.unit == "short" else f" · {panel.unit}"
        ax.set_xlabel(f"minutes since Prometheus started{unit}", color="#6e7580", fontsize=7)
        ax.grid(color="#22252b", linewidth=0.6)
    figure.suptitle(
        f"Slipway: training, registry, serving — {capture.get('source', '')}", color="#d8d9da", fontsize=12
    )
    figure.tight_layout(rect=(0, 0, 1, 0.97))
    figure.savefig(out, dpi=80, facecolor=figure.get_facecolor())
    plt.close(figure)


def main(argv: list[str]) -> int:
    capture, out = Path(argv[0]), Path(argv[1])
    render(json.loads(capture.read_text()), out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
