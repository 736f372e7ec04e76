"""Command line: serve (default), seed, token, worker, bridge, migrate, keys.

python run.py [serve] [--host H] [--port P] [--vtn-port V] [--no-demo]
python run.py token --role aggregator|prosumer|dso|service|admin [--aggregator-id ID]
                    [--account-id UUID] [--dso-id ID] [--ttl SECONDS]
python run.py seed [--prosumers N] [--days D]
python run.py worker [--burst]
python run.py bridge [--api-url URL] [--host H] [--vtn-port V]
python run.py migrate
python run.py keys list|rotate [--stage]|prune [--older-than S]|hash-secret [--file PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable
from typing import Any

import settings

BANNER = """
  DER Registry & Flexibility Marketplace
  --------------------------------------
  API            {url}/
  Health         {url}/health
  OpenAPI        {url}/api-docs
  Swagger UI     {url}/docs/
  Admin UI       {url}/ui/   (demo users and passwords: instance/demo-credentials.json)
  OAuth issuer   {url}/.well-known/openid-configuration
  OpenADR VTN    {vtn}
  Store          {store}

  A demo token:  python run.py token --role admin
                 curl -H "Authorization: Bearer $TOKEN" {url}/devices
"""
IN_MEMORY_WARNING = """
  !!! EMBEDDED STORE: all data lives IN MEMORY in this process and is lost
  !!! when it stops. Set MONGO_URI=mongodb://... to use a real MongoDB.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="run.py", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    serve = sub.add_parser("serve", help="API, OAuth provider, admin UI and OpenADR VTN in one process")
    add_serve_args(serve)
    add_serve_args(parser)
    token = sub.add_parser("token", help="print a development bearer token")
    token.add_argument("--role", required=True, choices=["aggregator", "prosumer", "dso", "service", "admin"])
    token.add_argument("--aggregator-id")
    token.add_argument("--account-id")
    token.add_argument("--dso-id", help="a grid operator's id (role dso)")
    token.add_argument("--ttl", type=int, default=3600)
    seed = sub.add_parser("seed", help="store demo or bulk data (into MONGO_URI's database)")
    seed.add_argument("--prosumers", type=int, default=90)
    seed.add_argument("--days", type=int, default=8, help="days of measurements (7 usable ones make a forecast)")
    worker = sub.add_parser("worker", help="serve the RQ job queue at REDIS_URL (store: MONGO_URI)")
    worker.add_argument("--burst", action="store_true", help="quit when the queue is empty")
    bridge = sub.add_parser("bridge", help="run the OpenADR 2.0b VTN as its own process")
    bridge.add_argument("--api-url", help="the registry's URL (default: OPENADR_API_URL, PUBLIC_URL)")
    bridge.add_argument("--host", help="address the VTN listens on (default 127.0.0.1)")
    bridge.add_argument("--vtn-port", type=int, help="VTN port (default: OPENADR_PORT, VTN_PORT, 8080)")
    sub.add_parser("migrate", help="create or update MONGO_URI's indexes (once per deployment, before serving)")
    from registry.auth import key_commands

    key_commands.add_arguments(sub)
    return parser


def add_serve_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default=settings.HOST)
    parser.add_argument("--port", type=int, default=settings.PORT)
    parser.add_argument("--vtn-port", type=int, default=settings.VTN_PORT)
    parser.add_argument("--no-demo", action="store_true", help="start with an empty store")


def serve(args: argparse.Namespace) -> int:
    from werkzeug.serving import make_server

    from registry import create_app
    from registry.demo import seeding as demo

    url = f"http://{args.host}:{args.port}"
    app = create_app(
        {
            "HOST": args.host,
            "PORT": args.port,
            "VTN_PORT": args.vtn_port,
            "PUBLIC_URL": os.environ.get("PUBLIC_URL", url),
            "OAUTH_ISSUER": os.environ.get("OAUTH_ISSUER", url),
        }
    )
    embedded = app.config["STORE_KIND"] == "embedded"
    if embedded:
        print(IN_MEMORY_WARNING, flush=True)
    if not args.no_demo and embedded:
        counts = demo.seed(app, demo.build_demo())
        print("  demo data: " + ", ".join(f"{v} {k}" for k, v in counts.items()), flush=True)
    server = make_server(args.host, args.port, app, threaded=True)
    record_provider(app)
    threading.Thread(target=server.serve_forever, name="api", daemon=True).start()
    try:
        vtn, vtn_url = start_vtn(args, app)
    except (OSError, RuntimeError, TimeoutError) as exc:
        server.shutdown()
        server.server_close()
        print(
            f"run.py serve: the OpenADR VTN cannot listen on port {args.vtn_port} ({exc}); "
            "choose another with --vtn-port",
            file=sys.stderr,
        )
        return 2
    print(BANNER.format(url=url, vtn=vtn_url, store=app.config["STORE_KIND"]), flush=True)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        signal.pause()  # the API serves in its thread, the VTN in its supervised process
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second signal must not cut the drain short
        vtn.stop()  # SIGTERM: the VTN drains the telemetry it holds into the registry
        server.shutdown()
        server.server_close()
    return 0


def start_vtn(args: argparse.Namespace, app: Any) -> tuple[Any, str]:
    """The OpenADR VTN as a supervised child process (`run.py bridge`), bridging to
    this server's own URL with the built-in service client (docs/openadr.md): a
    VEN's message can at worst kill that process, which is then started again."""
    from registry.openadr import BridgeConfig, VtnSupervisor

    own_host = "127.0.0.1" if args.host in ("0.0.0.0", "::", "") else args.host
    api_url = f"http://{own_host}:{args.port}"
    config = BridgeConfig.from_env(api_url=api_url, host=args.host, port=args.vtn_port)
    with socket.socket() as probe:  # fail now, not in a child restarted forever
        probe.bind((args.host, args.vtn_port))
    command = [
        sys.executable,
        os.path.abspath(__file__),
        "bridge",
        "--api-url",
        api_url,
        "--host",
        args.host,
        "--vtn-port",
        str(args.vtn_port),
    ]
    env = {**os.environ, "INSTANCE_PATH": app.config["INSTANCE_PATH"]}
    supervisor = VtnSupervisor(command, env, host=args.host, port=args.vtn_port).start()
    return supervisor, config.vtn_url


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # SIGTERM ends serve_forever like Ctrl-C, so the VTN stops cleanly


PROVIDER_FILE = "provider.json"


def record_provider(app: Any) -> None:
    """Tell `run.py token` which issuer the running server names (its port may differ)."""
    path = os.path.join(app.config["INSTANCE_PATH"], PROVIDER_FILE)
    with open(path, "w") as f:
        json.dump({"issuer": app.config["OAUTH_ISSUER"], "audience": app.config["OAUTH_AUDIENCE"]}, f)


def running_provider() -> tuple[str, str]:
    """The issuer and audience of the last server started on this instance folder."""
    path = os.path.join(settings.INSTANCE_PATH, PROVIDER_FILE)
    if "OAUTH_ISSUER" in os.environ or not os.path.exists(path):
        return settings.OAUTH_ISSUER, settings.OAUTH_AUDIENCE
    with open(path) as f:
        recorded = json.load(f)
    return recorded["issuer"], recorded["audience"]


def token(args: argparse.Namespace) -> int:
    from registry.auth import mint_token

    issuer, audience = running_provider()
    try:
        print(
            mint_token(
                settings.INSTANCE_PATH,
                issuer,
                audience,
                args.role,
                aggregator_id=args.aggregator_id,
                account_id=args.account_id,
                ttl=args.ttl,
                dso_id=args.dso_id,
            )
        )
    except ValueError as exc:
        print(f"run.py token: {exc}", file=sys.stderr)
        return 2
    return 0


def seed(args: argparse.Namespace) -> int:
    from registry import create_app
    from registry.demo import seeding as demo

    app = create_app({"JOBS_EMBEDDED_WORKER": False})  # the jobs it enqueues run in serve or workers
    if app.config["STORE_KIND"] == "embedded":
        print(
            "run.py seed: MONGO_URI is not set; the embedded store would vanish when this "
            "command ends. `python run.py serve` seeds the embedded store itself.",
            file=sys.stderr,
        )
        return 2
    counts = demo.seed(app, demo.build_demo(args.prosumers), measurement_days_count=args.days)
    print(", ".join(f"{v} {k}" for k, v in counts.items()))
    return 0


def worker(args: argparse.Namespace) -> int:
    from registry import create_app, jobs
    from registry.jobs import backends
    from registry.ops import logs

    app = create_app({"JOBS_EMBEDDED_WORKER": False})
    if app.extensions["jobs"].name != "rq":
        print(
            "run.py worker: needs REDIS_URL (the queue) and MONGO_URI (a store workers share); "
            "without them `python run.py serve` runs jobs in its own worker thread.",
            file=sys.stderr,
        )
        return 2
    print(
        f"  RQ worker: queue {app.config['JOBS_QUEUE']} at {logs.redacted(app.config['REDIS_URL'])}, "
        f"store {app.config['STORE_KIND']}",
        flush=True,
    )
    backends.work(app, burst=args.burst, tick=lambda: jobs.tick(app))
    return 0


def bridge(args: argparse.Namespace) -> int:
    import logging

    from registry.openadr import BridgeConfig, run_bridge

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("openleadr").setLevel(logging.WARNING)
    config = BridgeConfig.from_env(api_url=args.api_url, host=args.host, port=args.vtn_port)
    run_bridge(config.with_instance_credentials(settings.INSTANCE_PATH))
    return 0


def migrate(args: argparse.Namespace) -> int:
    from registry import create_app
    from registry.store import mongo_setup

    app = create_app({"JOBS_EMBEDDED_WORKER": False})
    if app.config["STORE_KIND"] == "embedded":
        print("run.py migrate: MONGO_URI is not set; the embedded store creates its indexes itself.", file=sys.stderr)
        return 2
    created = mongo_setup.ensure_indexes(app)
    print(f"  {len(created)} resource indexes and the registry's own are in place in {app.config['MONGO_DBNAME']}")
    return 0


def keys(args: argparse.Namespace) -> int:
    from registry.auth import key_commands

    older_than = key_commands.PRUNE_AFTER_SECONDS if args.older_than is None else args.older_than
    return key_commands.run(args.action, settings.as_dict(), file=args.file, stage=args.stage, older_than=older_than)


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "serve": serve,
    "token": token,
    "seed": seed,
    "worker": worker,
    "bridge": bridge,
    "keys": keys,
    "migrate": migrate,
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return COMMANDS[args.command or "serve"](args)


if __name__ == "__main__":
    sys.exit(main())
