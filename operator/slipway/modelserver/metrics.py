"""TF Serving's metrics and its Prometheus page (tensorflow_serving/util/prometheus_exporter.cc): TensorFlow's
metric names with `/` turned into `:`, a `# TYPE` line per metric, histograms with TF's own exponential
bucket limits (microseconds) printed as TF prints doubles, counters as integers."""

from __future__ import annotations

import bisect
import re
import threading
from dataclasses import dataclass, field

# monitoring::Buckets::Exponential(10, 1.8, 33): the latency samplers of tensorflow_serving/.../util.cc.
LATENCY_BUCKETS = tuple(10 * 1.8**i for i in range(33))


def prometheus_name(name: str) -> str:
    """GetPrometheusMetricName: every character outside [a-zA-Z0-9_] becomes ':'."""
    new = re.sub(r"[^a-zA-Z0-9_]", ":", name)
    return "_" + new if new[:1].isdigit() else new


def _number(value: float) -> str:
    """absl::StrCat of a double: six significant digits."""
    return f"{value:.6g}"


def _label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


@dataclass
class Counter:
    name: str
    labels: tuple[str, ...] = ()
    cells: dict[tuple[str, ...], int] = field(default_factory=dict)

    def inc(self, *values: str, by: int = 1) -> None:
        self.cells[values] = self.cells.get(values, 0) + by

    def lines(self) -> list[str]:
        name = prometheus_name(self.name)
        out = [f"# TYPE {name} counter"]
        for values, count in self.cells.items():
            labels = ",".join(f'{k}="{_label_value(v)}"' for k, v in zip(self.labels, values, strict=True))
            out.append(f"{name}{{{labels}}} {count}")
        return out


@dataclass
class Histogram:
    name: str
    labels: tuple[str, ...] = ()
    limits: tuple[float, ...] = LATENCY_BUCKETS
    cells: dict[tuple[str, ...], tuple[list[int], list[float]]] = field(default_factory=dict)

    def observe(self, value: float, *values: str) -> None:
        buckets, total = self.cells.setdefault(values, ([0] * (len(self.limits) + 1), [0.0]))
        # TF's bucket i holds [limit[i-1], limit[i]); the last one runs to DBL_MAX.
        buckets[bisect.bisect_right(self.limits, value)] += 1
        total[0] += value

    def lines(self) -> list[str]:
        name = prometheus_name(self.name)
        out = [f"# TYPE {name} histogram"]
        bounds = [_number(limit) for limit in self.limits] + ["+Inf"]
        for values, (buckets, total) in self.cells.items():
            labels = [f'{k}="{_label_value(v)}"' for k, v in zip(self.labels, values, strict=True)]
            prefix = ",".join(labels) + ("," if labels else "")
            cumulative = 0
            for bound, count in zip(bounds, buckets, strict=True):
                cumulative += count
                out.append(f'{name}_bucket{{{prefix}le="{bound}"}} {cumulative}')
            out.append(f"{name}_sum{{{','.join(labels)}}} {_number(total[0])}")
            out.append(f"{name}_count{{{','.join(labels)}}} {cumulative}")
        return out


class Metrics:
    """The metrics TF Serving's REST path and its TensorFlow runtime record, under their own names."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.request_count = Counter("/tensorflow/serving/request_count", ("model_name", "status"))
        self.request_latency = Histogram(
            "/tensorflow/serving/request_latency", ("model_name", "API", "entrypoint")
        )
        self.runtime_latency = Histogram(
            "/tensorflow/serving/runtime_latency", ("model_name", "API", "runtime")
        )
        self.graph_runs = Counter("/tensorflow/core/graph_runs")
        self.graph_run_time_usecs = Counter("/tensorflow/core/graph_run_time_usecs")
        self.load_attempt_count = Counter(
            "/tensorflow/cc/saved_model/load_attempt_count", ("model_path", "status")
        )
        self.load_latency = Counter("/tensorflow/cc/saved_model/load_latency", ("model_path",))

    def record_request(
        self, model: str, status: str, api: str, latency_us: int | None, entrypoint: str = "REST"
    ) -> None:
        """As TF Serving does: every request is counted by status; OK ones have their latency."""
        with self._lock:
            self.request_count.inc(model, status)
            if latency_us is not None:
                self.request_latency.observe(latency_us, model, api, entrypoint)

    def record_run(self, model: str, latency_us: int) -> None:
        with self._lock:
            self.runtime_latency.observe(latency_us, model, "Predict", "TF1")
            self.graph_runs.inc()
            self.graph_run_time_usecs.inc(by=latency_us)

    def record_load(self, path: str, ok: bool, latency_us: int) -> None:
        with self._lock:
            self.load_attempt_count.inc(path, "success" if ok else "fail")
            if ok:
                self.load_latency.inc(path, by=latency_us)

    def page(self) -> str:
        with self._lock:
            metrics = sorted(
                (m for m in vars(self).values() if isinstance(m, Counter | Histogram)), key=lambda m: m.name
            )
            return "\n".join(line for m in metrics for line in m.lines()) + "\n"
