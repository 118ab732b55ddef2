"""`/pm` answers every subcommand ephemerally in its ack, against the sandbox Slack."""

from __future__ import annotations

import pytest

from bot.app import Pmteam
from bot.slack.blocks.pm import ACTION_LIST_NEXT, HELP_TEXT
from sandbox.model import FakeModel
from sandbox.slack import FakeSlack
from storage.models import LLMCall, Report, Task, TaskStatus
from tests.e2e.conftest import (
    ALICE,
    BOB,
    COORDINATION,
    ENGINEERING,
    ON_EACH_DATABASE,
    StartPmteam,
    bot_messages,
    mention,
    rows,
    wait_until_idle,
)
from tests.e2e.pm_support import (
    ack_of,
    add_tasks,
    finished_task,
    last_ephemeral,
    run_pm,
    settle,
    shown,
)

MALFORMED = [
    "",
    "frobnicate the widgets",
    "状态 ✨ T-四十二",
    "x" * 5000,
    "status T-0",
    "status T-99999999999999999999",
    "report T-99999999999999999999",
    "<@U123|name>",
    "<#C1|chan>",
    "list <@U123|name> <#C1|chan>",
    "usage forever",
]


@pytest.mark.parametrize("text", MALFORMED)
async def test_malformed_input_gets_a_short_usage_text(
    pmteam: Pmteam, fake_slack: FakeSlack, text: str
) -> None:
    delivery = await run_pm(fake_slack, text)

    body = ack_of(delivery)
    everything = shown(body)
    assert "Traceback" not in everything and "Error" not in everything
    assert "/pm" in everything  # points at the commands that work
    assert len(everything) < 2500
    assert delivery.attempts[0].elapsed < 3.0
    # What Slack shows: an ephemeral message for the person only.
    [ephemeral] = fake_slack.workspace.ephemerals(ENGINEERING, ALICE)
    assert ephemeral.source == "ack" and ephemeral.blocks == body["blocks"]
    assert fake_slack.workspace.ephemerals(ENGINEERING, BOB) == []


async def test_help_lists_every_subcommand(pmteam: Pmteam, fake_slack: FakeSlack) -> None:
    body = ack_of(await run_pm(fake_slack, "help"))

    assert body["blocks"][0]["text"]["text"] == HELP_TEXT
    for subcommand in ("status", "status T-42", "list", "standup", "report T-42", "usage"):
        assert f"/pm {subcommand}" in HELP_TEXT


@ON_EACH_DATABASE
async def test_status_shows_counts_and_your_open_tasks(
    pmteam: Pmteam, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    await add_tasks(pmteam, 3, status=TaskStatus.BLOCKED, reason="waiting on creds")
    await add_tasks(pmteam, 2, status=TaskStatus.IN_PROGRESS, requester=BOB, title="Bob's")
    await add_tasks(pmteam, 4, status=TaskStatus.COMPLETED)

    body = ack_of(await run_pm(fake_slack, "status", user=BOB))

    counts = {
        f["text"].split("\n")[0]: f["text"].split("\n")[1] for f in body["blocks"][1]["fields"]
    }
    assert counts[":no_entry: blocked"] == "*3*"
    assert counts[":hourglass_flowing_sand: in progress"] == "*2*"
    assert counts[":white_check_mark: completed"] == "*4*"
    assert counts[":inbox_tray: queued"] == "*0*"
    assert "5 open" in body["blocks"][0]["text"]["text"]
    mine = body["blocks"][2]["text"]["text"]
    assert "Bob's 0" in mine and "Bob's 1" in mine and "Seeded task" not in mine


@ON_EACH_DATABASE
async def test_status_of_one_task_shows_everything_about_it(
    pmteam: Pmteam, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    # The offline model researches (web search with sources), answers and reports.
    await mention(fake_slack, "design a rate limiter for our public API")
    await wait_until_idle(pmteam, fake_slack, turns=1)
    [task] = await rows(pmteam, Task)
    [report] = await rows(pmteam, Report)
    calls = await rows(pmteam, LLMCall)

    delivery = await run_pm(fake_slack, "status T-1")

    body = ack_of(delivery)
    text = shown(body["blocks"])
    assert "*T-1*" in text and "design a rate limiter for our public API" in text
    assert f"<@{ALICE}>" in text and f"<#{ENGINEERING}>" in text
    # Status history with actors: asked by Alice, worked and reported by pmteam.
    assert "*queued* by <@U0ALICE>" in text and "*working* by pmteam" in text
    assert f"*{task.status.replace('_', ' ')}* by pmteam" in text
    assert "#1 done" in text  # the turn
    assert "*Last report*" in text and "System Architecture &amp; Design" in text
    assert "Probability of Success" in text
    if report.red_flag_count:
        assert "*Red flags:*" in text
    assert ":mag: *Research sources:*" in text and "https://" in text
    cost = sum(c.cost_usd for c in calls)
    assert f"${cost:,.4f}" in text
    assert f"/archives/{ENGINEERING}/p{task.thread_ts.replace('.', '')}" in text
    [actions] = [b for b in body["blocks"] if b["type"] == "actions"]
    # The moves this viewer may make from the status it is in now.
    after = {
        "COMPLETED": ["task_reopen"],
        "IN_PROGRESS": ["task_mark_blocked", "task_mark_done"],
        "BLOCKED": ["task_mark_done", "task_reopen"],
    }
    assert [e["action_id"] for e in actions["elements"]] == [
        "task_acknowledge",
        *after[report.status],
    ]
    assert {e["value"] for e in actions["elements"]} == {"1"}
    assert len(body["blocks"]) <= 50
    assert all(len(b.get("text", {}).get("text", "")) <= 3000 for b in body["blocks"])
    assert delivery.attempts[0].elapsed < 3.0


async def test_status_of_a_missing_task_says_so(pmteam: Pmteam, fake_slack: FakeSlack) -> None:
    body = ack_of(await run_pm(fake_slack, "status T-404"))

    assert "There is no task T-404." in shown(body)


async def test_user_text_in_a_task_is_escaped(pmteam: Pmteam, fake_slack: FakeSlack) -> None:
    await add_tasks(pmteam, 1, status=TaskStatus.BLOCKED, title="<!channel> <@U0BOB> & <x|y>")

    text = shown(ack_of(await run_pm(fake_slack, "status T-1"))["blocks"])

    assert "<!channel>" not in text and "&lt;!channel&gt;" in text
    # A person written in Slack's markup stays a mention; anything else is text, escaped once.
    assert "<@U0BOB> &amp; &lt;x|y&gt;" in text


@ON_EACH_DATABASE
async def test_list_filters(pmteam: Pmteam, fake_slack: FakeSlack) -> None:
    blocked = await add_tasks(pmteam, 2, status=TaskStatus.BLOCKED, title="Blocked")
    done = await add_tasks(pmteam, 2, status=TaskStatus.COMPLETED, title="Done")
    bobs = await add_tasks(pmteam, 1, status=TaskStatus.IN_PROGRESS, requester=BOB, title="Bob")
    elsewhere = await add_tasks(pmteam, 1, status=TaskStatus.FAILED, channel=COORDINATION)

    def listed(text: str, *, user: str = ALICE) -> list[str]:
        return [t.ref for t in blocked + done + bobs + elsewhere if f"*{t.ref}*" in text]

    async def run(filter_text: str, user: str = ALICE) -> str:
        return shown(ack_of(await run_pm(fake_slack, f"list {filter_text}", user=user)))

    assert listed(await run("blocked")) == [t.ref for t in blocked]
    assert listed(await run("done")) == [t.ref for t in done]
    assert listed(await run("open")) == [t.ref for t in blocked + bobs]
    assert listed(await run("")) == [t.ref for t in blocked + bobs]
    assert listed(await run("mine", user=BOB)) == [t.ref for t in bobs]
    assert listed(await run(f"<@{BOB}|bob>")) == [t.ref for t in bobs]
    assert listed(await run(f"<#{COORDINATION}|pm-coordination>")) == [t.ref for t in elsewhere]
    # Newest first.
    text = await run("blocked")
    assert text.index(f"*{blocked[1].ref}*") < text.index(f"*{blocked[0].ref}*")
    assert "Blocked tasks" in text


async def test_list_pages_with_a_next_page_button(pmteam: Pmteam, fake_slack: FakeSlack) -> None:
    tasks = await add_tasks(pmteam, 23, status=TaskStatus.BLOCKED)
    refs = [t.ref for t in reversed(tasks)]  # newest first

    await run_pm(fake_slack, "list blocked")
    first = last_ephemeral(fake_slack, ALICE)
    assert [r for r in refs if f"*{r}*" in shown(first.blocks)] == refs[:10]

    await fake_slack.click_button(ALICE, ENGINEERING, first.ts, ACTION_LIST_NEXT)
    await settle(pmteam, fake_slack)
    second = last_ephemeral(fake_slack, ALICE)
    assert second.ts == first.ts  # replaced in place
    assert [r for r in refs if f"*{r}*" in shown(second.blocks)] == refs[10:20]
    assert "page 2" in shown(second.blocks)

    await fake_slack.click_button(ALICE, ENGINEERING, second.ts, ACTION_LIST_NEXT)
    await settle(pmteam, fake_slack)
    third = last_ephemeral(fake_slack, ALICE)
    assert [r for r in refs if f"*{r}*" in shown(third.blocks)] == refs[20:]
    assert ACTION_LIST_NEXT not in shown(third.blocks)  # the last page has no button
    assert all(r.status == 200 for r in fake_slack.responses)


async def test_list_of_nothing_says_none(pmteam: Pmteam, fake_slack: FakeSlack) -> None:
    body = ack_of(await run_pm(fake_slack, "list blocked"))

    assert body["blocks"][0]["text"]["text"] == "*Blocked tasks*\nnone."


@ON_EACH_DATABASE
async def test_usage_by_agent_and_model(
    pmteam: Pmteam, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    await mention(fake_slack, "design a rate limiter for our public API")
    await wait_until_idle(pmteam, fake_slack, turns=1)
    calls = await rows(pmteam, LLMCall)
    tokens = sum(
        c.input_tokens + c.output_tokens + c.cache_read_tokens + c.cache_write_tokens for c in calls
    )

    for text in ("usage", "usage week", "usage month"):
        body = ack_of(await run_pm(fake_slack, text))
        everything = shown(body["blocks"])
        assert ("this month" in everything) == (text == "usage month")
        assert f"*Tokens*\\n{tokens:,}" in everything
        assert "*Cache share*" in everything and "*Web searches*" in everything
        assert f"${sum(c.cost_usd for c in calls):,.2f}" in everything
        assert "*By agent*" in everything and "*By model*" in everything
        for call in calls:
            assert f"`{call.agent}`" in everything and f"`{call.model}`" in everything


async def test_report_reposts_the_last_report_to_the_coordination_channel(
    pmteam: Pmteam, fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    task = await finished_task(pmteam, fake_slack, fake_model, task="Payments API design")
    [original] = bot_messages(fake_slack, COORDINATION)

    body = ack_of(await run_pm(fake_slack, f"report {task.ref}"))
    await settle(pmteam, fake_slack)

    assert f"Posting {task.ref}'s last report to <#{COORDINATION}>" in shown(body)
    original_again, repost = bot_messages(fake_slack, COORDINATION)
    assert original_again.ts == original.ts
    assert "Payments API design" in shown(repost.blocks)
    assert f'"task_actions:{task.id}"' in shown(repost.blocks)  # with the buttons
    assert [r.body["text"] for r in fake_slack.responses] == [
        f"Posted {task.ref}'s last report to <#{COORDINATION}>."
    ]


async def test_report_of_a_task_without_one(pmteam: Pmteam, fake_slack: FakeSlack) -> None:
    await add_tasks(pmteam, 1, status=TaskStatus.QUEUED)

    no_report = shown(ack_of(await run_pm(fake_slack, "report T-1")))
    missing = shown(ack_of(await run_pm(fake_slack, "report T-7")))

    assert "T-1 has no report yet." in no_report
    assert "There is no task T-7." in missing
    assert fake_slack.calls_to("chat.postMessage") == []


async def test_reading_is_limited_to_allowed_channels(
    start_pmteam: StartPmteam, fake_slack: FakeSlack
) -> None:
    await start_pmteam(PMTEAM_ALLOWED_CHANNELS=ENGINEERING)

    refused = shown(ack_of(await run_pm(fake_slack, "status", channel="C0RANDOM")))
    allowed = shown(ack_of(await run_pm(fake_slack, "status", channel=ENGINEERING)))
    in_dm = shown(ack_of(await run_pm(fake_slack, "status", channel=fake_slack.dm_channel(ALICE))))
    # The PM's own channel always works, whatever the allow-list says.
    pm_channel = shown(ack_of(await run_pm(fake_slack, "status", channel=COORDINATION)))

    assert f"I answer `/pm` only in <#{ENGINEERING}>" in refused
    assert "Tasks by status" not in refused
    assert "Tasks by status" in allowed and "Tasks by status" in in_dm
    assert "Tasks by status" in pm_channel
