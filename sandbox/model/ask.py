"""What a person asked, read the way the demo model needs it: its terms, nouns and status words."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property


def word_set(text: str) -> frozenset[str]:
    """The words of `text`, whitespace-separated: how the word lists below are written."""
    return frozenset(text.split())


# Well-known products, as they are spelled: named back in answers and kept in search queries.
TECHNOLOGIES = {
    name.lower(): name
    for name in word_set(
        """
        PostgreSQL Postgres MySQL SQLite MariaDB Redis Memcached Kafka RabbitMQ SQS SNS NATS
        Celery Stripe Shopify Slack Elasticsearch OpenSearch Solr MongoDB DynamoDB Cassandra
        ClickHouse TimescaleDB S3 KMS AWS GCP Azure Django FastAPI Flask SQLAlchemy GraphQL gRPC
        Kubernetes Docker Terraform Nginx CloudFront Cloudflare Auth0 Okta Citus Vitess Debezium
        JWT OAuth OIDC SAML
        """
    )
}

# Words that carry no subject: questions, pronouns, filler and the verbs of asking.
_BOILERPLATE = word_set(
    """
    a an the and or but if so to of in on at by for with from into onto about over under past
    after before than then that this these those there here it its it's we we're we've our ours
    us you your i i'm me my they them their he she what what's which who whom whose how why when
    where is are was were be been being am do does did done doing can could should would will
    shall may might must need needs want wants wanted let lets let's please thanks thank hi hello
    hey just also still yet now today really very quite some any all each every more most much
    many few lot lots get gets got getting make makes made making set up go goes going keep
    keeps take takes help like new good best right way ways thing things something anything
    one two three not no yes ok okay sure actually currently lately basically around across
    objective research request backend engineer task context questions constraints output
    plan planning asked asks ask look looks looking think tell give show write writes see
    without within between through while during until since because via per waiting have has
    had having don't doesn't didn't can't won't isn't aren't monday tuesday wednesday thursday
    friday saturday sunday tomorrow yesterday week weeks ship
    """
)

# The demo's status rules: the sandbox's guided tour relies on exactly these words.
_BLOCKED_WORDS = re.compile(
    r"\b(credentials|access to|waiting for|waiting on|blocked on|permissions?)\b", re.IGNORECASE
)
_LARGE_WORDS = re.compile(
    r"\b(migrate|migration|rewrite|plan|roadmap|re-architect)\b", re.IGNORECASE
)
# A plan that already exists is not a request for one: "the plan shows a Seq Scan".
_NOT_A_REQUEST_FOR_A_PLAN = re.compile(
    r"\b(?:query|execution|explain)\s+plan\b|\bplan\s+(?:shows|showed|says|uses)\b",
    re.IGNORECASE,
)
# Verbs of asking that say nothing a search could use ("design the orders API").
_GENERIC_VERBS = word_set(
    """
    add build change create define design draft explain fix implement improve investigate move
    outline propose review show shows showed sketch update went write go
    """
)
_IMPERATIVE = word_set(
    """
    add build change clean create debug define design draft estimate explain fix help implement
    improve index investigate make migrate move optimise optimize outline paginate plan propose
    refactor remove replace review rewrite rework scale set ship sketch speed split tune update
    upgrade write re-architect
    """
)
_ASKING = re.compile(
    r"\b(can you|could you|would you|please|we need|we want|i need|i want|help us|help me)\b",
    re.IGNORECASE,
)

_CODE_BLOCK = re.compile(r"```.*?(?:```|\Z)", re.S)
_SENTENCE_END = re.compile(r"(?<=[.?!])\s+(?=[A-Z\"“(`/])")
_CLAUSE_BREAK = re.compile(r"\s+[—–]\s+|;\s+|:\s+(?=[a-z])")
_ENDPOINT = re.compile(
    r"(?:\b(GET|POST|PUT|PATCH|DELETE)\s+)?(?<![\w.])(/(?:[A-Za-z0-9_{}\-]+/?)+)"
)
_TABLE_BEFORE_WORD = re.compile(r"\b([a-z_][a-z0-9_]*)\s+table\b", re.IGNORECASE)
_SQL_TABLE = re.compile(
    r"\b(?:CREATE TABLE|FROM|JOIN|UPDATE|INSERT INTO|ALTER TABLE)\s+([a-z_][a-z0-9_]*)\b"
)
_QUALIFIED_COLUMN = re.compile(r"\b([a-z_][a-z0-9_]*)\.([a-z_][a-z0-9_]*)\b")
_IDENTIFIER = re.compile(r"(?<![\w./])([a-z][a-z0-9]*_[a-z0-9_]+)\b")
# "the payments API", "our API" (not "API keys"), and "an API for refunds".
_NAMED_API = re.compile(
    r"\b(?:the|our)\s+(?:([A-Za-z][\w-]*)\s+)?API\b(?!\s+(?:keys?|credentials|tokens?|calls?)\b)"
)
_API_FOR = re.compile(r"\bAPI\s+for\s+([a-z][\w-]*)")
_HEAD = (
    r"(?:consumers?|services?|workers?|pipelines?|dashboards?|integrations?|exports?|imports?|"
    r"feeds?|jobs?|queues?|endpoints?|webhooks?|clusters?|databases?|drainers?|schedulers?)"
)
# A named component after a determiner: "the Stripe webhook consumer", "our Postgres jobs table".
_THING = re.compile(
    rf"\b(?:the|our|an?|this|my|your|their)\s+((?:[A-Za-z][\w-]*\s+){{0,2}}?{_HEAD}"
    rf"(?:\s+(?:{_HEAD}|table))*)\b"
)
_SOCIAL = re.compile(
    r"^(thanks|thank you|thx|ty|cheers|great|perfect|awesome|nice|cool|ok|okay|got it|"
    r"sounds good|hi|hello|hey|good morning|good night|bye|lol|wow)\b",
    re.IGNORECASE,
)
_NOT_A_TABLE = _BOILERPLATE | {"queue-like", "same", "other", "lookup", "join"}


def words_of(text: str) -> list[str]:
    """Lower-case words, with the hyphens, digits and signs that make terms ("429",
    "double-charges", "n+1")."""
    return re.findall(r"[a-z0-9][a-z0-9_\-+]*", text.lower())


def first_sentence(text: str, limit: int = 200) -> str:
    """The first sentence of `text` (outside code), on one line and at most `limit` characters."""
    prose = " ".join(_CODE_BLOCK.sub(" ", text).split())
    sentence = _SENTENCE_END.split(prose, maxsplit=1)[0] if prose else ""
    return clip(sentence, limit)


def clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip(" ,;:—") + "…"


def _sentences(text: str) -> list[str]:
    prose = " ".join(_CODE_BLOCK.sub(" ", text).split())
    return [s for s in _SENTENCE_END.split(prose) if s]


@dataclass(frozen=True)
class Ask:
    """One request, as a person wrote it (mentions and intro lines already removed)."""

    text: str

    @cached_property
    def prose(self) -> str:
        """The request without its code blocks, on one line."""
        return " ".join(_CODE_BLOCK.sub(" ", self.text).split())

    @cached_property
    def words(self) -> list[str]:
        """Every lower-case word, code included (table and column names live there too)."""
        return words_of(self.text)

    @cached_property
    def endpoint(self) -> str | None:
        for method, path in _ENDPOINT.findall(self.prose):
            if re.search(r"[A-Za-z]{2}", path) and not path.startswith("//"):
                path = path.rstrip("/")
                return f"{method} {path}" if method else path
        return None

    @cached_property
    def tables(self) -> list[str]:
        """Table names, in the order the request names them."""
        found: list[str] = []
        for match in _TABLE_BEFORE_WORD.finditer(self.prose):
            found.append(match.group(1).lower())
        for match in _QUALIFIED_COLUMN.finditer(self.prose):
            if match.group(1) not in ("e", "i", "www") and not match.group(2).isdigit():
                found.append(match.group(1))
        for match in _SQL_TABLE.finditer(self.text):
            found.append(match.group(1))
        return [t for t in dict.fromkeys(found) if t not in _NOT_A_TABLE and len(t) > 2]

    @cached_property
    def columns(self) -> list[str]:
        """Column-like identifiers: snake_case names and the column of table.column."""
        found = [m.group(2) for m in _QUALIFIED_COLUMN.finditer(self.prose)]
        found += _IDENTIFIER.findall(self.text)
        # Index and constraint names look like columns: orders_status_idx, orders_pkey.
        names = re.compile(r"_(?:idx|index|pkey|fkey|seq|check)$")
        return [c for c in dict.fromkeys(found) if c not in self.tables and not names.search(c)][:4]

    @cached_property
    def technologies(self) -> list[str]:
        named = [TECHNOLOGIES[w] for w in self.words if w in TECHNOLOGIES]
        # Postgres and PostgreSQL are one product: say it once, the way the request did.
        unique = list(dict.fromkeys(named))
        if "Postgres" in unique and "PostgreSQL" in unique:
            unique.remove("Postgres")
        return unique

    @cached_property
    def _subjects(self) -> list[tuple[int, str]]:
        """Every noun phrase the request could be about, with where it starts in the prose."""
        found: list[tuple[int, str]] = []
        for match in _ENDPOINT.finditer(self.prose):
            method, path = match.groups()
            if re.search(r"[A-Za-z]{2}", path) and not path.startswith("//"):
                shown = f"{method} {path.rstrip('/')}" if method else path.rstrip("/")
                found.append((match.start(), f"the {shown} endpoint"))
        for match in _THING.finditer(self.prose):
            kept = [w for w in match.group(1).split() if w.lower() not in _BOILERPLATE]
            if kept and self._ends_a_phrase(match.end()):
                found.append((match.start(), "the " + " ".join(kept)))
        for match in _NAMED_API.finditer(self.prose):
            name = match.group(1)
            named = name and name.lower() not in _BOILERPLATE | {"web", "rest"}
            found.append((match.start(), f"the {name} API" if named else "the API"))
        for match in _API_FOR.finditer(self.prose):
            if match.group(1) not in _BOILERPLATE:
                found.append((match.start(), f"the {match.group(1)} API"))
        for match in _TABLE_BEFORE_WORD.finditer(self.prose):
            if match.group(1).lower() in self.tables:
                found.append((match.start(), f"the {match.group(1).lower()} table"))
        if self.tables and not found:
            found.append((len(self.prose), f"the {self.tables[0]} table"))
        return sorted(found)

    def _ends_a_phrase(self, end: int) -> bool:
        """Whether a component's name ends at `end`: "the job" in "the job results" does not
        (it describes the results), in "the job for billing" it does."""
        following = re.match(r"\s+([a-z][\w-]*)", self.prose[end:])
        return following is None or following.group(1) in _BOILERPLATE

    @property
    def headline(self) -> str:
        """The request's first sentence, past a "Thanks." or "Great!" that opens it."""
        sentences = _sentences(self.text)
        if len(sentences) > 1 and _SOCIAL.match(sentences[0]) and len(sentences[0].split()) <= 4:
            sentences = sentences[1:]
        return clip(sentences[0], 240) if sentences else ""

    @property
    def table(self) -> str | None:
        return self.tables[0] if self.tables else None

    def subject(self, default: str) -> str:
        """What the request is about, as a noun phrase: the first endpoint, API, component or
        table it names; `default` when it names none."""
        return self._subjects[0][1] if self._subjects else default

    def resource(self) -> str | None:
        """The table a request's data most likely lives in: one it names, or its endpoint's
        resource ("/v1/invoices" → invoices)."""
        if self.table:
            return self.table
        if self.endpoint:
            parts = [p for p in self.endpoint.split()[-1].split("/") if p and "{" not in p]
            nouns = [p for p in parts if not re.fullmatch(r"v\d+|api", p)]
            if nouns:
                return nouns[-1].replace("-", "_")
        return None

    def target(self) -> str | None:
        """Where a move goes, when the request says "from MySQL to PostgreSQL"."""
        found = re.search(r"\bfrom\s+([\w.]+)\s+(?:to|into|onto)\s+([\w.]+)", self.prose, re.I)
        if found and found.group(2).lower() in TECHNOLOGIES:
            return TECHNOLOGIES[found.group(2).lower()]
        return None

    # -- the words that matter -------------------------------------------------------------

    def key_terms(self, limit: int = 6) -> list[str]:
        """The few words a search for this request needs, in the request's order: no
        boilerplate, no numbers; products and the names the request gives kept as written."""
        terms: list[str] = []
        for raw in re.findall(r"/[\w/{}\-]+|[A-Za-z][\w\-']*", self.prose):
            word = raw.strip("'-")
            lowered = word.lower()
            if raw.startswith("/"):
                word = raw.rstrip("/")
            elif (
                lowered in _BOILERPLATE
                or lowered in _GENERIC_VERBS
                or len(word) < 3
                or lowered.endswith("'s")
            ):
                continue
            elif lowered in TECHNOLOGIES:
                word = TECHNOLOGIES[lowered]
            elif not re.search(r"[A-Z_]", word[1:]):
                word = lowered
            if word.lower() not in (t.lower() for t in terms):
                terms.append(word)
        return terms[:limit]

    @property
    def summary(self) -> str:
        """The request in one line: its first clause, at most about fifteen words."""
        clause = _CLAUSE_BREAK.split(first_sentence(self.text, 400), maxsplit=1)[0]
        clause = clause.strip().rstrip(".!")
        line = " ".join(clause.split()[:16]) + ("…" if len(clause.split()) > 16 else "")
        return line[:1].upper() + line[1:] if line else ""

    @property
    def is_imperative(self) -> bool:
        """Whether it opens with what to do: "Set up the …", "Plan the …"."""
        first = self.summary.split(maxsplit=1)
        return bool(first) and first[0].lower() in _IMPERATIVE

    @property
    def is_social(self) -> bool:
        """A thank-you, greeting or acknowledgement rather than a request."""
        return bool(_SOCIAL.match(self.prose.strip())) and len(self.prose.split()) <= 8

    # -- the demo's status rules -----------------------------------------------------------

    @cached_property
    def blocker(self) -> str | None:
        """The clause that says what the work waits for, when it waits for something."""
        for clause in re.split(r"[.;!?]\s+|\s+[—–]\s+|,\s+(?:but|and|so)\s+", self.prose):
            if _BLOCKED_WORDS.search(clause):
                return clause.strip().rstrip(".!?")
        return None

    def missing(self) -> str | None:
        """What the work waits for, as a noun phrase where the request gives one: "the
        production API credentials from finance", "access to the staging cluster"."""
        clause = self.blocker
        if clause is None:
            return None
        waiting = re.search(r"\b(?:waiting for|waiting on|blocked on)\s+(.+)", clause, re.I)
        if waiting:
            return waiting.group(1).strip()
        access = re.search(r"\b(access to|permissions? (?:to|from|for))\s+(.+)", clause, re.I)
        if access:
            return f"{access.group(1).lower()} {access.group(2).strip()}"
        credentials = re.search(
            r"((?:[\w/-]+\s+){0,3})credentials((?:\s+(?:for|from|to)\s+[\w/-]+(?:\s+[\w/-]+)?)?)",
            clause,
            re.I,
        )
        if credentials:
            kept = [w for w in credentials.group(1).split() if w.lower() not in _BOILERPLATE]
            return " ".join(["the", *kept, "credentials"]) + credentials.group(2)
        return re.sub(r"^(?:but|and|so)\s+", "", clause, flags=re.I)

    @cached_property
    def asks_for_something_large(self) -> bool:
        """A migration, rewrite, plan or roadmap is asked for (not merely mentioned)."""
        for sentence in _sentences(self.text):
            cleaned = _NOT_A_REQUEST_FOR_A_PLAN.sub(" ", sentence)
            if _LARGE_WORDS.search(cleaned) and _is_asking(sentence):
                return True
        return False


def _is_asking(sentence: str) -> bool:
    first = re.sub(r"^[^A-Za-z]+", "", sentence).split(maxsplit=1)
    return (
        sentence.rstrip().endswith("?")
        or (bool(first) and first[0].lower() in _IMPERATIVE)
        or bool(_ASKING.search(sentence))
    )
