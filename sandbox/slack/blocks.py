"""Block Kit limits, checked the way Slack checks them before storing a message or a view."""

from __future__ import annotations

from typing import Any

MESSAGE_BLOCK_LIMIT = 50
VIEW_BLOCK_LIMIT = 100
SECTION_TEXT_LIMIT = 3000
SECTION_FIELD_LIMIT = 2000
HEADER_TEXT_LIMIT = 150
MARKDOWN_TEXT_LIMIT = 12_000
BUTTON_TEXT_LIMIT = 75
BUTTON_VALUE_LIMIT = 2000
ACCESSIBILITY_LABEL_LIMIT = 75
CONTEXT_ACTIONS_LIMIT = 5
CONTEXT_ACTION_TYPES = ("feedback_buttons", "icon_button")
MODAL_TITLE_LIMIT = 24

KNOWN_BLOCK_TYPES = frozenset(
    {
        "actions",
        "context",
        "context_actions",
        "divider",
        "file",
        "header",
        "image",
        "input",
        "markdown",
        "plan",
        "rich_text",
        "section",
        "table",
        "task_card",
        "video",
    }
)


def _at(pointer: str, message: str) -> str:
    return f"{message} [json-pointer:{pointer}]"


def _length_errors(value: Any, pointer: str, limit: int) -> list[str]:
    if not isinstance(value, str) or not value:
        return [_at(pointer, "must be more than 0 characters")]
    if len(value) > limit:
        return [_at(pointer, f"must be less than {limit + 1} characters")]
    return []


def text_object_errors(
    obj: Any, pointer: str, limit: int, *, plain_only: bool = False
) -> list[str]:
    if not isinstance(obj, dict):
        return [_at(pointer, "must provide an object")]
    allowed = ("plain_text",) if plain_only else ("plain_text", "mrkdwn")
    if obj.get("type") not in allowed:
        return [_at(f"{pointer}/type", "must be a valid enum value")]
    return _length_errors(obj.get("text"), f"{pointer}/text", limit)


def _element_errors(element: Any, pointer: str) -> list[str]:
    if not isinstance(element, dict) or not isinstance(element.get("type"), str):
        return [_at(pointer, "must provide an object with a type")]
    errors: list[str] = []
    action_id = element.get("action_id")
    if action_id is not None and (not isinstance(action_id, str) or len(action_id) > 255):
        errors.append(_at(f"{pointer}/action_id", "must be less than 256 characters"))
    if element["type"] == "button":
        errors += text_object_errors(
            element.get("text"), f"{pointer}/text", BUTTON_TEXT_LIMIT, plain_only=True
        )
        errors += _optional_value_errors(element, pointer)
        style = element.get("style")
        if style is not None and style not in ("primary", "danger"):
            errors.append(_at(f"{pointer}/style", "must be a valid enum value"))
    elif element["type"] == "feedback_buttons":
        for side in ("positive_button", "negative_button"):
            errors += _feedback_button_errors(element.get(side), f"{pointer}/{side}")
    elif element["type"] == "icon_button":
        icon = element.get("icon")
        if not isinstance(icon, str) or not icon:
            errors.append(_at(f"{pointer}/icon", "must be more than 0 characters"))
        errors += text_object_errors(
            element.get("text"), f"{pointer}/text", BUTTON_TEXT_LIMIT, plain_only=True
        )
        errors += _optional_value_errors(element, pointer)
        errors += _accessibility_label_errors(element, pointer)
    return errors


def _optional_value_errors(element: dict[str, Any], pointer: str) -> list[str]:
    value = element.get("value")
    if value is not None and (not isinstance(value, str) or len(value) > BUTTON_VALUE_LIMIT):
        return [_at(f"{pointer}/value", f"must be less than {BUTTON_VALUE_LIMIT + 1} characters")]
    return []


def _accessibility_label_errors(element: dict[str, Any], pointer: str) -> list[str]:
    label = element.get("accessibility_label")
    if label is None:
        return []
    return _length_errors(label, f"{pointer}/accessibility_label", ACCESSIBILITY_LABEL_LIMIT)


def _feedback_button_errors(button: Any, pointer: str) -> list[str]:
    """One side (positive_button or negative_button) of a feedback_buttons element."""
    if not isinstance(button, dict):
        return [_at(pointer, "must provide an object")]
    errors = text_object_errors(
        button.get("text"), f"{pointer}/text", BUTTON_TEXT_LIMIT, plain_only=True
    )
    errors += _length_errors(button.get("value"), f"{pointer}/value", BUTTON_VALUE_LIMIT)
    errors += _accessibility_label_errors(button, pointer)
    return errors


def _context_actions_errors(block: dict[str, Any], pointer: str) -> list[str]:
    """A context_actions block holds 1 to 5 feedback_buttons or icon_button elements."""
    elements = block.get("elements")
    if not isinstance(elements, list) or not elements:
        return [_at(f"{pointer}/elements", "must be more than 0 items")]
    if len(elements) > CONTEXT_ACTIONS_LIMIT:
        return [_at(f"{pointer}/elements", f"must be less than {CONTEXT_ACTIONS_LIMIT + 1} items")]
    errors: list[str] = []
    seen: set[str] = set()
    for i, element in enumerate(elements):
        at = f"{pointer}/elements/{i}"
        if not isinstance(element, dict) or element.get("type") not in CONTEXT_ACTION_TYPES:
            errors.append(_at(at, "must be a feedback_buttons or icon_button element"))
            continue
        errors += _element_errors(element, at)
        action_id = element.get("action_id")
        if isinstance(action_id, str):
            if action_id in seen:
                errors.append(_at(f"{at}/action_id", "duplicate action_id"))
            seen.add(action_id)
    return errors


def _block_errors(block: Any, pointer: str) -> list[str]:
    if not isinstance(block, dict):
        return [_at(pointer, "must provide an object")]
    kind = block.get("type")
    if kind not in KNOWN_BLOCK_TYPES:
        return [_at(f"{pointer}/type", "unsupported type")]
    block_id = block.get("block_id")
    if block_id is not None and (not isinstance(block_id, str) or len(block_id) > 255):
        return [_at(f"{pointer}/block_id", "must be less than 256 characters")]
    errors: list[str] = []
    if kind == "section":
        text, fields = block.get("text"), block.get("fields")
        if text is None and not fields:
            errors.append(_at(pointer, "must provide either text or fields"))
        if text is not None:
            errors += text_object_errors(text, f"{pointer}/text", SECTION_TEXT_LIMIT)
        if fields is not None:
            if not isinstance(fields, list) or len(fields) > 10:
                errors.append(_at(f"{pointer}/fields", "must be less than 11 items"))
            else:
                for i, item in enumerate(fields):
                    errors += text_object_errors(item, f"{pointer}/fields/{i}", SECTION_FIELD_LIMIT)
        if "accessory" in block:
            errors += _element_errors(block["accessory"], f"{pointer}/accessory")
    elif kind == "header":
        errors += text_object_errors(
            block.get("text"), f"{pointer}/text", HEADER_TEXT_LIMIT, plain_only=True
        )
    elif kind == "markdown":
        errors += _length_errors(block.get("text"), f"{pointer}/text", MARKDOWN_TEXT_LIMIT)
    elif kind in ("actions", "context"):
        elements = block.get("elements")
        limit = 25 if kind == "actions" else 10
        if not isinstance(elements, list) or not elements:
            errors.append(_at(f"{pointer}/elements", "must be more than 0 items"))
        elif len(elements) > limit:
            errors.append(_at(f"{pointer}/elements", f"must be less than {limit + 1} items"))
        else:
            seen: set[str] = set()
            for i, element in enumerate(elements):
                at = f"{pointer}/elements/{i}"
                if kind == "context":
                    if not isinstance(element, dict) or element.get("type") not in (
                        "plain_text",
                        "mrkdwn",
                        "image",
                    ):
                        errors.append(_at(at, "must be a text object or an image"))
                    elif element["type"] != "image":
                        errors += text_object_errors(element, at, SECTION_TEXT_LIMIT)
                    continue
                errors += _element_errors(element, at)
                action_id = element.get("action_id") if isinstance(element, dict) else None
                if isinstance(action_id, str):
                    if action_id in seen:
                        errors.append(_at(f"{at}/action_id", "duplicate action_id"))
                    seen.add(action_id)
    elif kind == "context_actions":
        errors += _context_actions_errors(block, pointer)
    elif kind == "image":
        if not block.get("image_url") and not block.get("slack_file"):
            errors.append(_at(pointer, "must provide image_url or slack_file"))
        errors += _length_errors(block.get("alt_text"), f"{pointer}/alt_text", 2000)
    elif kind == "input":
        errors += text_object_errors(block.get("label"), f"{pointer}/label", 2000, plain_only=True)
        if not isinstance(block.get("element"), dict):
            errors.append(_at(f"{pointer}/element", "must provide an object"))
    return errors


def block_errors(blocks: Any, *, limit: int = MESSAGE_BLOCK_LIMIT) -> list[str]:
    """Slack-style error strings for a blocks array; empty when Slack would accept it."""
    if not isinstance(blocks, list):
        return [_at("/blocks", "must be an array")]
    if len(blocks) > limit:
        return [_at("/blocks", f"must be less than {limit + 1} items")]
    errors: list[str] = []
    block_ids: set[str] = set()
    markdown_total = 0
    for i, block in enumerate(blocks):
        errors += _block_errors(block, f"/blocks/{i}")
        if not isinstance(block, dict):
            continue
        block_id = block.get("block_id")
        if isinstance(block_id, str):
            if block_id in block_ids:
                errors.append(_at(f"/blocks/{i}/block_id", "duplicate block_id"))
            block_ids.add(block_id)
        if block.get("type") == "markdown" and isinstance(block.get("text"), str):
            markdown_total += len(block["text"])
    if markdown_total > MARKDOWN_TEXT_LIMIT and not errors:
        # The markdown limit is cumulative over all markdown blocks of one payload.
        errors.append(_at("/blocks", "markdown blocks must be less than 12001 characters in total"))
    return errors


def view_errors(view: Any) -> list[str]:
    if not isinstance(view, dict):
        return [_at("/view", "must provide an object")]
    kind = view.get("type")
    if kind not in ("home", "modal"):
        return [_at("/view/type", "must be a valid enum value")]
    errors: list[str] = []
    if kind == "modal":
        errors += text_object_errors(
            view.get("title"), "/view/title", MODAL_TITLE_LIMIT, plain_only=True
        )
    errors += [
        e.replace("[json-pointer:/blocks", "[json-pointer:/view/blocks")
        for e in block_errors(view.get("blocks", []), limit=VIEW_BLOCK_LIMIT)
    ]
    return errors


def find_action(blocks: list[Any], action_id: str) -> tuple[str, dict[str, Any]] | None:
    """The (block_id, element) whose action_id matches: in actions or context_actions blocks,
    section accessories or input elements."""
    for block in blocks:
        if not isinstance(block, dict):
            continue
        candidates: list[Any] = []
        if block.get("type") in ("actions", "context_actions"):
            candidates = list(block.get("elements") or [])
        elif block.get("type") in ("section", "input"):
            candidates = [block.get("accessory"), block.get("element")]
        for element in candidates:
            if isinstance(element, dict) and element.get("action_id") == action_id:
                return str(block.get("block_id", "")), element
    return None
