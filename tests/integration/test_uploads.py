"""Uploads: bad rows are rejected with row, column and reason; nothing is stored unless asked."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import openpyxl

from api.cli import app as cli_app
from routing import io as rio
from routing.model import Problem
from tests.integration.conftest import Stack, upload


def _bad_jobs(good: Path, folder: Path) -> Path:
    lines = good.read_text(encoding="utf-8-sig").splitlines()
    header = lines[0].split(",")
    lat = header.index("lat")
    row = lines[2].split(",")
    row[lat] = "ninety"
    win = header.index("windows")
    row4 = lines[4].split(",")
    row4[win] = "25:00-26:00"
    bad = [lines[0], lines[1], ",".join(row), lines[3], ",".join(row4), *lines[5:]]
    path = folder / "jobs_bad.csv"
    path.write_text("\n".join(bad) + "\n", encoding="utf-8")
    return path


def test_bad_rows_are_rejected_with_row_column_and_nothing_is_stored(
    stack: Stack, town_files: dict[str, Path], town: Problem, tmp_path: Path
) -> None:
    """A jobs file with two bad rows is a 422 listing rows 3 and 5 with their columns; no job is stored."""
    h = stack.h("dispatcher")
    assert upload(stack.client, h, "depots", town_files["depots"]).status_code == 201
    assert town.day is not None
    day = town.day.isoformat()
    bad = _bad_jobs(town_files["jobs"], tmp_path)
    r = upload(stack.client, h, "jobs", bad, day=day)
    assert r.status_code == 422
    errors = {(e["row"], e["column"]) for e in r.json()["errors"]}
    assert errors == {(3, "lat"), (5, "windows")}
    assert all(e["reason"] for e in r.json()["errors"])
    assert stack.client.get("/jobs", headers=h, params={"day": day}).json()["count"] == 0
    # Asked to keep the good rows: they are stored and the bad ones reported.
    r = upload(stack.client, h, "jobs", bad, day=day, keep_good="true")
    assert r.status_code == 201
    body = r.json()
    assert len(town.jobs) - 4 <= body["stored"] <= len(town.jobs) - 2  # a bad half drops its pair
    assert {(e["row"], e["column"]) for e in body["rejected"]} >= {(3, "lat"), (5, "windows")}
    assert (
        stack.client.get("/jobs", headers=h, params={"day": day}).json()["count"] == body["stored"]
    )


def test_couriers_of_unknown_offices_and_bad_files_are_refused(
    stack: Stack, town_files: dict[str, Path], tmp_path: Path
) -> None:
    """Couriers need an uploaded post office; unsupported or empty files are 422 naming the file."""
    h = stack.h("dispatcher")
    r = upload(stack.client, h, "couriers", town_files["couriers"])
    assert r.status_code == 422
    assert r.json()["errors"][0]["column"] == "depot_id"
    assert stack.client.get("/couriers", headers=h).json()["count"] == 0
    odd = tmp_path / "jobs.pdf"
    odd.write_bytes(b"%PDF")
    r = upload(stack.client, h, "depots", odd)
    assert r.status_code == 422
    assert r.json()["errors"][0]["column"] == "file"
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    assert upload(stack.client, h, "depots", empty).status_code == 422
    r = stack.client.post("/depots", headers=h)
    assert r.status_code == 422
    assert r.json()["errors"][0]["column"]


def test_xlsx_upload_matches_csv(stack: Stack, town_files: dict[str, Path], tmp_path: Path) -> None:
    """An Excel export with the same rows stores the same depots as the CSV."""
    h = stack.h("dispatcher")
    lines = town_files["depots"].read_text(encoding="utf-8-sig").splitlines()
    wb = openpyxl.Workbook()
    ws = wb.active
    for line in lines:
        ws.append(line.split(","))
    path = tmp_path / "depots.xlsx"
    wb.save(path)
    with path.open("rb") as fh:
        r = stack.client.post(
            "/depots", headers=h, files={"file": ("depots.xlsx", fh, "application/octet-stream")}
        )
    assert r.status_code == 201, r.text
    assert r.json()["stored"] == len(lines) - 1
    data = stack.client.get("/depots", headers=h).json()["data"]
    assert data[0]["data"]["name"].startswith("Bưu cục")


def test_cli_bootstraps_users_and_tokens(stack: Stack, town_files: dict[str, Path]) -> None:
    """`courier users add`, `token` and `revoke`: a user whose tokens the API accepts, then refuses."""
    from typer.testing import CliRunner

    runner = CliRunner()
    res = runner.invoke(
        cli_app, ["users", "add", "lan", "--role", "manager", "--password", "s3cret-pass"]
    )
    assert res.exit_code == 0, res.output
    res = runner.invoke(cli_app, ["users", "token", "lan"])
    assert res.exit_code == 0, res.output
    token = res.output.strip().splitlines()[-1]
    me = stack.client.get("/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200
    assert me.json()["role"] == "manager"
    res = runner.invoke(cli_app, ["users", "add", "c1", "--role", "courier"])
    assert res.exit_code == 2
    assert "courier_id" in res.output
    res = runner.invoke(cli_app, ["users", "token", "nobody"])
    assert res.exit_code == 2
    r = stack.client.post("/auth/token", json={"username": "lan", "password": "s3cret-pass"})
    assert r.status_code == 200
    assert r.json()["access_token"].startswith("ct_")
    r = stack.client.post("/auth/token", json={"username": "lan", "password": "wrong"})
    assert r.status_code == 401
    unused = stack.client.post("/auth/token", json={"username": "lan", "password": "s3cret-pass"})
    res = runner.invoke(cli_app, ["users", "revoke", "lan"])
    assert res.exit_code == 0, res.output
    assert "revoked 3 token(s) of lan" in res.output
    h_unused = {"Authorization": f"Bearer {unused.json()['access_token']}"}
    assert stack.client.get("/auth/me", headers=h_unused).status_code == 401
    assert runner.invoke(cli_app, ["users", "revoke", "nobody"]).exit_code == 2


def test_json_rows_upload_like_the_csv(
    stack: Stack, town_files: dict[str, Path], town: Problem, tmp_path: Path
) -> None:
    """Another system's JSON export (an array of row objects, typed values) stores the same jobs.

    A bad object is reported by its place in the array and its key, and nothing is stored.
    """
    h = stack.h("dispatcher")
    assert upload(stack.client, h, "depots", town_files["depots"]).status_code == 201
    assert town.day is not None
    day = town.day.isoformat()
    with town_files["jobs"].open(encoding="utf-8-sig", newline="") as fh:
        rows: list[dict[str, Any]] = list(csv.DictReader(fh))
    for row in rows:  # numbers as JSON numbers, empty cells as null
        row["lon"], row["lat"] = float(row["lon"]), float(row["lat"])
        for k, v in row.items():
            if v == "":
                row[k] = None
    bad = [dict(r) for r in rows]
    bad[2]["lat"] = "ninety"
    path = tmp_path / "jobs.json"
    path.write_text(json.dumps(bad, ensure_ascii=False), encoding="utf-8")
    r = upload(stack.client, h, "jobs", path, day=day)
    assert r.status_code == 422, r.text
    assert {(e["row"], e["column"]) for e in r.json()["errors"]} == {(3, "lat")}
    assert stack.client.get("/jobs", headers=h, params={"day": day}).json()["count"] == 0
    path.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    r = upload(stack.client, h, "jobs", path, day=day)
    assert r.status_code == 201, r.text
    assert r.json()["stored"] == len(rows) == len(town.jobs)
    stored = stack.client.get("/jobs", headers=h, params={"day": day}).json()["data"]
    assert {j["data"]["job_id"] for j in stored} == {r["job_id"] for r in rows}
    # Read the two files side by side: the same jobs, field by field.
    assert rio.read_jobs(path).records == rio.read_jobs(town_files["jobs"]).records
    path.write_text(json.dumps([rows[0], ["not", "an", "object"]]), encoding="utf-8")
    r = upload(stack.client, h, "jobs", path, day=day)
    assert r.status_code == 422
    assert r.json()["errors"][0]["row"] == 2
