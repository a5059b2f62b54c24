"""Environment workers for batched rollouts: many environments step action chunks between policy calls.

The policy is called once per chunk for all active environments together; each worker then executes its
environments' chunks locally and answers with one message, so inter-process traffic is one round trip
per chunk, not per step. A slot that finishes an episode resets to its next seed inside the same call.
When the environments render cameras, each answer also carries the slots' current frames, which a policy
that reads images needs for its next chunk.
"""

from __future__ import annotations

import contextlib
import multiprocessing
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from recap_core.sim.cameras import FrameRecorder
from recap_core.sim.environment import SimEnv, TaskSpec
from recap_core.sim.supervisor import SupervisorConfig, Watch


@dataclass
class FinishedRollout:
    """A finished episode as a worker reports it; the collector turns it into an ``Episode``."""

    seed: int
    observations: np.ndarray
    actions: np.ndarray
    is_correction: np.ndarray
    success: bool
    watched: bool
    takeovers: int
    control_period: float
    frames: dict[str, np.ndarray] | None = None  # camera -> (T, H, W, 3), when the task renders cameras


class _Slot:
    __slots__ = ("actions", "corrections", "env", "obs", "observations", "recorder", "seed", "t", "watch")

    def __init__(self, env: SimEnv, max_steps: int) -> None:
        self.env = env
        self.observations = np.empty((max_steps, env.obs_dim), dtype=np.float32)
        self.actions = np.empty((max_steps, env.action_dim), dtype=np.float32)
        self.corrections = np.zeros(max_steps, dtype=bool)
        self.seed = -1
        self.t = 0
        self.obs = np.empty(env.obs_dim, dtype=np.float32)
        self.watch: Watch | None = None
        self.recorder = FrameRecorder.for_env(env, max_steps)

    def record_observation(self) -> None:
        """The current observation (and camera frames) become step ``t`` of the episode."""
        self.observations[self.t] = self.obs
        if self.recorder is not None:
            self.recorder.record(self.t)


class RolloutWorker:
    """Runs ``slots`` environments of one task over a queue of seeds."""

    def __init__(
        self, task: TaskSpec, seeds: Sequence[int], slots: int, supervisor: SupervisorConfig | None
    ) -> None:
        self.task = task
        self.supervisor = supervisor
        self.queue = deque(int(s) for s in seeds)
        self.slots: list[_Slot] = []
        for _ in range(min(slots, len(self.queue))):
            slot = _Slot(task.make_env(), task.max_steps)
            self._start(slot)
            self.slots.append(slot)

    def _start(self, slot: _Slot) -> bool:
        if not self.queue:
            return False
        slot.seed = self.queue.popleft()
        slot.t = 0
        slot.corrections[:] = False
        slot.obs = slot.env.reset(slot.seed)
        watched = self.supervisor is not None and self.supervisor.watches(slot.seed)
        slot.watch = Watch(self.supervisor, self.task.max_steps) if watched else None  # type: ignore[arg-type]
        return True

    def observations(self) -> np.ndarray:
        if not self.slots:
            return np.empty((0, 0), dtype=np.float32)
        return np.stack([slot.obs for slot in self.slots])

    def frames(self) -> dict[str, np.ndarray] | None:
        """camera -> the active slots' current frames (B, H, W, 3), in slot order; None without cameras."""
        if not self.slots or self.slots[0].recorder is None:
            return None
        per_slot = [slot.env.frames() for slot in self.slots]  # type: ignore[attr-defined]
        return {camera: np.stack([frames[camera] for frames in per_slot]) for camera in per_slot[0]}

    def advance(self, chunks: np.ndarray) -> tuple[list[FinishedRollout], np.ndarray]:
        """Execute one chunk (k, action_dim) per active slot, in slot order; refill finished slots."""
        if len(chunks) != len(self.slots):
            raise ValueError(f"{self.task.name}: got {len(chunks)} action chunks for {len(self.slots)} envs")
        finished: list[FinishedRollout] = []
        still_active: list[_Slot] = []
        for slot, chunk in zip(self.slots, chunks, strict=True):
            done = self._run_chunk(slot, chunk)
            if done is not None:
                finished.append(done)
                if not self._start(slot):
                    continue
            still_active.append(slot)
        self.slots = still_active
        return finished, self.observations()

    def _run_chunk(self, slot: _Slot, chunk: np.ndarray) -> FinishedRollout | None:
        env, max_steps = slot.env, self.task.max_steps
        chunk = np.clip(chunk, env.action_low, env.action_high)
        for action in chunk:
            if slot.watch is not None:
                slot.observations[slot.t] = slot.obs  # what the watching human sees; recorded below
                reason = slot.watch.should_take_over(slot.t, slot.observations, action, env.expert_action())
                if reason is not None:
                    return self._take_over(slot)
            slot.record_observation()
            slot.actions[slot.t] = action
            slot.obs, success = env.step(action)
            slot.t += 1
            if success or slot.t >= max_steps:
                return self._finish(slot, success)
        return None

    def _take_over(self, slot: _Slot) -> FinishedRollout | None:
        env, max_steps = slot.env, self.task.max_steps
        assert slot.watch is not None
        for _ in range(slot.watch.config.takeover_steps):
            action = env.expert_action()
            slot.record_observation()
            slot.actions[slot.t] = action
            slot.corrections[slot.t] = True
            slot.obs, success = env.step(action)
            slot.t += 1
            if success or slot.t >= max_steps:
                return self._finish(slot, success)
        slot.watch.handed_back()
        return None

    def _finish(self, slot: _Slot, success: bool) -> FinishedRollout:
        t = slot.t
        return FinishedRollout(
            seed=slot.seed,
            observations=slot.observations[:t].copy(),
            actions=slot.actions[:t].copy(),
            is_correction=slot.corrections[:t].copy(),
            success=bool(success),
            watched=slot.watch is not None,
            takeovers=slot.watch.takeovers + int(bool(slot.corrections[t - 1])) if slot.watch else 0,
            control_period=slot.env.control_period,
            frames=slot.recorder.frames(t) if slot.recorder is not None else None,
        )


class LocalPool:
    """All environments in this process: no start-up cost; right for light envs and small runs."""

    def __init__(
        self, task: TaskSpec, seeds: Sequence[int], num_envs: int, supervisor: SupervisorConfig | None
    ):
        self.worker = RolloutWorker(task, seeds, num_envs, supervisor)

    def observations(self) -> np.ndarray:
        return self.worker.observations()

    def advance(self, chunks: np.ndarray) -> tuple[list[FinishedRollout], np.ndarray]:
        return self.worker.advance(chunks)

    def frames(self) -> dict[str, np.ndarray] | None:
        return self.worker.frames()

    def close(self) -> None:
        self.worker.slots.clear()


def _serve(connection, task: TaskSpec, seeds: list[int], slots: int, supervisor: SupervisorConfig | None):
    try:
        worker = RolloutWorker(task, seeds, slots, supervisor)
        connection.send(("ok", (worker.observations(), worker.frames())))
        while True:
            message = connection.recv()
            if message is None:
                break
            finished, observations = worker.advance(message)
            connection.send(("ok", (finished, observations, worker.frames())))
    except Exception as error:  # report to the parent instead of dying silently
        connection.send(("error", f"{type(error).__name__}: {error}"))
    finally:
        connection.close()


class ProcessPool:
    """Environments spread over worker processes (seeds dealt round-robin); the policy stays here."""

    def __init__(
        self,
        task: TaskSpec,
        seeds: Sequence[int],
        num_envs: int,
        supervisor: SupervisorConfig | None,
        workers: int,
    ) -> None:
        context = multiprocessing.get_context("spawn")
        workers = max(1, min(workers, len(seeds)))
        per_worker = max(1, -(-num_envs // workers))
        self.connections = []
        self.processes = []
        for index in range(workers):
            parent, child = context.Pipe()
            process = context.Process(
                target=_serve,
                args=(child, task, [int(s) for s in seeds[index::workers]], per_worker, supervisor),
                daemon=True,
            )
            process.start()
            child.close()
            self.connections.append(parent)
            self.processes.append(process)
        self.current: list[np.ndarray] = []
        self.current_frames: list[dict[str, np.ndarray] | None] = []
        for connection in self.connections:
            observations, frames = self._receive(connection)
            self.current.append(observations)
            self.current_frames.append(frames)

    @staticmethod
    def _receive(connection):
        status, payload = connection.recv()
        if status != "ok":
            raise RuntimeError(f"rollout worker failed: {payload}")
        return payload

    def observations(self) -> np.ndarray:
        parts = [obs for obs in self.current if len(obs)]
        return np.concatenate(parts) if parts else np.empty((0, 0), dtype=np.float32)

    def frames(self) -> dict[str, np.ndarray] | None:
        """The workers' current frames, concatenated in the order of ``observations``."""
        parts = [f for obs, f in zip(self.current, self.current_frames, strict=True) if len(obs) and f]
        if not parts:
            return None
        return {camera: np.concatenate([part[camera] for part in parts]) for camera in parts[0]}

    def advance(self, chunks: np.ndarray) -> tuple[list[FinishedRollout], np.ndarray]:
        offset = 0
        busy = []
        for index, (connection, obs) in enumerate(zip(self.connections, self.current, strict=True)):
            if len(obs):
                connection.send(chunks[offset : offset + len(obs)])
                offset += len(obs)
                busy.append(index)
        if offset != len(chunks):
            raise ValueError(f"got {len(chunks)} action chunks for {offset} active environments")
        finished: list[FinishedRollout] = []
        for index in busy:
            done, obs, frames = self._receive(self.connections[index])
            finished.extend(done)
            self.current[index] = obs
            self.current_frames[index] = frames
        return finished, self.observations()

    def close(self) -> None:
        for connection in self.connections:
            with contextlib.suppress(BrokenPipeError, OSError):
                connection.send(None)
            connection.close()
        for process in self.processes:
            process.join(timeout=5)
            if process.is_alive():
                process.terminate()
