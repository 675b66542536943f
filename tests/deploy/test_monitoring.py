"""deploy/: the monitoring compose override, Prometheus' configuration and rules, Grafana's provisioning and
dashboard load, hang together, and only ask for metrics convoflow really exposes."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import Counter, Histogram

from convoflow.observability import metrics
from tests.utils.processes import PROJECT_ROOT

DEPLOY = PROJECT_ROOT / "deploy"
BACKLOG_SOURCE = PROJECT_ROOT / "convoflow" / "observability" / "backlog.py"


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document: dict[str, Any] = load_yaml(DEPLOY / "docker-compose.monitoring.yml")
    return document


def exposed_series() -> set[str]:
    """Every series name convoflow's processes expose (as Prometheus sees them)."""
    names: set[str] = set()
    for metric in vars(metrics).values():
        if isinstance(metric, Counter):
            names.add(metric._name + "_total")
        elif isinstance(metric, Histogram):
            names.update(metric._name + suffix for suffix in ("_bucket", "_sum", "_count"))
    names.update(re.findall(r'"(convoflow_[a-z_]+)"', BACKLOG_SOURCE.read_text()))
    return names


def series_in(expression: str) -> set[str]:
    return set(re.findall(r"\bconvoflow_[a-z_]+\b", expression))


def test_prometheus_and_grafana_run_only_in_the_monitoring_profile(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["prometheus"]["profiles"] == ["monitoring"]
    assert services["grafana"]["profiles"] == ["monitoring"]
    assert set(compose["volumes"]) == {"prometheus-data", "grafana-data"}


def test_every_mounted_file_exists_in_the_repository(compose: dict[str, Any]) -> None:
    for name in ("prometheus", "grafana"):
        for volume in compose["services"][name]["volumes"]:
            source = volume.split(":", 1)[0]
            if source.startswith("./"):  # relative to the first compose file: the repository root
                assert (PROJECT_ROOT / source).exists(), source


def test_prometheus_scrapes_the_api_and_the_workers_exporter_port(compose: dict[str, Any]) -> None:
    config = load_yaml(DEPLOY / "prometheus.yml")
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    api = jobs["convoflow-api"]["dns_sd_configs"][0]
    worker = jobs["convoflow-worker"]["dns_sd_configs"][0]
    assert (api["names"], api["port"], jobs["convoflow-api"]["metrics_path"]) == (["api"], 8000, "/metrics")
    assert worker["names"] == ["worker"]
    assert str(worker["port"]) == compose["services"]["worker"]["environment"]["WORKER_METRICS_PORT"]
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"]


def test_alert_rules_use_only_exposed_metrics() -> None:
    rules = load_yaml(DEPLOY / "prometheus-alerts.yml")["groups"][0]["rules"]
    assert rules
    for rule in rules:
        assert rule["alert"].startswith("Convoflow")
        assert series_in(rule["expr"]) <= exposed_series(), rule["alert"]


def test_grafana_provisions_the_datasource_the_dashboard_uses() -> None:
    [datasource] = load_yaml(DEPLOY / "grafana/provisioning/datasources/prometheus.yml")["datasources"]
    [provider] = load_yaml(DEPLOY / "grafana/provisioning/dashboards/convoflow.yml")["providers"]
    assert datasource["url"] == "http://prometheus:9090"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"
    dashboard = json.loads((DEPLOY / "grafana/dashboards/convoflow.json").read_text())
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == datasource["uid"], panel["title"]


def test_the_dashboard_shows_the_operating_figures_from_exposed_metrics() -> None:
    dashboard = json.loads((DEPLOY / "grafana/dashboards/convoflow.json").read_text())
    panels = [panel for panel in dashboard["panels"] if panel["type"] != "row"]
    titles = {panel["title"] for panel in panels}
    assert {"Queue depth", "Throughput", "Persistence lag", "Error rate", "Model latency"} <= titles
    used: set[str] = set()
    for panel in panels:
        for target in panel["targets"]:
            used |= series_in(target["expr"])
    assert used <= exposed_series(), used - exposed_series()
    assert {"convoflow_queue_depth", "convoflow_persistence_lag_seconds", "convoflow_turns_answered_total"} <= used
    assert len({panel["id"] for panel in dashboard["panels"]}) == len(dashboard["panels"])
