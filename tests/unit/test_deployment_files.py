"""The production deployment files: docker-compose.yml, Dockerfile, .dockerignore and .env.example.

Docker is not needed: the compose file is read as YAML and checked against what callrec really reads
(`Settings.model_fields`) and what the stack needs to come up in order.
"""

from __future__ import annotations

import re
import socket
from pathlib import Path
from typing import Any

import pytest
import yaml

from callrec.domain.recording import SEARCH_ATTRIBUTES
from callrec.domain.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
ENV_EXAMPLE = ROOT / ".env.example"
README = ROOT / "README.md"
PRODUCTION_GUIDE = ROOT / "docs" / "production.md"
BENCH_README = ROOT / "bench" / "README.md"

CALLREC_SERVICES = ("callrec-migrate", "callrec-api", "callrec-worker", "recorder")
# The services that use the catalog (the recorders do not: they get the shared settings only).
CATALOG_SERVICES = ("callrec-migrate", "callrec-api", "callrec-worker")
SETTING_NAMES = {f"CALLREC_{name.upper()}" for name in Settings.model_fields}
# What a production deployment must set: without them callrec falls back to embedded or loopback defaults.
PRODUCTION_SETTINGS = {
    "CALLREC_DATABASE_URL",
    "CALLREC_TEMPORAL_ADDRESS",
    "CALLREC_S3_ENDPOINT",
    "CALLREC_S3_ACCESS_KEY",
    "CALLREC_S3_SECRET_KEY",
    "CALLREC_API_KEY",
    "CALLREC_RECORDING_SECRET",
    "CALLREC_TOKEN_SECRET",
    "CALLREC_API_URL",
    "CALLREC_PUBLIC_URL",
}
# What a recorder needs: Temporal, the object store, the API it registers with, the secrets it signs and checks with.
RECORDER_SETTINGS = {
    "CALLREC_TEMPORAL_ADDRESS",
    "CALLREC_S3_ENDPOINT",
    "CALLREC_S3_ACCESS_KEY",
    "CALLREC_S3_SECRET_KEY",
    "CALLREC_RECORDING_SECRET",
    "CALLREC_PUBLISH_SECRET",
    "CALLREC_API_URL",
    "CALLREC_PUBLIC_URL",
}
# The worker's own: where its /metrics and its Temporal SDK's metrics listen (inside the stack).
WORKER_METRICS_SETTINGS = {
    "CALLREC_WORKER_METRICS_HOST",
    "CALLREC_WORKER_METRICS_PORT",
    "CALLREC_TEMPORAL_METRICS_PORT",
}
CALLREC_NAME = re.compile(r"\bCALLREC_[A-Z0-9_]+\b")
REQUIRED_VARIABLE = re.compile(r"\$\{([A-Z0-9_]+):\?[^}]*\}")
ANY_VARIABLE = re.compile(r"(?<!\$)\$\{([A-Z0-9_]+)")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = compose["services"]
    assert isinstance(found, dict)
    return found


def environment(service: dict[str, Any]) -> dict[str, Any]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # ["NAME=value", "NAME"]
        return dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    assert isinstance(env, dict)
    return env


def depends_on(service: dict[str, Any]) -> dict[str, str]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return dict.fromkeys(deps, "service_started")
    return {name: spec.get("condition", "service_started") for name, spec in deps.items()}


def published_container_ports(service: dict[str, Any]) -> set[int]:
    ports: set[int] = set()
    for entry in service.get("ports") or []:
        target = entry["target"] if isinstance(entry, dict) else str(entry).rsplit(":", 1)[-1].split("/")[0]
        ports.add(int(target))
    return ports


def duration_s(value: str) -> float:
    """A compose duration (`4h5m`, `90s`, `1m30s`) in seconds."""
    parts = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", str(value))
    assert parts and any(parts.groups()), f"not a duration: {value!r}"
    hours, minutes, seconds = (int(part or 0) for part in parts.groups())
    return hours * 3600 + minutes * 60 + seconds


def published_host_ports(service: dict[str, Any]) -> dict[int, int]:
    """host port -> container port, for the short syntax `[ip:]host:container`."""
    mapping: dict[int, int] = {}
    for entry in service.get("ports") or []:
        parts = str(entry).split("/")[0].split(":")
        assert len(parts) >= 2, f"{entry}: publish with an explicit host port"
        mapping[int(parts[-2])] = int(parts[-1])
    return mapping


def test_the_stack_has_its_services_with_their_images(services: dict[str, dict[str, Any]]) -> None:
    expected_images = {
        "postgresql": "postgres:16",
        "temporal": "temporalio/auto-setup:",
        "temporal-setup": "temporalio/admin-tools:",
        "temporal-ui": "temporalio/ui:",
        "minio": "minio/minio:",
        "minio-setup": "minio/mc:",
        "prometheus": "prom/prometheus:",
        "grafana": "grafana/grafana:",
        "proxy": "nginx:",
    }
    for name, image in expected_images.items():
        assert name in services, name
        assert services[name]["image"].startswith(image), (name, services[name]["image"])
        assert not services[name]["image"].endswith(":latest"), f"{name}: pin the image"
    for name in CALLREC_SERVICES:
        assert name in services, name


def test_callrec_services_run_one_image_built_from_the_dockerfile(services: dict[str, dict[str, Any]]) -> None:
    images = {services[name]["image"] for name in CALLREC_SERVICES}
    assert len(images) == 1, images
    for name in CALLREC_SERVICES:
        build = services[name]["build"]
        context = build if isinstance(build, str) else build["context"]
        dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
        assert (ROOT / context / dockerfile).resolve() == DOCKERFILE
    commands = {name: services[name]["command"] for name in CALLREC_SERVICES}
    assert commands == {
        "callrec-migrate": ["migrate"],
        "callrec-api": ["api"],
        "callrec-worker": ["worker"],
        "recorder": ["recorder"],
    }


def test_published_ports(services: dict[str, dict[str, Any]]) -> None:
    assert published_host_ports(services["proxy"]) == {8080: 8080}  # nginx, the API's door
    assert not services["callrec-api"].get("ports")
    assert published_host_ports(services["temporal-ui"]) == {8233: 8080}
    assert 9001 in published_container_ports(services["minio"])  # the console
    assert published_host_ports(services["prometheus"]) == {9090: 9090}
    assert published_host_ports(services["grafana"]) == {3000: 3000}


def test_nothing_is_published_beyond_the_hosts_loopback(services: dict[str, dict[str, Any]]) -> None:
    """The API (keys, tokens, recordings) and the consoles speak plain HTTP: reachable from other machines only
    through a TLS-terminating proxy on the host, never on every interface."""
    assert services["proxy"]["ports"] == ["127.0.0.1:8080:8080"]
    for name, service in services.items():
        for entry in service.get("ports") or []:
            if isinstance(entry, dict):  # long syntax
                assert entry.get("host_ip") == "127.0.0.1", (name, entry)
            else:
                assert str(entry).startswith("127.0.0.1:") and str(entry).count(":") == 2, (name, entry)


@pytest.mark.parametrize("name", ["callrec-worker", "recorder"])
def test_the_worker_and_the_recorders_can_scale(services: dict[str, dict[str, Any]], name: str) -> None:
    service = services[name]
    assert not service.get("ports"), "a published host port would clash between replicas"
    assert "container_name" not in service, "a fixed container name prevents --scale"
    assert "hostname" not in service, "replicas sharing one host name would register as one recorder"
    for callrec in CALLREC_SERVICES:
        assert "container_name" not in services[callrec]


def test_each_recorder_replica_names_and_addresses_itself(services: dict[str, dict[str, Any]]) -> None:
    """A fixed CALLREC_RECORDER_ID or CALLREC_RECORDER_URL would make every replica register as the same recorder:
    left unset, each defaults them from its container's host name (and listens on every address for the API)."""
    env = environment(services["recorder"])
    assert "CALLREC_RECORDER_ID" not in env and "CALLREC_RECORDER_URL" not in env
    assert env["CALLREC_RECORDER_HOST"] == "0.0.0.0"
    settings = Settings.model_validate({"recorder_host": "0.0.0.0", "recorder_port": env["CALLREC_RECORDER_PORT"]})
    hostname = socket.gethostname()
    assert settings.recorder_id == f"{hostname}-8090"
    assert settings.recorder_url == f"http://{hostname}:8090"


def test_a_stopping_recorder_has_time_to_drain(services: dict[str, dict[str, Any]]) -> None:
    """SIGTERM drains: the recorder finishes what it records; the grace period covers the longest recording
    (CALLREC_MAX_DURATION_S, unless the compose file sets it) plus shipping its last segments."""
    grace = duration_s(services["recorder"]["stop_grace_period"])
    max_duration = Settings.model_fields["max_duration_s"].default
    assert grace >= max_duration + 60, f"stop_grace_period {grace:g} s < the longest recording {max_duration:g} s"


def test_the_recorders_wait_for_temporal_and_the_store(services: dict[str, dict[str, Any]]) -> None:
    deps = depends_on(services["recorder"])
    assert deps["temporal"] == "service_healthy" and deps["temporal-setup"] == "service_completed_successfully"
    assert deps["minio"] == "service_healthy"
    assert "postgresql" not in deps and "callrec-migrate" not in deps, "a recorder never touches the catalog"


def test_a_stop_of_the_stack_stops_the_recorders_before_the_api_and_the_worker(
    services: dict[str, dict[str, Any]],
) -> None:
    """Compose stops a service only after those that depend on it: a draining recorder's recordings still reach
    the API (stop, callbacks) and the worker (their workflows). Started, not healthy: the API's health needs a
    recorder registered, so waiting for it would never start."""
    deps = depends_on(services["recorder"])
    assert (deps["callrec-api"], deps["callrec-worker"]) == ("service_started", "service_started")
    for name in ("callrec-api", "callrec-worker"):
        assert "recorder" not in depends_on(services[name]), name


def test_named_volumes_are_declared_and_used(compose: dict[str, Any], services: dict[str, dict[str, Any]]) -> None:
    declared = set(compose.get("volumes") or {})

    def named_volumes(service: dict[str, Any]) -> dict[str, str]:
        found = {}
        for entry in service.get("volumes") or []:
            source, target = str(entry).split(":")[:2]
            found[source] = target
        return found

    postgres = named_volumes(services["postgresql"])
    minio = named_volumes(services["minio"])
    assert len(postgres) == 1 and len(minio) == 1
    (postgres_volume, postgres_target), (minio_volume, minio_target) = *postgres.items(), *minio.items()
    assert postgres_volume in declared and postgres_target == "/var/lib/postgresql/data"
    assert minio_volume in declared and minio_target == "/data"
    assert "/data" in services["minio"]["command"]
    used = {source for service in services.values() for source in named_volumes(service)}
    assert declared <= used, f"declared but unused: {declared - used}"


def test_healthchecks(services: dict[str, dict[str, Any]]) -> None:
    for name in ("postgresql", "temporal", "minio", "callrec-api", "recorder"):
        test = services[name].get("healthcheck", {}).get("test")
        assert test and test[0] in ("CMD", "CMD-SHELL"), name
    assert "pg_isready" in " ".join(services["postgresql"]["healthcheck"]["test"])
    assert "cluster health" in " ".join(services["temporal"]["healthcheck"]["test"])
    assert "/health" in " ".join(services["callrec-api"]["healthcheck"]["test"])
    assert ":8080/health" in " ".join(services["callrec-api"]["healthcheck"]["test"])
    # each replica checks itself: the port it listens on, on its own loopback
    assert "127.0.0.1:8090/health" in " ".join(services["recorder"]["healthcheck"]["test"])
    assert environment(services["recorder"])["CALLREC_RECORDER_PORT"] == "8090"


def test_start_order(services: dict[str, dict[str, Any]]) -> None:
    healthy, done = "service_healthy", "service_completed_successfully"
    assert depends_on(services["temporal"]) == {"postgresql": healthy}
    assert depends_on(services["temporal-setup"]) == {"temporal": healthy}
    assert depends_on(services["temporal-ui"])["temporal"] == healthy
    assert depends_on(services["minio-setup"]) == {"minio": healthy}
    assert depends_on(services["callrec-migrate"]) == {"postgresql": healthy}
    for name in ("callrec-api", "callrec-worker"):
        deps = depends_on(services[name])
        assert deps["callrec-migrate"] == done, name
        assert deps["temporal"] == healthy, name
        assert deps["temporal-setup"] == done, name  # the search attributes exist before any recording
        assert deps["minio"] == healthy, name
    for name in ("callrec-migrate", "temporal-setup", "minio-setup"):
        assert services[name].get("restart") == "no", f"{name} is a one-shot"
    for name in ("postgresql", "temporal", "temporal-ui", "minio", "callrec-api", "callrec-worker", "recorder"):
        assert services[name].get("restart") in ("unless-stopped", "always"), name


def test_temporal_uses_the_stack_postgresql(services: dict[str, dict[str, Any]]) -> None:
    env = environment(services["temporal"])
    assert env["DB"] == "postgres12"
    assert env["POSTGRES_SEEDS"] == "postgresql"
    assert str(env["DB_PORT"]) == "5432"
    assert env["POSTGRES_USER"] == environment(services["postgresql"])["POSTGRES_USER"]
    assert env["POSTGRES_PWD"] == environment(services["postgresql"])["POSTGRES_PASSWORD"]
    assert environment(services["postgresql"])["POSTGRES_DB"] == "callrec"


def test_the_setup_registers_every_search_attribute_the_workflows_set(services: dict[str, dict[str, Any]]) -> None:
    script = " ".join(services["temporal-setup"]["command"])
    assert "search-attribute create" in script and "--type Keyword" in script
    for attribute in SEARCH_ATTRIBUTES:
        assert attribute.name in script
    assert environment(services["temporal-setup"])["TEMPORAL_ADDRESS"] == "temporal:7233"


def test_every_callrec_service_gets_the_shared_settings(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    shared, catalog = compose["x-callrec-env"], compose["x-callrec-catalog-env"]
    assert shared.items() <= catalog.items()
    for name in CATALOG_SERVICES:
        env = environment(services[name])
        assert {key: env[key] for key in catalog} == catalog, name
        assert set(env) - set(catalog) == (WORKER_METRICS_SETTINGS if name == "callrec-worker" else set()), name
    recorder = environment(services["recorder"])
    assert shared.items() <= recorder.items()
    text = COMPOSE_FILE.read_text()
    assert "&callrec-env" in text and "&callrec-catalog-env" in text


def test_no_role_is_told_a_single_recorder_url(compose: dict[str, Any], services: dict[str, dict[str, Any]]) -> None:
    """The API and the worker find the recorders in the pool (their registrations), not at one configured URL."""
    for name in CATALOG_SERVICES:
        assert "CALLREC_RECORDER_URL" not in environment(services[name]), name
    assert "CALLREC_RECORDER_URL" not in compose["x-callrec-env"]


def test_the_recorders_get_no_catalog_and_no_api_secrets(services: dict[str, dict[str, Any]]) -> None:
    env = environment(services["recorder"])
    for name in ("CALLREC_DATABASE_URL", "CALLREC_API_KEY", "CALLREC_TOKEN_SECRET"):
        assert name not in env, name
    assert "POSTGRES_PASSWORD" not in str(env)
    missing = RECORDER_SETTINGS - {name for name, value in env.items() if value not in (None, "")}
    assert not missing, f"a recorder needs: {sorted(missing)}"


def test_every_callrec_variable_in_the_compose_file_is_a_real_setting(services: dict[str, dict[str, Any]]) -> None:
    # keys of every service's environment, and any CALLREC_ name anywhere (values, ${...}, comments)
    names = {key for service in services.values() for key in environment(service) if key.startswith("CALLREC_")}
    names |= set(CALLREC_NAME.findall(COMPOSE_FILE.read_text()))
    assert names, "no CALLREC_ setting found"
    assert names <= SETTING_NAMES, f"not settings of callrec: {sorted(names - SETTING_NAMES)}"


def test_the_compose_file_sets_what_production_needs(compose: dict[str, Any]) -> None:
    shared = compose["x-callrec-catalog-env"]
    missing = PRODUCTION_SETTINGS - {name for name, value in shared.items() if value not in (None, "")}
    assert not missing, f"production settings not set: {sorted(missing)}"
    assert shared["CALLREC_DATABASE_URL"].startswith("postgresql+asyncpg://")
    assert shared["CALLREC_DATABASE_URL"].endswith("@postgresql:5432/callrec")
    assert shared["CALLREC_TEMPORAL_ADDRESS"] == "temporal:7233"
    assert shared["CALLREC_S3_ENDPOINT"] == "minio:9000"
    assert shared["CALLREC_API_URL"] == "http://callrec-api:8080"
    assert shared["CALLREC_API_HOST"] == "0.0.0.0"
    # Settings must accept what the compose file passes (strings, as the environment would).
    values = {name[len("CALLREC_") :].lower(): value for name, value in shared.items() if value is not None}
    settings = Settings.model_validate({k: v for k, v in values.items() if "${" not in str(v)})
    assert settings.api_port == 8080 and settings.s3_secure is False


def test_secrets_come_from_required_variables_only(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    shared = compose["x-callrec-catalog-env"]
    for name in ("CALLREC_API_KEY", "CALLREC_RECORDING_SECRET", "CALLREC_TOKEN_SECRET", "CALLREC_PUBLIC_URL"):
        assert REQUIRED_VARIABLE.fullmatch(shared[name]), f"{name} must be ${{{name}:?...}}"
    for name in ("CALLREC_S3_ACCESS_KEY", "CALLREC_S3_SECRET_KEY"):
        assert REQUIRED_VARIABLE.fullmatch(shared[name]), name
    assert REQUIRED_VARIABLE.search(shared["CALLREC_DATABASE_URL"])
    assert REQUIRED_VARIABLE.fullmatch(environment(services["postgresql"])["POSTGRES_PASSWORD"])
    assert REQUIRED_VARIABLE.fullmatch(environment(services["minio"])["MINIO_ROOT_PASSWORD"])


def test_env_example_lists_every_variable_the_compose_file_reads() -> None:
    text = COMPOSE_FILE.read_text()
    example = ENV_EXAMPLE.read_text()
    listed = set(re.findall(r"^#?([A-Z][A-Z0-9_]*)=", example, flags=re.MULTILINE))
    required = set(REQUIRED_VARIABLE.findall(text))
    assert required, "the secrets must be required variables"
    assert required <= listed, f"not in .env.example: {sorted(required - listed)}"
    assert set(ANY_VARIABLE.findall(text)) <= listed
    # valueless pass-through settings too
    loaded = yaml.safe_load(text)
    passed = {
        name
        for env in (loaded["x-callrec-catalog-env"], environment(loaded["services"]["recorder"]))
        for name, value in env.items()
        if value is None
    }
    assert passed <= listed, f"not in .env.example: {sorted(passed - listed)}"
    assert set(CALLREC_NAME.findall(example)) <= SETTING_NAMES
    # no secret values in the example: every required variable is empty or a non-secret name
    for line in example.splitlines():
        match = re.match(r"^([A-Z][A-Z0-9_]*)=(.*)$", line)
        if match and match.group(1) in required and any(word in match.group(1) for word in ("KEY", "SECRET", "PASS")):
            assert match.group(2) == "", f"{match.group(1)} must be empty in .env.example"


def dockerfile_instructions() -> list[str]:
    """The Dockerfile's instructions, comments dropped and continuation lines joined."""
    instructions: list[str] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        instructions.append(pending + line)
        pending = ""
    assert not pending, "a continuation line ends the Dockerfile"
    return instructions


def test_dockerfile_runs_callrec_as_a_non_root_user() -> None:
    instructions = dockerfile_instructions()
    stages = [i for i, line in enumerate(instructions) if line.upper().startswith("FROM ")]
    assert stages and all("python:3.11-slim" in instructions[i] or "${PYTHON_IMAGE}" in instructions[i] for i in stages)
    assert any(re.match(r"ARG PYTHON_IMAGE=python:3\.11-slim\b", line) for line in instructions)
    final = instructions[stages[-1] :]
    users = [line.split(None, 1)[1] for line in final if line.upper().startswith("USER ")]
    assert users, "the final stage must switch to a USER"
    assert users[-1].split(":")[0] not in ("root", "0"), users[-1]
    entrypoint = [line for line in final if line.upper().startswith("ENTRYPOINT")]
    assert entrypoint == ['ENTRYPOINT ["callrec"]']
    assert any(re.match(r"RUN .*pip install \.(\s|$)", line) for line in instructions), "install from pyproject"
    assert not any("[test]" in line or "-e " in line for line in instructions if "pip install" in line)


def test_dockerfile_copies_no_secrets() -> None:
    copies = [line for line in dockerfile_instructions() if line.upper().startswith(("COPY", "ADD"))]
    assert copies
    for line in copies:
        assert not line.strip().upper().startswith("ADD"), "use COPY"
        sources = line.split()[1:-1]
        if sources and sources[0].startswith("--from="):
            continue
        assert sources and "." not in sources, f"copy named paths only, not the whole context: {line}"
        for source in sources:
            assert ".env" not in source and "secret" not in source.lower() and not source.endswith((".pem", ".key"))
    text = DOCKERFILE.read_text()
    assert "CALLREC_API_KEY" not in text and "CALLREC_RECORDING_SECRET" not in text
    names = set(CALLREC_NAME.findall(text))
    assert names <= SETTING_NAMES, sorted(names - SETTING_NAMES)


def test_dockerignore_keeps_local_state_and_secrets_out_of_the_context() -> None:
    patterns = {
        line.strip() for line in DOCKERIGNORE.read_text().splitlines() if line.strip() and not line.startswith("#")
    }
    for pattern in (".git", ".venv", ".callrec", ".env", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".hypothesis"):
        assert pattern in patterns, pattern
    assert any(pattern.startswith("bench/") for pattern in patterns)
    assert not {"pyproject.toml", "README.md", "callrec", "callrec/"} & patterns, "the build needs these"


@pytest.mark.parametrize(
    "doc", [README, PRODUCTION_GUIDE, BENCH_README], ids=lambda path: path.relative_to(ROOT).as_posix()
)
def test_the_docs_name_only_real_settings(doc: Path) -> None:
    text = doc.read_text()
    names = {name for name in CALLREC_NAME.findall(text) if not name.startswith("CALLREC_TEST_")}  # the suite's own
    families = {name for name in names if name.endswith("_")}  # `CALLREC_S3_*`
    assert names - families <= SETTING_NAMES, sorted(names - families - SETTING_NAMES)
    assert all(any(setting.startswith(family) for setting in SETTING_NAMES) for family in families), families


def test_readme_names_the_stack_services() -> None:
    text = README.read_text()
    for service in ("callrec-api", "callrec-worker", "temporal-ui"):
        assert service in text


def _anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@pytest.mark.parametrize("doc", [README, PRODUCTION_GUIDE], ids=lambda path: path.relative_to(ROOT).as_posix())
def test_the_table_of_contents_lists_every_section_and_every_link_lands(doc: Path) -> None:
    text = doc.read_text()
    anchors = {_anchor(line.lstrip("#")) for line in text.splitlines() if line.startswith("#")}
    contents = text.split("\n## ", 2)[1] if doc == README else text.split("\n## ", 1)[0]
    listed = set(re.findall(r"\]\(#([^)]+)\)", contents))
    sections = {_anchor(line[3:]) for line in text.splitlines() if line.startswith("## ") and line != "## Contents"}
    assert sections <= listed, sorted(sections - listed)
    assert set(re.findall(r"\]\(#([^)]+)\)", text)) <= anchors  # every in-page link lands on a heading
    for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", text):  # every link to a file of the repository
        assert (doc.parent / target).exists(), target


def test_the_proxy_serves_the_media_the_api_authorizes(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    """nginx runs deploy/nginx/callrec.conf (tests/e2e/test_media_offload.py runs it too), whose internal location
    is the API's X-Accel-Redirect prefix and proxies to the stack's S3 endpoint, for which the paths are signed."""
    catalog = compose["x-callrec-catalog-env"]
    assert catalog["CALLREC_MEDIA_OFFLOAD"] == "x-accel"
    mounts = {str(entry).split(":")[0]: str(entry).split(":")[1] for entry in services["proxy"]["volumes"]}
    assert mounts == {"./deploy/nginx/callrec.conf": "/etc/nginx/conf.d/default.conf"}
    conf = (ROOT / "deploy" / "nginx" / "callrec.conf").read_text()
    prefix = Settings.model_fields["media_offload_prefix"].default
    location = conf.split(f"location {prefix} {{", 1)[1].split("}", 1)[0]
    assert "internal;" in location
    endpoint = compose["x-callrec-env"]["CALLREC_S3_ENDPOINT"]
    assert "proxy_pass http://callrec_s3$callrec_s3_request;" in location
    assert f"proxy_set_header Host {endpoint};" in location  # the host the paths are signed for
    assert f"upstream callrec_s3 {{\n    server {endpoint};\n}}" in conf
    assert f"~^{prefix.rstrip('/')}(?<signed>/.*)$ $signed;" in conf
    assert "proxy_pass http://callrec-api:8080;" in conf
