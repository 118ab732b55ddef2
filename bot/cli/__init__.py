"""The `pmteam` command (also `python -m bot`).

Only the standard library is imported here: each command imports what it needs when it runs,
so `pmteam --help` and `pmteam --version` answer at once."""

from __future__ import annotations

import argparse
import asyncio
import errno
import math
import sys
from collections.abc import Awaitable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from bot.cli.database import Migrations
    from bot.config import Settings

SETTINGS_NOTE = (
    "Settings come from the environment and a .env file in the current directory; see .env.example."
)
DATABASE_TIMEOUT = 10.0  # seconds `run`, `standup` and `db upgrade` wait for the database


def _settings_source() -> str:
    dotenv = Path(".env")
    if dotenv.is_file():
        return f"the environment and {dotenv.absolute()}"
    return f"the environment (there is no .env in {Path.cwd()})"


def _fail(command: str, message: str) -> NoReturn:
    sys.stderr.write(f"pmteam {command}: {message}\n")
    raise SystemExit(2)


def _settings_or_exit(command: str) -> Settings:
    from bot.config import ConfigError, load_settings

    try:
        return load_settings()
    except ConfigError as exc:
        _fail(command, f"the settings have problems (read from {_settings_source()}):\n{exc}")


def _load_migrations() -> Migrations:
    """The code's migrations. Alembic is slow to import: the doctor loads it in a thread, and
    only when the database has a schema to compare."""
    from alembic.script import ScriptDirectory

    from bot.cli.database import Migrations
    from storage.migrate import alembic_config

    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    return Migrations(
        head=script.get_current_head(),
        known=frozenset(revision.revision for revision in script.walk_revisions()),
    )


def _check_database(settings: Settings, command: str, *, needs_schema: bool) -> None:
    """Exit with one line when the database can't be used; `needs_schema`: it must already be
    migrated (a command that doesn't migrate)."""
    from bot.cli.database import probe_database

    state = asyncio.run(probe_database(settings.database_url, timeout=DATABASE_TIMEOUT))
    where = f"PMTEAM_DATABASE_URL={state.shown}"
    if state.problem is not None:
        _fail(command, f"{where}: {state.problem}")
    if state.new:
        if needs_schema:
            _fail(
                command,
                f"{where}: there is no pmteam database there yet; run `pmteam db upgrade` "
                "(or start `pmteam run`, which migrates on start)",
            )
        return
    migrations = _load_migrations()
    problem = state.schema_problem(migrations)
    if problem is not None:
        _fail(command, f"{where}: {problem}")
    if needs_schema and not state.up_to_date(migrations):
        _fail(
            command,
            f"{where}: the schema is at revision {state.revision}, this pmteam expects "
            f"{migrations.head}; run `pmteam db upgrade`",
        )


def _fail_on_start(command: str, exc: BaseException, settings: Settings) -> None:
    """Exit with one line for what the operator must fix; return (to re-raise) for a bug."""
    from bot.cli.failures import describe_start_failure

    message = describe_start_failure(exc, settings)
    if message is not None:
        _fail(command, message)


def cmd_db_upgrade(_args: argparse.Namespace) -> int:
    from bot.runtime.logging import configure_logging
    from storage.migrate import upgrade

    settings = _settings_or_exit("db upgrade")
    configure_logging(log_format=settings.log_format, secrets=settings.secrets())
    _check_database(settings, "db upgrade", needs_schema=False)
    try:
        upgrade(settings.database_url)
    except Exception as exc:
        _fail_on_start("db upgrade", exc, settings)
        raise
    sys.stdout.write(f"database {_shown_url(settings)} is up to date\n")
    return 0


def _shown_url(settings: Settings) -> str:
    from bot.config import display_database_url

    return display_database_url(settings.database_url)


def run_settings(settings: Settings, args: argparse.Namespace) -> Settings:
    """The settings with `run --host/--port` in place of PMTEAM_HOST/PMTEAM_PORT."""
    given = {"host": args.host, "port": args.port}
    return settings.model_copy(update={k: v for k, v in given.items() if v is not None})


def cmd_run(args: argparse.Namespace) -> int:
    from bot.app import serve
    from bot.config import ConfigError
    from bot.runtime.logging import configure_logging

    settings = run_settings(_settings_or_exit("run"), args)
    try:
        settings.check_for_run()
    except ConfigError as exc:
        _fail("run", f"not ready to start (settings from {_settings_source()}):\n{exc}")
    configure_logging(
        log_format=settings.log_format, level=settings.log_level, secrets=settings.secrets()
    )
    _check_database(settings, "run", needs_schema=False)
    try:
        asyncio.run(serve(settings))
    except Exception as exc:
        _fail_on_start("run", exc, settings)
        raise
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    # Said before anything slow is imported: the doctor answers at once.
    _print(f"pmteam doctor: checking the settings from {_settings_source()}")
    settings = _settings_or_exit("doctor")
    from bot.cli.doctor import Check, run_checks
    from bot.runtime.logging import configure_logging

    configure_logging(log_format=settings.log_format, level="WARNING", secrets=settings.secrets())

    def report(check: Check) -> None:
        _print(check.render())

    mcp = None
    if settings.mcp_servers:
        from bot.cli.doctor_mcp import check_mcp

        def mcp(checked: Settings) -> Awaitable[list[Check]]:
            return check_mcp(checked, timeout=args.timeout)

    checks = asyncio.run(
        run_checks(
            settings, timeout=args.timeout, migrations=_load_migrations, report=report, mcp=mcp
        )
    )
    failed = sum(not check.ok for check in checks)
    _print(f"\n{len(checks) - failed} ok, {failed} failed" if failed else "\nall checks ok")
    return 1 if failed else 0


def _print(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def cmd_sandbox(args: argparse.Namespace) -> int:
    from bot.cli.sandbox import run_sandbox
    from bot.config import ConfigError, load_settings
    from bot.runtime.logging import configure_logging

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
    from bot.runtime.logging import configure_logging

    settings = _settings_or_exit("standup")
    if settings.slack_bot_token is None and not args.dry_run:
        _fail(
            "standup",
            "SLACK_BOT_TOKEN is not set, so there is no posting; `pmteam standup --dry-run` "
            "prints the standup without it (see `pmteam doctor`)",
        )
    configure_logging(log_format=settings.log_format, level="WARNING", secrets=settings.secrets())
    _check_database(settings, "standup", needs_schema=True)
    try:
        return asyncio.run(
            run_standup_command(
                settings,
                channel_id=args.channel,
                dry_run=args.dry_run,
                force=args.force,
                out=sys.stdout,
            )
        )
    except Exception as exc:
        _fail_on_start("standup", exc, settings)
        raise


def cmd_eval(args: argparse.Namespace) -> int:
    settings = _settings_or_exit("eval")
    if settings.anthropic_api_key is None and not args.offline:
        _fail(
            "eval",
            "ANTHROPIC_API_KEY is not set: set ANTHROPIC_API_KEY or pass --offline (the "
            "offline fake model, as CI runs it)",
        )
    from agents.evaluation import Limits
    from bot.cli.eval import run_eval_command, select_cases
    from bot.runtime.logging import configure_logging

    try:
        cases = select_cases(args.case or [])
    except ValueError as exc:
        _fail("eval", str(exc))
    if args.json is not None and not args.json.parent.is_dir():
        _fail("eval", f"--json {args.json}: there is no directory {args.json.parent}")
    # Warnings only, and on stderr with the progress: stdout is the table.
    configure_logging(
        log_format=settings.log_format,
        level="WARNING",
        secrets=settings.secrets(),
        stream=sys.stderr,
    )
    return asyncio.run(
        run_eval_command(
            settings,
            offline=args.offline,
            cases=cases,
            limits=Limits(max_cost_usd=args.max_cost, max_seconds=args.max_seconds),
            threshold=args.threshold,
            concurrency=args.concurrency,
            json_path=args.json,
            out=sys.stdout,
            err=sys.stderr,
        )
    )


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port number (0-65535)")
    return port


def _seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < seconds <= 300:
        raise argparse.ArgumentTypeError("give a number of seconds between 0 and 300")
    return seconds


def _float(text: str) -> float:
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number")
    return number


def _threshold(text: str) -> float:
    threshold = _float(text)
    if threshold < 0:
        raise argparse.ArgumentTypeError("the threshold is a score: 0 or more (1 is every check)")
    return threshold


def _limit(text: str) -> float:
    limit = _float(text)
    if limit <= 0:
        raise argparse.ArgumentTypeError("a limit must be above 0")
    return limit


def _concurrency(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 8:
        raise argparse.ArgumentTypeError("give a number of cases at a time from 1 to 8")
    return int(text)


class _Version(argparse.Action):
    """`--version`, read from the installed package only when asked for."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            found = version("pmteam")
        except PackageNotFoundError:
            found = "unknown (the package is not installed)"
        sys.stdout.write(f"pmteam {found}\n")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pmteam",
        description="An AI backend engineer for your Slack team, with PM reports and standups.",
        epilog=SETTINGS_NOTE,
    )
    parser.add_argument("--version", action=_Version, help="print pmteam's version and exit")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = commands.add_parser(
        "run",
        help="run the bot (Socket Mode or HTTP, from the settings)",
        description=(
            "Run the bot: Socket Mode when SLACK_APP_TOKEN is set, HTTP otherwise. Migrates the "
            "database on start."
        ),
        epilog=SETTINGS_NOTE,
    )
    run.add_argument(
        "--host",
        help="listen on this address instead of PMTEAM_HOST (0.0.0.0 in a container)",
    )
    run.add_argument("--port", type=_port, help="listen on this port instead of PMTEAM_PORT")
    run.set_defaults(handler=cmd_run)

    doctor = commands.add_parser(
        "doctor",
        help="check configuration, database, Slack and model access",
        description=(
            "Check the settings, the database, the Slack app (token, scopes, coordination "
            "channel) and model access. Changes nothing: creates no database and runs no "
            "migration. Exit status 1 when a check fails."
        ),
        epilog=SETTINGS_NOTE,
    )
    doctor.add_argument(
        "--timeout",
        type=_seconds,
        default=2.0,
        metavar="SECONDS",
        help="how long each check waits for Slack, Anthropic or the database (default 2)",
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
        epilog=(
            "Needs no settings: it reads only ANTHROPIC_API_KEY (and log settings) from the "
            "environment, and no .env file."
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
        description=(
            "Post the scheduled standup if it is due (what the scheduler does), one now with "
            "--force, or print it with --dry-run (which needs only the database)."
        ),
        epilog=SETTINGS_NOTE,
    )
    standup.add_argument(
        "--channel", metavar="C", help="channel id (default: every standup channel)"
    )
    standup.add_argument(
        "--dry-run",
        action="store_true",
        help="print the standup instead of posting it; needs no SLACK_BOT_TOKEN",
    )
    standup.add_argument(
        "--force", action="store_true", help="post one now, whatever the schedule says"
    )
    standup.set_defaults(handler=cmd_standup)

    evaluation = commands.add_parser(
        "eval",
        help="score the agents on a set of backend tasks, to gate prompt and model changes",
        description=(
            "Run the built-in backend tasks (a schema review, an API design, a queue, a slow "
            "query, a migration, a security question, a vague request, an off-topic one) "
            "through the real engineer, researcher and report, and score each by checks. "
            "Prints a table; exit status 1 when the score is under --threshold or a case "
            "raised. Uses ANTHROPIC_API_KEY and the PMTEAM_*_MODEL settings, or --offline."
        ),
        epilog=SETTINGS_NOTE + " Needs no Slack settings and no database.",
    )
    evaluation.add_argument(
        "--offline",
        action="store_true",
        help="run on the in-process offline fake model: no key, nothing spent (for CI)",
    )
    evaluation.add_argument(
        "--case",
        action="append",
        metavar="NAME",
        help="run only this case (repeatable; default: all)",
    )
    evaluation.add_argument(
        "--threshold",
        type=_threshold,
        default=0.85,
        metavar="SCORE",
        help="the lowest passing score, the mean of the cases' shares of checks (default 0.85)",
    )
    evaluation.add_argument(
        "--max-cost",
        type=_limit,
        default=0.07,
        metavar="USD",
        help="the most one case may cost in dollars, report included (default 0.07)",
    )
    evaluation.add_argument(
        "--max-seconds",
        type=_limit,
        default=180.0,
        metavar="SECONDS",
        help="the longest one case may take (default 180)",
    )
    evaluation.add_argument(
        "--concurrency",
        type=_concurrency,
        default=1,
        metavar="N",
        help="cases run at a time (default 1)",
    )
    evaluation.add_argument(
        "--json", type=Path, metavar="PATH", help="also write the per-case results as JSON"
    )
    evaluation.set_defaults(handler=cmd_eval)

    db = commands.add_parser("db", help="database maintenance", epilog=SETTINGS_NOTE)
    db_commands = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    db_upgrade = db_commands.add_parser(
        "upgrade",
        help="apply database migrations",
        description="Create the database if needed and migrate it to this pmteam's schema.",
        epilog=SETTINGS_NOTE,
    )
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
