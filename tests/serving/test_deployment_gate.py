"""The deployment gate's rule and the serving pointer's history: what reaches the robots, and undoing it."""

from __future__ import annotations

import threading

import pytest

from recap_core.serving.deployment import Deployment, DeploymentPointer
from recap_core.serving.gate import decide


def _row(rate: float, **changes) -> dict:
    return {"success_rate": rate, "split": "test", "eval_seeds": "2000000-2000049", "beta": 1.0, **changes}


def test_a_first_deployment_passes():
    decision = decide(_row(0.1), None, margin=0.05, deployed_version=None)
    assert decision.publish and decision.reason == "first deployment of the task"


@pytest.mark.parametrize(
    ("candidate", "deployed", "publish"),
    [(0.50, 0.40, True), (0.40, 0.40, True), (0.36, 0.40, True), (0.34, 0.40, False), (0.0, 0.9, False)],
)
def test_a_candidate_passes_only_within_the_margin_of_the_deployed_policy(candidate, deployed, publish):
    decision = decide(_row(candidate), _row(deployed), margin=0.05, deployed_version=3)
    assert decision.publish is publish
    assert decision.deployed_success_rate == deployed and decision.candidate_success_rate == candidate
    assert ("passes" if publish else "fails") in decision.reason and "margin 0.050" in decision.reason


def test_a_deployed_policy_without_a_comparable_evaluation_holds_the_candidate_back():
    decision = decide(_row(0.9), None, margin=0.05, deployed_version=2)
    assert (
        not decision.publish
        and "deployed version 2 has no evaluation on the candidate's seeds" in decision.reason
    )


def test_evaluations_on_other_seeds_are_not_compared():
    with pytest.raises(ValueError, match="same eval_seeds"):
        decide(_row(0.5), _row(0.5, eval_seeds="1-50"), margin=0.05, deployed_version=1)
    with pytest.raises(ValueError, match="margin must be >= 0"):
        decide(_row(0.5), None, margin=-0.1, deployed_version=None)


def _deployment(sha: str, iteration: int, task: str = "push-v3") -> Deployment:
    return Deployment(checkpoint=f"/ckpt/{sha}", sha256=sha, task=task, iteration=iteration)


def test_rollback_republishes_the_previous_checkpoint_and_keeps_the_history(tmp_path):
    pointer = DeploymentPointer(tmp_path, "push-v3")
    assert pointer.current() is None
    with pytest.raises(ValueError, match="no version published before the current one"):
        pointer.rollback()
    for iteration, sha in enumerate("abc"):
        pointer.publish(_deployment(sha * 64, iteration))
    assert pointer.current().sha256 == "c" * 64 and pointer.current().version == 3
    back = pointer.rollback()
    assert (back.sha256, back.iteration, back.version) == ("b" * 64, 1, 4)
    assert back.reason == "rollback from version 3"
    again = pointer.rollback()  # from b's copy back to a, not forth to c
    assert (again.sha256, again.version) == ("a" * 64, 5)
    assert [d.sha256[0] for d in pointer.history()] == ["a", "b", "c", "b", "a"]
    with pytest.raises(ValueError, match="cannot go to"):
        pointer.publish(_deployment("d" * 64, 4, task="reach-v3"))
    with pytest.raises(ValueError, match="task name"):
        DeploymentPointer(tmp_path, "../outside")


def test_concurrent_publishers_never_lose_an_entry(tmp_path):
    pointer = DeploymentPointer(tmp_path, "push-v3")

    def publisher(letter: str) -> None:
        for i in range(10):
            DeploymentPointer(tmp_path, "push-v3").publish(_deployment(letter * 64, i))

    threads = [threading.Thread(target=publisher, args=(letter,)) for letter in "xy"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    history = pointer.history()
    assert [d.version for d in history] == list(range(1, 21))
    assert sorted(d.sha256[0] for d in history) == ["x"] * 10 + ["y"] * 10
