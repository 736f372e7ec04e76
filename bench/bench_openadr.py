"""OpenADR bridge throughput: VEN registrations, report registrations and telemetry readings per second.

openleadr VEN clients register with the VTN (which looks up and PATCHes the
enrolment over REST), register their reports (one device upsert per
resource), then push oadrUpdateReport messages; a reading counts once the
registry has stored it. Then one VEN writing raw 2.0b XML registers a report
with ``--big-report`` resources in one oadrRegisterReport (the answer a VEN
waits for, often with a 10 s HTTP timeout), timed from POST to answer. By default the registry is the real app
(``create_app``, embedded store) served on loopback in this process, as
``python run.py`` serves it; its job worker is off, so forecasts stay queued.

    python -m bench.bench_openadr
    python -m bench.bench_openadr --registry http://127.0.0.1:5000 \\
        --admin-token "$(python run.py token --role admin)"   # a running registry
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import logging
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta

import requests
from openleadr import OpenADRClient, utils

import settings
from registry.auth import credentials
from registry.openadr import ApiClient, MeasurementBuffer, build_vtn
from tests.support.loopback import LoopbackRegistry, free_port, with_credentials
from tests.support.oadr_messages import power_description, register_reports
from tests.support.raw_ven import RawVen, outcome, valid_answer

ACCOUNT = str(uuid.UUID(int=1))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--registry", help="a running registry's URL (default: serve the app here)")
    parser.add_argument("--admin-token", help="admin bearer token for --registry (seeding, counting)")
    parser.add_argument(
        "--service",
        help="client_id:secret of the bridge's service client (default: the built-in one of the instance folder)",
    )
    parser.add_argument("--vens", type=int, default=40)
    parser.add_argument("--resources", type=int, default=4, help="resources per VEN")
    parser.add_argument("--messages", type=int, default=10, help="update reports per VEN")
    parser.add_argument("--readings", type=int, default=15, help="readings per resource in one update report")
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=40.0)
    parser.add_argument(
        "--big-report", type=int, default=200, help="resources in the one oadrRegisterReport timed at the end (0: skip)"
    )
    return parser.parse_args()


class Registry:
    """Seeding and counting over REST with an admin token."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {token}"}

    def enrol(self, names: list[str], aggregator_id: str) -> dict[str, str]:
        """ven_name -> the secret each enrolment answer carries (once)."""
        docs = [
            {"ven_name": name, "account_id": ACCOUNT, "aggregator_id": aggregator_id, "registration_status": "enrolled"}
            for name in names
        ]
        answer = requests.post(f"{self.url}/vens", json=docs, headers=self.headers, timeout=30)
        answer.raise_for_status()
        items = answer.json().get("_items", [answer.json()])
        return {item["ven_name"]: item["secret"] for item in items}

    def time_bulk_devices(self, aggregator_id: str, count: int) -> float:
        """Seconds for one bulk POST of ``count`` new devices of a made-up VEN."""
        ven_id = str(uuid.uuid4())
        docs = [
            {
                "device_id": str(uuid.uuid4()),
                "device_name": f"bulk-{i}",
                "ven_id": ven_id,
                "account_id": ACCOUNT,
                "aggregator_id": aggregator_id,
                "device_class": "otherLoad",
                "device_type": "Demand",
                "availability": "yes",
            }
            for i in range(count)
        ]
        started = time.perf_counter()
        answer = requests.post(f"{self.url}/devices", json=docs, headers=self.headers, timeout=60)
        seconds = time.perf_counter() - started
        answer.raise_for_status()
        return seconds

    def count(self, resource: str, where: dict) -> int:
        answer = requests.get(
            f"{self.url}/{resource}",
            headers=self.headers,
            timeout=10,
            params={"where": json.dumps(where), "max_results": 1},
        )
        answer.raise_for_status()
        return answer.json()["_meta"]["total"]


def make_ven(vtn_url: str, name: str, secret: str, resources: int, readings: int) -> OpenADRClient:
    client = OpenADRClient(ven_name=name, vtn_url=with_credentials(vtn_url, name, secret))

    calls = itertools.count()

    def read(date_from, date_to, sampling_interval):
        # each call its own window: the registry keeps one reading per device and timestamp
        step = (date_to - date_from) / readings
        start = date_from + next(calls) * (date_to - date_from)
        return [(start + step * i, 1000.0 + i) for i in range(readings)]

    for index in range(resources):
        client.add_report(
            callback=read,
            resource_id=f"load-{index}",
            measurement="real_power",
            unit="W",
            data_collection_mode="full",
            sampling_rate=timedelta(seconds=60),
            report_duration=timedelta(hours=1),
        )
    return client


async def gather_limited(limit: int, coroutines: list) -> list:
    semaphore = asyncio.Semaphore(limit)

    async def one(coroutine):
        async with semaphore:
            return await coroutine

    return await asyncio.gather(*(one(c) for c in coroutines))


async def push_reports(client: OpenADRClient, messages: int) -> None:
    report_request_id = client.report_requests[0]["report_request_id"]
    for _ in range(messages):
        await client.update_report(report_request_id)
        report = await client.pending_reports.get()
        message = client._create_message(
            "oadrUpdateReport", ven_id=client.ven_id, request_id=utils.generate_id(), reports=[report]
        )
        await client._perform_request("EiReport", message)


async def run_bench(args: argparse.Namespace, registry: Registry, api_url: str, service: tuple[str, str]) -> None:
    api = ApiClient(api_url, client_id=service[0], client_secret=service[1])
    bridge = build_vtn(
        api,
        port=free_port(),
        sampling_interval=timedelta(seconds=60),
        watch_interval=None,
        buffer=MeasurementBuffer(api, batch_size=1000, flush_interval=0.05),
    )
    bridge.start_in_thread()
    run_id = datetime.now(UTC).strftime("%H%M%S")
    aggregator_id = f"bench-{run_id}"
    names = [f"bench-{run_id}-{i}" for i in range(args.vens)]
    secrets = registry.enrol(names, aggregator_id)
    clients = [make_ven(bridge.url, name, secrets[name], args.resources, args.readings) for name in names]
    try:
        started = time.perf_counter()
        await gather_limited(args.concurrency, [c.create_party_registration() for c in clients])
        registration_s = time.perf_counter() - started
        assert all(c.registration_id for c in clients), "some VENs were not registered"

        started = time.perf_counter()
        await gather_limited(args.concurrency, [c.register_reports(c.reports) for c in clients])
        report_registration_s = time.perf_counter() - started
        devices = await asyncio.to_thread(registry.count, "devices", {"aggregator_id": aggregator_id})

        expected = args.vens * args.messages * args.resources * args.readings
        started = time.perf_counter()
        await gather_limited(args.concurrency, [push_reports(c, args.messages) for c in clients])
        delivered_s = time.perf_counter() - started
        where = {"aggregator_id": aggregator_id}
        deadline = started + args.timeout
        stored = 0
        while time.perf_counter() < deadline:
            stored = await asyncio.to_thread(registry.count, "measurements", where)
            if stored >= expected:
                break
            await asyncio.sleep(0.1)
        stored_s = time.perf_counter() - started
        big = (
            await asyncio.to_thread(time_big_report, registry, bridge.url, aggregator_id, args.big_report)
            if args.big_report
            else None
        )
    finally:
        for client in clients:
            if client.client_session:
                await client.client_session.close()
        await asyncio.to_thread(bridge.stop)

    rows = [
        ("VEN registrations", args.vens, registration_s),
        ("report registrations (devices stored)", devices, report_registration_s),
        ("telemetry readings accepted by the VTN", expected, delivered_s),
        ("telemetry readings stored in the registry", stored, stored_s),
    ]
    print(
        f"\nOpenADR bridge bench — {args.vens} VENs x {args.resources} resources, "
        f"{args.messages} reports x {args.readings} readings, concurrency {args.concurrency}"
    )
    if big is not None:
        rows.append((f"resources in one oadrRegisterReport (answer {big[1]})", big[2], big[0]))
        rows.append(("the registry alone: as many devices, one bulk POST", big[2], big[3]))
    print(f"{'operation':<52}{'count':>9}{'seconds':>10}{'per second':>13}")
    for label, count, seconds in rows:
        print(f"{label:<52}{count:>9}{seconds:>10.2f}{count / seconds:>13.1f}")
    if stored < expected or devices < args.vens * args.resources:
        print(f"WARNING: {devices} devices and {stored} of {expected} readings stored within {args.timeout}s")


def time_big_report(
    registry: Registry, vtn_url: str, aggregator_id: str, resources: int
) -> tuple[float, int, int, float]:
    """Seconds from POST to answer for one oadrRegisterReport with ``resources``
    resources, its eiResponse code, the VEN's devices stored when it came, and
    the seconds the registry itself takes to store as many devices in one bulk
    POST (hooks included), for comparison."""
    name = f"{aggregator_id}-big"
    ven = RawVen(vtn_url, name, registry.enrol([name], aggregator_id)[name]).register()
    body = register_reports(ven.ven_id, [power_description(f"load-{i}", f"r-{i}") for i in range(resources)])
    started = time.perf_counter()
    answer = ven.post("EiReport", body)
    seconds = time.perf_counter() - started
    code = outcome(valid_answer(answer))[0]
    devices = registry.count("devices", {"ven_id": ven.ven_id})
    return seconds, code, devices, registry.time_bulk_devices(aggregator_id, resources)


def main() -> None:
    args = parse_args()
    logging.getLogger("openleadr").setLevel(logging.ERROR)
    served = None
    if args.registry:
        if not args.admin_token:
            raise SystemExit("--registry needs --admin-token (python run.py token --role admin)")
        api_url, token = args.registry, args.admin_token
        instance_path = settings.INSTANCE_PATH
    else:
        instance_path = tempfile.mkdtemp(prefix="bench-openadr-")
        served = LoopbackRegistry(instance_path, {"JOBS_EMBEDDED_WORKER": False, "RATE_LIMIT": "1000000 per minute"})
        api_url, token = served.url, served.token("admin")
        print(f"registry: the real app (embedded store) at {api_url}")
    if args.service:
        service = tuple(args.service.split(":", 1))
    else:
        client_id = credentials.BRIDGE_CLIENT_ID
        service = (client_id, credentials.secret_of(instance_path, "clients", client_id))
    try:
        asyncio.run(run_bench(args, Registry(api_url, token), api_url, service))
    finally:
        if served is not None:
            served.close()


if __name__ == "__main__":
    main()
