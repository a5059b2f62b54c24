#!/usr/bin/env bash
# Build (or complete) the LeRobot 0.4.4 environment an external_policy run trains and serves from.
#
#   deploy/lerobot/setup_venv.sh [VENV]        (default /work/lerobot-venv)
#
# Why by hand and not `pip install lerobot==0.4.4`: lerobot 0.4.4 pins torch<2.11 and torchvision<0.26,
# and the only torch this machine has offline is 2.13.0 (CPU, from pip's find-links); letting pip resolve
# torch itself downloads a multi-GB CUDA build. So torch and torchvision are installed first, pinned;
# lerobot without its dependencies; then lerobot's other requirements (its METADATA's Requires-Dist, as
# of 0.4.4) under a constraints file that holds torch and torchvision where they are, so nothing can pull
# another torch. torchcodec is left out on purpose: its releases are built against one torch each and
# lerobot falls back to PyAV (our datasets hold PNG images, not videos, anyway).
#
# Environment: PYTHON (the interpreter the venv is made from), TORCH_VERSION, TORCHVISION_VERSION.
# Idempotent: an existing venv is reused and pip skips what is installed.
set -euo pipefail

VENV="${1:-/work/lerobot-venv}"
PYTHON="${PYTHON:-$(command -v python3.11 || command -v python3)}" # lerobot 0.4 runs on Python 3.10-3.12
TORCH_VERSION="${TORCH_VERSION:-2.13.0}"
TORCHVISION_VERSION="${TORCHVISION_VERSION:-0.28.0}"
LEROBOT_VERSION="0.4.4"

if [[ ! -x "$VENV/bin/python" ]]; then
  "$PYTHON" -m venv "$VENV"
fi
pip=("$VENV/bin/python" -m pip install --disable-pip-version-check)

# torch first, pinned: an unpinned torch would be resolved to a CUDA build
"${pip[@]}" "torch==$TORCH_VERSION"
"${pip[@]}" "torchvision==$TORCHVISION_VERSION" "torch==$TORCH_VERSION"
"${pip[@]}" --no-deps "lerobot==$LEROBOT_VERSION"

constraints="$(mktemp)"
trap 'rm -f "$constraints"' EXIT
printf 'torch==%s\ntorchvision==%s\n' "$TORCH_VERSION" "$TORCHVISION_VERSION" >"$constraints"

# lerobot 0.4.4's Requires-Dist without torch, torchvision and torchcodec
"${pip[@]}" -c "$constraints" \
  "datasets>=4.0.0,<5.0.0" \
  "diffusers>=0.27.2,<0.36.0" \
  "huggingface-hub[cli,hf-transfer]>=0.34.2,<0.36.0" \
  "accelerate>=1.10.0,<2.0.0" \
  "setuptools>=71.0.0,<81.0.0" \
  "cmake>=3.29.0.1,<4.2.0" \
  "einops>=0.8.0,<0.9.0" \
  "opencv-python-headless>=4.9.0,<4.13.0" \
  "av>=15.0.0,<16.0.0" \
  "jsonlines>=4.0.0,<5.0.0" \
  "packaging>=24.2,<26.0" \
  "pynput>=1.7.7,<1.9.0" \
  "pyserial>=3.5,<4.0" \
  "wandb>=0.24.0,<0.25.0" \
  "draccus==0.10.0" \
  "gymnasium>=1.1.1,<2.0.0" \
  "rerun-sdk>=0.24.0,<0.27.0" \
  "deepdiff>=7.0.1,<9.0.0" \
  "imageio[ffmpeg]>=2.34.0,<3.0.0" \
  "termcolor>=2.4.0,<4.0.0" \
  "safetensors>=0.4.3,<1.0.0"

# the openpi protocol (serve_openpi.py) and Dagster Pipes (train_lerobot.py)
"${pip[@]}" -c "$constraints" websockets msgpack dm-tree dagster-pipes
# openpi-client 0.1.2 pins numpy<2; its msgpack_numpy works with numpy 2, which torch 2.13 wants
"${pip[@]}" --no-deps "openpi-client==0.1.2"

# The torchvision 0.28.0 wheel the local index holds is PyPI's CUDA build: its compiled ops (_C.so) link
# libtorch_cuda and libcudart and cannot load next to the CPU torch. torchvision then still works for
# what ACT uses (ResNet, FrozenBatchNorm2d, transforms v2: pure Python), except that its __init__
# registers fake/autograd kernels for those missing ops and fails. Import the two registration modules
# only when the ops loaded. Applied only when `import torchvision` fails; a real CPU wheel
# (0.28.0+cpu from PyTorch's own index) needs nothing.
if ! (cd / && "$VENV/bin/python" -c "import torchvision" 2>/dev/null); then
  (cd / && "$VENV/bin/python" - <<'EOF'
import importlib.util
from pathlib import Path

init = Path(importlib.util.find_spec("torchvision").origin)
text = init.read_text()
old = """from torchvision import (
    _autograd_registrations,
    _meta_registrations,
    datasets,"""
new = """# recap deploy/lerobot/setup_venv.sh: the fake/autograd registrations need the compiled ops, absent when
# this (CUDA) wheel's _C cannot load next to a CPU torch; everything else works without them
if extension._has_ops():
    from torchvision import _autograd_registrations, _meta_registrations  # usort:skip  # noqa: F401
from torchvision import (
    datasets,"""
if old not in text:
    raise SystemExit(f"torchvision does not import and {init} is not the 0.28 layout this patch knows")
init.write_text(text.replace(old, new))
print(f"patched {init}: torchvision without its compiled ops")
EOF
  )
fi

(cd / && "$VENV/bin/python" - <<'EOF'
import lerobot, torch, torchvision
from openpi_client import msgpack_numpy  # noqa: F401
import dagster_pipes, websockets  # noqa: F401
print(f"lerobot {lerobot.__version__}, torch {torch.__version__}, torchvision {torchvision.__version__}")
EOF
)
(cd / && "$VENV/bin/lerobot-train" --help >/dev/null)
echo "LeRobot environment ready: $VENV"
