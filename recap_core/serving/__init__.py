"""Serving pi^k to robots over openpi's websocket policy protocol, and driving a served policy.

The server side (``server``, ``served_policy``) needs torch; the client side (``wire``, ``client``) needs
only numpy, msgpack and websockets, so it runs on a robot's computer next to the robot's own stack.
"""
