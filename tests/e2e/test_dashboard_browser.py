"""The therapist dashboard in a real browser: headless Chromium, driven over CDP, logs in to a
real `otmon serve` (SQLite) holding six tagged sessions of a task that tires from one session to
the next and one session that tires within itself (uploaded over HTTP), and shows the API's days,
per-session fatigue with its alarm, and the first task's active alert."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from analysis.samples import NS_PER_S
from tests.api.factories import block_json
from tests.api.test_fatigue import SESSION_S, TASK, _blocks_of, _history, _iso
from tests.browser_cdp import Page, find_browser, headless_browser
from tests.e2e.test_spine import EMAIL, PASSWORD, _otmon, _therapist
from tests.fatigue_signals import arm_task
from tests.service_process import running_service

BROWSER = find_browser()
pytestmark = pytest.mark.skipif(
    BROWSER is None, reason="no Chromium/Chrome binary (chromium, chromium-browser, google-chrome)"
)

LOADED_JS = (  # the page's four tables are filled, one after the other, after a login
    "document.querySelectorAll('#devices tr').length === {n_devices}"
    " && document.querySelectorAll('#days tr').length === {n_days}"
    " && document.querySelectorAll('#fatigue tr').length === {n_sessions}"
    " && document.querySelectorAll('#alerts li').length === {n_alerts}"
)
ROWS_JS = (
    "[...document.querySelectorAll('#{0} tr')].map(tr => [...tr.cells].map(td => td.textContent))"
)
HIDDEN_JS = "document.getElementById('{0}').classList.contains('hidden')"
OTHER_TASK = "wiping"
# 15 min whose amplitude and tempo fall from the 5th minute on: its within-session CUSUM alarms
# (analysis.fatigue; 10-min sessions end before it does), 2 h after the last session of TASK.
TIRING_S = 900
TIRING = arm_task(TIRING_S, amp_g=0.8, freq_hz=1.5, fatigue_from_s=300, amp_end_g=0.3,
                  freq_end_hz=1.0, seed=10)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Dashboard:
    """A running service with one patient's data, and what its API returns for that patient."""

    url: str
    samples_per_day: dict[str, int]  # as ingested, by UTC date
    devices: list[dict[str, Any]]
    days: list[dict[str, Any]]
    sessions: list[dict[str, Any]]
    alerts: list[dict[str, Any]]


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    directory = tmp_path_factory.mktemp("dashboard")
    env = {**os.environ, "OTMON_DATABASE_URL": f"sqlite:///{directory / 'otmon.sqlite3'}",
           "OTMON_DATA_DIR": str(directory)}  # fmt: skip
    created = _otmon(
        "user", "add", "--email", EMAIL, "--password-stdin", env=env, stdin=PASSWORD + "\n"
    )
    assert created.returncode == 0, created.stderr
    with running_service(env, directory / "serve.log") as url, _therapist(url) as http:
        patient = http.post("/patients", json={"code": "p-browser", "timezone": "UTC"}).json()
        pid = patient["id"]
        device = http.post(
            f"/patients/{pid}/devices", json={"profile": "polar_pmd", "name": "H10"}
        ).json()
        ingested: Counter[str] = Counter()
        seq = 0
        history = [(t0, accel, TASK, SESSION_S) for t0, accel in _history()]  # 3 fresh, 3 tired
        last_ns = history[-1][0] + 2 * 3600 * NS_PER_S
        for t0_ns, accel, activity, duration_s in [
            *history,
            (last_ns, TIRING, OTHER_TASK, TIRING_S),
        ]:
            blocks = [block_json(b.accel_g, seq=seq + i, t0_ns=b.t0_ns, fs_hz=b.fs_hz)
                      for i, b in enumerate(_blocks_of(accel, t0_ns))]  # fmt: skip
            seq += len(blocks)
            r = httpx.post(f"{url}/api/v1/ingest", json={"blocks": blocks}, timeout=60,
                           headers={"Authorization": f"Bearer {device['token']}"})  # fmt: skip
            assert r.status_code == 200, r.text
            ingested[str(np.datetime64(t0_ns, "ns").astype("datetime64[D]"))] += accel.shape[0]
            label = {
                "start": _iso(t0_ns),
                "end": _iso(t0_ns + duration_s * NS_PER_S),
                "activity": activity,
            }
            r = http.post(f"/patients/{pid}/sessions", json=label)
            assert r.status_code == 201, r.text
        yield Dashboard(url, dict(ingested), *(http.get(f"/patients/{pid}/{what}").json()
                                              for what in ("devices", "days", "sessions", "alerts")))  # fmt: skip


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Page]:
    assert BROWSER is not None
    with headless_browser(BROWSER, tmp_path / "chromium-profile") as tab:
        yield tab


def _log_in(page: Page, url: str, password: str) -> None:
    page.goto(url + "/")
    page.type_into("#login-form input[name=username]", EMAIL)
    page.type_into("#login-form input[name=password]", password)
    page.click("#login-form button[type=submit]")


def _fixed2(value: float | None) -> str:
    """JavaScript's value.toFixed(2) (ties away from zero on the exact double), "–" for null."""
    if value is None:
        return "–"
    return str(Decimal(value).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def _fatigue_row(s: dict[str, Any]) -> list[str]:
    """The cells the page should show for one session of GET /sessions."""
    f = s["fatigue"]
    ci = f" ({_fixed2(f['ci95'][0])} to {_fixed2(f['ci95'][1])})" if f["ci95"] else ""
    badge = ("ok · alarm" if f["alarm"] else "ok") if f["quality"] == "ok" else f["quality"]
    drivers = [
        f"{k} {_fixed2(v)}" for k, v in f["contributions"].items() if v is not None and v > 0
    ]
    return [s["start"], s["activity"] or "detected", _fixed2(f["index"]), _fixed2(f["delta"]) + ci,
            _fixed2(f["index_between"]), badge, ", ".join(drivers[:3]) or "–"]  # fmt: skip


def test_wrong_password_is_refused(dashboard: Dashboard, page: Page) -> None:
    _log_in(page, dashboard.url, "not the password")
    assert (
        page.wait_for("document.getElementById('error').textContent") == "Wrong e-mail or password."
    )
    assert page.evaluate(HIDDEN_JS.format("main")) and not page.evaluate(HIDDEN_JS.format("login"))
    assert page.evaluate("sessionStorage.getItem('otmon-token')") is None
    assert page.exceptions == []


def test_dashboard_shows_what_the_api_stores(dashboard: Dashboard, page: Page) -> None:
    sessions, alerts = dashboard.sessions, dashboard.alerts
    # The data the page is checked against: tagged sessions with fatigue, and an active alert.
    assert [s["activity"] for s in sessions] == [TASK] * 6 + [OTHER_TASK]
    assert [s["fatigue"]["quality"] for s in sessions] == ["ok"] * 7
    assert [s["fatigue"]["alarm"] for s in sessions] == [False] * 6 + [True]
    assert [(a["activity"], a["active"]) for a in alerts] == [(TASK, True)]
    assert {d["date"]: d["samples"] for d in dashboard.days} == dashboard.samples_per_day

    _log_in(page, dashboard.url, PASSWORD)
    page.wait_for(LOADED_JS.format(n_devices=1, n_days=len(dashboard.days),
                                   n_sessions=len(sessions), n_alerts=len(alerts)))  # fmt: skip
    assert page.evaluate("document.getElementById('error').textContent") == ""
    (device,) = page.evaluate(ROWS_JS.format("devices"))
    (api_device,) = dashboard.devices
    assert api_device["last_seen"] is None  # blocks only: no status report from a collector
    assert device[:2] == ["H10 (polar_pmd)", "never"]

    days = page.evaluate(ROWS_JS.format("days"))
    shown = {row[0]: int("".join(c for c in row[1] if c.isdigit())) for row in days}
    assert shown == dashboard.samples_per_day  # 15,000 (10 min at 25 Hz) a day; 37,500 on the last
    assert page.evaluate(HIDDEN_JS.format("empty"))

    rows = page.evaluate(ROWS_JS.format("fatigue"))
    assert rows == [_fatigue_row(s) for s in sessions]
    assert [row[5] for row in rows] == ["ok"] * 6 + ["ok · alarm"]
    assert page.evaluate(
        "[...document.querySelectorAll('#fatigue .badge')].map(b => b.className)"
    ) == ["badge alarm" if s["fatigue"]["alarm"] else "badge ok" for s in sessions]

    (alert,) = alerts
    (item,) = page.evaluate(
        "[...document.querySelectorAll('#alerts li')].map(li => li.textContent)"
    )
    when = alert["raised_at"].replace("T", " ")[:16]
    assert item == f"Active · {TASK} · since {when} UTC: {alert['reason']}"
    assert "3 of the last 5" in item
    assert page.evaluate(HIDDEN_JS.format("no-alerts"))
    assert page.evaluate("document.getElementById('error').textContent") == ""

    page.click("#logout")
    page.wait_for(f"{HIDDEN_JS.format('main')} && !{HIDDEN_JS.format('login')}")
    assert page.evaluate("sessionStorage.getItem('otmon-token')") is None
    assert (
        page.evaluate("document.querySelector('#login-form button[type=submit]').offsetParent")
        is not None
    )
    assert page.exceptions == []
