"""The fake Slack workspace's state: team, people, channels, messages, views, assistant threads."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Literal

JSON = dict[str, Any]

TEAM_ID = "T0SANDBOX"
BOT_USER_ID = "U0PMTEAM"
BOT_ID = "B0PMTEAM"
APP_ID = "A0PMTEAM"


class SandboxError(Exception):
    """A test or the page asked the fake for something a real Slack user could not do."""


@dataclass
class Team:
    id: str
    name: str
    domain: str

    def to_api(self) -> JSON:
        return {"id": self.id, "name": self.name, "domain": self.domain}


@dataclass
class User:
    id: str
    name: str
    real_name: str
    title: str = ""
    is_bot: bool = False
    bot_id: str | None = None
    app_id: str | None = None
    tz: str = "UTC"
    email: str | None = None

    def to_api(self, team_id: str) -> JSON:
        profile: JSON = {
            "real_name": self.real_name,
            "display_name": self.name,
            "real_name_normalized": self.real_name,
            "display_name_normalized": self.name,
            "title": self.title,
            "team": team_id,
            "image_48": f"https://sandbox.invalid/avatars/{self.id}_48.png",
            "image_72": f"https://sandbox.invalid/avatars/{self.id}_72.png",
        }
        if self.email:
            profile["email"] = self.email
        if self.bot_id:
            profile["bot_id"] = self.bot_id
            profile["api_app_id"] = self.app_id
        return {
            "id": self.id,
            "team_id": team_id,
            "name": self.name,
            "deleted": False,
            "real_name": self.real_name,
            "tz": self.tz,
            "tz_label": "Coordinated Universal Time",
            "tz_offset": 0,
            "profile": profile,
            "is_admin": False,
            "is_owner": False,
            "is_bot": self.is_bot,
            "is_app_user": False,
            "updated": 1732650000,
        }

    def bot_profile(self, team_id: str) -> JSON:
        return {
            "id": self.bot_id,
            "app_id": self.app_id,
            "name": self.name,
            "icons": {"image_48": f"https://sandbox.invalid/avatars/{self.id}_48.png"},
            "deleted": False,
            "updated": 1732650000,
            "team_id": team_id,
        }


@dataclass
class Stream:
    """Slack's streaming state of a message started with chat.startStream."""

    state: Literal["in_progress", "completed"] = "in_progress"
    recipient_user_id: str | None = None
    recipient_team_id: str | None = None
    task_display_mode: str | None = None
    chunks: list[JSON] = field(default_factory=list)
    tasks: dict[str, JSON] = field(default_factory=dict)
    plan_title: str | None = None
    appends: int = 0


@dataclass
class SlackFile:
    """A file someone shared, served at `url_private_download` to a request with a bot token."""

    id: str
    name: str
    mimetype: str
    filetype: str
    content: bytes
    user: str
    created: int
    mode: str = "hosted"  # "snippet" for a Slack text snippet

    def to_api(self, team_id: str, base_url: str) -> JSON:
        url = f"{base_url}/files-pri/{team_id}-{self.id}/{self.name}"
        return {
            "id": self.id,
            "created": self.created,
            "timestamp": self.created,
            "name": self.name,
            "title": self.name,
            "mimetype": self.mimetype,
            "filetype": self.filetype,
            "pretty_type": self.filetype.upper(),
            "user": self.user,
            "mode": self.mode,
            "editable": self.mode == "snippet",
            "is_external": False,
            "is_public": True,
            "size": len(self.content),
            "url_private": url,
            "url_private_download": f"{url}?download=1",
            "permalink": f"{base_url}/files/{self.user}/{self.id}/{self.name}",
        }


@dataclass
class Message:
    channel: str
    ts: str
    text: str
    user: str | None = None
    bot_id: str | None = None
    app_id: str | None = None
    bot_profile: JSON | None = None
    subtype: str | None = None
    thread_ts: str | None = None
    parent_user_id: str | None = None
    blocks: list[JSON] | None = None
    attachments: list[JSON] | None = None
    metadata: JSON | None = None
    client_msg_id: str | None = None
    reply_count: int = 0
    reply_users: list[str] = field(default_factory=list)
    latest_reply: str | None = None
    reactions: dict[str, list[str]] = field(default_factory=dict)
    edited: JSON | None = None
    reply_broadcast: bool = False
    stream: Stream | None = None
    files: list[SlackFile] = field(default_factory=list)
    # Where the files are served from (the fake's own URL), for their url_private links.
    files_base_url: str = ""

    @property
    def is_reply(self) -> bool:
        return self.thread_ts is not None and self.thread_ts != self.ts

    def to_api(self, team_id: str, *, include_metadata: bool = True) -> JSON:
        """The message as Slack returns it from conversations.history/replies and in events."""
        data: JSON = {"type": "message"}
        if self.subtype:
            data["subtype"] = self.subtype
        data["text"] = self.text
        if self.user:
            data["user"] = self.user
        if self.bot_id:
            data["bot_id"] = self.bot_id
            data["app_id"] = self.app_id
            if self.bot_profile:
                data["bot_profile"] = self.bot_profile
        data["ts"] = self.ts
        data["team"] = team_id
        if self.client_msg_id:
            data["client_msg_id"] = self.client_msg_id
        if self.blocks is not None:
            data["blocks"] = self.blocks
        elif self.text and self.subtype is None:
            # Slack turns plain text into a rich_text block on every stored message.
            data["blocks"] = [rich_text_block(self.text, block_id=self.ts.replace(".", "")[-5:])]
        if self.attachments:
            data["attachments"] = self.attachments
        if self.files:
            data["files"] = [f.to_api(team_id, self.files_base_url) for f in self.files]
            data["upload"] = False
        if self.thread_ts:
            data["thread_ts"] = self.thread_ts
            if self.is_reply:
                data["parent_user_id"] = self.parent_user_id
        if self.reply_count:
            data["reply_count"] = self.reply_count
            data["reply_users_count"] = len(self.reply_users)
            data["reply_users"] = list(self.reply_users)
            data["latest_reply"] = self.latest_reply
            data["is_locked"] = False
        if self.reply_broadcast:
            data["subtype"] = "thread_broadcast"
        if self.edited:
            data["edited"] = dict(self.edited)
        if self.reactions:
            data["reactions"] = [
                {"name": name, "users": list(users), "count": len(users)}
                for name, users in self.reactions.items()
            ]
        if include_metadata and self.metadata is not None:
            data["metadata"] = self.metadata
        return data


def rich_text_block(text: str, *, block_id: str) -> JSON:
    return {
        "type": "rich_text",
        "block_id": block_id,
        "elements": [{"type": "rich_text_section", "elements": [{"type": "text", "text": text}]}],
    }


@dataclass
class Channel:
    id: str
    name: str
    members: set[str] = field(default_factory=set)
    is_im: bool = False
    is_private: bool = False
    im_user: str | None = None
    topic: str = ""
    purpose: str = ""
    created: int = 1732650000
    messages: list[Message] = field(default_factory=list)

    @property
    def channel_type(self) -> Literal["channel", "group", "im"]:
        if self.is_im:
            return "im"
        return "group" if self.is_private else "channel"

    def to_api(self, *, viewer: str) -> JSON:
        if self.is_im:
            return {
                "id": self.id,
                "created": self.created,
                "is_im": True,
                "is_org_shared": False,
                "user": self.im_user,
                "is_user_deleted": False,
                "priority": 0,
            }
        return {
            "id": self.id,
            "name": self.name,
            "name_normalized": self.name,
            "is_channel": not self.is_private,
            "is_group": self.is_private,
            "is_im": False,
            "is_mpim": False,
            "is_private": self.is_private,
            "is_archived": False,
            "is_general": False,
            "is_shared": False,
            "is_ext_shared": False,
            "is_org_shared": False,
            "is_member": viewer in self.members,
            "created": self.created,
            "creator": "U0ALICE",
            "num_members": len(self.members),
            "topic": {"value": self.topic, "creator": "", "last_set": 0},
            "purpose": {"value": self.purpose, "creator": "", "last_set": 0},
        }


@dataclass
class Ephemeral:
    channel: str
    user: str
    ts: str
    text: str
    blocks: list[JSON] | None = None
    thread_ts: str | None = None
    source: Literal["api", "response_url", "ack"] = "api"


@dataclass
class View:
    id: str
    user: str
    type: str
    body: JSON
    hash: str
    external_id: str | None = None

    def to_api(self, team_id: str) -> JSON:
        data: JSON = {
            "id": self.id,
            "team_id": team_id,
            "type": self.type,
            "blocks": self.body.get("blocks", []),
            "private_metadata": self.body.get("private_metadata", ""),
            "callback_id": self.body.get("callback_id", ""),
            "state": {"values": {}},
            "hash": self.hash,
            "title": self.body.get("title"),
            "clear_on_close": bool(self.body.get("clear_on_close", False)),
            "notify_on_close": bool(self.body.get("notify_on_close", False)),
            "close": self.body.get("close"),
            "submit": self.body.get("submit"),
            "previous_view_id": None,
            "root_view_id": self.id,
            "app_id": APP_ID,
            "external_id": self.external_id or "",
            "app_installed_team_id": team_id,
            "bot_id": BOT_ID,
        }
        return data


@dataclass
class AssistantThread:
    channel: str
    thread_ts: str
    user: str | None = None
    context: JSON = field(default_factory=dict)
    status: str = ""
    loading_messages: list[str] = field(default_factory=list)
    status_history: list[str] = field(default_factory=list)
    title: str = ""
    suggested_prompts: list[JSON] = field(default_factory=list)
    prompts_title: str | None = None


@dataclass
class Trigger:
    id: str
    user: str
    issued_at: float


class Workspace:
    """Everything the fake knows, with read-back helpers for tests and the sandbox page."""

    def __init__(self, *, seed: bool = True) -> None:
        self.team = Team(id=TEAM_ID, name="Sandbox", domain="sandbox")
        self.bot_user = User(
            id=BOT_USER_ID,
            name="pmteam",
            real_name="pmteam",
            is_bot=True,
            bot_id=BOT_ID,
            app_id=APP_ID,
        )
        self.users: dict[str, User] = {self.bot_user.id: self.bot_user}
        self.channels: dict[str, Channel] = {}
        self.ephemeral_messages: list[Ephemeral] = []
        self.views: dict[str, View] = {}
        self.home_views: dict[str, str] = {}
        self.modal_views: dict[str, list[str]] = {}
        self.assistant_threads: dict[tuple[str, str], AssistantThread] = {}
        self.files: dict[str, SlackFile] = {}
        self.triggers: dict[str, Trigger] = {}
        # Bumped on every change, so a page can poll cheaply for "anything new?".
        self.revision = 0
        self._last_ts_us = 0
        self._view_counter = 0
        self._trigger_counter = 0
        if seed:
            self._seed()

    def _seed(self) -> None:
        self.add_user(User(id="U0ALICE", name="alice", real_name="Alice", title="Engineer"))
        self.add_user(User(id="U0BOB", name="bob", real_name="Bob", title="Project Manager"))
        people = {"U0ALICE", "U0BOB"}
        self.add_channel(
            Channel(
                id="C0ENG",
                name="engineering",
                members=people | {BOT_USER_ID},
                purpose="Engineering work; @pmteam takes tasks here",
            )
        )
        self.add_channel(
            Channel(
                id="C0PM",
                name="pm-coordination",
                members=people | {BOT_USER_ID},
                purpose="Completion reports and standups",
            )
        )
        self.add_channel(Channel(id="C0RANDOM", name="random", members=set(people)))

    # --- identity -------------------------------------------------------------------------

    def touch(self) -> None:
        self.revision += 1

    def next_ts(self) -> str:
        """A Slack-format ts: wall-clock microseconds, strictly increasing, so it is unique."""
        now_us = int(time.time() * 1_000_000)
        self._last_ts_us = max(now_us, self._last_ts_us + 1)
        seconds, micros = divmod(self._last_ts_us, 1_000_000)
        return f"{seconds}.{micros:06d}"

    def next_view_id(self) -> str:
        self._view_counter += 1
        return f"V0SANDBOX{self._view_counter:04d}"

    def issue_trigger(self, user: str) -> str:
        self._trigger_counter += 1
        number = self._trigger_counter
        trigger_id = f"{int(time.time())}{number:04d}.7001.{secrets.token_hex(16)}"
        self.triggers[trigger_id] = Trigger(id=trigger_id, user=user, issued_at=time.time())
        return trigger_id

    # --- people and channels ------------------------------------------------------------

    def add_user(self, user: User) -> User:
        self.users[user.id] = user
        self.touch()
        return user

    def add_channel(self, channel: Channel) -> Channel:
        self.channels[channel.id] = channel
        self.touch()
        return channel

    def user(self, user_id: str) -> User:
        try:
            return self.users[user_id]
        except KeyError:
            raise SandboxError(f"no user {user_id} in the sandbox workspace") from None

    def channel(self, channel_id: str) -> Channel:
        found = self.find_channel(channel_id)
        if found is None:
            raise SandboxError(f"no channel {channel_id} in the sandbox workspace")
        return found

    def find_channel(self, key: str) -> Channel | None:
        """By id, or by name with or without '#', as chat.postMessage accepts."""
        if key in self.channels:
            return self.channels[key]
        name = key.removeprefix("#")
        for channel in self.channels.values():
            if not channel.is_im and channel.name == name:
                return channel
        return None

    def dm_with(self, user_id: str) -> Channel:
        """The bot's DM with a person, created on first use (like conversations.open)."""
        self.user(user_id)
        for channel in self.channels.values():
            if channel.is_im and channel.im_user == user_id:
                return channel
        return self.add_channel(
            Channel(
                id="D" + user_id[1:],
                name=user_id,
                members={user_id, BOT_USER_ID},
                is_im=True,
                im_user=user_id,
                created=int(time.time()),
            )
        )

    # --- read-back --------------------------------------------------------------------------

    def messages(self, channel_id: str, *, include_replies: bool = False) -> list[Message]:
        """Messages in ts order; by default only what shows in the channel (not thread replies)."""
        channel = self.channel(channel_id)
        if include_replies:
            return list(channel.messages)
        return [m for m in channel.messages if not m.is_reply or m.reply_broadcast]

    def message(self, channel_id: str, ts: str) -> Message | None:
        channel = self.find_channel(channel_id)
        if channel is None:
            return None
        for message in channel.messages:
            if message.ts == ts:
                return message
        return None

    def thread(self, channel_id: str, ts: str) -> list[Message]:
        """The parent, then its replies in order."""
        channel = self.channel(channel_id)
        parent = self.message(channel_id, ts)
        if parent is None:
            return []
        root_ts = parent.thread_ts or parent.ts
        return [m for m in channel.messages if m.ts == root_ts or m.thread_ts == root_ts]

    def replies(self, channel_id: str, ts: str) -> list[Message]:
        return self.thread(channel_id, ts)[1:]

    def reactions(self, channel_id: str, ts: str) -> dict[str, list[str]]:
        message = self.message(channel_id, ts)
        return {} if message is None else {k: list(v) for k, v in message.reactions.items()}

    def home_view(self, user_id: str) -> JSON | None:
        view_id = self.home_views.get(user_id)
        return None if view_id is None else self.views[view_id].to_api(self.team.id)

    def modals(self, user_id: str) -> list[JSON]:
        return [self.views[v].to_api(self.team.id) for v in self.modal_views.get(user_id, [])]

    def ephemerals(self, channel_id: str, user: str | None = None) -> list[Ephemeral]:
        return [
            e
            for e in self.ephemeral_messages
            if e.channel == channel_id and (user is None or e.user == user)
        ]

    def assistant_thread(self, channel_id: str, thread_ts: str) -> AssistantThread | None:
        return self.assistant_threads.get((channel_id, thread_ts))

    # --- changes ------------------------------------------------------------------------------

    def add_message(self, message: Message) -> Message:
        """Store a new message; a reply bumps its parent's reply_count like Slack does."""
        channel = self.channel(message.channel)
        if message.thread_ts and message.thread_ts != message.ts:
            parent = self.message(channel.id, message.thread_ts)
            if parent is None:
                raise SandboxError(f"no thread {message.thread_ts} in {channel.id}")
            if parent.is_reply:
                # Replying to a reply lands in the same thread, as in Slack.
                assert parent.thread_ts is not None
                parent = self.message(channel.id, parent.thread_ts)
                assert parent is not None
            message.thread_ts = parent.ts
            message.parent_user_id = parent.user
            parent.thread_ts = parent.ts
            parent.reply_count += 1
            author = message.user or ""
            if author and author not in parent.reply_users:
                parent.reply_users.append(author)
            parent.latest_reply = message.ts
        channel.messages.append(message)
        self.touch()
        return message

    def remove_message(self, message: Message) -> None:
        """Delete a message; a parent with replies stays as a tombstone, as in Slack."""
        channel = self.channel(message.channel)
        if message.reply_count:
            message.subtype = "tombstone"
            message.text = "This message was deleted."
            message.blocks = None
            message.attachments = None
            message.metadata = None
            message.user = "USLACKBOT"
            message.bot_id = None
            message.app_id = None
            message.bot_profile = None
            message.reactions = {}
        else:
            channel.messages.remove(message)
            if message.is_reply and message.thread_ts:
                parent = self.message(channel.id, message.thread_ts)
                if parent is not None:
                    self._recount_replies(channel, parent)
        self.touch()

    def _recount_replies(self, channel: Channel, parent: Message) -> None:
        replies = [m for m in channel.messages if m.is_reply and m.thread_ts == parent.ts]
        parent.reply_count = len(replies)
        parent.reply_users = list(dict.fromkeys(m.user for m in replies if m.user))
        parent.latest_reply = replies[-1].ts if replies else None
        if not replies:
            if parent.subtype == "tombstone":
                channel.messages.remove(parent)
            else:
                parent.thread_ts = None

    def add_ephemeral(self, ephemeral: Ephemeral) -> Ephemeral:
        self.ephemeral_messages.append(ephemeral)
        self.touch()
        return ephemeral

    def assistant_thread_for(self, channel_id: str, thread_ts: str) -> AssistantThread:
        key = (channel_id, thread_ts)
        if key not in self.assistant_threads:
            channel = self.channel(channel_id)
            self.assistant_threads[key] = AssistantThread(
                channel=channel_id, thread_ts=thread_ts, user=channel.im_user
            )
        return self.assistant_threads[key]
