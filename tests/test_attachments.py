"""Which shared files the engineer reads, within what limits, and how a long text is cut."""

from __future__ import annotations

from bot.core.attachments import SharedFile, trimmed_text, without_binary


def shared(name: str, mimetype: str, size: int = 100, **extra: str) -> SharedFile:
    return SharedFile.from_stored(
        {"id": "F1", "name": name, "mimetype": mimetype, "filetype": name.rsplit(".", 1)[-1],
         "size": size, "url": "https://files.example/F1", **extra}
    )  # fmt: skip


def test_kinds_follow_the_type_and_a_snippet_is_text() -> None:
    assert shared("schema.sql", "application/octet-stream").kind == "text"
    assert shared("app.log", "text/plain").kind == "text"
    assert shared("spec.pdf", "application/pdf").kind == "pdf"
    assert shared("chart.webp", "image/webp").kind == "image"
    assert shared("notes", "application/octet-stream", mode="snippet").kind == "text"
    assert shared("backup.zip", "application/zip").kind is None
    assert shared("photo.heic", "image/heic").kind is None


def test_limits_are_the_smaller_of_ours_and_the_apis() -> None:
    ten_mb = 10 * 1024 * 1024
    assert shared("a.log", "text/plain", size=ten_mb).refusal(ten_mb) is None
    too_big = shared("a.log", "text/plain", size=ten_mb + 1).refusal(ten_mb)
    assert too_big == "it is 10.0 MB, over the 10.0 MB I read"
    # An image over the API's 5 MB is refused even when our limit is higher.
    assert "over the 5.0 MB I read" in (
        shared("a.png", "image/png", size=6 * 1024 * 1024).refusal(ten_mb) or ""
    )
    assert shared("x.bin", "application/octet-stream").refusal(ten_mb) == (
        "its type (bin) is not one I read: text, code, logs, PDFs and images are"
    )


def test_a_long_text_keeps_its_head_and_tail_and_marks_the_cut() -> None:
    text = "HEAD\n" + "middle line\n" * 5_000 + "TAIL\n"
    cut = trimmed_text(text, 3_000)
    assert cut.startswith("HEAD") and cut.rstrip().endswith("TAIL")
    assert "characters cut from the middle of this file" in cut
    assert len(cut) < 3_200
    assert trimmed_text("short", 3_000) == "short"


def test_kept_exchanges_name_binaries_instead_of_holding_them() -> None:
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "look"},
                {"type": "image", "source": {"type": "base64", "data": "AAAA"}},
                {"type": "document", "title": "spec.pdf", "source": {"data": "BBBB"}},
            ],
        },
        {"role": "assistant", "content": [{"type": "text", "text": "ok"}]},
    ]
    kept = without_binary(messages)
    assert "AAAA" not in str(kept) and "BBBB" not in str(kept)
    assert kept[0]["content"][2] == {
        "type": "text",
        "text": "[document shown in this turn: spec.pdf]",
    }
    assert kept[1] is messages[1]
