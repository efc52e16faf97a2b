"""Fatigue alerts of a patient: the `analysis.fatigue.alert` rule replayed over each task's sessions.

Alerts are derived from the cached session objects (their ``fatigue``), never from raw data,
so they follow the sessions: new data or a label recomputes them. Each alert is one episode:
it is raised at the session where "above baseline in ≥ k of the last n sessions of the task"
becomes true, and stays ``active`` while the rule holds at the task's latest session.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from analysis.fatigue import alert
from api.errors import Invalid
from api.models import Patient
from api.services import fatigue

#: The rule's defaults, "k of the last n sessions of the same task" (analysis.fatigue.alert).
K = 3
N = 5
#: What a positive contribution of each feature means (methods.md §2.5 step 5 orientation).
FEATURE_WORDS = {
    "int": "lower movement intensity",
    "duty": "less time active",
    "freq": "slower tempo",
    "reg": "less regular rhythm",
    "cv": "more variable movements",
    "jerk": "less smooth movements",
    "sampen": "less predictable movements",
    "trem": "more tremor in quiet holds",
    "astp": "more pauses",
}


def _point(session: dict[str, Any]) -> dict[str, Any]:
    f = session.get("fatigue") or {}
    return {
        "start": session["start"],
        "end": session["end"],
        "index": f.get("index"),
        "index_between": f.get("index_between"),
        "quality": f.get("quality"),
    }


def _drivers(contributions: dict[str, float], top: int = 2) -> list[str]:
    """Words for the largest positive contributions (already ranked high to low)."""
    return [FEATURE_WORDS.get(name, name) for name, v in contributions.items() if v > 0][:top]


def _reason(activity: str | None, res: dict[str, Any], latest: dict[str, Any]) -> str:
    task = f"{activity!r}" if activity is not None else "detected (untagged)"
    text = (
        f"Fatigue index above this patient's baseline (> {res['level']:g}) in {res['above']} of the "
        f"last {res['considered']} scored {task} sessions"
    )
    words = _drivers((latest.get("fatigue") or {}).get("contributions") or {})
    if words:
        text += f"; within the latest session, {' and '.join(words)} drove its index"
    return text + "."


def task_alerts(
    activity: str | None, sessions: Sequence[dict[str, Any]], *, k: int, n: int
) -> list[dict[str, Any]]:
    """Alert episodes of one task's sessions (time order), oldest first."""
    history = [s.get("fatigue") or {} for s in sessions]
    out: list[dict[str, Any]] = []
    was = False
    res: dict[str, Any] = {}
    for j in range(len(sessions)):
        res = alert(history[: j + 1], k=k, n=n)
        if res["alert"] and not was:
            # The sessions the rule counted (scored, with a value), the last n of them up to j.
            counted = [i for i in range(j + 1) if alert([history[i]], k=1, n=1)["considered"]][-n:]
            above = [i for i in counted if alert([history[i]], k=1, n=1)["alert"]]
            out.append(
                {
                    "activity": activity,
                    "raised_at": sessions[j]["start"],
                    "active": False,
                    "k": k,
                    "n": n,
                    "level": res["level"],
                    "above": res["above"],
                    "considered": res["considered"],
                    "sessions": [_point(sessions[i]) for i in above],
                    "reason": _reason(activity, res, sessions[above[-1]]),
                }
            )
        was = bool(res["alert"])
    if out and was:
        out[-1]["active"] = True
    return out


def patient_alerts(db: Any, *, patient: Patient, k: int = K, n: int = N) -> list[dict[str, Any]]:
    """Alerts of every task of the patient, newest first.

    Raises:
        Invalid: ``k > n``.
    """
    if k > n:
        raise Invalid(f"k must not exceed n, got k={k}, n={n}")
    by_task: dict[str | None, list[dict[str, Any]]] = {}
    for s in fatigue.patient_sessions(db, patient=patient):
        by_task.setdefault(s.get("activity"), []).append(s)
    out = [a for activity, group in by_task.items() for a in task_alerts(activity, group, k=k, n=n)]
    return sorted(out, key=lambda a: a["raised_at"], reverse=True)
