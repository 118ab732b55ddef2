"""The container files, checked without a container runtime.

What a newcomer hit with `docker run --env-file .env` (a .env copied from .env.example): its
PMTEAM_HOST=127.0.0.1 beat the image's 0.0.0.0, so `-p 3000:3000` reached nothing; its relative
SQLite URL put the database in /app instead of the /data volume; and the health check called a
Socket Mode container unhealthy. So the Dockerfile is read here (ENV, WORKDIR, CMD,
HEALTHCHECK) and its CMD is run the way the image runs it: the image's environment, then that
.env on top, in a directory standing in for /data, against the sandbox fakes; then the
HEALTHCHECK's own command is run against it. compose.yaml and the Kubernetes manifests in
deploy/ are checked for the contracts they rely on. Building the image needs buildah and a
registry: that test is opt-in (PMTEAM_TEST_IMAGE=1).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
import pytest
import yaml
from aiohttp import web
from sqlalchemy.engine import make_url

from bot.config import Settings
from sandbox.model import FakeModel
from sandbox.slack import FakeSlack
from storage.db import normalise_url
from tests.conftest import POSTGRES_ADMIN_URL, _postgres_unavailable

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "compose.yaml"
DEPLOY = ROOT / "deploy"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")  # as tests/conftest.py
START_TIMEOUT = 60.0
STOP_TIMEOUT = 40.0

# Every environment variable pmteam reads (its Settings aliases), to catch a misspelt name.
SETTINGS_NAMES = {f.alias for f in Settings.model_fields.values() if f.alias}
SECRET_NAMES = {
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLACK_APP_TOKEN",
    "ANTHROPIC_API_KEY",
    "PMTEAM_DATABASE_URL",
}


# --- the Dockerfile, as Docker reads it ------------------------------------------------------


@dataclass
class Stage:
    """The instructions of one build stage, continuation lines joined, comments dropped."""

    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [rest for word, rest in self.instructions if word == keyword]

    def last(self, keyword: str) -> str:
        found = self.all(keyword)
        assert found, f"the stage has no {keyword}"
        return found[-1]

    def env(self) -> dict[str, str]:
        """ENV in its KEY=VALUE form (quotes as the shell reads them), later ones winning."""
        values: dict[str, str] = {}
        for rest in self.all("ENV"):
            for token in shlex.split(rest):
                key, sep, value = token.partition("=")
                assert sep, f"ENV {rest!r}: use the KEY=VALUE form"
                values[key] = value
        return values

    def cmd(self) -> list[str]:
        command: list[str] = json.loads(self.last("CMD"))  # exec form: no shell in between
        return command

    def healthcheck(self) -> tuple[dict[str, str], list[str]]:
        options, sep, command = self.last("HEALTHCHECK").partition(" CMD ")
        assert sep, "HEALTHCHECK has no CMD"
        flags = dict(option.removeprefix("--").split("=", 1) for option in options.split())
        argv: list[str] = json.loads(command)
        return flags, argv


def dockerfile_stages(text: str) -> list[Stage]:
    lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        if raw.lstrip().startswith("#"):
            continue  # Docker drops comment lines, inside a continuation too
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1] + " "
            continue
        lines.append(pending + raw)
        pending = ""
    stages: list[Stage] = []
    for line in filter(str.strip, lines):
        word, _, rest = line.strip().partition(" ")
        word, rest = word.upper(), " ".join(rest.split())
        if word == "FROM":
            stages.append(Stage(base=rest.split()[0]))
        else:
            assert stages, f"{word} before FROM"
            stages[-1].instructions.append((word, rest))
    return stages


def runtime_stage() -> Stage:
    return dockerfile_stages(DOCKERFILE.read_text())[-1]


def read_env_file(text: str) -> dict[str, str]:
    """`docker run --env-file` rules: KEY=VALUE taken literally (no quotes, no expansion),
    lines starting with # and blank lines skipped."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        line = line.lstrip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if sep:
            values[key] = value
    return values


def test_the_runtime_stage_keeps_the_database_in_the_data_volume() -> None:
    stage = runtime_stage()
    env = stage.env()

    assert stage.last("WORKDIR") == "/data"  # so .env.example's ./pmteam.db lands in /data
    assert "/data" in json.loads(stage.last("VOLUME"))
    assert make_url(env["PMTEAM_DATABASE_URL"]).database == "/data/pmteam.db"
    # The virtualenv stays in /app, first on PATH, so `pmteam` and `python` are its own.
    assert env["PATH"].startswith("/app/.venv/bin:")
    assert any("/app/.venv" in rest for rest in stage.all("COPY"))


def test_the_image_runs_as_uid_10001_and_binds_every_interface() -> None:
    stage = runtime_stage()

    assert stage.last("USER").split(":")[0] == "10001"  # numeric: runAsNonRoot can check it
    assert stage.cmd() == ["pmteam", "run", "--host", "0.0.0.0"]
    assert stage.env()["PMTEAM_PORT"] == "3000"
    assert "3000" in stage.last("EXPOSE").split()


def test_the_healthcheck_asks_healthz_whatever_the_mode() -> None:
    flags, argv = runtime_stage().healthcheck()

    assert argv[:2] == ["python", "-c"] and len(argv) == 3
    snippet = argv[2]
    assert "/healthz" in snippet and "127.0.0.1" in snippet and "PMTEAM_PORT" in snippet
    # The old check decided "Socket Mode has no listener" from PMTEAM_MODE / SLACK_APP_TOKEN and
    # got it wrong for PMTEAM_MODE=''; pmteam now serves /healthz in both modes.
    assert "PMTEAM_MODE" not in snippet and "SLACK_APP_TOKEN" not in snippet
    assert {"interval", "timeout", "start-period", "retries"} <= set(flags)


# --- the image's CMD, run as the image runs it -----------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def container_environment(stage: Stage, env_file: dict[str, str], home: Path) -> dict[str, str]:
    """What the process in the container sees: the image's ENV, then --env-file on top.

    The image's PATH starts with its virtualenv (/app/.venv/bin); this checkout's virtualenv
    stands in for it, so `pmteam` and `python` resolve to the same kind of programs."""
    image = stage.env()
    venv_bin = str(Path(sys.executable).parent)
    image["PATH"] = image["PATH"].replace("/app/.venv/bin", venv_bin, 1)
    image["PATH"] = image["PATH"].replace("$PATH", os.environ.get("PATH", "/usr/bin:/bin"))
    return {"HOME": str(home), **image, **env_file}


def newcomer_env_file(
    fake_slack: FakeSlack, fake_model: FakeModel, port: int, **overrides: str
) -> dict[str, str]:
    """.env.example, copied and filled in as the README says, read the way --env-file reads it;
    with PMTEAM_HOST=127.0.0.1, a relative SQLite URL and PMTEAM_MODE='' as the report had."""
    values = read_env_file((ROOT / ".env.example").read_text())
    values.update(
        SLACK_BOT_TOKEN="xoxb-1-2-container",
        SLACK_SIGNING_SECRET="container-signing-secret",
        SLACK_APP_TOKEN="",
        ANTHROPIC_API_KEY="sk-ant-container-test",
        ANTHROPIC_BASE_URL=fake_model.base_url,
        PMTEAM_SLACK_API_URL=fake_slack.api_url,
        PMTEAM_COORDINATION_CHANNEL="C0PM",
        PMTEAM_MODE="",
        PMTEAM_HOST="127.0.0.1",
        PMTEAM_PORT=str(port),
        PMTEAM_DATABASE_URL="sqlite+aiosqlite:///./pmteam.db",
    )
    values.update(overrides)
    return values


@dataclass
class Container:
    process: asyncio.subprocess.Process
    output: list[str]
    reader: asyncio.Task[None]
    env: dict[str, str]
    workdir: Path
    port: int

    def log(self) -> str:
        return "".join(self.output)


async def _collect(stream: asyncio.StreamReader, into: list[str]) -> None:
    while line := await stream.readline():
        into.append(line.decode(errors="replace"))


async def _healthz(http: aiohttp.ClientSession, host: str, port: int) -> int | None:
    try:
        async with http.get(f"http://{host}:{port}/healthz") as response:
            return response.status
    except aiohttp.ClientError:
        return None


async def start_container(cmd: list[str], env: dict[str, str], workdir: Path) -> Container:
    process = await asyncio.create_subprocess_exec(
        *cmd,
        cwd=workdir,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert process.stdout is not None
    output: list[str] = []
    reader = asyncio.create_task(_collect(process.stdout, output))
    container = Container(process, output, reader, env, workdir, int(env["PMTEAM_PORT"]))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + START_TIMEOUT
    timeout = aiohttp.ClientTimeout(total=2)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        while await _healthz(http, "127.0.0.1", container.port) != 200:
            if process.returncode is not None:
                await reader
                pytest.fail(f"`{shlex.join(cmd)}` exited {process.returncode}:\n{container.log()}")
            assert loop.time() < deadline, f"/healthz never answered:\n{container.log()}"
            await asyncio.sleep(0.2)
    return container


async def stop_container(container: Container) -> int:
    """`docker stop`: SIGTERM, then (after the grace period) SIGKILL."""
    process = container.process
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
        except TimeoutError:
            process.kill()
            await process.wait()
    await container.reader
    assert process.returncode is not None
    return process.returncode


@pytest.fixture
async def run_image_cmd(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    started: list[Container] = []

    async def _run(env_file: dict[str, str]) -> Container:
        stage = runtime_stage()
        data = tmp_path / "data"  # stands in for the /data volume, the WORKDIR
        data.mkdir(exist_ok=True)
        home = tmp_path / "home"
        home.mkdir(exist_ok=True)
        env = container_environment(stage, env_file, home)
        container = await start_container(stage.cmd(), env, data)
        started.append(container)
        return container

    yield _run
    for container in started:
        if container.process.returncode is None:
            container.process.kill()
            await container.process.wait()


async def run_healthcheck(env: dict[str, str], workdir: Path) -> subprocess.CompletedProcess[str]:
    """The HEALTHCHECK's command, exactly as written, in the container's environment."""
    flags, argv = runtime_stage().healthcheck()
    timeout = float(flags["timeout"].removesuffix("s"))
    return await asyncio.to_thread(
        subprocess.run,
        argv,
        env=env,
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=timeout + 5,
    )


async def _wait_for(condition: Callable[[], bool], container: Container) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + START_TIMEOUT
    while not condition():
        assert loop.time() < deadline, container.log()
        await asyncio.sleep(0.1)


async def _bound_beyond_loopback(port: int) -> bool:
    """A socket bound to 127.0.0.1 refuses 127.0.0.2; one bound to 0.0.0.0 takes it (Linux)."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3)) as http:
        return await _healthz(http, "127.0.0.2", port) == 200


@pytest.mark.parametrize("mode", ["http", "socket"])
async def test_the_image_cmd_with_a_newcomers_env_file_listens_everywhere_and_is_healthy(
    mode: str,
    run_image_cmd: Callable[..., Any],
    fake_slack: FakeSlack,
    fake_model: FakeModel,
) -> None:
    port = _free_port()
    overrides = {"SLACK_APP_TOKEN": "xapp-1-A0PMTEAM-1-container"} if mode == "socket" else {}
    env_file = newcomer_env_file(fake_slack, fake_model, port, **overrides)

    container: Container = await run_image_cmd(env_file)

    # Socket Mode with PMTEAM_MODE='' (as .env.example has it): the app token picks the mode.
    if mode == "socket":
        await _wait_for(lambda: len(fake_slack.socket_mode.connections) == 1, container)
    else:
        assert fake_slack.socket_mode.connections == []
    # --host 0.0.0.0 beat PMTEAM_HOST=127.0.0.1: what `-p 3000:3000` forwards to is answered.
    if sys.platform == "linux":
        assert await _bound_beyond_loopback(port), "pmteam listens on loopback only"
    # The relative SQLite URL put the database in the working directory, the volume.
    database = container.workdir / "pmteam.db"
    assert database.read_bytes().startswith(b"SQLite format 3")

    healthy = await run_healthcheck(container.env, container.workdir)
    assert healthy.returncode == 0, healthy.stderr

    # And the check can fail: nothing listens on its port.
    elsewhere = {**container.env, "PMTEAM_PORT": str(_free_port())}
    unhealthy = await run_healthcheck(elsewhere, container.workdir)
    assert unhealthy.returncode != 0

    # `docker stop`: SIGTERM, a clean exit well within --stop-timeout.
    assert await stop_container(container) == 0, container.log()
    assert "Traceback" not in container.log()


def test_the_healthcheck_reads_an_empty_port_as_3000() -> None:
    _flags, argv = runtime_stage().healthcheck()
    # Print the URL it would ask for instead of asking.
    stub = "import urllib.request\nurllib.request.urlopen = lambda url, timeout: print(url)\n"
    result = subprocess.run(
        [sys.executable, "-c", stub + argv[2]],
        env={"PMTEAM_PORT": ""},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("http://127.0.0.1:3000/healthz")


# --- compose.yaml ----------------------------------------------------------------------------


def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return document


def interpolate(value: str) -> str:
    """Compose's ${NAME:-default}, with nothing set (as on a fresh checkout)."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)


def pmteam_services(services: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The services that run `pmteam run` (the image's CMD: no command of their own)."""
    return {
        name: service
        for name, service in services.items()
        if service.get("build") and "command" not in service
    }


def test_compose_runs_migrate_once_before_pmteam_on_postgres() -> None:
    services = compose()["services"]

    postgres = services["postgres"]
    assert postgres["healthcheck"]["test"]
    assert any(v.endswith(":/var/lib/postgresql/data") for v in postgres["volumes"])
    assert "postgres-data" in compose()["volumes"]

    migrate = services["migrate"]
    assert migrate["command"] == ["pmteam", "db", "upgrade"]
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert migrate.get("restart") == "no"

    runners = pmteam_services(services)
    assert set(runners) == {"pmteam", "pmteam-1", "pmteam-2"}
    for name, service in runners.items():
        conditions = {dep: spec["condition"] for dep, spec in service["depends_on"].items()}
        assert conditions["migrate"] == "service_completed_successfully", name
        assert service["env_file"] == ".env", name
        env = service["environment"]
        # .env's PMTEAM_DATABASE_URL and PMTEAM_PORT are overridden for the container.
        assert env["PMTEAM_DATABASE_URL"] == migrate["environment"]["PMTEAM_DATABASE_URL"]
        assert env["PMTEAM_PORT"] == "3000"
        assert service["healthcheck"]["test"][1:] == runtime_stage().healthcheck()[1], name
        assert service["image"] == migrate["image"], name
    assert services["pmteam"]["ports"] == ["3000:3000"]
    assert "profiles" not in services["pmteam"]


def test_compose_database_url_is_the_postgres_service_through_psycopg() -> None:
    services = compose()["services"]
    postgres_env = services["postgres"]["environment"]
    url = make_url(interpolate(services["migrate"]["environment"]["PMTEAM_DATABASE_URL"]))

    assert normalise_url(url).drivername == "postgresql+psycopg"
    assert (url.host, url.port) == ("postgres", 5432)
    assert url.username == postgres_env["POSTGRES_USER"]
    assert url.password == interpolate(postgres_env["POSTGRES_PASSWORD"])
    assert url.database == postgres_env["POSTGRES_DB"]


async def test_the_migrate_service_upgrades_postgres_with_only_its_own_environment(
    tmp_path: Path,
) -> None:
    """compose's `migrate` (and the Kubernetes Job) get the database URL and nothing else."""
    problem = _postgres_unavailable()
    if problem:
        if IN_CI:
            pytest.fail(f"{problem}; CI must run the PostgreSQL tests")
        pytest.skip(f"{problem}; set PMTEAM_TEST_POSTGRES_URL to run this test")
    migrate = compose()["services"]["migrate"]
    name = f"pmteam_migrate_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        # The compose URL's form (postgresql://…, psycopg 3), on this test's server.
        composed = make_url(interpolate(migrate["environment"]["PMTEAM_DATABASE_URL"]))
        server = make_url(POSTGRES_ADMIN_URL)
        url = composed.set(
            host=server.host,
            port=server.port,
            username=server.username,
            password=server.password,
            database=name,
        )
        assert url.drivername == "postgresql"
        env = container_environment(runtime_stage(), {}, tmp_path)
        env = {k: v for k, v in env.items() if not k.startswith(("SLACK_", "ANTHROPIC_"))} | {
            "PMTEAM_DATABASE_URL": url.render_as_string(hide_password=False)
        }
        result = await asyncio.to_thread(
            subprocess.run,
            migrate["command"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        with psycopg.connect(f"{POSTGRES_ADMIN_URL.rpartition('/')[0]}/{name}") as conn:
            [(revision,)] = conn.execute("SELECT version_num FROM alembic_version").fetchall()
        assert revision
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_compose_replicas_profile_puts_two_replicas_behind_the_proxy() -> None:
    services = compose()["services"]
    in_profile = {n for n, s in services.items() if "replicas" in s.get("profiles", [])}
    assert in_profile == {"pmteam-1", "pmteam-2", "proxy"}

    proxy = services["proxy"]
    assert proxy["ports"] == ["3000:3000"]
    assert set(proxy["depends_on"]) == {"pmteam-1", "pmteam-2"}
    [mount] = proxy["volumes"]
    source, target = mount.split(":")[:2]
    assert source == "./deploy/proxy/haproxy.cfg"
    assert target == "/usr/local/etc/haproxy/haproxy.cfg"  # where the haproxy image reads it
    config = (ROOT / source).read_text()
    assert re.search(r"^\s*bind :3000$", config, re.M)
    servers = re.findall(r"^\s*server \S+ (\S+)$", config, re.M)
    assert servers == ["pmteam-1:3000", "pmteam-2:3000"]  # the replicas' service names
    assert "option httpchk GET /readyz" in config


async def _named_upstream(name: str) -> web.AppRunner:
    """A stand-in replica: ready, and it answers /slack/events with its name."""

    async def answer(request: web.Request) -> web.Response:
        await request.read()  # as pmteam does: it checks the signature over the body
        return web.Response(text=name)

    async def readyz(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_get("/readyz", readyz)
    app.router.add_post("/slack/events", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner


def _port_of(runner: web.AppRunner) -> int:
    return int(runner.addresses[0][1])


async def test_the_proxy_spreads_requests_and_skips_a_stopped_replica(tmp_path: Path) -> None:
    haproxy = shutil.which("haproxy")
    if haproxy is None:
        pytest.skip("haproxy is not installed (apt-get install haproxy); compose uses haproxy:lts")
    one, two = await _named_upstream("one"), await _named_upstream("two")
    port = _free_port()
    config = (ROOT / "deploy/proxy/haproxy.cfg").read_text()
    config = config.replace("bind :3000", f"bind 127.0.0.1:{port}")
    config = config.replace("pmteam-1:3000", f"127.0.0.1:{_port_of(one)}")
    config = config.replace("pmteam-2:3000", f"127.0.0.1:{_port_of(two)}")
    (tmp_path / "haproxy.cfg").write_text(config)
    log = (tmp_path / "haproxy.log").open("wb")
    process = await asyncio.create_subprocess_exec(
        haproxy, "-db", "-f", str(tmp_path / "haproxy.cfg"), stdout=log, stderr=subprocess.STDOUT
    )
    stopped_two = False
    try:
        url = f"http://127.0.0.1:{port}/slack/events"
        # A new connection per request, as Slack makes them: each is balanced on its own.
        connector = aiohttp.TCPConnector(force_close=True)
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 20
            answers: list[str] = []
            while len(answers) < 6:
                try:
                    async with http.post(url, data=b'{"type":"event_callback"}') as response:
                        assert response.status == 200
                        answers.append(await response.text())
                except aiohttp.ClientConnectionError:
                    assert process.returncode is None, (tmp_path / "haproxy.log").read_text()
                    assert loop.time() < deadline, "haproxy never listened"
                    await asyncio.sleep(0.1)
            assert set(answers) == {"one", "two"}

            # A replica restarting refuses connections: its share goes to the other one, even
            # before the health check has noticed.
            await two.cleanup()
            stopped_two = True
            for _ in range(4):
                async with http.post(url, data=b'{"type":"event_callback"}') as response:
                    assert (response.status, await response.text()) == (200, "one")
    finally:
        if process.returncode is None:
            process.terminate()
        await process.wait()
        log.close()
        await one.cleanup()
        if not stopped_two:
            await two.cleanup()


# --- the Kubernetes example ------------------------------------------------------------------


def k8s_documents() -> list[dict[str, Any]]:
    documents: list[dict[str, Any]] = []
    for path in sorted(DEPLOY.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            assert isinstance(document, dict), f"{path.name}: an empty or non-mapping document"
            for key in ("apiVersion", "kind", "metadata"):
                assert key in document, f"{path.name}: no {key}"
            documents.append(document)
    return documents


def k8s(kind: str) -> dict[str, Any]:
    [found] = [d for d in k8s_documents() if d["kind"] == kind]
    return found


def test_every_kubernetes_document_parses_and_the_kinds_are_there() -> None:
    kinds = sorted(d["kind"] for d in k8s_documents())
    assert kinds == [
        "ConfigMap",
        "Deployment",
        "Job",
        "PodDisruptionBudget",
        "Secret",
        "Service",
    ]
    assert (DEPLOY / "README.md").is_file()


def test_the_secret_and_configmap_hold_pmteams_own_variable_names() -> None:
    secret = k8s("Secret")
    config = k8s("ConfigMap")["data"]

    assert set(secret["stringData"]) == SECRET_NAMES
    assert set(config) <= SETTINGS_NAMES, set(config) - SETTINGS_NAMES
    assert not set(config) & SECRET_NAMES
    assert all(isinstance(value, str) for value in config.values())  # a ConfigMap holds strings
    assert config["PMTEAM_HOST"] == "0.0.0.0"


def _container(spec: dict[str, Any]) -> dict[str, Any]:
    [container] = spec["template"]["spec"]["containers"]
    assert isinstance(container, dict)
    return container


def _assert_locked_down(pod: dict[str, Any], container: dict[str, Any]) -> None:
    context = pod["securityContext"]
    assert context["runAsNonRoot"] is True
    # The image's USER: the files in /app belong to it.
    assert str(context["runAsUser"]) == runtime_stage().last("USER").split(":")[0]
    own = container["securityContext"]
    assert own["readOnlyRootFilesystem"] is True
    assert own["allowPrivilegeEscalation"] is False
    assert own["capabilities"]["drop"] == ["ALL"]
    assert {"/tmp"} <= {mount["mountPath"] for mount in container["volumeMounts"]}
    resources = container["resources"]
    assert resources["requests"]["memory"] and resources["limits"]["memory"]


def test_the_migration_job_runs_db_upgrade_with_only_the_database_url() -> None:
    job = k8s("Job")["spec"]
    pod = job["template"]["spec"]
    container = _container(job)

    assert container["command"] == ["pmteam", "db", "upgrade"]
    assert pod["restartPolicy"] in ("Never", "OnFailure")
    [url] = [e for e in container["env"] if e["name"] == "PMTEAM_DATABASE_URL"]
    assert url["valueFrom"]["secretKeyRef"] == {
        "name": k8s("Secret")["metadata"]["name"],
        "key": "PMTEAM_DATABASE_URL",
    }
    assert container["image"] == _container(k8s("Deployment")["spec"])["image"]
    _assert_locked_down(pod, container)


def test_the_deployment_probes_healthz_and_readyz_as_uid_10001() -> None:
    deployment = k8s("Deployment")["spec"]
    pod = deployment["template"]["spec"]
    container = _container(deployment)
    [port] = container["ports"]

    assert deployment["replicas"] == 2
    assert str(port["containerPort"]) == k8s("ConfigMap")["data"]["PMTEAM_PORT"]
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        assert container[probe]["httpGet"]["path"] == path
        assert container[probe]["httpGet"]["port"] in (port["name"], port["containerPort"])
    sources = [ref.get("configMapRef") or ref.get("secretRef") for ref in container["envFrom"]]
    assert {source["name"] for source in sources} == {
        k8s("ConfigMap")["metadata"]["name"],
        k8s("Secret")["metadata"]["name"],
    }
    # pmteam lets running turns finish for 30 s after SIGTERM.
    assert pod["terminationGracePeriodSeconds"] > 30
    _assert_locked_down(pod, container)


def test_the_service_reaches_the_deployments_pods() -> None:
    service = k8s("Service")["spec"]
    deployment = k8s("Deployment")["spec"]
    labels = deployment["template"]["metadata"]["labels"]

    assert service["selector"].items() <= labels.items()
    assert deployment["selector"]["matchLabels"].items() <= labels.items()
    [port] = service["ports"]
    assert port["targetPort"] in {p.get("name") for p in _container(deployment)["ports"]}
    budget = k8s("PodDisruptionBudget")["spec"]
    assert budget["selector"]["matchLabels"].items() <= labels.items()


# --- the image itself (opt-in: buildah and registry access) ---------------------------------


def _image_build_unavailable() -> str | None:
    if os.environ.get("PMTEAM_TEST_IMAGE") != "1":
        return "building the image takes minutes; set PMTEAM_TEST_IMAGE=1 to run it (buildah)"
    if shutil.which("buildah") is None:
        return "buildah is not installed (apt-get install buildah); no Docker daemon is used"
    for registry in ("registry-1.docker.io", "ghcr.io"):
        try:
            socket.getaddrinfo(registry, 443)
        except OSError:
            return f"{registry} can't be resolved, so the base images can't be pulled"
    return None


@pytest.mark.timeout(1800)
async def test_the_image_builds_and_pmteam_doctor_passes_inside_it(
    fake_slack: FakeSlack, fake_model: FakeModel
) -> None:
    problem = _image_build_unavailable()
    if problem:
        pytest.skip(problem)
    buildah = ["buildah"]
    if driver := os.environ.get("STORAGE_DRIVER"):
        buildah += ["--storage-driver", driver]
    tag = f"localhost/pmteam-test:{uuid.uuid4().hex[:8]}"

    def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*buildah, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT
        )

    # chroot isolation: no daemon and no cgroup setup needed; the host's network.
    built = run("bud", "--isolation", "chroot", "--layers", "-t", tag, ".", timeout=1500)
    assert built.returncode == 0, built.stdout[-4000:] + built.stderr[-4000:]
    container = run("from", tag).stdout.strip()
    try:
        settings = {
            "SLACK_BOT_TOKEN": "xoxb-1-2-image",
            "PMTEAM_SLACK_API_URL": fake_slack.api_url,
            "PMTEAM_COORDINATION_CHANNEL": "C0PM",
            "ANTHROPIC_API_KEY": "sk-ant-image-test",
            "ANTHROPIC_BASE_URL": fake_model.base_url,
        }
        env = [arg for key, value in settings.items() for arg in ("--env", f"{key}={value}")]
        runs = ["run", "--isolation", "chroot", "--network", "host", *env, container, "--"]
        upgraded = await asyncio.to_thread(run, *runs, "pmteam", "db", "upgrade")
        assert upgraded.returncode == 0, upgraded.stdout + upgraded.stderr
        doctor = await asyncio.to_thread(run, *runs, "pmteam", "doctor")
        assert doctor.returncode == 0, doctor.stdout + doctor.stderr
        # The image's default database is in the /data volume (its working directory).
        listed = await asyncio.to_thread(run, *runs, "ls", "/data")
        assert "pmteam.db" in listed.stdout.split()
    finally:
        run("rm", container)
        run("rmi", tag)
