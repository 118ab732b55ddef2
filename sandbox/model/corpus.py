"""The offline model's small local library: public references its demo research returns."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Reference:
    """A real, public page, with a short summary of what it says (the demo's cited text)."""

    url: str
    title: str
    snippet: str
    page_age: str | None = None


# -- pagination ----------------------------------------------------------------------------

POSTGRES_LIMIT_OFFSET = Reference(
    url="https://www.postgresql.org/docs/current/queries-limit.html",
    title="PostgreSQL Documentation: 7.6. LIMIT and OFFSET",
    snippet=(
        "The rows skipped by an OFFSET clause still have to be computed inside the server; "
        "therefore a large OFFSET might be inefficient. Without an ORDER BY that fixes the "
        "order, pages can overlap or skip rows."
    ),
)
USE_THE_INDEX_LUKE_PAGING = Reference(
    url="https://use-the-index-luke.com/sql/partial-results/fetch-next-page",
    title="Paging Through Results — Use The Index, Luke",
    snippet=(
        "The seek method (keyset pagination) selects the next page with a WHERE clause on the "
        "last row's sort key instead of OFFSET, so every page costs about the same when an "
        "index covers the sort order; it cannot jump to an arbitrary page number."
    ),
)
STRIPE_PAGINATION = Reference(
    url="https://docs.stripe.com/api/pagination",
    title="Pagination | Stripe API Reference",
    snippet=(
        "List endpoints share a cursor-based structure: a limit between 1 and 100, and "
        "starting_after or ending_before set to an object ID; the response's has_more says "
        "whether another page exists."
    ),
)

# -- queues --------------------------------------------------------------------------------

POSTGRES_SKIP_LOCKED = Reference(
    url="https://www.postgresql.org/docs/current/sql-select.html#SQL-FOR-UPDATE-SHARE",
    title="PostgreSQL Documentation: SELECT — The Locking Clause",
    snippet=(
        "With SKIP LOCKED, any selected rows that cannot be immediately locked are skipped. "
        "That is not suitable for general purpose work, but can be used to avoid lock "
        "contention with multiple consumers accessing a queue-like table."
    ),
)
KAFKA_DELIVERY_SEMANTICS = Reference(
    url="https://kafka.apache.org/documentation/#semantics",
    title="Apache Kafka Documentation: Message Delivery Semantics",
    snippet=(
        "A consumer that processes messages and then commits its offset gets at-least-once "
        "delivery: after a crash between the two, the messages are processed again, so the "
        "processing must tolerate duplicates."
    ),
)
SQS_VISIBILITY_TIMEOUT = Reference(
    url=(
        "https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/"
        "sqs-visibility-timeout.html"
    ),
    title="Amazon SQS visibility timeout — Amazon Simple Queue Service",
    snippet=(
        "A received message stays in the queue but is hidden from other consumers for the "
        "visibility timeout; if the consumer does not delete it in time, it becomes visible "
        "again and can be received twice."
    ),
)

# -- idempotency ---------------------------------------------------------------------------

STRIPE_IDEMPOTENCY = Reference(
    url="https://docs.stripe.com/api/idempotent_requests",
    title="Idempotent requests | Stripe API Reference",
    snippet=(
        "The server saves the status code and body of the first request made for any given "
        "idempotency key and returns the same result for subsequent requests with that key, "
        "so a request can be retried safely without performing the operation twice."
    ),
)
AWS_IDEMPOTENT_APIS = Reference(
    url="https://aws.amazon.com/builders-library/making-retries-safe-with-idempotent-APIs/",
    title="Making retries safe with idempotent APIs — Amazon Builders' Library",
    snippet=(
        "A caller-provided client request token lets the service recognise a retried request "
        "and return the original result; the service must also reject a reused token whose "
        "parameters differ from the first request."
    ),
)
IDEMPOTENCY_KEY_HEADER = Reference(
    url="https://datatracker.ietf.org/doc/draft-ietf-httpapi-idempotency-key-header/",
    title="The Idempotency-Key HTTP Header Field (IETF draft)",
    snippet=(
        "Defines the Idempotency-Key request header for making non-idempotent methods such as "
        "POST fault-tolerant, with the errors a server returns for a reused key with a "
        "different payload (422) or a request still in flight (409)."
    ),
)
AWS_BACKOFF_JITTER = Reference(
    url="https://aws.amazon.com/builders-library/timeouts-retries-and-backoff-with-jitter/",
    title="Timeouts, retries, and backoff with jitter — Amazon Builders' Library",
    snippet=(
        "Retries are selfish: they ask for more server time to get a higher chance of "
        "success. Capped exponential backoff with jitter spreads retries out so that a brief "
        "overload does not turn into a sustained one."
    ),
)

# -- indexing and slow queries ---------------------------------------------------------------

POSTGRES_EXPLAIN = Reference(
    url="https://www.postgresql.org/docs/current/using-explain.html",
    title="PostgreSQL Documentation: 14.1. Using EXPLAIN",
    snippet=(
        "Choosing the right plan to match the query structure and the properties of the data "
        "is critical for good performance; EXPLAIN ANALYZE runs the query and shows the "
        "actual row counts and time of each plan node next to the planner's estimates."
    ),
)
POSTGRES_MULTICOLUMN_INDEXES = Reference(
    url="https://www.postgresql.org/docs/current/indexes-multicolumn.html",
    title="PostgreSQL Documentation: 11.3. Multicolumn Indexes",
    snippet=(
        "A multicolumn B-tree index is most efficient when there are constraints on the "
        "leading (leftmost) columns: put equality columns first and the range or sort column "
        "after them."
    ),
)
POSTGRES_INDEX_TYPES = Reference(
    url="https://www.postgresql.org/docs/current/indexes-types.html",
    title="PostgreSQL Documentation: 11.2. Index Types",
    snippet=(
        "By default, CREATE INDEX creates B-tree indexes, which fit the most common "
        "situations: equality and range queries on data that can be sorted; GIN, GiST and "
        "BRIN serve full-text, geometric and very large append-only data."
    ),
)

# -- caching -------------------------------------------------------------------------------

AWS_CACHING_PATTERNS = Reference(
    url=(
        "https://docs.aws.amazon.com/whitepapers/latest/database-caching-strategies-using-redis/"
        "caching-patterns.html"
    ),
    title="Caching patterns — Database Caching Strategies Using Redis (AWS whitepaper)",
    snippet=(
        "Cache-aside (lazy loading) fills the cache on a miss, so only requested data is "
        "cached but a miss costs three trips; write-through updates the cache on every write, "
        "so data is never stale but rarely read data is cached too. A TTL bounds staleness."
    ),
)
REDIS_EXPIRE = Reference(
    url="https://redis.io/docs/latest/commands/expire/",
    title="EXPIRE | Redis Docs",
    snippet=(
        "Sets a timeout on a key, after which the key is deleted automatically; keys written "
        "with the same TTL at the same moment also expire together, which is why TTLs are "
        "often given random jitter."
    ),
)
MDN_HTTP_CACHING = Reference(
    url="https://developer.mozilla.org/en-US/docs/Web/HTTP/Caching",
    title="HTTP caching — MDN Web Docs",
    snippet=(
        "Cache-Control max-age lets shared and private caches reuse a response while it is "
        "fresh, and ETag with If-None-Match lets a client revalidate a stale copy cheaply with "
        "a 304 Not Modified."
    ),
)

# -- schema migrations -----------------------------------------------------------------------

STRIPE_ONLINE_MIGRATIONS = Reference(
    url="https://stripe.com/blog/online-migrations",
    title="Online migrations at scale — Stripe Engineering",
    snippet=(
        "Stripe moves data between models in four steps: dual-write to the old and new "
        "places, change reads to the new place, change writes to the new place only, and "
        "remove the old data — with a backfill and verification between them."
    ),
)
POSTGRES_ALTER_TABLE = Reference(
    url="https://www.postgresql.org/docs/current/sql-altertable.html",
    title="PostgreSQL Documentation: ALTER TABLE",
    snippet=(
        "Most ALTER TABLE forms take an ACCESS EXCLUSIVE lock; adding a CHECK or foreign key "
        "constraint as NOT VALID and validating it later with VALIDATE CONSTRAINT avoids a "
        "long lock while existing rows are checked."
    ),
)
AWS_DMS = Reference(
    url="https://docs.aws.amazon.com/dms/latest/userguide/Welcome.html",
    title="What is AWS Database Migration Service? — AWS DMS User Guide",
    snippet=(
        "DMS migrates data between engines, for example MySQL to PostgreSQL, with a full load "
        "followed by ongoing replication of changes (CDC), so the source stays in use until "
        "the cutover."
    ),
)

# -- rate limiting ---------------------------------------------------------------------------

STRIPE_RATE_LIMITS = Reference(
    url="https://docs.stripe.com/rate-limits",
    title="Rate limits | Stripe Documentation",
    snippet=(
        "Requests over the limit receive 429 Too Many Requests; clients should back off "
        "exponentially, and Stripe applies separate limiters to the request rate and to "
        "concurrent requests."
    ),
)
RFC_6585_429 = Reference(
    url="https://www.rfc-editor.org/rfc/rfc6585#section-4",
    title="RFC 6585, Section 4: 429 Too Many Requests",
    snippet=(
        "The 429 status code indicates that the user has sent too many requests in a given "
        "amount of time; the response may include a Retry-After header saying how long to "
        "wait before a new request."
    ),
)
CLOUDFLARE_RATE_LIMITING = Reference(
    url="https://blog.cloudflare.com/counting-things-a-lot-of-different-things/",
    title="How we built rate limiting capable of scaling to millions of domains — Cloudflare",
    snippet=(
        "A sliding-window approximation (the previous window's count, weighted, plus the "
        "current one) keeps one small counter pair per client and was found accurate to "
        "within a fraction of a percent against a true sliding window."
    ),
)

# -- auth ------------------------------------------------------------------------------------

RFC_6749_OAUTH = Reference(
    url="https://www.rfc-editor.org/rfc/rfc6749",
    title="RFC 6749: The OAuth 2.0 Authorization Framework",
    snippet=(
        "OAuth 2.0 lets a client obtain limited access to a resource with an access token "
        "issued by an authorization server, instead of the resource owner's credentials; "
        "refresh tokens obtain new access tokens when they expire."
    ),
)
RFC_8725_JWT = Reference(
    url="https://www.rfc-editor.org/rfc/rfc8725",
    title="RFC 8725: JSON Web Token Best Current Practices",
    snippet=(
        "Libraries must let the application allow-list algorithms and must not trust the "
        "token's own alg header; validate the issuer and audience of every JWT."
    ),
)
OWASP_SESSIONS = Reference(
    url="https://cheatsheetseries.owasp.org/cheatsheets/Session_Management_Cheat_Sheet.html",
    title="Session Management Cheat Sheet — OWASP",
    snippet=(
        "Session IDs must be long and random, sent only in cookies marked Secure, HttpOnly "
        "and SameSite, renewed at login, and expired on the server after idle and absolute "
        "timeouts."
    ),
)

# -- events and the outbox -------------------------------------------------------------------

OUTBOX_PATTERN = Reference(
    url="https://microservices.io/patterns/data/transactional-outbox.html",
    title="Pattern: Transactional outbox — microservices.io",
    snippet=(
        "A service inserts messages into an outbox table as part of its local transaction; a "
        "separate relay publishes them to the message broker, so a message is sent if and "
        "only if the transaction commits."
    ),
)
FOWLER_EVENT_SOURCING = Reference(
    url="https://martinfowler.com/eaaDev/EventSourcing.html",
    title="Event Sourcing — Martin Fowler",
    snippet=(
        "Event sourcing stores every change to application state as a sequence of events, so "
        "state can be rebuilt by replaying them and past states can be queried; it complicates "
        "changes to event schemas and interactions with external systems."
    ),
)
DEBEZIUM_OUTBOX = Reference(
    url="https://debezium.io/documentation/reference/stable/transformations/outbox-event-router.html",
    title="Outbox Event Router — Debezium Documentation",
    snippet=(
        "Debezium reads outbox rows from the database's change log and routes each one to a "
        "Kafka topic chosen by its aggregate type, so the service never writes to Kafka "
        "directly."
    ),
)

# -- sharding and partitioning ---------------------------------------------------------------

POSTGRES_PARTITIONING = Reference(
    url="https://www.postgresql.org/docs/current/ddl-partitioning.html",
    title="PostgreSQL Documentation: 5.12. Table Partitioning",
    snippet=(
        "Partitioning splits one large table into smaller physical pieces by range, list or "
        "hash; queries that filter on the partition key touch only the partitions they need, "
        "and old partitions can be detached or dropped instead of deleted row by row."
    ),
)
DYNAMODB_PARTITION_KEYS = Reference(
    url="https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/bp-partition-key-design.html",
    title="Best practices for designing and using partition keys — Amazon DynamoDB",
    snippet=(
        "A partition key with high cardinality spreads requests evenly; a few very busy keys "
        "become hot partitions that throttle however much total capacity is provisioned."
    ),
)
CITUS_DATA_MODELING = Reference(
    url="https://docs.citusdata.com/en/stable/sharding/data_modeling.html",
    title="Choosing Distribution Column — Citus Documentation",
    snippet=(
        "For multi-tenant applications, distribute every table by the tenant id so that a "
        "tenant's rows live on one node and joins and transactions within a tenant stay local."
    ),
)

# -- webhooks ----------------------------------------------------------------------------------

STRIPE_WEBHOOKS = Reference(
    url="https://docs.stripe.com/webhooks",
    title="Receive Stripe events in your webhook endpoint | Stripe Documentation",
    snippet=(
        "Verify each event's Stripe-Signature header with the endpoint's signing secret, "
        "return a 2xx quickly before any slow logic, and handle duplicate and out-of-order "
        "events, because Stripe retries undelivered events for up to three days."
    ),
)
STANDARD_WEBHOOKS = Reference(
    url="https://www.standardwebhooks.com/",
    title="Standard Webhooks",
    snippet=(
        "An open specification for sending webhooks: an id, a timestamp and an HMAC "
        "signature header on every delivery, so receivers can verify senders, reject replays "
        "and de-duplicate retries."
    ),
)
GITHUB_WEBHOOK_PRACTICES = Reference(
    url="https://docs.github.com/en/webhooks/using-webhooks/best-practices-for-using-webhooks",
    title="Best practices for using webhooks — GitHub Docs",
    snippet=(
        "Respond within 10 seconds and process the payload asynchronously with a queue, use "
        "a webhook secret to verify deliveries, and check the delivery id to avoid handling "
        "the same delivery twice."
    ),
)

# -- search ----------------------------------------------------------------------------------

POSTGRES_FULL_TEXT = Reference(
    url="https://www.postgresql.org/docs/current/textsearch.html",
    title="PostgreSQL Documentation: Chapter 12. Full Text Search",
    snippet=(
        "tsvector and tsquery provide stemming, ranking and phrase search inside PostgreSQL; "
        "a GIN index on the tsvector makes searches fast enough for many applications "
        "without a separate search engine."
    ),
)
POSTGRES_TRIGRAM = Reference(
    url="https://www.postgresql.org/docs/current/pgtrgm.html",
    title="PostgreSQL Documentation: pg_trgm",
    snippet=(
        "The pg_trgm module measures similarity by shared three-character sequences and "
        "provides GIN and GiST operator classes that speed up LIKE, ILIKE and similarity "
        "searches — useful for typo-tolerant lookups."
    ),
)
ELASTICSEARCH_NEAR_REAL_TIME = Reference(
    url="https://www.elastic.co/guide/en/elasticsearch/reference/current/near-real-time.html",
    title="Near real-time search — Elasticsearch Guide",
    snippet=(
        "Documents become searchable after a refresh, by default every second, not at the "
        "moment they are indexed: a search index always trails its source of truth a little."
    ),
)

# -- secrets and encryption ------------------------------------------------------------------

AWS_KMS_ENVELOPE = Reference(
    url="https://docs.aws.amazon.com/kms/latest/developerguide/concepts.html#enveloping",
    title="Envelope encryption — AWS Key Management Service",
    snippet=(
        "Envelope encryption encrypts data with a data key and then encrypts the data key "
        "under a KMS key; only the encrypted data key is stored with the data, and KMS keys "
        "never leave KMS unencrypted."
    ),
)
AWS_KMS_ROTATION = Reference(
    url="https://docs.aws.amazon.com/kms/latest/developerguide/rotate-keys.html",
    title="Rotate AWS KMS keys — AWS Key Management Service",
    snippet=(
        "Automatic rotation creates new key material every year (or on a period you set) "
        "and keeps the old material, so data encrypted before a rotation still decrypts "
        "without re-encrypting it."
    ),
)
OWASP_CRYPTO_STORAGE = Reference(
    url="https://cheatsheetseries.owasp.org/cheatsheets/Cryptographic_Storage_Cheat_Sheet.html",
    title="Cryptographic Storage Cheat Sheet — OWASP",
    snippet=(
        "Use authenticated encryption such as AES-256-GCM, keep keys apart from the data "
        "they protect, and design for key rotation from the start, since every key will "
        "need replacing at some point."
    ),
)

# -- general backend practice ----------------------------------------------------------------

SRE_MONITORING = Reference(
    url="https://sre.google/sre-book/monitoring-distributed-systems/",
    title="Monitoring Distributed Systems — Google SRE Book",
    snippet=(
        "The four golden signals are latency, traffic, errors and saturation; measure "
        "latency as a distribution, because averages hide the slow tail that users notice."
    ),
)
RFC_9457_PROBLEM_DETAILS = Reference(
    url="https://www.rfc-editor.org/rfc/rfc9457",
    title="RFC 9457: Problem Details for HTTP APIs",
    snippet=(
        "A problem details object (type, title, status, detail, instance) gives HTTP APIs "
        "one machine-readable error format, so clients need not parse each endpoint's own "
        "error shape."
    ),
)
