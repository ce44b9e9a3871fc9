"""A DMX receiver built on OLA's own Python client (Debian's ``ola-python``), run as a child process by
:mod:`tests.ola_fixture`: it patches olad's E1.31 or Art-Net input ports to universes, registers for
their DMX, and prints one JSON line per frame olad passes on: ``{"t": monotonic s, "u": universe,
"n": slots, "d": hex of the slots}``. A line ``{"ready": true}`` says the patch is in place.

Usage: ``python ola_receiver.py RPC_PORT PLUGIN UNIVERSE...`` (PLUGIN: ``e131`` or ``artnet``; for
Art-Net the input port K is patched to the K-th universe given).
"""

import json
import socket
import sys
import time

from ola.ClientWrapper import ClientWrapper
from ola.OlaClient import OlaClient, Plugin

PLUGINS = {"e131": Plugin.OLA_PLUGIN_E131, "artnet": Plugin.OLA_PLUGIN_ARTNET}


def main() -> None:
    rpc_port, plugin, universes = int(sys.argv[1]), sys.argv[2], [int(u) for u in sys.argv[3:]]
    sock = socket.create_connection(("127.0.0.1", rpc_port), timeout=5)
    sock.settimeout(None)
    wrapper = ClientWrapper(socket=sock)
    client = wrapper.Client()
    pending = []

    def emit(record: dict) -> None:
        sys.stdout.write(json.dumps(record) + "\n")
        sys.stdout.flush()

    def on_dmx(universe: int):
        return lambda data: emit({"t": time.monotonic(), "u": universe, "n": len(data), "d": bytes(data).hex()})

    def done(status) -> None:
        if not status.Succeeded():
            emit({"error": status.message})
            wrapper.Stop()
            return
        pending.pop()
        if not pending:
            emit({"ready": True})

    def on_devices(status, devices) -> None:
        if not status.Succeeded() or not devices:
            emit({"error": f"no {plugin} device in olad: {status.message}"})
            wrapper.Stop()
            return
        device = devices[0]
        for index, universe in enumerate(universes):
            pending.extend([1, 1])
            client.PatchPort(device.alias, index, False, OlaClient.PATCH, universe, done)
            client.RegisterUniverse(universe, OlaClient.REGISTER, on_dmx(universe), done)

    client.FetchDevices(on_devices, PLUGINS[plugin])
    wrapper.Run()


if __name__ == "__main__":
    main()
