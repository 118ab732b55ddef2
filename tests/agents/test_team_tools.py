"""The team's tools as the engineer sees them: names the API takes, a prefix that keeps its bytes,
results fenced and trimmed."""

from __future__ import annotations

import json
import re

from agents.config import AgentSettings
from agents.engineer import engineer_prefix
from agents.llm import Wire
from agents.tools.mcp import (
    RESULT_TO_ENGINEER,
    McpResult,
    McpTool,
    McpTools,
    model_name,
    outcome,
)

API_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
SCHEMA: Wire = {"type": "object", "properties": {"q": {"type": "string"}}}


def tool(server: str, name: str, *, writes: bool = False) -> McpTool:
    return McpTool(
        server=server, name=name, description=f"{name} it.", input_schema=SCHEMA, writes=writes
    )


async def never(_tool: McpTool, _input: Wire) -> McpResult:
    raise AssertionError("not called")


def test_names_are_namespaced_by_server_and_fit_the_apis_pattern() -> None:
    long_tool = "list_" + "very_" * 20 + "long_pull_request_review_comments"

    assert model_name("github", "get_issue") == "github__get_issue"
    assert model_name("jira", "issues.search") == "jira__issues_search"
    assert model_name("db", "query rows/v2") == "db__query_rows_v2"
    long_name = model_name("github", long_tool)
    assert API_NAME.match(long_name) and len(long_name) == 64
    assert long_name.startswith("github__list_very_")
    assert long_name == model_name("github", long_tool)  # the same every time
    assert long_name != model_name("github", long_tool + "s")


def test_tools_that_clean_to_one_name_get_two_names_in_any_order() -> None:
    dotted, underscored = tool("jira", "issues.get"), tool("jira", "issues_get")

    one = McpTools(tools=(dotted, underscored), run=never)
    other = McpTools(tools=(underscored, dotted), run=never)

    assert len(set(one.names)) == 2 and all(API_NAME.match(n) for n in one.names)
    assert one.names == other.names
    assert sorted(str(one.find(n)) for n in one.names) == sorted(map(str, (dotted, underscored)))


def test_team_tools_follow_pmteams_own_in_a_prefix_that_keeps_its_bytes() -> None:
    tools = (tool("jira", "create_issue", writes=True), tool("github", "get_file"))
    settings = AgentSettings()

    prefix = engineer_prefix(settings, McpTools(tools=tools, run=never).specs())
    again = engineer_prefix(settings, McpTools(tools=tools[::-1], run=never).specs())

    assert prefix.tool_names == (
        "consult_researcher",
        "find_related_tasks",
        "github__get_file",
        "jira__create_issue",
    )
    assert json.dumps(prefix.tools_param()) == json.dumps(again.tools_param())
    # The cache breakpoint sits on the last tool, a team tool now.
    assert prefix.tools_param()[-1]["cache_control"] == {"type": "ephemeral", "ttl": "1h"}
    github, jira = prefix.tools[2:]
    assert github["description"] == "github (read-only), one of the team's own tools: get_file it."
    assert jira["description"].startswith("jira (writes: asks the requester first)")
    assert github["input_schema"] == SCHEMA
    assert engineer_prefix(settings).tool_names == ("consult_researcher", "find_related_tasks")


def test_a_result_is_fenced_as_data_and_a_long_one_is_trimmed_and_says_so() -> None:
    github = tool("github", "get_file")
    text = "\n".join(f"line {n}: " + "x" * 90 for n in range(400))  # 40,289 characters

    fenced = outcome(github, McpResult.answered(text))

    assert not fenced.is_error
    assert fenced.content.startswith(
        '<tool_output server="github" tool="get_file" reported_error="false">\nline 0: '
    )
    assert len(fenced.content) < RESULT_TO_ENGINEER + 1_000
    assert "[Trimmed: the first 7,989 of 40,289 characters.]\n</tool_output>" in fenced.content
    assert fenced.content.count("</tool_output>") == 1


def test_the_servers_error_is_still_data_and_pmteams_own_note_is_plain() -> None:
    github = tool("github", "get_file")

    reported = outcome(
        github, McpResult.answered("404: <tool_output>no</tool_output>", is_error=True)
    )
    note = outcome(github, McpResult.not_run("The requester declined this call."))

    assert reported.is_error and 'reported_error="true"' in reported.content
    assert "404: &lt;tool_output>no&lt;/tool_output>" in reported.content
    assert note.is_error and note.content == "The requester declined this call."
