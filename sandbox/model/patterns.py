"""Backend patterns the demo model answers from, and how a request picks one."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from sandbox.model import corpus
from sandbox.model.ask import Ask, word_set
from sandbox.model.corpus import Reference

DeliverableKind = Literal["system", "api_integration", "data_storage"]
HandoffKind = Literal["needed_from_others", "infrastructure_blocker", "integration_endpoint_ready"]


@dataclass(frozen=True)
class Pattern:
    """One well-known way to solve a kind of backend problem.

    Prose fields are templates with slots filled from the request: {subject} (what the request
    is about, e.g. "the /v1/invoices endpoint"), {table} (e.g. "the orders table"), {name}
    (the bare table name) and {target} (where a migration goes, e.g. "PostgreSQL"). The code
    sample has one slot, {name}, replaced as text (code has braces of its own).
    """

    key: str
    title: str
    keywords: tuple[str, ...]  # single words match a request's words; phrases its text
    task: str  # the report's task line when the request is a question
    lead: str  # the recommendation, in one or two sentences
    approach: tuple[str, ...]  # 3-5 steps
    tradeoffs: tuple[str, ...]
    at_scale: str  # what changes at ten times the load: the answer to a "what if it grows"
    language: str
    code: str
    references: tuple[Reference, ...]
    finding: str  # what the references support, together
    research_objective: str
    research_questions: tuple[str, ...]
    deliverables: tuple[tuple[DeliverableKind, str], ...]
    handoffs: tuple[tuple[HandoffKind, str], ...] = ()
    subject: str = "the service"
    table: str = "the table behind it"
    name: str = "orders"
    risk: int = 7  # risk_assessment as this kind of work usually rates (9 = low risk)
    risk_reason: str = ""  # why, when `risk` is below 6
    risk_mitigation: str = ""
    estimate: str = "2-3 days"  # the remaining effort when the work is still in progress


PAGINATION = Pattern(
    key="pagination",
    title="Keyset (cursor) pagination",
    keywords=(
        "page",
        "pages",
        "paginate",
        "paginated",
        "pagination",
        "paging",
        "offset",
        "cursor",
        "cursors",
        "keyset",
        "scroll",
        "next page",
        "page size",
        "infinite scroll",
    ),
    task="Keyset pagination for {subject}",
    lead=(
        "Deep pages of {subject} slow down because OFFSET makes the database read and throw "
        "away every row before the page; switch to keyset (cursor) pagination so page 50 "
        "costs the same as page 1."
    ),
    approach=(
        "Give {subject} a stable, unique sort order — `created_at DESC, id DESC` — so that "
        "rows written between two requests cannot shift a page.",
        "Return an opaque `next_cursor` (the last row's `created_at` and `id`, base64-encoded) "
        "with `has_more`, and read the next page with a row comparison instead of OFFSET.",
        "Back the query with a composite index on {table} in exactly that order, and cap "
        "`limit` at 100 so no single page can be expensive.",
        "Keep page-number requests working for one release, log which clients still send "
        "them, and retire OFFSET once they have moved to the cursor.",
        "Measure p95 latency of page 1 against page 50 before and after the change.",
    ),
    tradeoffs=(
        "Clients can no longer jump to page 37; they follow `next_cursor` (fine for feeds and "
        "exports, worth confirming for admin screens that show page numbers).",
        "Every sort order you allow needs its own index, so offer two or three sorts, not any "
        "column.",
        "A total count is a separate, expensive query: return it only when asked for, or an "
        "estimate.",
    ),
    at_scale=(
        "At ten times the rows each page still costs one index range scan, so pagination "
        "itself stays flat; what grows is the index on {table} and any total count, which "
        "should become an estimate or a cached number."
    ),
    language="sql",
    code=(
        "-- the index that serves the sort order\n"
        "CREATE INDEX CONCURRENTLY {name}_created_id_idx ON {name} (created_at DESC, id DESC);\n"
        "\n"
        "-- the next page: everything after the cursor's row, in the same order\n"
        "SELECT id, created_at, status, total\n"
        "FROM {name}\n"
        "WHERE (created_at, id) < (:cursor_created_at, :cursor_id)\n"
        "ORDER BY created_at DESC, id DESC\n"
        "LIMIT :limit;"
    ),
    references=(
        corpus.POSTGRES_LIMIT_OFFSET,
        corpus.USE_THE_INDEX_LUKE_PAGING,
        corpus.STRIPE_PAGINATION,
    ),
    finding=(
        "keyset (seek) pagination keeps every page about as fast as the first, where OFFSET "
        "gets slower with every page skipped, at the cost of jumping to arbitrary pages"
    ),
    research_objective=(
        "Find how teams keep deep pages of {subject} fast: keyset (cursor) pagination "
        "compared with OFFSET, and how they move existing clients over."
    ),
    research_questions=(
        "How much does OFFSET cost on deep pages, and what does keyset pagination cost instead?",
        "What cursor format and response shape do well-known public APIs use?",
        "How do teams migrate clients from page numbers to cursors?",
    ),
    deliverables=(
        (
            "api_integration",
            "Cursor pagination contract for {subject}: `limit` (at most 100), `next_cursor` "
            "and `has_more`",
        ),
        (
            "data_storage",
            "Composite index on {table} (created_at DESC, id DESC) that serves the page query",
        ),
    ),
    handoffs=(
        (
            "needed_from_others",
            "Client teams to page with `next_cursor` instead of page numbers before OFFSET "
            "paging is retired",
        ),
    ),
    subject="the list endpoint",
    table="the table behind it",
    name="invoices",
)

INDEXING = Pattern(
    key="indexing",
    title="Index for the query you run",
    keywords=(
        "index",
        "indexes",
        "indices",
        "indexing",
        "indexed",
        "slow",
        "slower",
        "query",
        "queries",
        "explain",
        "latency",
        "p95",
        "p99",
        "faster",
        "performance",
        "seq scan",
        "full table scan",
        "query plan",
        "n+1",
        "timeout",
        "timeouts",
    ),
    task="Speed up {subject} with the right index",
    lead=(
        "Measure before changing anything: find the query that makes {subject} slow, read its "
        "plan with EXPLAIN (ANALYZE, BUFFERS), then add the one composite index that serves "
        "both its filter and its sort."
    ),
    approach=(
        "Find the queries that cost the most in total from `pg_stat_statements` (calls × mean "
        "time), not the one that looked slow once.",
        "Run EXPLAIN (ANALYZE, BUFFERS) on realistic data and compare estimated with actual "
        "rows: a Seq Scan that removes millions of rows, or a large misestimate, is the lead.",
        "Add a composite index on {table} with the equality columns first and the range or "
        "sort column last, built with CREATE INDEX CONCURRENTLY so writes are not blocked.",
        "Re-run the plan to confirm an Index Scan, then watch the query's p95 and the "
        "table's write latency for a day; drop indexes that nothing uses.",
    ),
    tradeoffs=(
        "Every index slows writes to {table} and takes disk; one index per access pattern is "
        "the budget, not one per column.",
        "CREATE INDEX CONCURRENTLY takes longer and can leave an INVALID index if it fails: "
        "check `pg_index.indisvalid` and retry.",
        "Stale statistics can make a good index look unused: ANALYZE after large loads.",
    ),
    at_scale=(
        "At ten times the rows, a well-chosen index keeps the query at a few page reads; the "
        "next limits are the index's size in memory and write amplification on {table}, "
        "which is when partitioning by time or read replicas come in."
    ),
    language="sql",
    code=(
        "EXPLAIN (ANALYZE, BUFFERS)\n"
        "SELECT id, status, created_at FROM {name}\n"
        "WHERE customer_id = $1 ORDER BY created_at DESC LIMIT 20;\n"
        "\n"
        "-- equality column first, then the sort column: one index for filter and order\n"
        "CREATE INDEX CONCURRENTLY {name}_customer_created_idx\n"
        "    ON {name} (customer_id, created_at DESC);"
    ),
    references=(
        corpus.POSTGRES_EXPLAIN,
        corpus.POSTGRES_MULTICOLUMN_INDEXES,
        corpus.POSTGRES_INDEX_TYPES,
    ),
    finding=(
        "reading the actual plan comes first, and a multicolumn B-tree index helps most when "
        "the query constrains its leading columns"
    ),
    research_objective=(
        "Confirm how to diagnose and index the slow query on {subject}, and what the index "
        "costs on writes."
    ),
    research_questions=(
        "Which plan nodes and estimate errors point at a missing index?",
        "How should a composite index order equality and range columns?",
        "What does building an index concurrently cost on a busy table?",
    ),
    deliverables=(
        ("data_storage", "Composite index on {table} matching the slow query's filter and sort"),
        ("system", "Before-and-after plan and p95 latency check for the query on {subject}"),
    ),
    subject="the slow path",
    table="the table it reads",
    name="orders",
)

CACHING = Pattern(
    key="caching",
    title="Cache-aside with bounded staleness",
    keywords=(
        "cache",
        "caches",
        "caching",
        "cached",
        "redis",
        "memcached",
        "cdn",
        "ttl",
        "stale",
        "invalidation",
        "invalidate",
        "cache-aside",
        "hit rate",
        "warm",
        "stampede",
    ),
    task="Caching for {subject}",
    lead=(
        "Put a cache-aside layer in front of {subject}, decide how stale each value may be, "
        "and invalidate on write for the values that must not be stale."
    ),
    approach=(
        "List what {subject} reads most and how stale each may be: product text can be "
        "minutes old, a price or a balance cannot.",
        "Read through Redis with cache-aside: on a miss, load from the database, write the "
        "value with a TTL plus random jitter, and return it.",
        "On every write to {table}, delete the key in the same code path (after the commit), "
        "so the next read reloads it; keep the TTL as a safety net.",
        "Protect hot keys from stampedes with a short lock or request coalescing, and track "
        "hit rate and miss latency per key family.",
    ),
    tradeoffs=(
        "Delete-on-write has a small race (a reader can repopulate an old value); a version "
        "in the key or a short TTL bounds it.",
        "A cache hides a slow query rather than fixing it: the database must still survive a "
        "cold cache after a restart.",
        "Redis becomes a dependency: decide whether a Redis outage means slower pages or errors.",
    ),
    at_scale=(
        "At ten times the traffic the hit rate matters more than the cache size: watch hot "
        "keys (one key per shard can saturate), and put HTTP caching or a CDN in front of "
        "{subject} for anything public."
    ),
    language="python",
    code=(
        "async def cached_{name}(redis: Redis, db: Database, key_id: int) -> dict:\n"
        '    key = f"{name}:{key_id}:v1"\n'
        "    if (hit := await redis.get(key)) is not None:\n"
        "        return json.loads(hit)\n"
        "    row = await db.fetch_one(key_id)  # a miss: load from the source of truth\n"
        "    ttl = 300 + random.randint(0, 60)  # jitter, so keys don't expire together\n"
        "    await redis.set(key, json.dumps(row), ex=ttl)\n"
        "    return row"
    ),
    references=(corpus.AWS_CACHING_PATTERNS, corpus.REDIS_EXPIRE, corpus.MDN_HTTP_CACHING),
    finding=(
        "cache-aside with a TTL is the common default, write-through trades extra writes for "
        "freshness, and TTL jitter keeps keys from expiring together"
    ),
    research_objective=(
        "Compare caching strategies for {subject} (cache-aside, write-through, HTTP "
        "caching) and how teams bound staleness and avoid stampedes."
    ),
    research_questions=(
        "When do teams choose cache-aside over write-through?",
        "How do they invalidate on write without serving stale values?",
        "How do they prevent cache stampedes on hot keys?",
    ),
    deliverables=(
        ("system", "Cache-aside layer for {subject} with per-key TTLs and invalidation on write"),
        ("data_storage", "Redis key scheme and TTL table for the cached values"),
    ),
    handoffs=(
        (
            "needed_from_others",
            "Product to confirm how stale each cached value may be (prices, stock, text)",
        ),
    ),
    subject="the read path",
    name="product",
)

WEBHOOKS = Pattern(
    key="webhooks",
    title="Verified, idempotent webhook handling",
    keywords=(
        "webhook",
        "webhooks",
        "callback",
        "callbacks",
        "signature",
        "signing",
        "hmac",
        "stripe",
        "deliveries",
        "delivery",
        "subscriber",
        "subscribers",
    ),
    task="Webhook handling for {subject}",
    lead=(
        "Make {subject} verify every delivery's signature, acknowledge within a second, and "
        "do the work from a queue, de-duplicated by event id — senders retry, so duplicates "
        "and out-of-order events are normal."
    ),
    approach=(
        "Verify the signature header against the raw request body with the endpoint's "
        "signing secret, and reject deliveries with old timestamps to stop replays.",
        "Insert the event id into a `webhook_event` table with a unique constraint; a "
        "conflict means a retry of something already accepted, so return 200 and stop.",
        "Enqueue the event and return 2xx immediately; a worker applies it, fetching the "
        "current object from the provider's API when ordering matters.",
        "Alert on signature failures and on the age of the oldest unprocessed event, and "
        "keep a replay path for events that failed.",
    ),
    tradeoffs=(
        "Acknowledging before processing means failures surface in your queue, not in the "
        "sender's dashboard: the retry and alerting are yours.",
        "Re-fetching the object costs an API call per event but makes ordering irrelevant.",
    ),
    at_scale=(
        "At ten times the deliveries, the endpoint stays cheap (verify, insert, enqueue); "
        "size the worker pool on queue age, and partition the events table by month."
    ),
    language="python",
    code=(
        '@router.post("/webhooks/provider")\n'
        "async def receive(request: Request, db: Database, queue: Queue) -> Response:\n"
        "    body = await request.body()\n"
        '    signature = request.headers["Signature"]\n'
        "    event = verify_signature(body, signature, secret=SIGNING_SECRET)\n"
        "    inserted = await db.execute(\n"
        '        "INSERT INTO webhook_event (id, type, payload) VALUES ($1, $2, $3) "\n'
        '        "ON CONFLICT (id) DO NOTHING", event.id, event.type, body,\n'
        "    )\n"
        "    if inserted:  # a retry of an accepted event is acknowledged and ignored\n"
        '        await queue.enqueue("apply_webhook_event", event.id)\n'
        "    return Response(status_code=200)"
    ),
    references=(
        corpus.STRIPE_WEBHOOKS,
        corpus.STANDARD_WEBHOOKS,
        corpus.GITHUB_WEBHOOK_PRACTICES,
    ),
    finding=(
        "receivers should verify signatures, acknowledge fast and process asynchronously, "
        "and de-duplicate by delivery id because senders retry"
    ),
    research_objective=(
        "Establish how teams build {subject} so that deliveries are verified, acknowledged "
        "fast and processed exactly once in effect."
    ),
    research_questions=(
        "How should signatures and replay windows be checked?",
        "How do receivers de-duplicate retried and out-of-order deliveries?",
    ),
    deliverables=(
        ("api_integration", "Webhook endpoint for {subject} with signature verification"),
        ("data_storage", "`webhook_event` table keyed by event id for de-duplication and replay"),
        ("system", "Queue worker that applies events, with alerting on queue age"),
    ),
    handoffs=(
        (
            "integration_endpoint_ready",
            "The webhook URL to register with the provider once it is deployed",
        ),
    ),
    subject="the webhook receiver",
    name="webhook_event",
)

QUEUES = Pattern(
    key="queues",
    title="Job queue with leased claims and idempotent consumers",
    keywords=(
        "queue",
        "queues",
        "job",
        "jobs",
        "worker",
        "workers",
        "consumer",
        "consumers",
        "kafka",
        "sqs",
        "rabbitmq",
        "celery",
        "skip locked",
        "background",
        "enqueue",
        "dequeue",
        "dead-letter",
        "dlq",
        "claim",
        "claims",
        "lease",
        "drainer",
        "broker",
        "consumer lag",
        "at least once",
        "at-least-once",
        "throughput",
    ),
    task="Job queue design for {subject}",
    lead=(
        "For {subject}, treat delivery as at-least-once and make the work idempotent: claim "
        "each job with a lease (or commit the offset only after the work is done), so a job "
        "that runs twice does no harm."
    ),
    approach=(
        "Claim jobs with `FOR UPDATE SKIP LOCKED` (or the broker's visibility timeout), "
        "setting a lease that expires, so a crashed worker's job is picked up again.",
        "Key every job's effect by an idempotency key stored in the same transaction as the "
        "effect, so a redelivery finds the key and stops.",
        "Retry failures with capped exponential backoff and jitter, then move the job to a "
        "dead-letter state after N attempts, with an alert.",
        "Measure throughput, the age of the oldest queued job and consumer lag; scale "
        "workers on queue age, not CPU.",
        "Move to Kafka or SQS only when the numbers say so: a PostgreSQL table handles "
        "thousands of jobs a minute with a handful of workers.",
    ),
    tradeoffs=(
        "A database-backed queue keeps jobs and data in one transaction, but every claim is "
        "a write on the primary; a broker scales further and costs a second system.",
        "Kafka orders messages per partition only, and a slow message blocks its partition; "
        "SQS has no ordering outside FIFO queues, which have lower throughput.",
        "Exactly-once delivery does not exist end to end: exactly-once effects come from "
        "idempotent consumers.",
    ),
    at_scale=(
        "At ten times the jobs, the claim query's writes on the primary become the limit "
        "before the workers do; batch claims, partition the jobs table by state, or move the "
        "hot path to SQS or Kafka with the same idempotency keys."
    ),
    language="sql",
    code=(
        "-- claim the oldest queued job; concurrent workers skip rows already claimed\n"
        "UPDATE {name} SET state = 'running', lease_expires_at = now() + interval '5 minutes'\n"
        "WHERE id = (\n"
        "    SELECT id FROM {name}\n"
        "    WHERE state = 'queued' OR (state = 'running' AND lease_expires_at < now())\n"
        "    ORDER BY created_at\n"
        "    FOR UPDATE SKIP LOCKED\n"
        "    LIMIT 1\n"
        ")\n"
        "RETURNING id, payload;"
    ),
    references=(
        corpus.POSTGRES_SKIP_LOCKED,
        corpus.KAFKA_DELIVERY_SEMANTICS,
        corpus.SQS_VISIBILITY_TIMEOUT,
    ),
    finding=(
        "every common queue delivers at least once — SKIP LOCKED claims, Kafka offsets "
        "committed after processing, SQS visibility timeouts — so consumers must tolerate "
        "duplicates"
    ),
    research_objective=(
        "Compare how teams run {subject}: a PostgreSQL table with SKIP LOCKED against "
        "SQS and Kafka, their delivery guarantees and the throughput each sustains."
    ),
    research_questions=(
        "What delivery guarantee does each option give, and how do consumers stay idempotent?",
        "What throughput do teams report for a SKIP LOCKED table before moving to a broker?",
        "How do they handle poison messages and dead-letter queues?",
    ),
    deliverables=(
        ("system", "Worker claim loop with leases, retries with backoff and a dead-letter state"),
        ("data_storage", "Jobs table with state, lease and idempotency-key columns"),
    ),
    subject="the job queue",
    table="the jobs table",
    name="job",
)

IDEMPOTENCY = Pattern(
    key="idempotency",
    title="Idempotency keys for safe retries",
    keywords=(
        "idempotency",
        "idempotent",
        "idempotency key",
        "retry",
        "retries",
        "retried",
        "retrying",
        "duplicate",
        "duplicates",
        "twice",
        "double",
        "double-charge",
        "double-charges",
        "double charge",
        "exactly once",
        "exactly-once",
        "refund",
        "refunds",
        "payment",
        "payments",
        "charge",
        "charges",
    ),
    task="Idempotent retries for {subject}",
    lead=(
        "Make every write to {subject} retry-safe with an `Idempotency-Key` header: the first "
        "request's result is stored under the key, and a retry gets that stored result back "
        "instead of a second charge or refund."
    ),
    approach=(
        "Require an `Idempotency-Key` header (a client-generated UUID) on every POST to "
        "{subject}; reject a missing key with 400.",
        "In the same transaction as the side effect, insert the idempotency key with a hash "
        "of the request body; the unique constraint makes concurrent duplicates collide.",
        "On a repeated key, return the stored status and body; if the body hash differs, "
        "answer 422, and if the first request is still running, 409.",
        "Expire keys after 24 hours, and have clients retry with the same key using "
        "exponential backoff with jitter.",
    ),
    tradeoffs=(
        "Storing responses costs a row per write; 24 hours of keys is usually small, but "
        "purge them on schedule.",
        "Calls to third parties inside the request need their own idempotency keys, derived "
        "from yours, or a retry can still repeat them.",
    ),
    at_scale=(
        "At ten times the writes, the key table's insert rate follows the write rate; "
        "partition it by day so expiry is a DROP, and keep the lookup on the primary key."
    ),
    language="sql",
    code=(
        "CREATE TABLE idempotency_key (\n"
        "    key          text PRIMARY KEY,\n"
        "    request_hash text NOT NULL,\n"
        "    status_code  integer,\n"
        "    response     jsonb,\n"
        "    created_at   timestamptz NOT NULL DEFAULT now()\n"
        ");\n"
        "-- in the same transaction as the side effect on {name}:\n"
        "INSERT INTO idempotency_key (key, request_hash) VALUES ($1, $2)\n"
        "ON CONFLICT (key) DO NOTHING\n"
        "RETURNING key;  -- no row back: a retry, so return the stored response"
    ),
    references=(
        corpus.STRIPE_IDEMPOTENCY,
        corpus.AWS_IDEMPOTENT_APIS,
        corpus.IDEMPOTENCY_KEY_HEADER,
    ),
    finding=(
        "a client-supplied idempotency key, stored with the first result and checked against "
        "the request's parameters, makes retries safe"
    ),
    research_objective=(
        "Establish how payment-grade APIs make retries of {subject} safe with idempotency "
        "keys, and how they answer a reused or in-flight key."
    ),
    research_questions=(
        "What does the server store per key, and for how long?",
        "What should a reused key with a different body, or a request still in flight, get?",
    ),
    deliverables=(
        (
            "api_integration",
            "`Idempotency-Key` contract for {subject}, with 409 and 422 for in-flight and "
            "mismatched retries",
        ),
        ("data_storage", "`idempotency_key` table storing each key's request hash and response"),
    ),
    handoffs=(
        (
            "needed_from_others",
            "Client teams to send an `Idempotency-Key` on every POST and reuse it on retries",
        ),
    ),
    subject="the API",
    name="payments",
)

MIGRATIONS = Pattern(
    key="migrations",
    title="Expand, migrate, contract: a zero-downtime migration",
    keywords=(
        "migrate",
        "migrating",
        "migration",
        "migrations",
        "zero-downtime",
        "downtime",
        "backfill",
        "alter table",
        "add column",
        "drop column",
        "rename",
        "dual write",
        "dual-write",
        "cutover",
        "schema change",
        "rollback",
        "columns",
        "split",
        "splits",
    ),
    task="Zero-downtime migration of {table}",
    lead=(
        "Migrate {table} in small, reversible steps — expand, dual-write, backfill, switch "
        "reads, contract — so every deploy in between is safe to roll back and nothing locks "
        "the table for long."
    ),
    approach=(
        "Expand: create the new shape of {table} in {target} next to the old one, with "
        "nothing reading it yet; every change is additive (new columns nullable, constraints "
        "added NOT VALID and validated later).",
        "Dual-write: write every change to both places from one code path (or replicate "
        "changes with CDC), behind a flag you can turn off.",
        "Backfill existing rows in batches of a few thousand, keyed by primary key and "
        "throttled on replication lag; verify with row counts and per-range checksums.",
        "Switch reads to the new place behind the same flag, watch error rates and p95 for "
        "a few days, then stop writing to the old place.",
        "Contract last: drop the old columns or table only after a release in which nothing "
        "reads them, and keep the rollback path rehearsed until then.",
    ),
    tradeoffs=(
        "Dual-writing doubles write load and can diverge if one write fails: reconcile with "
        "the checksum job rather than trusting it.",
        "Each step is its own deploy, so the whole migration takes days of calendar time, "
        "not one maintenance window.",
        "Long-running transactions during the backfill hold back vacuum; keep batches short.",
    ),
    at_scale=(
        "At ten times the rows the steps are the same but the backfill is the long pole: "
        "run it with more parallel ranges, and size the batch on replication lag, not time."
    ),
    language="sql",
    code=(
        "-- 1. expand: additive only, no long locks\n"
        "ALTER TABLE {name} ADD COLUMN new_value text;\n"
        "ALTER TABLE {name} ADD CONSTRAINT {name}_new_value_present\n"
        "    CHECK (new_value IS NOT NULL) NOT VALID;\n"
        "\n"
        "-- 2. backfill in short batches, keyed by id (repeat until no rows are updated)\n"
        "UPDATE {name} SET new_value = old_value\n"
        "WHERE id IN (SELECT id FROM {name} WHERE new_value IS NULL ORDER BY id LIMIT 5000);\n"
        "\n"
        "-- 3. validate without blocking writes, once the backfill is done\n"
        "ALTER TABLE {name} VALIDATE CONSTRAINT {name}_new_value_present;"
    ),
    references=(corpus.STRIPE_ONLINE_MIGRATIONS, corpus.POSTGRES_ALTER_TABLE, corpus.AWS_DMS),
    finding=(
        "online migrations go through dual writes, a verified backfill, a read switch and "
        "only then removal of the old data, with constraints validated separately to avoid "
        "long locks"
    ),
    research_objective=(
        "Find how teams migrate {table} without downtime: the expand/contract steps, "
        "dual writes or CDC, backfill verification and the rollback path."
    ),
    research_questions=(
        "Which migration steps are safe to roll back, and which are not?",
        "How do teams verify a backfill before switching reads?",
        "Which ALTER TABLE forms take long locks, and how are they avoided?",
    ),
    deliverables=(
        (
            "data_storage",
            "Migration plan for {table}: expand, dual-write, backfill, switch reads, contract",
        ),
        ("system", "Backfill job with batching, throttling and checksum verification"),
    ),
    handoffs=(
        (
            "needed_from_others",
            "Owners of the services that read {table} to confirm they can switch reads behind "
            "a flag",
        ),
    ),
    subject="the migration",
    table="the table",
    name="orders",
    risk=5,
    risk_reason=(
        "A data migration can lose or double writes during the backfill and the switch of "
        "reads, and a late failure is hard to roll back."
    ),
    risk_mitigation=(
        "Dual-write behind a flag, verify the backfill with row counts and checksums, rehearse "
        "the rollback on a copy of production, and drop the old data only a release later."
    ),
    estimate="3-5 days",
)

RATE_LIMITING = Pattern(
    key="rate_limiting",
    title="Per-client rate limiting with a token bucket",
    keywords=(
        "rate limit",
        "rate limits",
        "rate limiting",
        "rate limiter",
        "rate-limit",
        "ratelimit",
        "throttle",
        "throttling",
        "429",
        "quota",
        "quotas",
        "burst",
        "bursts",
        "token bucket",
        "abuse",
        "flood",
    ),
    task="Rate limiting for {subject}",
    lead=(
        "Limit {subject} per client with a token bucket kept in Redis: a steady rate with "
        "room for short bursts, and a 429 with Retry-After when a client runs out."
    ),
    approach=(
        "Choose the key (API key for partners, user id for logged-in traffic, IP only at "
        "the edge) and the budget per plan, e.g. 100 requests a second with bursts of 200.",
        "Keep one bucket per key in Redis, updated atomically by a small Lua script, so "
        "every instance of {subject} shares the same count.",
        "Answer over-limit requests with 429, a `Retry-After` header and the remaining "
        "budget in `RateLimit-*` headers, before any database work is done.",
        "Add a separate, lower limit on concurrent expensive requests, and a coarse limit at "
        "the edge (WAF or CDN) for floods.",
    ),
    tradeoffs=(
        "A shared Redis adds a round trip per request and a dependency: decide whether "
        "{subject} fails open or closed when Redis is down.",
        "Fixed windows are simple but allow double bursts at window edges; a token bucket or "
        "sliding window avoids that.",
    ),
    at_scale=(
        "At ten times the traffic, the Redis round trip per request is the cost to watch: "
        "shard buckets by key, or keep a local pre-check that only syncs with Redis "
        "periodically."
    ),
    language="python",
    code=(
        "class TokenBucket:\n"
        '    """Allows `rate` requests per second with bursts up to `capacity`."""\n'
        "\n"
        "    def __init__(self, rate: float, capacity: int) -> None:\n"
        "        self.rate, self.capacity = rate, capacity\n"
        "        self.tokens, self.updated = float(capacity), time.monotonic()\n"
        "\n"
        "    def try_take(self) -> bool:\n"
        "        now = time.monotonic()\n"
        "        refill = (now - self.updated) * self.rate\n"
        "        self.tokens = min(self.capacity, self.tokens + refill)\n"
        "        self.updated = now\n"
        "        if self.tokens >= 1:\n"
        "            self.tokens -= 1\n"
        "            return True\n"
        "        return False  # the caller answers 429 with Retry-After"
    ),
    references=(
        corpus.STRIPE_RATE_LIMITS,
        corpus.RFC_6585_429,
        corpus.CLOUDFLARE_RATE_LIMITING,
    ),
    finding=(
        "over-limit clients should get 429 with Retry-After and back off, and rate and "
        "concurrency are best limited separately"
    ),
    research_objective=(
        "Compare rate-limiting algorithms for {subject} (token bucket, sliding window) and "
        "how public APIs signal limits to clients."
    ),
    research_questions=(
        "Which algorithm do large APIs use, and how accurate is a sliding-window estimate?",
        "What headers and status codes should over-limit responses carry?",
    ),
    deliverables=(
        ("system", "Token-bucket rate limiter for {subject}, shared across instances via Redis"),
        ("api_integration", "429 responses with Retry-After and RateLimit headers"),
    ),
    handoffs=(
        (
            "needed_from_others",
            "Product to set the per-plan limits and burst sizes",
        ),
    ),
    subject="the API",
)

AUTH = Pattern(
    key="auth",
    title="Authentication with short-lived tokens and server-side sessions",
    keywords=(
        "auth",
        "authentication",
        "authenticate",
        "authorization",
        "authorisation",
        "oauth",
        "oauth2",
        "oidc",
        "jwt",
        "jwts",
        "token",
        "tokens",
        "session",
        "sessions",
        "login",
        "logout",
        "sign in",
        "sso",
        "saml",
        "password",
        "passwords",
        "refresh token",
        "rbac",
        "mfa",
        "2fa",
    ),
    task="Authentication for {subject}",
    lead=(
        "Use OAuth 2.0 / OpenID Connect for sign-in, short-lived access tokens for {subject}, "
        "and revocable server-side sessions or refresh tokens — never long-lived JWTs that "
        "cannot be taken back."
    ),
    approach=(
        "Delegate sign-in to an OpenID Connect provider (or your own, using the authorization "
        "code flow with PKCE); store no passwords you don't have to.",
        "Issue access tokens that live 5-15 minutes, and validate issuer, audience, expiry "
        "and an allow-listed algorithm on every request to {subject}.",
        "Keep refresh tokens (or browser sessions) server-side, rotated on use, so logout and "
        "a compromised account revoke access at once.",
        "Authorise per resource in one place (a policy function or middleware), and log who "
        "did what for the audit trail.",
    ),
    tradeoffs=(
        "Stateless JWTs save a lookup per request but cannot be revoked before they expire; "
        "short lifetimes bound the damage.",
        "An external identity provider is less code to secure but a dependency for every sign-in.",
    ),
    at_scale=(
        "At ten times the traffic, token validation stays local (cache the provider's keys); "
        "the session or refresh-token store becomes the hot path, so keep it in Redis or a "
        "small indexed table."
    ),
    language="python",
    code=(
        "def authenticate(token: str) -> Claims:\n"
        "    claims = jwt.decode(\n"
        "        token,\n"
        "        key=jwks.signing_key_for(token),\n"
        '        algorithms=["RS256"],  # allow-listed: never trust the token\'s own alg\n'
        '        audience="api",\n'
        "        issuer=ISSUER,\n"
        '        options={"require": ["exp", "iat", "sub"]},\n'
        "    )\n"
        '    if revoked_sessions.contains(claims["sid"]):\n'
        '        raise Unauthorized("session revoked")\n'
        "    return Claims(**claims)"
    ),
    references=(corpus.RFC_6749_OAUTH, corpus.RFC_8725_JWT, corpus.OWASP_SESSIONS),
    finding=(
        "tokens should be short-lived and strictly validated (algorithm, issuer, audience), "
        "with revocable sessions or refresh tokens behind them"
    ),
    research_objective=(
        "Establish current good practice for authenticating {subject}: OAuth 2.0 / OIDC "
        "flows, JWT validation and session revocation."
    ),
    research_questions=(
        "Which OAuth flow fits each kind of client?",
        "How should JWTs be validated, and how long should they live?",
        "How do teams revoke access immediately?",
    ),
    deliverables=(
        ("system", "Token validation and revocable sessions for {subject}"),
        ("api_integration", "OpenID Connect sign-in with the authorization code flow and PKCE"),
    ),
    handoffs=(
        ("needed_from_others", "Security review of the token lifetimes and revocation path"),
    ),
    subject="the API",
    risk=6,
)

SECRETS = Pattern(
    key="secrets",
    title="Envelope encryption with managed keys",
    keywords=(
        "encrypt",
        "encrypted",
        "encryption",
        "decrypt",
        "kms",
        "at rest",
        "envelope",
        "envelope encryption",
        "secret",
        "secrets",
        "vault",
        "plaintext",
        "rotation",
        "rotate",
        "api key",
        "api keys",
        "hsm",
        "key rotation",
    ),
    task="Encryption at rest for {subject}",
    lead=(
        "Encrypt {subject} with envelope encryption: a data key per record (or per tenant) "
        "encrypts the value with AES-256-GCM, and KMS encrypts the data key, so the database "
        "never holds anything usable on its own."
    ),
    approach=(
        "Add an encrypted column next to the plaintext one in {table}: ciphertext, the "
        "encrypted data key and the key id, written by one small encryption module.",
        "Encrypt on write through KMS `GenerateDataKey`; decrypt on use, caching plaintext "
        "data keys in memory for a few minutes so workers don't call KMS per request.",
        "Backfill existing rows, switch reads to the encrypted column, then null and drop "
        "the plaintext column and purge it from backups on their normal expiry.",
        "Turn on automatic KMS key rotation; old data keeps decrypting, and a re-encryption "
        "job can move records to new data keys without downtime.",
    ),
    tradeoffs=(
        "Decrypting per request adds latency and KMS cost; the data-key cache trades a short "
        "window of plaintext keys in memory for both.",
        "Encryption at rest does not protect against the application itself being "
        "compromised: least-privilege IAM on the KMS key matters as much.",
    ),
    at_scale=(
        "At ten times the requests, KMS request quotas are the limit: cache data keys, and "
        "use one data key per tenant rather than per row."
    ),
    language="python",
    code=(
        "def encrypt_value(kms: KMSClient, key_id: str, plaintext: bytes) -> EncryptedValue:\n"
        '    data_key = kms.generate_data_key(KeyId=key_id, KeySpec="AES_256")\n'
        "    nonce = os.urandom(12)\n"
        '    ciphertext = AESGCM(data_key["Plaintext"]).encrypt(nonce, plaintext, None)\n'
        "    return EncryptedValue(\n"
        "        ciphertext=nonce + ciphertext,\n"
        '        encrypted_key=data_key["CiphertextBlob"],  # stored; useless without KMS\n'
        "        key_id=key_id,\n"
        "    )"
    ),
    references=(
        corpus.AWS_KMS_ENVELOPE,
        corpus.AWS_KMS_ROTATION,
        corpus.OWASP_CRYPTO_STORAGE,
    ),
    finding=(
        "envelope encryption keeps master keys inside KMS, automatic rotation keeps old data "
        "readable, and keys must live apart from the data"
    ),
    research_objective=(
        "Establish how to encrypt {subject} at rest with KMS envelope encryption and rotate "
        "keys without downtime."
    ),
    research_questions=(
        "How does envelope encryption split work between KMS and the application?",
        "How does key rotation affect data encrypted before it?",
    ),
    deliverables=(
        ("system", "Encryption module using KMS envelope encryption and a data-key cache"),
        ("data_storage", "Encrypted columns in {table} with a backfill and plaintext removal"),
    ),
    handoffs=(("needed_from_others", "Security to review the KMS key policy and IAM grants"),),
    subject="the stored secrets",
    risk=6,
)

EVENTS = Pattern(
    key="events",
    title="Transactional outbox for reliable events",
    keywords=(
        "event sourcing",
        "event-sourced",
        "event store",
        "outbox",
        "transactional outbox",
        "projection",
        "projections",
        "replay",
        "domain events",
        "cqrs",
        "change data capture",
        "cdc",
        "debezium",
        "saga",
        "sagas",
        "publish",
        "publishes",
        "event bus",
    ),
    task="Reliable event publishing for {subject}",
    lead=(
        "Publish events from {subject} through a transactional outbox: the event row is "
        "written in the same transaction as the change, and a relay publishes it, so an "
        "event goes out if and only if the change committed."
    ),
    approach=(
        "Add an `outbox` table (id, aggregate type and id, event type, payload, created_at) "
        "and insert into it in the same transaction as each state change.",
        "Run a relay — a polling worker with SKIP LOCKED, or Debezium reading the change log "
        "— that publishes outbox rows in order per aggregate and marks them sent.",
        "Give every event an id and a schema version; consumers de-duplicate by id and "
        "ignore versions they don't know.",
        "If the history itself is the product (audit, replay), store events as the source "
        "of truth and build read models as projections; otherwise keep tables as the truth.",
    ),
    tradeoffs=(
        "The relay adds latency (a polling interval, or the CDC pipeline) and one more thing "
        "to monitor: alert on the age of the oldest unsent row.",
        "Full event sourcing makes schema changes and GDPR deletion harder; use it only "
        "where replay is worth that.",
    ),
    at_scale=(
        "At ten times the events, polling the outbox becomes a hot query: switch the relay "
        "to CDC, and partition the outbox by time so sent rows are dropped, not deleted."
    ),
    language="sql",
    code=(
        "BEGIN;\n"
        "UPDATE {name} SET status = 'paid' WHERE id = $1;\n"
        "INSERT INTO outbox (aggregate_type, aggregate_id, event_type, payload)\n"
        "VALUES ('{name}', $1, '{name}.paid', $2);\n"
        "COMMIT;\n"
        "\n"
        "-- the relay: the oldest unsent events, without blocking other relays\n"
        "SELECT id, event_type, payload FROM outbox\n"
        "WHERE sent_at IS NULL ORDER BY id\n"
        "FOR UPDATE SKIP LOCKED LIMIT 100;"
    ),
    references=(corpus.OUTBOX_PATTERN, corpus.DEBEZIUM_OUTBOX, corpus.FOWLER_EVENT_SOURCING),
    finding=(
        "the outbox makes publishing atomic with the state change, CDC can relay it without "
        "polling, and event sourcing is worth its cost only when history is the product"
    ),
    research_objective=(
        "Compare the transactional outbox (polling and CDC relays) with event sourcing for "
        "{subject}, and how teams version events."
    ),
    research_questions=(
        "How do polling and CDC relays compare in latency and operations?",
        "When is full event sourcing worth its cost?",
    ),
    deliverables=(
        ("data_storage", "Outbox table written in the same transaction as each change"),
        ("system", "Outbox relay publishing events in order per aggregate"),
    ),
    handoffs=(
        (
            "integration_endpoint_ready",
            "Versioned event schemas for consumers to subscribe to",
        ),
    ),
    subject="the service",
    name="orders",
)

SHARDING = Pattern(
    key="sharding",
    title="Partition first, shard by the access pattern",
    keywords=(
        "shard",
        "shards",
        "sharding",
        "sharded",
        "partition",
        "partitions",
        "partitioning",
        "partitioned",
        "shard key",
        "partition key",
        "citus",
        "vitess",
        "horizontal scaling",
        "hot partition",
        "multi-tenant",
        "tenant",
        "tenants",
    ),
    task="Partitioning {table}",
    lead=(
        "Partition {table} inside one PostgreSQL first (by time or tenant), and shard across "
        "machines only when one primary can no longer take the writes — choosing the key "
        "from the queries you run."
    ),
    approach=(
        "List the top queries on {table} and the column each filters on; the partition or "
        "shard key is the one almost every query carries (often tenant id or time).",
        "Use declarative partitioning by range (time) or hash (tenant) so queries prune to a "
        "few partitions and old data is dropped a partition at a time.",
        "If one primary still cannot keep up, shard by the same key (Citus, Vitess, or "
        "application routing), keeping each tenant's rows and transactions on one node.",
        "Watch per-partition size and per-key load, and plan how a hot tenant is split "
        "before it happens.",
    ),
    tradeoffs=(
        "Queries without the key fan out to every partition or shard and get slower, not faster.",
        "Sharding makes cross-shard transactions, joins and unique constraints hard; it is a "
        "one-way door compared with partitioning.",
    ),
    at_scale=(
        "At ten times the data, partition pruning keeps queries on {table} flat as long as "
        "they carry the key; the next step is splitting the largest tenants onto their own "
        "shards."
    ),
    language="sql",
    code=(
        "CREATE TABLE {name} (\n"
        "    id          bigint GENERATED ALWAYS AS IDENTITY,\n"
        "    tenant_id   bigint NOT NULL,\n"
        "    created_at  timestamptz NOT NULL,\n"
        "    payload     jsonb NOT NULL,\n"
        "    PRIMARY KEY (tenant_id, created_at, id)\n"
        ") PARTITION BY RANGE (created_at);\n"
        "\n"
        "CREATE TABLE {name}_2026_01 PARTITION OF {name}\n"
        "    FOR VALUES FROM ('2026-01-01') TO ('2026-02-01');"
    ),
    references=(
        corpus.POSTGRES_PARTITIONING,
        corpus.CITUS_DATA_MODELING,
        corpus.DYNAMODB_PARTITION_KEYS,
    ),
    finding=(
        "partitioning prunes queries that carry the key and makes retention cheap, while "
        "shard keys must have high cardinality and keep a tenant's data together"
    ),
    research_objective=(
        "Establish when teams partition versus shard {table}, and how they choose the key."
    ),
    research_questions=(
        "What partition or shard keys do multi-tenant teams choose, and why?",
        "What breaks when queries don't carry the key?",
    ),
    deliverables=(
        ("data_storage", "Partitioning scheme for {table} with its key and retention"),
        ("system", "Routing of queries by the partition key"),
    ),
    subject="the largest table",
    table="the largest table",
    name="events",
    risk=5,
    risk_reason=(
        "Repartitioning or sharding a live table moves all of its data and changes which "
        "queries stay fast; a wrong key is expensive to undo."
    ),
    risk_mitigation=(
        "Prove the key against the top queries on a copy of production first, and partition "
        "within one database before sharding across machines."
    ),
    estimate="1-2 weeks",
)

SEARCH = Pattern(
    key="search",
    title="Full-text search, kept in step with the source of truth",
    keywords=(
        "search",
        "searching",
        "full-text",
        "full text",
        "elasticsearch",
        "opensearch",
        "solr",
        "fuzzy",
        "relevance",
        "typeahead",
        "autocomplete",
        "search index",
        "tsvector",
        "trigram",
        "ranking",
    ),
    task="Search for {subject}",
    lead=(
        "Start with PostgreSQL full-text search (a tsvector with a GIN index) for "
        "{subject}, and move to Elasticsearch or OpenSearch only when relevance tuning or "
        "scale needs it — with the database staying the source of truth."
    ),
    approach=(
        "Add a generated tsvector column on {table} over the searched fields, weighted "
        "(title above body), with a GIN index.",
        "Query with `websearch_to_tsquery` and rank with `ts_rank`; add pg_trgm for typo "
        "tolerance and prefix matches in typeahead.",
        "If you outgrow it, feed a search engine from the outbox or CDC, never by dual "
        "writes from the request path, and rebuild the index from the database when needed.",
        "Track zero-result queries and click-through to tune relevance with data.",
    ),
    tradeoffs=(
        "PostgreSQL search keeps one system and exact consistency, but relevance tuning and "
        "faceting are limited.",
        "A search engine is eventually consistent with the database (about a second) and "
        "one more cluster to run.",
    ),
    at_scale=(
        "At ten times the documents, the GIN index and ranking cost grow; that is the point "
        "to move {subject} to a dedicated search cluster fed by CDC."
    ),
    language="sql",
    code=(
        "ALTER TABLE {name} ADD COLUMN search tsvector GENERATED ALWAYS AS (\n"
        "    setweight(to_tsvector('english', coalesce(title, '')), 'A') ||\n"
        "    setweight(to_tsvector('english', coalesce(body, '')), 'B')\n"
        ") STORED;\n"
        "CREATE INDEX CONCURRENTLY {name}_search_idx ON {name} USING gin (search);\n"
        "\n"
        "SELECT id, title FROM {name}\n"
        "WHERE search @@ websearch_to_tsquery('english', $1)\n"
        "ORDER BY ts_rank(search, websearch_to_tsquery('english', $1)) DESC LIMIT 20;"
    ),
    references=(
        corpus.POSTGRES_FULL_TEXT,
        corpus.POSTGRES_TRIGRAM,
        corpus.ELASTICSEARCH_NEAR_REAL_TIME,
    ),
    finding=(
        "PostgreSQL full-text search with a GIN index covers many applications, pg_trgm adds "
        "typo tolerance, and a search engine always trails its source a little"
    ),
    research_objective=(
        "Compare PostgreSQL full-text search with Elasticsearch/OpenSearch for {subject}, "
        "and how teams keep a search index in step with the database."
    ),
    research_questions=(
        "Where does PostgreSQL full-text search stop being enough?",
        "How do teams keep a search index consistent with the source of truth?",
    ),
    deliverables=(
        ("data_storage", "tsvector column and GIN index on {table}"),
        ("api_integration", "Search query with ranking for {subject}"),
    ),
    subject="the search",
    name="articles",
)

API_DESIGN = Pattern(
    key="api_design",
    title="A resource-oriented REST API",
    keywords=(
        "api",
        "apis",
        "endpoint",
        "endpoints",
        "rest",
        "restful",
        "resource",
        "resources",
        "status code",
        "status codes",
        "openapi",
        "versioning",
        "graphql",
        "grpc",
        "crud",
        "contract",
    ),
    task="Design {subject}",
    lead=(
        "Design {subject} around resources with plain HTTP semantics: nouns in the paths, "
        "correct status codes, one error format, cursor pagination and idempotency keys on "
        "anything retried."
    ),
    approach=(
        "Model the resources and their lifecycle first (states and allowed transitions), "
        "then map them to paths such as `GET /v1/{name}` and `POST /v1/{name}`.",
        "Use status codes with their real meaning — 201 with Location, 202 for async work, "
        "409 for conflicts, 422 for invalid input, 429 with Retry-After — and RFC 9457 "
        "problem details for every error.",
        "Paginate lists with a cursor, filter through an allow-list of query parameters, "
        "and require an `Idempotency-Key` on POSTs that create or charge.",
        "Write the OpenAPI description next to the code, version in the path, and make "
        "changes additive by default.",
    ),
    tradeoffs=(
        "Strict resource modelling can make workflow actions awkward; a sub-resource such as "
        "`POST /v1/{name}/{{id}}/cancel` is an honest compromise.",
        "Path versioning is visible and easy to route, at the cost of duplicated handlers "
        "while two versions live.",
    ),
    at_scale=(
        "At ten times the traffic, the API's contract doesn't change; rate limits per client, "
        "caching of GETs with ETags and cursor pagination keep {subject} predictable."
    ),
    language="python",
    code=(
        '@router.post("/v1/{name}", status_code=201)\n'
        "async def create(\n"
        "    body: CreateRequest,\n"
        "    response: Response,\n"
        '    idempotency_key: str = Header(alias="Idempotency-Key"),\n'
        "    db: Database = Depends(database),\n"
        ") -> Resource:\n"
        "    created = await create_once(db, key=idempotency_key, body=body)\n"
        '    response.headers["Location"] = f"/v1/{name}/{created.id}"\n'
        "    return created"
    ),
    references=(
        corpus.RFC_9457_PROBLEM_DETAILS,
        corpus.STRIPE_PAGINATION,
        corpus.STRIPE_IDEMPOTENCY,
    ),
    finding=(
        "one error format, cursor pagination and idempotency keys are what mature public "
        "APIs converge on"
    ),
    research_objective=(
        "Check the design of {subject} against well-known public APIs: error format, "
        "pagination, idempotency and versioning."
    ),
    research_questions=(
        "Which error format and status codes do mature APIs use?",
        "How do they paginate and version?",
    ),
    deliverables=(
        ("api_integration", "Resource model, endpoints and error format for {subject}"),
        ("system", "OpenAPI description kept next to the handlers"),
    ),
    handoffs=(("needed_from_others", "Client teams to review the contract before implementation"),),
    subject="the API",
)

GENERIC = Pattern(
    key="generic",
    title="A measured first slice",
    keywords=(),
    task="{subject}",
    lead=(
        "Start with the smallest change to {subject} that can be measured, and let the "
        "numbers decide the next step."
    ),
    approach=(
        "Pin down the contract of {subject}: its inputs and outputs, the failure modes that "
        "matter, and who depends on it.",
        "Measure what users feel today — p50/p95/p99 latency, error rate, throughput — so "
        "the change can be judged against a baseline.",
        "Build the smallest end-to-end slice behind a flag, with timeouts on every remote "
        "call and retries only where the operation is idempotent.",
        "Roll it out to a fraction of traffic, compare against the baseline, then widen.",
    ),
    tradeoffs=(
        "A flag and a staged rollout cost some code and time, and buy a rollback that takes "
        "seconds.",
        "Measuring first can feel slow, but it stops work on the wrong bottleneck.",
    ),
    at_scale=(
        "At ten times the load, the first thing to give is usually the database: fix queries "
        "and indexes, then cache, then add read replicas, and move slow work to queues."
    ),
    language="python",
    code=(
        "async def handle(request: Request, *, session: AsyncSession) -> Response:\n"
        "    payload = RequestBody.model_validate(await request.json())\n"
        "    async with asyncio.timeout(2.0):  # every remote call gets a deadline\n"
        "        async with session.begin():\n"
        "            record = await save(session, payload)  # commit before acknowledging\n"
        '    return Response(status=202, body={"id": record.id})'
    ),
    references=(corpus.SRE_MONITORING, corpus.AWS_BACKOFF_JITTER),
    finding=(
        "latency should be measured as a distribution with the other golden signals, and "
        "retries need backoff with jitter and timeouts"
    ),
    research_objective="Find how teams approach {subject} in production, with their numbers.",
    research_questions=(
        "Which approaches do teams compare, and what failure modes do they report?",
        "Which numbers (latency, error rate, throughput) do they track?",
    ),
    deliverables=(("system", "First measured slice of {subject}, behind a flag"),),
    subject="the change",
)

# Ties go to the earlier pattern: the more specific ones come first.
PATTERNS: tuple[Pattern, ...] = (
    PAGINATION,
    INDEXING,
    CACHING,
    WEBHOOKS,
    QUEUES,
    IDEMPOTENCY,
    MIGRATIONS,
    RATE_LIMITING,
    AUTH,
    SECRETS,
    EVENTS,
    SHARDING,
    SEARCH,
    API_DESIGN,
)

# Words that make a request backend work even when no pattern matches it.
BACKEND_WORDS = word_set(
    """
    api apis backend database databases db sql table tables schema schemas query queries server
    servers service services microservice microservices endpoint endpoints deploy deployment
    deploys latency throughput traffic load scale scaling scalability bug bugs error errors
    exception crash crashes incident outage logs logging metrics monitoring alert alerts design
    architecture code function class test tests storage data pipeline pipelines etl csv json
    xml http https request requests response responses docker kubernetes container containers
    cloud aws gcp azure terraform infra infrastructure cluster postgres postgresql mysql
    sqlite mongodb dynamodb redis kafka rabbitmq sqs s3 lexer parser tokenize import export
    bytes memory cpu disk backup backups replica replicas replication failover uptime sla slo
    python django fastapi flask celery sqlalchemy orm model models column columns row rows
    """
)


def _hits(pattern: Pattern, words: set[str], text: str) -> int:
    score = 0
    for keyword in pattern.keywords:
        if " " in keyword:
            score += 2 if f" {keyword} " in text else 0
        elif keyword in words:
            score += 1
    return score


def _normalised(words: Sequence[str]) -> tuple[set[str], str]:
    return set(words), " " + " ".join(words) + " "


@dataclass(frozen=True)
class Match:
    """A pattern applied to one request: its templates filled with the request's nouns."""

    pattern: Pattern
    ask: Ask
    specific: bool  # False: no pattern matched, and GENERIC stands in

    @property
    def slots(self) -> dict[str, str]:
        resource = self.ask.resource()
        return {
            "subject": self.ask.subject(self.pattern.subject),
            "table": f"the {resource} table" if resource else self.pattern.table,
            "name": resource or self.pattern.name,
            "target": self.ask.target() or "the new schema",
        }

    def fill(self, template: str) -> str:
        return template.format(**self.slots)

    @property
    def code(self) -> str:
        return self.pattern.code.replace("{name}", self.slots["name"])


def match(ask: Ask) -> Match:
    """The pattern for `ask`, or GENERIC when none of them fits."""
    pattern = choose(ask.words)
    return Match(pattern or GENERIC, ask, specific=pattern is not None)


def choose(words: Sequence[str]) -> Pattern | None:
    """The pattern whose keywords the request's words overlap most; None when none does."""
    word_set, text = _normalised(words)
    best: Pattern | None = None
    best_score = 0
    for pattern in PATTERNS:
        score = _hits(pattern, word_set, text)
        if score > best_score:
            best, best_score = pattern, score
    return best


def is_backend(words: Sequence[str]) -> bool:
    """Whether a request speaks of backend work at all."""
    return choose(words) is not None or bool(BACKEND_WORDS & set(words))
