"""The monitoring part of the production stack: Prometheus scrapes every callrec part where it serves its metrics,
and Grafana's provisioned dashboard queries only series that callrec and the Temporal SDK really serve.

Docker is not needed: the files are read as YAML and JSON and checked against the compose file, the settings and
the metrics callrec defines (tests/e2e/test_metrics.py checks what the processes serve).
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from callrec import metrics
from tests.e2e.test_metrics import TEMPORAL_SDK_SERIES
from tests.unit.test_deployment_files import ROOT, compose, environment

__all__ = ["compose"]  # the fixture

PROMETHEUS_FILE = ROOT / "deploy" / "prometheus.yml"
GRAFANA = ROOT / "deploy" / "grafana"
SERIES = re.compile(r"\b((?:callrec|temporal)_[a-z0-9_]+)\b")


@pytest.fixture(scope="module")
def jobs() -> dict[str, dict[str, Any]]:
    config = yaml.safe_load(PROMETHEUS_FILE.read_text())
    return {job["job_name"]: job for job in config["scrape_configs"]}


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """container path -> host path (or volume name)."""
    return {str(entry).split(":")[1]: str(entry).split(":")[0] for entry in service.get("volumes") or []}


def targets(job: dict[str, Any]) -> set[tuple[str, int]]:
    found: set[tuple[str, int]] = set()
    for static in job.get("static_configs", []):
        for target in static["targets"]:
            host, port = target.rsplit(":", 1)
            found.add((host, int(port)))
    for dns in job.get("dns_sd_configs", []):
        assert dns["type"] == "A"  # one record per replica: each scaled container is scraped
        found |= {(name, int(dns["port"])) for name in dns["names"]}
    return found


def served_series(registry: CollectorRegistry) -> set[str]:
    """Every series name a registry serves, as Prometheus stores them."""
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
    return {family.name + suffix for family in registry.collect() for suffix in suffixes[family.type]}


def test_prometheus_scrapes_each_part_where_it_serves_metrics(
    compose: dict[str, Any], jobs: dict[str, dict[str, Any]]
) -> None:
    services = compose["services"]
    api, worker = environment(services["callrec-api"]), environment(services["callrec-worker"])
    recorder = environment(services["recorder"])
    assert targets(jobs["callrec-api"]) == {("callrec-api", int(api["CALLREC_API_PORT"]))}
    assert targets(jobs["callrec-worker"]) == {("callrec-worker", int(worker["CALLREC_WORKER_METRICS_PORT"]))}
    assert targets(jobs["recorder"]) == {("recorder", int(recorder["CALLREC_RECORDER_PORT"]))}
    assert targets(jobs["temporal-sdk"]) == {("callrec-worker", int(worker["CALLREC_TEMPORAL_METRICS_PORT"]))}
    # The worker listens where the stack reaches it, and on no published port.
    assert worker["CALLREC_WORKER_METRICS_HOST"] == "0.0.0.0" and not services["callrec-worker"].get("ports")
    assert all(job.get("metrics_path", "/metrics") == "/metrics" for job in jobs.values())


def test_prometheus_sends_the_metrics_token_from_a_compose_secret(
    compose: dict[str, Any], jobs: dict[str, dict[str, Any]]
) -> None:
    prometheus = compose["services"]["prometheus"]
    assert mounts(prometheus)["/etc/prometheus/prometheus.yml"] == "./deploy/prometheus.yml"
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
    assert prometheus["secrets"] == ["metrics_token"]
    assert compose["secrets"]["metrics_token"] == {"environment": "CALLREC_METRICS_TOKEN"}
    # The token every callrec role checks is the same required variable.
    assert compose["x-callrec-env"]["CALLREC_METRICS_TOKEN"].startswith("${CALLREC_METRICS_TOKEN:?")
    for name in ("callrec-api", "callrec-worker", "recorder"):
        assert jobs[name]["authorization"] == {"credentials_file": "/run/secrets/metrics_token"}, name
    assert "authorization" not in jobs["temporal-sdk"]  # the SDK's exporter takes no token


def test_grafana_is_provisioned_with_prometheus_and_the_dashboard(compose: dict[str, Any]) -> None:
    grafana = compose["services"]["grafana"]
    mounted = mounts(grafana)
    provisioning = ROOT / mounted["/etc/grafana/provisioning"]
    assert provisioning == GRAFANA / "provisioning"
    (source,) = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())["datasources"]
    assert source["type"] == "prometheus" and source["url"] == "http://prometheus:9090" and source["isDefault"]
    assert "prometheus" in grafana["depends_on"]
    (provider,) = yaml.safe_load((provisioning / "dashboards" / "callrec.yml").read_text())["providers"]
    folder = provider["options"]["path"]
    assert ROOT / mounted[folder] == GRAFANA / "dashboards"
    assert (GRAFANA / "dashboards" / "callrec.json").exists()
    env = environment(grafana)
    assert env["GF_SECURITY_ADMIN_PASSWORD"].startswith("${GRAFANA_ADMIN_PASSWORD:?")
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert env["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"] == f"{folder}/callrec.json"


def dashboard_queries() -> list[str]:
    dashboard = json.loads((GRAFANA / "dashboards" / "callrec.json").read_text())
    data_source = "prometheus"
    queries = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"] == data_source, panel["title"]
            queries.append(target["expr"])
    return queries


def test_the_dashboard_queries_only_series_that_are_served() -> None:
    callrec_series = set().union(*(served_series(r) for r in (metrics.API, metrics.WORKER, metrics.RECORDER)))
    used = {name for query in dashboard_queries() for name in SERIES.findall(query)}
    unknown = {name for name in used if name not in callrec_series | TEMPORAL_SDK_SERIES}
    assert not unknown, f"the dashboard queries series nobody serves: {sorted(unknown)}"


def test_the_dashboard_shows_every_callrec_metric() -> None:
    used = {name for query in dashboard_queries() for name in SERIES.findall(query)}
    families = {
        family.name for registry in (metrics.API, metrics.WORKER, metrics.RECORDER) for family in registry.collect()
    }
    missing = {family for family in families if not any(name.startswith(family) for name in used)}
    assert not missing, f"not on the dashboard: {sorted(missing)}"
    assert TEMPORAL_SDK_SERIES <= used


def test_the_readme_says_how_to_open_the_dashboard() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "http://127.0.0.1:3000" in readme and "GRAFANA_ADMIN_PASSWORD" in readme
    assert "CALLREC_METRICS_TOKEN" in readme
