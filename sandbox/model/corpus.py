"""The offline model's small local library: web references to search and code samples to show."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Reference:
    url: str
    title: str
    snippet: str
    page_age: str | None
    keywords: frozenset[str]


@dataclass(frozen=True)
class CodeSample:
    keywords: frozenset[str]
    language: str
    code: str


def _kw(words: str) -> frozenset[str]:
    return frozenset(words.split())


REFERENCES: tuple[Reference, ...] = (
    Reference(
        url="https://www.postgresql.org/docs/current/indexes-types.html",
        title="PostgreSQL Documentation: 11.2. Index Types",
        snippet=(
            "PostgreSQL provides several index types: B-tree, Hash, GiST, SP-GiST, GIN, BRIN. "
            "By default, CREATE INDEX creates B-tree indexes, which fit the most common "
            "situations: equality and range queries on data that can be sorted."
        ),
        page_age="November 13, 2025",
        keywords=_kw("postgres postgresql index indexes btree gin brin query slow performance sql"),
    ),
    Reference(
        url="https://www.postgresql.org/docs/current/using-explain.html",
        title="PostgreSQL Documentation: 14.1. Using EXPLAIN",
        snippet=(
            "PostgreSQL devises a query plan for each query it receives. Choosing the right plan "
            "to match the query structure and the properties of the data is absolutely critical "
            "for good performance; use EXPLAIN ANALYZE to see the plan and actual row counts."
        ),
        page_age="November 13, 2025",
        keywords=_kw("postgres postgresql explain analyze plan query slow performance tuning sql"),
    ),
    Reference(
        url="https://www.postgresql.org/docs/current/sql-select.html#SQL-FOR-UPDATE-SHARE",
        title="PostgreSQL Documentation: SELECT — The Locking Clause",
        snippet=(
            "With SKIP LOCKED, any selected rows that cannot be immediately locked are skipped. "
            "Skipping locked rows provides an inconsistent view of the data, so this is not "
            "suitable for general purpose work, but can be used to avoid lock contention with "
            "multiple consumers accessing a queue-like table."
        ),
        page_age="November 13, 2025",
        keywords=_kw("postgres postgresql skip locked queue worker job jobs lock contention claim"),
    ),
    Reference(
        url="https://www.2ndquadrant.com/en/blog/what-is-select-skip-locked-for-in-postgresql-9-5/",
        title="What is SELECT … SKIP LOCKED for in PostgreSQL 9.5?",
        snippet=(
            "SKIP LOCKED lets many workers pull items from a queue table concurrently: each "
            "worker locks the row it claims and the others simply skip it, instead of blocking "
            "or failing with serialization errors."
        ),
        page_age="April 27, 2016",
        keywords=_kw("skip locked queue worker workers job jobs postgres postgresql concurrency"),
    ),
    Reference(
        url="https://docs.slack.dev/apis/web-api/rate-limits",
        title="Rate limits | Slack Developer Docs",
        snippet=(
            "Slack uses rate limiting for the Web API to help provide a predictably pleasant "
            "experience. When you exceed a limit you receive HTTP 429 Too Many Requests with a "
            "Retry-After header telling you how many seconds to wait; most methods are tiered, "
            "and chat.postMessage generally allows about one message per second per channel."
        ),
        page_age="October 2, 2025",
        keywords=_kw("slack rate limit limits 429 retry retry-after throttle tier api"),
    ),
    Reference(
        url="https://docs.slack.dev/apis/events-api/",
        title="The Events API | Slack Developer Docs",
        snippet=(
            "Your app should respond to event requests with an HTTP 2xx within three seconds. "
            "If it does not, Slack retries the event up to three times with the "
            "X-Slack-Retry-Num and X-Slack-Retry-Reason headers, so handlers must be idempotent."
        ),
        page_age="September 18, 2025",
        keywords=_kw("slack events event api retry retries ack acknowledge idempotent mention"),
    ),
    Reference(
        url="https://docs.stripe.com/api/idempotent_requests",
        title="Idempotent requests | Stripe API Reference",
        snippet=(
            "The API supports idempotency for safely retrying requests without accidentally "
            "performing the same operation twice. The server saves the status code and body of "
            "the first request made for any given idempotency key and returns the same result "
            "for subsequent requests with that key."
        ),
        page_age="August 5, 2025",
        keywords=_kw("idempotency idempotent key keys retry retries duplicate exactly once api"),
    ),
    Reference(
        url="https://aws.amazon.com/builders-library/timeouts-retries-and-backoff-with-jitter/",
        title="Timeouts, retries, and backoff with jitter — Amazon Builders' Library",
        snippet=(
            "Retries are selfish: they ask for more server time to get a higher chance of "
            "success. Capped exponential backoff with jitter spreads retries out so that a "
            "brief overload does not turn into a sustained one."
        ),
        page_age="March 1, 2024",
        keywords=_kw(
            "retry retries backoff jitter timeout timeouts overload resilience reliability"
        ),
    ),
    Reference(
        url="https://microservices.io/patterns/data/transactional-outbox.html",
        title="Pattern: Transactional outbox — microservices.io",
        snippet=(
            "A service that uses a relational database inserts messages into an outbox table "
            "as part of the local transaction; a separate relay publishes them to the message "
            "broker, so a message is sent if and only if the transaction commits."
        ),
        page_age="January 12, 2024",
        keywords=_kw("outbox transaction transactional message broker event events publish queue"),
    ),
    Reference(
        url="https://www.sqlite.org/wal.html",
        title="Write-Ahead Logging — SQLite",
        snippet=(
            "WAL mode lets readers and a writer proceed concurrently: readers do not block "
            "writers and a writer does not block readers, although there can still be only "
            "one writer at a time."
        ),
        page_age="June 6, 2025",
        keywords=_kw("sqlite wal write ahead log concurrency database embedded lock"),
    ),
    Reference(
        url="https://docs.claude.com/en/docs/build-with-claude/prompt-caching",
        title="Prompt caching — Claude Docs",
        snippet=(
            "Prompt caching resumes from specific prefixes in your prompts: tools, system and "
            "messages up to a cache_control breakpoint. Cache reads are billed at a fraction of "
            "the base input price, and entries live for 5 minutes (or 1 hour) after last use."
        ),
        page_age="October 20, 2025",
        keywords=_kw("prompt cache caching claude anthropic tokens cost llm"),
    ),
    Reference(
        url="https://apscheduler.readthedocs.io/en/3.x/userguide.html",
        title="User guide — APScheduler 3.x documentation",
        snippet=(
            "Jobs are scheduled with triggers such as cron; give each job an explicit id and "
            "use replace_existing=True so that restarting the application does not add a "
            "duplicate copy of a persistent job."
        ),
        page_age="May 14, 2025",
        keywords=_kw("apscheduler scheduler schedule cron job jobs standup daily timer"),
    ),
)

CODE_SAMPLES: tuple[CodeSample, ...] = (
    CodeSample(
        keywords=_kw("queue worker workers job jobs claim skip locked task tasks"),
        language="sql",
        code=(
            "-- claim the oldest queued job; concurrent workers skip rows already claimed\n"
            "UPDATE job SET state = 'running', lease_expires_at = now() + interval '5 minutes'\n"
            "WHERE id = (\n"
            "    SELECT id FROM job WHERE state = 'queued'\n"
            "    ORDER BY created_at\n"
            "    FOR UPDATE SKIP LOCKED\n"
            "    LIMIT 1\n"
            ")\n"
            "RETURNING id;"
        ),
    ),
    CodeSample(
        keywords=_kw("index indexes slow query queries performance explain postgres"),
        language="sql",
        code=(
            "EXPLAIN (ANALYZE, BUFFERS)\n"
            "SELECT * FROM orders WHERE customer_id = $1 ORDER BY created_at DESC LIMIT 20;\n\n"
            "-- a composite index that serves both the filter and the sort\n"
            "CREATE INDEX CONCURRENTLY orders_customer_created_idx\n"
            "    ON orders (customer_id, created_at DESC);"
        ),
    ),
    CodeSample(
        keywords=_kw("rate limit limits limiter throttle 429 burst"),
        language="python",
        code=(
            "class TokenBucket:\n"
            '    """Allows `rate` actions per second with bursts up to `capacity`."""\n\n'
            "    def __init__(self, rate: float, capacity: int) -> None:\n"
            "        self.rate, self.capacity = rate, capacity\n"
            "        self.tokens, self.updated = float(capacity), time.monotonic()\n\n"
            "    def try_take(self) -> bool:\n"
            "        now = time.monotonic()\n"
            "        refill = (now - self.updated) * self.rate\n"
            "        self.tokens = min(self.capacity, self.tokens + refill)\n"
            "        self.updated = now\n"
            "        if self.tokens >= 1:\n"
            "            self.tokens -= 1\n"
            "            return True\n"
            "        return False"
        ),
    ),
    CodeSample(
        keywords=_kw("idempotency idempotent duplicate retry retries webhook webhooks once"),
        language="sql",
        code=(
            "CREATE TABLE processed_request (\n"
            "    idempotency_key text PRIMARY KEY,\n"
            "    response jsonb NOT NULL,\n"
            "    created_at timestamptz NOT NULL DEFAULT now()\n"
            ");\n"
            "-- in the same transaction as the side effect:\n"
            "INSERT INTO processed_request (idempotency_key, response) VALUES ($1, $2)\n"
            "ON CONFLICT (idempotency_key) DO NOTHING;"
        ),
    ),
)

DEFAULT_CODE_SAMPLE = CodeSample(
    keywords=frozenset(),
    language="python",
    code=(
        "async def handle(request: Request, *, session: AsyncSession) -> Response:\n"
        "    payload = RequestBody.model_validate(await request.json())\n"
        "    async with session.begin():\n"
        "        record = await save(session, payload)  # commit before acknowledging\n"
        "    return Response(status=202, body={'id': record.id})"
    ),
)

_STOP_WORDS_TEXT = """
the and for with that this from into about what how why can you your our are was were will
would should could please need want make does use using have has had not but its there their
them they then than also just like when where which who whom
"""
_STOP_WORDS = frozenset(_STOP_WORDS_TEXT.split())


def words(text: str) -> list[str]:
    """Lower-case content words of `text`, in order, without stop words."""
    return [w for w in re.findall(r"[a-z0-9][a-z0-9\-]+", text.lower()) if w not in _STOP_WORDS]


def _score(query_words: set[str], keywords: frozenset[str], title: str) -> int:
    title_words = set(words(title))
    return len(query_words & keywords) * 2 + len(query_words & title_words)


def search(query: str, *, limit: int = 3) -> list[Reference]:
    """References ranked by keyword overlap with `query`; a fixed pair when nothing matches."""
    query_words = set(words(query))
    scored = [(_score(query_words, ref.keywords, ref.title), i) for i, ref in enumerate(REFERENCES)]
    hits = [i for score, i in sorted(scored, key=lambda pair: (-pair[0], pair[1])) if score > 0]
    if not hits:
        # An off-topic question still gets results, as a real search engine would return some.
        hits = [7, 6]
    return [REFERENCES[i] for i in hits[:limit]]


def code_sample(text: str) -> CodeSample:
    """The code sample whose keywords best overlap `text`."""
    text_words = set(words(text))
    best = max(CODE_SAMPLES, key=lambda sample: len(text_words & sample.keywords))
    return best if text_words & best.keywords else DEFAULT_CODE_SAMPLE
