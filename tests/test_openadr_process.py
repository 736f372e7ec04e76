"""The OpenADR bridge as its own process: ``run.py bridge`` serves the VTN to a
smart box against the real registry (the world in tests/support/openadr_world.py),
and its configuration is read from the environment."""

from __future__ import annotations

import os
import subprocess
import sys

from registry.openadr import BridgeConfig
from tests.support.loopback import free_port
from tests.support.openadr_world import HINTS, ROOT, SmartBox, _listening, call, eventually, registry, run, world  # noqa: F401  (fixtures)


def test_run_py_bridge_serves_the_vtn_as_its_own_process(world, registry, instance_path):
    enrolment = world.enrol("box-9", resources=HINTS)
    port = free_port()
    env = {
        **os.environ,
        "INSTANCE_PATH": instance_path,
        "OPENADR_POLL_SECONDS": "1",
        "OPENADR_WATCH_SECONDS": "0.3",
        "PUBLIC_URL": registry.url,
    }
    process = subprocess.Popen(
        [sys.executable, "run.py", "bridge", "--vtn-port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    vtn_url = f"http://127.0.0.1:{port}/OpenADR2/Simple/2.0b"

    async def scenario():
        await eventually(lambda: _listening(port), timeout=15)
        async with SmartBox(vtn_url, enrolment, resources=("heat-pump",)) as box:
            contract = await call(world.contract_on, box.device_id("heat-pump"))
            answered = await eventually(lambda: world.aggregator.item("contracts", contract["_id"]).get("ven_response"))
            return box, answered

    try:
        box, answered = run(scenario, timeout=30)
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=10)
    assert process.returncode == 0, stderr.decode()[-2000:]
    assert [d["device_name"] for d in world.prosumer.items("devices")] == ["Heat pump"]
    assert answered["opt"] == "optIn" and len(box.events) == 1


def test_bridge_config_reads_the_environment():
    config = BridgeConfig.from_env(
        {
            "PUBLIC_URL": "http://registry:5000",
            "OPENADR_PORT": "9090",
            "OPENADR_WATCH_SECONDS": "2.5",
            "OPENADR_CLIENT_ID": "gw",
        },
        host="0.0.0.0",
    )
    assert (config.api_url, config.port, config.watch_seconds, config.client_id, config.host) == (
        "http://registry:5000",
        9090,
        2.5,
        "gw",
        "0.0.0.0",
    )
    assert BridgeConfig.from_env({"PUBLIC_URL": "http://a", "OPENADR_API_URL": "http://b"}).api_url == "http://b"
