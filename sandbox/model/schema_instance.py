"""Builds a JSON value that conforms to a JSON schema, filled from the conversation's topic."""

from __future__ import annotations

import hashlib
import math
import re
import uuid
from dataclasses import dataclass
from typing import Any

# transform_schema() in the SDK moves constraints the API does not enforce (minimum, maximum,
# minLength, minItems > 1, …) into the description as "{minimum: 1, maximum: 9}", so they are
# read back from there as well.
_DESCRIPTION_CONSTRAINTS = re.compile(r"\{([^{}]*)\}\s*$")
_THRESHOLD = re.compile(r"(?:below|under|less than|lower than|<)\s*(\d+)", re.IGNORECASE)
_SCORE_PATH = re.compile(r"score|rating|assessment|grade", re.IGNORECASE)
_LABEL_KEYS = ("label", "name", "area", "category", "dimension", "criterion", "metric", "title")
_MAX_DEPTH = 8
_FULL_ARRAY_DEPTH = 4

NOTES_TEXT = (
    "Produced by the offline demo model (no ANTHROPIC_API_KEY is set): the values are "
    "placeholders derived from the request, not a real assessment."
)


@dataclass
class _Score:
    label: str
    value: int
    high: int
    low: int
    path: str


def _number(text: str) -> int | float | None:
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return None


def _humanize(key: str) -> str:
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", key).replace("_", " ").replace("-", " ").split()
    return " ".join(words).capitalize() if words else "Item"


def _singular(label: str) -> str:
    if label.endswith("ies"):
        return label[:-3] + "y"
    if label.endswith("s") and not label.endswith("ss"):
        return label[:-1]
    return label


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(1, limit - 1)].rstrip() + "…"


class InstanceBuilder:
    """Deterministic for a given schema, topic and seed."""

    def __init__(self, root: dict[str, Any], *, topic: str, seed: int) -> None:
        self._root = root
        self._topic = topic.strip() or "the request"
        self._short = _clip(self._topic.splitlines()[0], 100)
        self._seed = seed
        self._scores: list[_Score] = []
        self._deferred: list[tuple[dict[str, Any], str, dict[str, Any], str]] = []
        self._recording = True

    def build(self) -> Any:
        value = self._value(self._root, "$", None, 0)
        self._recording = False
        for obj, key, schema, path in self._deferred:
            obj[key] = self._flags(schema, path)
        return value

    # -- schema plumbing -------------------------------------------------------------------

    def _hash(self, path: str) -> int:
        digest = hashlib.sha256(f"{self._seed}:{path}".encode()).digest()
        return int.from_bytes(digest[:8], "big")

    def _resolve(self, schema: Any, depth: int = 0) -> dict[str, Any]:
        if not isinstance(schema, dict):
            return {}
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/") and depth < 32:
            target: Any = self._root
            for part in ref[2:].split("/"):
                target = (
                    target.get(part.replace("~1", "/").replace("~0", "~"), {})
                    if isinstance(target, dict)
                    else {}
                )
            merged = {
                **self._resolve(target, depth + 1),
                **{k: v for k, v in schema.items() if k != "$ref"},
            }
            return merged
        all_of = schema.get("allOf")
        if isinstance(all_of, list):
            merged = {k: v for k, v in schema.items() if k != "allOf"}
            for part in all_of:
                resolved = self._resolve(part, depth + 1)
                merged.setdefault("properties", {}).update(resolved.get("properties", {}))
                merged["required"] = [*merged.get("required", []), *resolved.get("required", [])]
                for key, value in resolved.items():
                    merged.setdefault(key, value)
            return merged
        return schema

    def _constraints(self, schema: dict[str, Any]) -> dict[str, Any]:
        found: dict[str, Any] = {}
        description = schema.get("description")
        if isinstance(description, str) and (match := _DESCRIPTION_CONSTRAINTS.search(description)):
            for item in match.group(1).split(","):
                key, _, raw = item.partition(":")
                number = _number(raw.strip())
                if number is not None:
                    found[key.strip()] = number
        found.update(
            {
                k: v
                for k, v in schema.items()
                if isinstance(v, int | float) and not isinstance(v, bool)
            }
        )
        return found

    def _value(
        self, schema: Any, path: str, key: str | None, depth: int, index: int | None = None
    ) -> Any:
        schema = self._resolve(schema)
        if "const" in schema:
            return schema["const"]
        enum = schema.get("enum")
        if isinstance(enum, list) and enum:
            return enum[index % len(enum)] if index is not None else enum[0]
        variants = schema.get("anyOf") or schema.get("oneOf")
        if isinstance(variants, list) and variants:
            resolved = [self._resolve(v) for v in variants]
            chosen = next((v for v in resolved if v.get("type") != "null"), resolved[0])
            return self._value(chosen, path, key, depth, index)
        kind = schema.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "null")
        if kind is None:
            kind = (
                "object" if "properties" in schema else "array" if "items" in schema else "string"
            )
        if kind == "object":
            return self._object(schema, path, depth, index)
        if kind == "array":
            return self._array(schema, path, key, depth)
        if kind == "integer":
            return self._integer(schema, path, key)
        if kind == "number":
            return self._float(schema, path)
        if kind == "boolean":
            return not any(
                word in (key or "").lower() for word in ("block", "error", "fail", "risk")
            )
        if kind == "null":
            return None
        return self._string(schema, path, key, index)

    # -- containers ------------------------------------------------------------------------

    def _object(
        self, schema: dict[str, Any], path: str, depth: int, index: int | None = None
    ) -> dict[str, Any]:
        properties: dict[str, Any] = schema.get("properties") or {}
        required = set(schema.get("required") or [])
        obj: dict[str, Any] = {}
        direct_scores: list[_Score] = []
        for name, prop in properties.items():
            if depth >= _MAX_DEPTH and name not in required:
                continue
            resolved = self._resolve(prop)
            if self._recording and "flag" in name.lower() and self._is_array(resolved):
                obj[name] = []
                self._deferred.append((obj, name, resolved, f"{path}.{name}"))
                continue
            before = len(self._scores)
            # Inside an array, an enum property cycles through its values item by item.
            enum_index = index if isinstance(resolved.get("enum"), list) else None
            obj[name] = self._value(prop, f"{path}.{name}", name, depth + 1, enum_index)
            if len(self._scores) == before + 1 and isinstance(obj[name], int):
                direct_scores.append(self._scores[-1])
        label = next(
            (
                v
                for k, v in obj.items()
                if isinstance(v, str) and any(w in k.lower() for w in _LABEL_KEYS)
            ),
            None,
        )
        if label is not None and len(direct_scores) == 1:
            # A score inside {"name": ..., "score": 7} is better named by its sibling.
            direct_scores[0].label = label
        return obj

    def _is_array(self, schema: dict[str, Any]) -> bool:
        if schema.get("type") == "array":
            return True
        variants = schema.get("anyOf") or schema.get("oneOf") or []
        return any(self._resolve(v).get("type") == "array" for v in variants)

    def _array_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        if schema.get("type") == "array":
            return schema
        for variant in schema.get("anyOf") or schema.get("oneOf") or []:
            resolved = self._resolve(variant)
            if resolved.get("type") == "array":
                return resolved
        return schema

    def _count(self, schema: dict[str, Any], default: int) -> int:
        limits = self._constraints(schema)
        low = int(limits.get("minItems", 0))
        high = int(limits.get("maxItems", max(default, low)))
        return max(low, min(default, high))

    def _array(self, schema: dict[str, Any], path: str, key: str | None, depth: int) -> list[Any]:
        prefix = schema.get("prefixItems")
        if isinstance(prefix, list):
            return [
                self._value(item, f"{path}[{i}]", key, depth + 1, i)
                for i, item in enumerate(prefix)
            ]
        # Deep arrays (recursive schemas, mostly) get only what minItems demands.
        count = self._count(schema, 2 + self._hash(path) % 2 if depth < _FULL_ARRAY_DEPTH else 0)
        items = schema.get("items") or {"type": "string"}
        return [self._value(items, f"{path}[{i}]", key, depth + 1, i) for i in range(count)]

    # -- scalars ---------------------------------------------------------------------------

    def _bounds(self, schema: dict[str, Any], integer: bool) -> tuple[float | None, float | None]:
        limits = self._constraints(schema)
        step = 1 if integer else 0.01
        low = limits.get("minimum")
        if low is None and "exclusiveMinimum" in limits:
            low = limits["exclusiveMinimum"] + step
        high = limits.get("maximum")
        if high is None and "exclusiveMaximum" in limits:
            high = limits["exclusiveMaximum"] - step
        return low, high

    def _integer(self, schema: dict[str, Any], path: str, key: str | None) -> int:
        low_bound, high_bound = self._bounds(schema, integer=True)
        h = self._hash(path)
        if low_bound is not None and high_bound is not None:
            low, high = math.ceil(low_bound), math.floor(high_bound)
            if high <= low:
                return low
            if high - low > 100:
                return low + h % (high - low + 1)
            value = self._plausible(low, high, h)
            if self._recording and high - low >= 2:
                label = schema.get("title") if isinstance(schema.get("title"), str) else None
                score = _Score(label or _humanize(key or "score"), value, high, low, path)
                self._scores.append(score)
            return value
        name = (key or "").lower()
        if "hour" in name:
            guess = 4 + h % 37
        elif "day" in name:
            guess = 1 + h % 5
        else:
            guess = 1 + h % 9
        if low_bound is not None:
            guess = max(guess, math.ceil(low_bound))
        if high_bound is not None:
            guess = min(guess, math.floor(high_bound))
        return guess

    @staticmethod
    def _plausible(low: int, high: int, h: int) -> int:
        """Mostly good-not-perfect scores, sometimes a weak one: like a careful self-assessment."""
        span = high - low
        if span < 4:
            return low + h % (span + 1)
        # offsets below the top, weighted: top 1/15, -1 4/15, -2 5/15, -3 3/15, -4 2/15
        weights = (1, 4, 5, 3, 2)
        pick = h % sum(weights)
        for offset, weight in enumerate(weights):
            if pick < weight:
                return max(low, high - offset)
            pick -= weight
        return high

    def _float(self, schema: dict[str, Any], path: str) -> float:
        low, high = self._bounds(schema, integer=False)
        fraction = 0.6 + (self._hash(path) % 30) / 100
        if low is not None and high is not None:
            return round(low + (high - low) * fraction, 2)
        if low is not None:
            return round(low + fraction * 10, 2)
        if high is not None:
            return round(min(high, fraction), 2)
        return round(fraction * 10, 1)

    def _string(self, schema: dict[str, Any], path: str, key: str | None, index: int | None) -> str:
        return self._fit(self._string_text(schema, path, key, index), schema)

    def _fit(self, text: str, schema: dict[str, Any]) -> str:
        limits = self._constraints(schema)
        if "maxLength" in limits:
            text = text[: int(limits["maxLength"])]
        if "minLength" in limits and len(text) < int(limits["minLength"]):
            text = text + "." * (int(limits["minLength"]) - len(text))
        return text

    def _string_text(
        self, schema: dict[str, Any], path: str, key: str | None, index: int | None
    ) -> str:
        fmt = schema.get("format")
        formats = {
            "date-time": "2025-01-06T09:30:00Z",
            "date": "2025-01-06",
            "time": "09:30:00",
            "duration": "P2D",
            "email": "offline-demo@example.com",
            "hostname": "example.com",
            "uri": "https://example.com/offline-demo",
            "ipv4": "127.0.0.1",
            "ipv6": "::1",
        }
        if fmt == "uuid":
            return str(uuid.UUID(int=self._hash(path) << 64 | self._hash(path + "#"), version=4))
        if isinstance(fmt, str) and fmt in formats:
            return formats[fmt]
        name = (key or "").lower()
        h = self._hash(path)
        if index is not None:
            label = _singular(_humanize(key or "item"))
            steps = ("first slice", "tests and rollout", "follow-up work", "documentation")
            return (
                f"{label} {index + 1}: {steps[index % len(steps)]} for “{_clip(self._short, 70)}”"
            )
        if any(w in name for w in ("note", "comment", "caveat", "assumption", "confidence")):
            return NOTES_TEXT
        if any(w in name for w in ("time", "eta", "estimate", "duration")):
            return f"About {2 + h % 4} days"
        if any(w in name for w in ("url", "link", "href")):
            return "https://example.com/offline-demo"
        if any(
            w in name
            for w in ("query", "question", "prompt", "topic", "request", "goal", "instruction")
        ):
            return _clip(self._topic, 400)
        if any(w in name for w in ("task", "title", "subject", "headline", "name", "label")):
            return self._short
        if name == "id" or name.endswith("_id"):
            return f"{name or 'id'}-{h % 10_000}"
        return f"{_humanize(key or 'answer')} for “{self._short}” (offline demo model)."

    # -- red flags -------------------------------------------------------------------------

    def _threshold(self, schema: dict[str, Any]) -> int | None:
        items = self._resolve(schema.get("items") or {})
        for text in (
            schema.get("description"),
            items.get("description"),
            self._root.get("description"),
        ):
            if isinstance(text, str) and (match := _THRESHOLD.search(text)):
                return int(match.group(1))
        return None

    def _flags(self, schema: dict[str, Any], path: str) -> list[Any]:
        """One flag per low score, so that a 'red flag for every score below N' rule holds."""
        schema = self._array_schema(schema)
        threshold = self._threshold(schema)
        # Bounded integers under a score-like name are the scores; otherwise all of them count.
        scores = [s for s in self._scores if _SCORE_PATH.search(s.path)] or self._scores
        low_scores = [
            s
            for s in scores
            if s.value
            < (threshold if threshold is not None else s.low + math.ceil((s.high - s.low) * 0.6))
        ]
        limits = self._constraints(schema)
        wanted = max(len(low_scores), int(limits.get("minItems", 0)))
        wanted = min(wanted, int(limits.get("maxItems", wanted)))
        items = schema.get("items") or {"type": "string"}
        flags: list[Any] = []
        for i in range(wanted):
            score = low_scores[i] if i < len(low_scores) else None
            flags.append(self._flag(items, f"{path}[{i}]", score))
        return flags

    def _flag(self, schema: Any, path: str, score: _Score | None) -> Any:
        schema = self._resolve(schema)
        label = score.label if score else "Unverified assumptions"
        rating = f"{score.value}/{score.high}" if score else "n/a"
        explanation = (
            f"{label} is rated {rating}: the offline demo model cannot check this against the real "
            f"system for “{_clip(self._short, 70)}”, so the estimate is conservative."
        )
        mitigation = (
            f"Review {label.lower()} with the team and add a focused test or spike "
            "before relying on it."
        )
        if schema.get("type") != "object":
            if schema.get("type") in (None, "string"):
                return f"{label} ({rating}): {explanation} Mitigation: {mitigation}"
            return self._value(schema, path, None, 1)
        flag: dict[str, Any] = {}
        for name, prop in (schema.get("properties") or {}).items():
            resolved = self._resolve(prop)
            lowered = name.lower()
            if isinstance(resolved.get("enum"), list) and resolved["enum"]:
                flag[name] = _closest(resolved["enum"], label)
            elif resolved.get("type") in ("integer", "number") and score is not None:
                low, high = self._bounds(resolved, integer=True)
                value = score.value
                value = max(value, math.ceil(low)) if low is not None else value
                value = min(value, math.floor(high)) if high is not None else value
                flag[name] = value if resolved.get("type") == "integer" else float(value)
            elif resolved.get("type", "string") == "string" and "anyOf" not in resolved:
                if any(w in lowered for w in ("mitig", "fix", "action")):
                    text = mitigation
                elif any(w in lowered for w in ("score", *_LABEL_KEYS)):
                    text = label
                else:
                    text = explanation
                flag[name] = self._fit(text, resolved)
            else:
                flag[name] = self._value(prop, f"{path}.{name}", name, 1)
        return flag


def _closest(options: list[Any], label: str) -> Any:
    wanted = set(re.findall(r"[a-z]+", label.lower()))

    def overlap(option: Any) -> int:
        return len(wanted & set(re.findall(r"[a-z]+", str(option).lower())))

    return max(options, key=overlap)


def build_instance(schema: dict[str, Any], *, topic: str, seed: int) -> Any:
    return InstanceBuilder(schema, topic=topic, seed=seed).build()
