"""A stand-in external policy server: what openpi's serve_policy script is to the pipeline.

Its own environment (numpy, msgpack, websockets and the openpi-client package's msgpack_numpy: nothing
of this project); openpi's protocol: the metadata dict on connect, one observation dict per request
answered with {"actions": (H, A)}, an error as a text message, GET /healthz.
"""

from __future__ import annotations

import argparse
import json
import traceback
from http import HTTPStatus
from pathlib import Path

import numpy as np
from openpi_client import msgpack_numpy
from websockets.exceptions import ConnectionClosed
from websockets.sync.server import serve


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--checkpoint", required=True, type=Path)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", required=True, type=int)
    args = parser.parse_args()
    card = json.loads((args.checkpoint / "policy.json").read_text())
    saved = np.load(args.checkpoint / "weights.npz")
    weights, mean, std = saved["weights"], saved["mean"], saved["std"]
    horizon, action_dim = card["horizon"], card["action_dim"]
    metadata = {"server": "standin", "checkpoint": str(args.checkpoint), "frames_read": card["frames_read"]}

    def health(connection, request):
        if request.path == "/healthz":
            return connection.respond(HTTPStatus.OK, "OK\n")
        return None

    def handle(connection):
        connection.send(msgpack_numpy.packb(metadata))
        try:
            for message in connection:
                try:
                    observation = msgpack_numpy.unpackb(message)
                    state = np.asarray(observation["observation/state"], dtype=np.float64)
                    features = np.append((state - mean) / std, 1.0)
                    chunk = np.clip(features @ weights, -1, 1).reshape(horizon, action_dim)
                    connection.send(msgpack_numpy.packb({"actions": chunk.astype(np.float32)}))
                except Exception:
                    connection.send(traceback.format_exc())
        except ConnectionClosed:
            pass

    with serve(
        handle, args.host, args.port, process_request=health, compression=None, max_size=None
    ) as server:
        print(f"standin serving {args.checkpoint} on ws://{args.host}:{args.port}", flush=True)
        server.serve_forever()


if __name__ == "__main__":
    main()
