"""Serve a policy lerobot-train wrote over openpi's websocket protocol, for the pipeline's evaluation.

LeRobot 0.4 has no openpi-protocol server (its async inference speaks gRPC), and the pipeline evaluates
and collects with an external policy only through one (docs/external.md), so this script is the bridge.
It runs in the LeRobot environment (deploy/lerobot/setup_venv.sh), never in the project's: it loads the
``pretrained_model`` folder under ``--checkpoint`` with LeRobot's own classes and saved pre/post
processors (``make_pre_post_processors(config, pretrained_path=...)``: the dataset statistics the
trainer normalised with), and answers openpi's protocol:

* on connect, a metadata dict (msgpack-numpy): the checkpoint, the policy type, its chunk size, ...
  but never ``horizon`` (the settings' ``external_policy.horizon`` says how many actions run) nor
  ``cameras``/``image_size``/``batched``, which the pipeline's client would take over its own;
* per request, one observation dict: ``observation/state`` -> ``observation.state``,
  ``observation/<camera>`` (H, W, C uint8) -> the policy's image feature ``observation.images.<camera>``
  (LeRobot's own ``prepare_observation_for_inference``: CHW float in [0, 1], batch of one), ``prompt``
  -> ``task``; the reply ``{"actions": (chunk_size, action_dim) float32}``, the whole chunk
  (``predict_action_chunk``: the pipeline executes the first ``horizon`` actions itself);
* a request that fails gets the traceback as a text frame and the server keeps serving;
* ``GET /healthz`` answers 200 once the policy is loaded (the pipeline waits for it).
"""

from __future__ import annotations

import argparse
import logging
import re
import traceback
from http import HTTPStatus
from pathlib import Path
from typing import Any

import lerobot
import numpy as np
import torch
from lerobot.configs.policies import PreTrainedConfig
from lerobot.policies.factory import get_policy_class, make_pre_post_processors
from lerobot.policies.utils import prepare_observation_for_inference
from openpi_client import msgpack_numpy
from websockets.exceptions import ConnectionClosed
from websockets.sync.server import Request, Response, ServerConnection, serve

STATE_KEY, PROMPT_KEY, CAMERA_PREFIX = "observation/state", "prompt", "observation/"
LEROBOT_STATE, LEROBOT_IMAGE_PREFIX = "observation.state", "observation.images."

log = logging.getLogger("serve_openpi")


def find_pretrained_model(checkpoint: Path) -> Path:
    """The ``pretrained_model`` folder lerobot-train saved under ``checkpoint``: ``checkpoints/last``
    when it is there (lerobot-train's symlink to the final step), else the highest step found, at any
    depth (the train template chooses ``--output_dir``, e.g. ``{output}/run``)."""
    if (checkpoint / "config.json").is_file() and (checkpoint / "model.safetensors").is_file():
        return checkpoint  # handed the pretrained_model folder itself
    for last in sorted(checkpoint.glob("**/checkpoints/last/pretrained_model")):
        if (last / "config.json").is_file():
            return last
    found = [p for p in checkpoint.rglob("pretrained_model") if (p / "config.json").is_file()]
    if not found:
        raise FileNotFoundError(f"no pretrained_model folder with a config.json under {checkpoint}")

    def step(path: Path) -> int:
        digits = re.fullmatch(r"\d+", path.parent.name)
        return int(digits.group()) if digits else -1

    return max(found, key=lambda path: (step(path), str(path)))


class LeRobotChunkPolicy:
    """A LeRobot policy and its processors: one openpi observation in, one action chunk out."""

    def __init__(self, pretrained: Path, device: str) -> None:
        self.pretrained = pretrained
        self.device = torch.device(device)
        config = PreTrainedConfig.from_pretrained(pretrained)
        config.device = device  # the trainer may have trained elsewhere (cuda); serve where asked
        self.config = config
        self.policy = get_policy_class(config.type).from_pretrained(pretrained, config=config)
        self.policy.to(self.device).eval()
        self.preprocess, self.postprocess = make_pre_post_processors(
            config,
            pretrained_path=str(pretrained),
            preprocessor_overrides={"device_processor": {"device": device}},
        )
        self.image_keys = list(config.image_features)
        self.state_key = LEROBOT_STATE if config.robot_state_feature is not None else None
        action = config.output_features["action"]
        self.action_dim = int(action.shape[0])
        state = config.robot_state_feature
        self.obs_dim = int(state.shape[0]) if state is not None else 0

    def metadata(self, checkpoint: Path) -> dict[str, Any]:
        """What the server says on connect. No ``horizon``: the pipeline's settings decide it."""
        return {
            "server": "lerobot-openpi",
            "lerobot_version": lerobot.__version__,
            "checkpoint": str(checkpoint),
            "pretrained_model": str(self.pretrained),
            "policy_type": self.config.type,
            "chunk_size": int(getattr(self.config, "chunk_size", 1)),
            "n_action_steps": int(getattr(self.config, "n_action_steps", 1)),
            "action_dim": self.action_dim,
            "obs_dim": self.obs_dim,
            "image_features": self.image_keys,
            "device": str(self.device),
        }

    def lerobot_observation(self, observation: dict[str, Any]) -> tuple[dict[str, np.ndarray], str]:
        """openpi keys -> LeRobot features (numpy, unbatched), and the task text; a missing or
        misshapen key is refused naming it, so the client learns what the policy reads."""
        frame: dict[str, np.ndarray] = {}
        if self.state_key is not None:
            if STATE_KEY not in observation:
                raise KeyError(f"the observation has no {STATE_KEY!r}; it has {sorted(observation)}")
            state = np.asarray(observation[STATE_KEY], dtype=np.float32).reshape(-1)
            if state.shape != (self.obs_dim,):
                raise ValueError(f"{STATE_KEY} has shape {state.shape}, the policy reads ({self.obs_dim},)")
            frame[self.state_key] = state
        for key in self.image_keys:
            camera = key.removeprefix(LEROBOT_IMAGE_PREFIX)
            sent = CAMERA_PREFIX + camera
            if sent not in observation:
                raise KeyError(f"the policy reads camera {camera!r}: send {sent!r} (H, W, C uint8)")
            image = np.asarray(observation[sent])
            expected = tuple(self.config.input_features[key].shape)  # (C, H, W) in LeRobot's config
            if image.ndim != 3 or (image.shape[2], *image.shape[:2]) != expected:
                raise ValueError(f"{sent} has shape {image.shape}, the policy reads HWC for CHW {expected}")
            if image.dtype != np.uint8:
                raise ValueError(f"{sent} is {image.dtype}: send uint8 pixels")
            frame[key] = np.ascontiguousarray(image)
        return frame, str(observation.get(PROMPT_KEY) or "")

    @torch.no_grad()
    def infer(self, observation: dict[str, Any]) -> np.ndarray:
        """(chunk_size, action_dim) float32 actions, unnormalised by the saved postprocessor."""
        frame, task = self.lerobot_observation(observation)
        batch = prepare_observation_for_inference(frame, self.device, task=task)
        batch = self.preprocess(batch)
        chunk = self.policy.predict_action_chunk(batch)  # (1, chunk_size, action_dim), normalised
        chunk = self.postprocess(chunk)
        return np.asarray(chunk.squeeze(0).cpu().numpy(), dtype=np.float32).reshape(-1, self.action_dim)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--checkpoint", required=True, type=Path, help="what lerobot-train wrote ({checkpoint})"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", required=True, type=int)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    pretrained = find_pretrained_model(args.checkpoint)
    policy = LeRobotChunkPolicy(pretrained, args.device)
    metadata = policy.metadata(args.checkpoint)
    log.info("loaded %s policy from %s: %s", policy.config.type, pretrained, metadata)

    def health(connection: ServerConnection, request: Request) -> Response | None:
        if request.path == "/healthz":
            return connection.respond(HTTPStatus.OK, "OK\n")
        return None

    def handle(connection: ServerConnection) -> None:
        connection.send(msgpack_numpy.packb(metadata))
        try:
            for message in connection:
                try:
                    observation = msgpack_numpy.unpackb(message)
                    if not isinstance(observation, dict):
                        raise TypeError(
                            f"a request is one observation dict, got {type(observation).__name__}"
                        )
                    connection.send(msgpack_numpy.packb({"actions": policy.infer(observation)}))
                except Exception:
                    error = traceback.format_exc()
                    log.warning("request failed:\n%s", error)
                    connection.send(error)  # a text frame: openpi's way of saying the request failed
        except ConnectionClosed:
            pass

    with serve(
        handle, args.host, args.port, process_request=health, compression=None, max_size=None
    ) as server:
        print(f"lerobot-openpi serving {pretrained} on ws://{args.host}:{args.port}", flush=True)
        server.serve_forever()


if __name__ == "__main__":
    main()
