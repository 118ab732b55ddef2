"""Run one sandbox fake alone: `python -m sandbox slack --port P` or `python -m sandbox model`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence

logger = logging.getLogger("sandbox")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    slack = commands.add_parser("slack", help="the fake Slack (Web API, events, Socket Mode)")
    slack.add_argument("--host", default="127.0.0.1")
    slack.add_argument("--port", type=int, default=3001, help="0 picks a free port")
    slack.add_argument("--token", help="accept only this bot token (default: any xoxb-)")
    slack.add_argument("--app-token", help="accept only this app token (default: any xapp-)")
    slack.add_argument("--signing-secret", default="sandbox-secret")
    slack.add_argument("--events-url", help="the app's request URL, e.g. .../slack/events")
    slack.add_argument("--ack-timeout", type=float, default=3.0)
    slack.add_argument(
        "--subscribe",
        action="append",
        default=[],
        metavar="EVENT",
        help="an extra event subscription, e.g. message.channels (repeatable)",
    )

    model = commands.add_parser("model", help="the offline Anthropic Messages API")
    model.add_argument("--host", default="127.0.0.1")
    model.add_argument("--port", type=int, default=3002, help="0 picks a free port")
    model.add_argument(
        "--latency", type=float, default=0.0, help="seconds added before every answer"
    )
    return parser


async def _until_signalled() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()


async def run_slack(args: argparse.Namespace) -> None:
    from sandbox.slack import FakeSlack
    from sandbox.slack.events import DEFAULT_SUBSCRIPTIONS
    from sandbox.web import attach_page

    fake = FakeSlack(
        signing_secret=args.signing_secret,
        token=args.token,
        app_token=args.app_token,
        ack_timeout=args.ack_timeout,
        subscriptions=DEFAULT_SUBSCRIPTIONS | set(args.subscribe),
    )
    attach_page(fake)
    await fake.start(host=args.host, port=args.port)
    logger.info("the workspace's web page is at %s/", fake.url)
    if args.events_url:
        fake.set_event_target(args.events_url)
    logger.info("events go to %s", args.events_url or "a Socket Mode client, once one connects")
    try:
        await _until_signalled()
    finally:
        logger.info("stopping the fake Slack")
        await fake.stop()


async def run_model(args: argparse.Namespace) -> None:
    from sandbox.model import FakeModel

    fake = FakeModel(latency=args.latency)
    await fake.start(args.host, args.port)
    logger.info("fake model ready at %s (Messages API under /v1/)", fake.base_url)
    try:
        await _until_signalled()
    finally:
        logger.info("stopping the fake model")
        await fake.stop()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    runner = run_slack if args.command == "slack" else run_model
    asyncio.run(runner(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
