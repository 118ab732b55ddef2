"""Files shared with a request reach the engineer in the block type it reads them in: logs and
code as text (head and tail kept, the cut marked), PDFs as documents, images as images. What
can't be read is said, file by file, under the answer and to the model."""

from __future__ import annotations

import base64
import json
from typing import Any

from bot.app import Pmteam
from sandbox.model import FakeModel, Json, Text
from sandbox.slack import FakeSlack
from storage.models import Turn
from tests.e2e.conftest import (
    ALICE,
    ENGINEERING,
    ON_EACH_DATABASE,
    bot_messages,
    mention_text,
    report_json,
    rows,
    wait_until_idle,
)

pytestmark = ON_EACH_DATABASE

LOG_HEAD = "2026-12-02 09:00:01 INFO worker started\n"
LOG_TAIL = "2026-12-02 09:59:59 ERROR numeric field overflow on invoices.amount\n"
BIG_LOG = (LOG_HEAD + "2026-12-02 09:00:02 DEBUG heartbeat ok\n" * 2_000 + LOG_TAIL).encode()
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)


def first_engineer_request(fake_model: FakeModel, model: str) -> dict[str, Any]:
    return next(
        r.body
        for r in fake_model.requests
        if r.path == "/v1/messages" and r.body.get("model") == model
    )


async def ask_with_files(
    pmteam: Pmteam,
    fake_slack: FakeSlack,
    fake_model: FakeModel,
    files: list[tuple[str, str, bytes]],
) -> list[dict[str, Any]]:
    """Alice mentions pmteam with `files`; the content blocks of the engineer's request."""
    fake_model.script(Text("Looked at the files."), Json(report_json()))
    await fake_slack.post_as_user(
        ALICE, ENGINEERING, mention_text("why do these invoices fail?"), files=files
    )
    await wait_until_idle(pmteam, fake_slack, turns=1, timeout=30)
    request = first_engineer_request(fake_model, pmteam.settings.engineer_model)
    blocks: list[dict[str, Any]] = request["messages"][-1]["content"]
    return blocks


async def test_a_log_a_pdf_and_an_image_reach_the_model_as_text_document_and_image(
    pmteam: Pmteam, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    blocks = await ask_with_files(
        pmteam,
        fake_slack,
        fake_model,
        [
            ("worker.log", "text/plain", BIG_LOG),
            ("spec.pdf", "application/pdf", PDF),
            ("dashboard.png", "image/png", PNG),
        ],
    )
    [turn] = await rows(pmteam, Turn)
    assert [f["name"] for f in turn.files or []] == ["worker.log", "spec.pdf", "dashboard.png"]

    kinds = [b["type"] for b in blocks]
    assert kinds[0] == "text" and "why do these invoices fail?" in blocks[0]["text"]
    [log_block] = [b for b in blocks if b["type"] == "text" and "attached_file" in b["text"]]
    assert LOG_HEAD.strip() in log_block["text"] and LOG_TAIL.strip() in log_block["text"]
    assert "characters cut from the middle of this file" in log_block["text"]
    assert len(log_block["text"]) < len(BIG_LOG)
    [document] = [b for b in blocks if b["type"] == "document"]
    assert document["source"]["media_type"] == "application/pdf"
    assert base64.b64decode(document["source"]["data"]) == PDF
    [image] = [b for b in blocks if b["type"] == "image"]
    assert image["source"]["media_type"] == "image/png"
    assert base64.b64decode(image["source"]["data"]) == PNG
    # Downloaded with the bot token, once each.
    downloads = fake_slack.calls_to("files.download")
    token = pmteam.settings.slack_bot_token
    assert token is not None
    assert len(downloads) == 3
    assert {call.token for call in downloads} == {token.get_secret_value()}
    # What is kept of the turn for follow-ups holds no copy of the binaries.
    stored = json.dumps(turn.exchange)
    assert PNG.hex() not in stored and document["source"]["data"] not in stored


async def test_an_oversized_file_and_an_unknown_type_are_named_under_the_answer(
    pmteam: Pmteam, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    huge = b"x" * (11 * 1024 * 1024)
    blocks = await ask_with_files(
        pmteam,
        fake_slack,
        fake_model,
        [("huge.log", "text/plain", huge), ("backup.zip", "application/zip", b"PK\x03\x04")],
    )
    assert not any(b["type"] in ("document", "image") for b in blocks)
    [note] = [b for b in blocks if "could not read" in b.get("text", "")]
    assert "huge.log: it is 11.0 MB, over the 10.0 MB I read" in note["text"]
    assert "backup.zip: its type (zip) is not one I read" in note["text"]
    # Neither was downloaded.
    assert fake_slack.calls_to("files.download") == []
    # The answer says so, under it.
    answer = [
        m
        for m in bot_messages(fake_slack, ENGINEERING)
        if ":paperclip: Not read" in json.dumps(m.blocks)
    ]
    assert len(answer) == 1
