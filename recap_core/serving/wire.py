"""The bytes on the wire: msgpack with numpy arrays, as openpi's ``msgpack_numpy`` packs them.

An array travels as a map {"__ndarray__": True, "data": raw bytes, "dtype": dtype.str, "shape": [...]}
and a numpy scalar as {"__npgeneric__": True, "data": item, "dtype": dtype.str}, with bytes keys; object,
void and complex dtypes are refused because they cannot be rebuilt without pickle. Matching this layout
is what lets an unchanged ``openpi_client`` talk to ``recap serve``.
"""

from __future__ import annotations

from typing import Any

import msgpack
import numpy as np

_ARRAY = b"__ndarray__"
_SCALAR = b"__npgeneric__"
_REFUSED_KINDS = ("V", "O", "c")


def _encode(value: Any) -> Any:
    if isinstance(value, np.ndarray | np.generic) and value.dtype.kind in _REFUSED_KINDS:
        raise ValueError(f"cannot send a numpy value of dtype {value.dtype} (object, void or complex)")
    if isinstance(value, np.ndarray):
        array = np.ascontiguousarray(value)
        return {_ARRAY: True, b"data": array.tobytes(), b"dtype": array.dtype.str, b"shape": array.shape}
    if isinstance(value, np.generic):
        return {_SCALAR: True, b"data": value.item(), b"dtype": value.dtype.str}
    return value


def _decode(value: dict) -> Any:
    if _ARRAY in value:
        return np.ndarray(buffer=value[b"data"], dtype=np.dtype(value[b"dtype"]), shape=value[b"shape"])
    if _SCALAR in value:
        return np.dtype(value[b"dtype"]).type(value[b"data"])
    return value


def pack(message: Any) -> bytes:
    """One message (a dict of arrays, strings, numbers, nested dicts and lists) as msgpack bytes."""
    return msgpack.packb(message, default=_encode)


def unpack(data: bytes) -> Any:
    """The message ``pack`` wrote; arrays come back read-only views of the received bytes."""
    return msgpack.unpackb(data, object_hook=_decode)
