"""The billing and impact commands, on the embedded store and against a running server."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.conftest import Server, bocage, bocage_fails, start_server


def test_billing_and_impact_on_the_data_directory(tmp_path: Path) -> None:
    data = tmp_path / "data"
    bocage("org", "create", "Syndicat des eaux", "--plan", "pro", "--data", str(data))
    dry = bocage("billing", "run", "--dry-run", "--data", str(data))
    assert dry["dry_run"] is True and dry["month_to_date"] is True
    assert dry["invoices"] == []  # the owner has not activated a device yet: nobody is billable
    impact = bocage("impact", "--data", str(data))
    assert "trees_planted" in impact


def test_plan_invoices_report_and_impact_through_a_server(server: Server, tmp_path: Path) -> None:
    owner, agent = tmp_path / "owner", tmp_path / "agent"
    bocage("--profile", str(owner), "activate", server.owner_url(), "--name", "Maire")
    invitation = bocage("--profile", str(owner), "invite", "--name", "Agent")
    bocage("--profile", str(agent), "activate", invitation["activation_url"], "--name", "Agent")
    plan = bocage("--profile", str(owner), "plan", "show")
    assert plan["plan"] == "pilot" and plan["pilot_ends_at"] > plan["plan_started_at"]
    assert bocage("--profile", str(owner), "plan", "pilot-end", "suspend")["pilot_end_choice"] == "suspend"
    assert bocage("--profile", str(owner), "invoices")["invoices"] == []  # a pilot's free year
    assert bocage_fails("--profile", str(agent), "invoices")["status"] == 403
    report = bocage("--profile", str(owner), "report", "--csv")
    assert report["csv"].startswith("month,")
    assert "trees_planted" in bocage("impact", "--server", server.url)
    refused = bocage_fails("billing", "run", "--dry-run", "--server", server.url)
    assert "operator" in refused["message"]


def test_the_operator_runs_billing_on_a_server(tmp_path: Path) -> None:
    key = tmp_path / "operator.key"
    public = bocage("operator", "keygen", str(key))["public_key"]
    srv = start_server(tmp_path / "data", tmp_path / "serve.log", BOCAGE_OPERATOR_KEYS=public)
    try:
        run = bocage("billing", "run", "--dry-run", "--server", srv.url, "--operator-key", str(key))
        assert run["dry_run"] is True
    finally:
        srv.process.terminate()
        srv.process.wait(timeout=10)
