"""Files shared with a request, as the engineer reads them: which kinds, within what limits,
and the content blocks they become (pure: the bytes are downloaded elsewhere)."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any, Literal

Kind = Literal["text", "pdf", "image"]

# The Messages API's own limits: 5 MB an image, 32 MB a PDF request.
IMAGE_MAX_BYTES = 5 * 1024 * 1024
PDF_MAX_BYTES = 32 * 1024 * 1024
# What a text file may put in the prompt: its start and its end, the middle cut and marked.
TEXT_BUDGET_CHARS = 20_000
TOTAL_TEXT_BUDGET_CHARS = 60_000

IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
TEXT_MIMETYPES = frozenset(
    {
        "application/json",
        "application/sql",
        "application/x-sql",
        "application/x-yaml",
        "application/yaml",
        "application/xml",
        "application/x-sh",
        "application/javascript",
        "application/toml",
    }
)
TEXT_FILETYPES = frozenset(
    {
        "text", "txt", "log", "sql", "py", "python", "js", "javascript", "ts", "typescript",
        "go", "java", "kotlin", "kt", "rb", "ruby", "rs", "rust", "c", "cpp", "h", "cs",
        "csharp", "php", "swift", "scala", "sh", "shell", "bash", "json", "yaml", "yml",
        "toml", "ini", "conf", "csv", "tsv", "md", "markdown", "xml", "html", "css", "diff",
        "patch", "dockerfile", "makefile", "tf", "hcl", "proto", "graphql", "env",
    }
)  # fmt: skip


@dataclass(frozen=True)
class SharedFile:
    """A file shared with a request, as intake kept it (`turn.files`)."""

    id: str
    name: str
    mimetype: str
    filetype: str
    size: int
    url: str
    mode: str = "hosted"

    @classmethod
    def from_stored(cls, data: dict[str, Any]) -> SharedFile:
        size = data.get("size")
        return cls(
            id=str(data.get("id") or ""),
            name=str(data.get("name") or data.get("title") or "file"),
            mimetype=str(data.get("mimetype") or ""),
            filetype=str(data.get("filetype") or "").lower(),
            size=int(size) if isinstance(size, int) else 0,
            url=str(data.get("url") or ""),
            mode=str(data.get("mode") or "hosted"),
        )

    @property
    def kind(self) -> Kind | None:
        """How the engineer can read it, or None for a kind it can't."""
        if self.mimetype in IMAGE_TYPES:
            return "image"
        if self.mimetype == "application/pdf" or self.filetype == "pdf":
            return "pdf"
        if (
            self.mimetype.startswith("text/")
            or self.mimetype in TEXT_MIMETYPES
            or self.filetype in TEXT_FILETYPES
            or self.mode == "snippet"
        ):
            return "text"
        return None

    def refusal(self, max_bytes: int) -> str | None:
        """Why this file won't be read, in a phrase; None when it will be."""
        kind = self.kind
        if kind is None:
            what = self.filetype or self.mimetype or "unknown"
            return f"its type ({what}) is not one I read: text, code, logs, PDFs and images are"
        if not self.url:
            return "Slack gave no download address for it"
        limit = min(
            max_bytes,
            IMAGE_MAX_BYTES if kind == "image" else PDF_MAX_BYTES if kind == "pdf" else max_bytes,
        )
        if self.size > limit:
            return f"it is {megabytes(self.size)}, over the {megabytes(limit)} I read"
        return None


def megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"


def trimmed_text(text: str, budget: int = TEXT_BUDGET_CHARS) -> str:
    """`text` within `budget` characters: its head (two thirds) and tail (one third), with the
    cut marked where the middle was left out."""
    if len(text) <= budget:
        return text
    head = text[: budget * 2 // 3]
    tail = text[-(budget // 3) :]
    cut = len(text) - len(head) - len(tail)
    return f"{head}\n[… {cut:,} characters cut from the middle of this file …]\n{tail}"


def content_blocks(file: SharedFile, data: bytes, *, budget: int) -> list[dict[str, Any]]:
    """The file as the engineer reads it: a labelled text block, a PDF document block or an
    image block (preceded by a line naming the file)."""
    label = {"type": "text", "text": f"[Attached file: {file.name}]"}
    if file.kind == "image":
        encoded = base64.standard_b64encode(data).decode("ascii")
        return [
            label,
            {
                "type": "image",
                "source": {"type": "base64", "media_type": file.mimetype, "data": encoded},
            },
        ]
    if file.kind == "pdf":
        encoded = base64.standard_b64encode(data).decode("ascii")
        return [
            {
                "type": "document",
                "title": file.name,
                "source": {"type": "base64", "media_type": "application/pdf", "data": encoded},
            }
        ]
    text = data.decode("utf-8", errors="replace")
    return [
        {
            "type": "text",
            "text": f'<attached_file name="{file.name}">\n{trimmed_text(text, budget)}\n'
            "</attached_file>",
        }
    ]


def without_binary(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`messages` with image and document blocks replaced by a line naming them: what is kept
    of a turn (`turn.exchange`), so the database doesn't hold every attachment again."""
    kept: list[dict[str, Any]] = []
    for message in messages:
        content = message.get("content")
        if not isinstance(content, list) or not any(
            isinstance(b, dict) and b.get("type") in ("image", "document") for b in content
        ):
            kept.append(message)
            continue
        blocks = [
            {"type": "text", "text": f"[{b['type']} shown in this turn: {b.get('title') or ''}]"}
            if isinstance(b, dict) and b.get("type") in ("image", "document")
            else b
            for b in content
        ]
        kept.append({**message, "content": blocks})
    return kept
