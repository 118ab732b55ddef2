"""The `pmteam` command (also `python -m bot`)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from bot.config import ConfigError, Settings, load_settings
from bot.logging import configure_logging


def _settings_or_exit() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        sys.stderr.write(f"pmteam: the configuration has problems:\n{exc}\n")
        raise SystemExit(2) from None


def cmd_db_upgrade(_args: argparse.Namespace) -> int:
    from bot.doctor import display_url
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
    from bot.doctor import run_checks

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
