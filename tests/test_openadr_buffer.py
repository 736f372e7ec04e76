"""The bridge's telemetry buffer: bounded, spooled to disk, drained on SIGTERM.

Same loopback world as tests/test_openadr_*.py (tests/support/openadr_world.py): the
real registry behind a ``FlakyGateway`` that a test takes down, openleadr's VEN
client as the smart box.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import timedelta

import pytest

from registry.openadr import ApiClient, MeasurementBuffer, Spool, build_vtn
from registry.openadr.telemetry import BufferFull
from registry.ops.metrics import PROCESS
from tests.support.loopback import free_port
from tests.support.openadr_world import (  # noqa: F401 (fixtures)
    ROOT,
    SmartBox,
    _listening,
    eventually,
    gateway,
    registry,
    run,
    world,
)


def start_spooled_bridge(registry, gateway, spool_path: str, max_pending: int = 100_000):
    api = ApiClient(gateway.url, client_id=registry.service[0], client_secret=registry.service[1], retry_for=0.5)
    buffer = MeasurementBuffer(api, flush_interval=0.2, max_pending=max_pending, spool=Spool(spool_path))
    vtn = build_vtn(
        api,
        port=free_port(),
        poll_interval=timedelta(seconds=1),
        sampling_interval=timedelta(seconds=1),
        watch_interval=None,
        buffer=buffer,
    )
    return vtn.start_in_thread()


def spooled(path: str) -> list[dict]:
    """What a spool file holds, read as another process would."""
    with sqlite3.connect(path) as db:
        return [json.loads(doc) for (doc,) in db.execute("SELECT doc FROM readings ORDER BY seq")]


def stored_once(world) -> dict[tuple[str, str], float]:
    stored = world.admin.items("measurements")
    keys = {(m["device_id"], m["timestamp"]): m["power_kw"] for m in stored}
    assert len(keys) == len(stored)  # one document per (device_id, timestamp)
    return keys


def test_readings_accepted_while_the_registry_is_down_survive_a_restart(world, registry, gateway, tmp_path):
    enrolment = world.enrol("box-spool")
    path = str(tmp_path / "spool.sqlite3")
    first = start_spooled_bridge(registry, gateway, path)
    second = None

    async def scenario():
        async with SmartBox(first.url, enrolment, resources=("meter",)):
            await eventually(lambda: world.prosumer.items("measurements"))
            gateway.set_mode("503")
            await eventually(lambda: first.buffer.pending >= 3)

    try:
        run(scenario)
        before = stored_once(world)
        first.stop(drain_for=0.5)  # the registry is still down: the rest stays spooled
        left = spooled(path)
        assert len(left) >= 3 and stored_once(world) == before
        assert not {(d["device_id"], d["timestamp"]) for d in left} & set(before)

        gateway.set_mode("up")
        second = start_spooled_bridge(registry, gateway, path)
        assert second.buffer.pending == len(left)
        expected = {**before, **{(d["device_id"], d["timestamp"]): d["power_kw"] for d in left}}
        run(lambda: eventually(lambda: len(stored_once(world)) >= len(expected)))
        run(lambda: eventually(lambda: second.buffer.pending == 0))
    finally:
        first.stop(drain_for=0)
        if second is not None:
            second.stop()
    assert stored_once(world) == expected  # every accepted reading, exactly once
    assert spooled(path) == []


def test_a_full_buffer_refuses_readings_at_the_vtn(world, registry, gateway, tmp_path, caplog):
    enrolment = world.enrol("box-full")
    path = str(tmp_path / "spool.sqlite3")
    bridge = start_spooled_bridge(registry, gateway, path, max_pending=3)
    refused = PROCESS.get_sample_value("der_registry_openadr_readings_refused_total", {"reason": "buffer_full"}) or 0

    def refused_more() -> bool:
        now = PROCESS.get_sample_value("der_registry_openadr_readings_refused_total", {"reason": "buffer_full"})
        return (now or 0) > refused

    async def scenario():
        async with SmartBox(bridge.url, enrolment, resources=("meter", "boiler")):
            await eventually(lambda: world.prosumer.items("measurements"))
            gateway.set_mode("503")
            await eventually(refused_more)
            assert bridge.buffer.pending <= 3
            assert PROCESS.get_sample_value("der_registry_openadr_buffered_readings") == bridge.buffer.pending
            held = spooled(path)
            gateway.set_mode("up")
            await eventually(lambda: bridge.buffer.pending == 0 or None)
            return held

    try:
        with caplog.at_level(logging.WARNING, logger="registry.openadr"):
            held = run(scenario)
    finally:
        bridge.stop()
    assert any("refused at the VTN" in r.message for r in caplog.records)
    stored = stored_once(world)
    assert all((d["device_id"], d["timestamp"]) in stored for d in held)  # accepted ones were kept


def test_the_bound_takes_all_readings_of_a_message_or_none(tmp_path):
    async def scenario():
        async with ApiClient("http://127.0.0.1:9", token="unused") as api:
            buffer = MeasurementBuffer(api, max_pending=3, spool=Spool(str(tmp_path / "spool.sqlite3")))
            buffer.add([{"n": 1}, {"n": 2}])
            with pytest.raises(BufferFull):
                buffer.add([{"n": 3}, {"n": 4}])
            buffer.add([{"n": 3}])
            return buffer

    buffer = run(scenario)
    assert buffer.pending == 3 and buffer.room() == 0
    assert spooled(str(tmp_path / "spool.sqlite3")) == [{"n": 1}, {"n": 2}, {"n": 3}]


def test_sigterm_drains_the_buffer_or_leaves_it_spooled(world, registry, gateway, instance_path, tmp_path):
    enrolment = world.enrol("box-sigterm")
    path = str(tmp_path / "spool.sqlite3")
    port = free_port()
    vtn_url = f"http://127.0.0.1:{port}/OpenADR2/Simple/2.0b"
    env = {
        **os.environ,
        "INSTANCE_PATH": instance_path,
        "OPENADR_POLL_SECONDS": "1",
        "OPENADR_SAMPLING_SECONDS": "1",
        "OPENADR_WATCH_SECONDS": "0",
        "OPENADR_SPOOL": path,
        "OPENADR_DRAIN_SECONDS": "1",
    }

    def bridge_process() -> subprocess.Popen:
        process = subprocess.Popen(
            [sys.executable, "run.py", "bridge", "--api-url", gateway.url, "--vtn-port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        run(lambda: eventually(lambda: _listening(port), timeout=15))
        return process

    def terminate(process: subprocess.Popen) -> float:
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=15)
        assert process.returncode == 0, stderr.decode()[-2000:]
        return time.monotonic() - started

    async def readings_while_down():
        async with SmartBox(vtn_url, enrolment, resources=("meter",)):
            await eventually(lambda: world.prosumer.items("measurements"))
            gateway.set_mode("503")
            await eventually(lambda: len(spooled(path)) >= 3)

    process = bridge_process()
    try:
        run(readings_while_down, timeout=30)
        before = stored_once(world)
        # the registry does not come back: SIGTERM ends the process within the drain time
        assert terminate(process) < 8
        left = spooled(path)
        assert len(left) >= 3 and stored_once(world) == before

        # started again on the same spool, and stopped as soon as the registry is back
        process = bridge_process()
        gateway.set_mode("up")
        terminate(process)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert spooled(path) == []
    expected = {**before, **{(d["device_id"], d["timestamp"]): d["power_kw"] for d in left}}
    assert stored_once(world) == expected


def test_the_instance_folder_holds_the_spool_by_default(tmp_path):
    from registry.openadr import BridgeConfig

    config = BridgeConfig.from_env({"OPENADR_TOKEN": "t", "OPENADR_BUFFER_MAX": "5"})
    assert config.buffer_max == 5 and config.drain_seconds == 10.0
    assert config.with_instance_credentials(str(tmp_path)).spool.startswith(str(tmp_path))
    assert BridgeConfig(token="t", spool="elsewhere").with_instance_credentials(str(tmp_path)).spool == "elsewhere"
