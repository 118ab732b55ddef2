"""A few process metrics, served as Prometheus text on GET /metrics."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Metrics:
    counters: dict[tuple[str, tuple[tuple[str, str], ...]], float] = field(default_factory=dict)
    gauges: dict[str, float] = field(default_factory=dict)

    def inc(self, name: str, amount: float = 1, **labels: str) -> None:
        key = (name, tuple(sorted(labels.items())) if labels else ())
        self.counters[key] = self.counters.get(key, 0) + amount

    def set(self, name: str, value: float) -> None:
        self.gauges[name] = value

    def render(self) -> str:
        lines: list[str] = []
        seen: set[str] = set()
        for (name, labels), value in sorted(self.counters.items()):
            if name not in seen:
                lines.append(f"# TYPE {name} counter")
                seen.add(name)
            label_text = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
            number = _number(value)
            lines.append(f"{name}{{{label_text}}} {number}" if labels else f"{name} {number}")
        for name, gauge in sorted(self.gauges.items()):
            lines.append(f"# TYPE {name} gauge")
            lines.append(f"{name} {gauge:g}")
        return "\n".join(lines) + "\n"


def _number(value: float) -> str:
    """Counts as integers (Prometheus reads `1.23457e+06` as a rounded count); sums exactly."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
