"""The `pmteam` command (also `python -m bot`)."""

from __future__ import annotations

import argparse
import asyncio
import errno
import sys
from collections.abc import Sequence

from bot.config import ConfigError, Settings, load_settings
from bot.runtime.logging import configure_logging


def _settings_or_exit() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        sys.stderr.write(f"pmteam: the configuration has problems:\n{exc}\n")
        raise SystemExit(2) from None


def cmd_db_upgrade(_args: argparse.Namespace) -> int:
    from bot.cli.doctor import display_url
    from storage.migrate import upgrade

    settings = _settings_or_exit()
    configure_logging(log_format=settings.log_format, secrets=settings.secrets())
    upgrade(settings.database_url)
    sys.stdout.write(f"database {display_url(settings.database_url)} is up to date\n")
    return 0


def cmd_run(_args: argparse.Namespace) -> int:
    from bot.app import serve

    settings = _settings_or_exit()
    try:
        settings.check_for_run()
    except ConfigError as exc:
        sys.stderr.write(f"pmteam run: not ready to start:\n{exc}\n")
        return 2
    configure_logging(
        log_format=settings.log_format, level=settings.log_level, secrets=settings.secrets()
    )
    asyncio.run(serve(settings))
    return 0


def cmd_doctor(_args: argparse.Namespace) -> int:
    from bot.cli.doctor import run_checks

    settings = _settings_or_exit()
    configure_logging(log_format=settings.log_format, level="WARNING", secrets=settings.secrets())
    checks = asyncio.run(run_checks(settings))
    for check in checks:
        sys.stdout.write(check.render() + "\n")
    failed = sum(not check.ok for check in checks)
    sys.stdout.write(
        f"\n{len(checks) - failed} ok, {failed} failed\n" if failed else "\nall checks ok\n"
    )
    return 1 if failed else 0


def cmd_sandbox(args: argparse.Namespace) -> int:
    from bot.cli.sandbox import run_sandbox

    try:
        # Only the environment: a `.env` holds a real workspace's settings, not the sandbox's.
        environment = load_settings(_env_file=None)
    except ConfigError as exc:
        sys.stderr.write(f"pmteam sandbox: the environment has problems:\n{exc}\n")
        return 2
    configure_logging(
        log_format=environment.log_format,
        level=environment.log_level,
        secrets=environment.secrets(),
    )
    key = environment.anthropic_api_key
    try:
        asyncio.run(
            run_sandbox(
                port=args.port,
                socket_mode=args.socket_mode,
                reset=args.reset,
                anthropic_api_key=key.get_secret_value() if key else None,
            )
        )
    except ConfigError as exc:
        sys.stderr.write(f"pmteam sandbox: the configuration has problems:\n{exc}\n")
        return 2
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        sys.stderr.write(
            f"pmteam sandbox: port {args.port} is already in use; "
            "pass another with --port (0 picks a free one)\n"
        )
        return 1
    return 0


def cmd_standup(args: argparse.Namespace) -> int:
    from bot.cli.standup import run_standup_command

    settings = _settings_or_exit()
    if settings.slack_bot_token is None:
        sys.stderr.write("pmteam standup: SLACK_BOT_TOKEN is not set (see `pmteam doctor`).\n")
        return 2
    configure_logging(log_format=settings.log_format, level="WARNING", secrets=settings.secrets())
    return asyncio.run(
        run_standup_command(
            settings,
            channel_id=args.channel,
            dry_run=args.dry_run,
            force=args.force,
            out=sys.stdout,
        )
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pmteam",
        description="An AI backend engineer for your Slack team, with PM reports and standups.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = commands.add_parser("run", help="run the bot (Socket Mode or HTTP, from the settings)")
    run.set_defaults(handler=cmd_run)

    doctor = commands.add_parser(
        "doctor", help="check configuration, database, Slack and model access"
    )
    doctor.set_defaults(handler=cmd_doctor)

    sandbox = commands.add_parser(
        "sandbox",
        help="try pmteam in a local Slack workspace in your browser (no Slack app needed)",
        description=(
            "Start a local Slack workspace with a web page, and pmteam wired to it. Uses Claude "
            "when ANTHROPIC_API_KEY is set, an offline demo model otherwise. SQLite in "
            "./pmteam-sandbox.db."
        ),
    )
    sandbox.add_argument(
        "--port", type=int, default=8080, help="the page's port (default 8080; 0 picks one)"
    )
    sandbox.add_argument(
        "--socket-mode",
        action="store_true",
        help="deliver events over Socket Mode instead of signed HTTP requests",
    )
    sandbox.add_argument(
        "--reset", action="store_true", help="delete ./pmteam-sandbox.db first, to start over"
    )
    sandbox.set_defaults(handler=cmd_sandbox)

    standup = commands.add_parser(
        "standup",
        help="post the scheduled standup if it is due (what the scheduler does), or one now",
    )
    standup.add_argument(
        "--channel", metavar="C", help="channel id (default: every standup channel)"
    )
    standup.add_argument(
        "--dry-run", action="store_true", help="print the standup instead of posting it"
    )
    standup.add_argument(
        "--force", action="store_true", help="post one now, whatever the schedule says"
    )
    standup.set_defaults(handler=cmd_standup)

    db = commands.add_parser("db", help="database maintenance")
    db_commands = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    db_upgrade = db_commands.add_parser("upgrade", help="apply database migrations")
    db_upgrade.set_defaults(handler=cmd_db_upgrade)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result: int = args.handler(args)
    except KeyboardInterrupt:
        return 130
    return result


if __name__ == "__main__":
    raise SystemExit(main())
