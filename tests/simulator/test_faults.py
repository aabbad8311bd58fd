"""The fault schedule: scripted faults by simulated time (repeating every cycle), faults that were on
before the run (history), and random outages drawn from the seed."""

from __future__ import annotations

from simulator.faults import FaultSchedule
from simulator.scenario import Scenario, load_scenario


def scenario(**changes: object) -> Scenario:
    data: dict[str, object] = {
        "cycle": "40m",
        "traffic": {"procure_to_pay": 60},
        "suppliers": ["Meridian Medical Supply"],
        "supplies": ["N95 respirator"],
        "faults": [
            {"name": "leave", "kind": "approver_on_leave", "target": "MRC-OR", "history": "8h"},
            {"name": "503s", "kind": "outage", "target": "approval-saas", "start": "3m", "end": "7m", "status": 503},
            {"name": "paused", "kind": "consumer_stopped", "target": "invoices", "start": "8m", "end": "12m"},
        ],
    }
    data.update(changes)
    return Scenario.model_validate(data)


def names(schedule: FaultSchedule, t: float) -> set[str]:
    return {f.name for f in schedule.active_faults(t)}


def test_scripted_faults_follow_their_windows_and_repeat_every_cycle() -> None:
    schedule = FaultSchedule(scenario(), seed=1)
    assert names(schedule, 0) == {"leave"}
    assert names(schedule, 3 * 60) == {"leave", "503s"}
    assert names(schedule, 7 * 60) == {"leave"}, "end is exclusive"
    assert names(schedule, 9 * 60) == {"leave", "paused"}
    assert names(schedule, 40 * 60 + 4 * 60) == {"leave", "503s"}, "the next cycle"
    outage = schedule.active("outage", "approval-saas", 200)
    assert outage is not None and outage.status == 503 and outage.error_rate == 1.0
    assert schedule.active("outage", "ledger-api", 200) is None


def test_history_has_only_the_faults_that_were_already_on() -> None:
    schedule = FaultSchedule(scenario(), seed=1)
    assert names(schedule, -3600) == {"leave"}
    assert names(schedule, -9 * 3600) == set(), "on leave for the last 8 h only"


def test_random_outages_come_from_the_seed() -> None:
    spec = [{"kind": "outage", "target": "erp-workforce", "every": "15m", "length": ["1m", "3m"], "status": 500}]
    a = FaultSchedule(scenario(random_faults=spec), seed=5)
    b = FaultSchedule(scenario(random_faults=spec), seed=5)
    c = FaultSchedule(scenario(random_faults=spec), seed=6)
    grid = range(0, 6 * 3600, 30)
    down_a = [t for t in grid if a.active("outage", "erp-workforce", t)]
    assert down_a == [t for t in grid if b.active("outage", "erp-workforce", t)]
    assert down_a != [t for t in grid if c.active("outage", "erp-workforce", t)]
    # About one outage of ~2 min every 15 min: roughly an eighth of the time.
    assert 0.04 < len(down_a) / len(grid) < 0.3
    fault = a.active("outage", "erp-workforce", down_a[0])
    assert fault is not None and fault.status == 500 and "random" in fault.name


def test_the_shipped_scenario_is_valid_and_plays_every_fault_in_its_first_hour() -> None:
    schedule = FaultSchedule(load_scenario(), seed=1)
    seen = set().union(*(names(schedule, t) for t in range(0, 60 * 60, 10)))
    kinds = {f.kind for f in load_scenario().faults}
    assert kinds == {"approver_on_leave", "mapping_failure", "consumer_stopped", "outage", "slow_dependency"}
    assert {f.name for f in load_scenario().faults} <= seen


def test_recurring_faults_were_on_in_the_past_on_the_same_cycle() -> None:
    """What history meets: a scripted fault with an end, on the cycle, before the run too (with the time it
    goes off); a fault without one is a fate in history, not a recurring fault."""
    schedule = FaultSchedule(load_scenario(), seed=1)
    cycle = load_scenario().cycle
    on = schedule.recurring("outage", "approval-saas", 15 * 60)
    assert on is not None and on[0].name == "approval-saas returns 503" and on[1] == 28 * 60
    back = schedule.recurring("outage", "approval-saas", 15 * 60 - 3 * cycle)
    assert back is not None and back[1] == 28 * 60 - 3 * cycle
    assert schedule.recurring("outage", "approval-saas", 30 * 60 - cycle) is None
    assert schedule.recurring("approver_on_leave", "MRC-OR", -3600) is None  # on for good: a fate in history
