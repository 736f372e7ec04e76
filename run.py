"""Command line: serve (default), seed, token, worker, bridge.

    python run.py [serve] [--host H] [--port P] [--vtn-port V] [--no-demo]
    python run.py token --role aggregator|prosumer|service|admin [--aggregator-id ID]
                        [--account-id UUID] [--ttl SECONDS]
    python run.py seed [--prosumers N] [--days D]
    python run.py worker
    python run.py bridge
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Callable

import settings

BANNER = """
  DER Registry & Flexibility Marketplace
  --------------------------------------
  API            {url}/
  Health         {url}/health
  OpenAPI        {url}/api-docs
  Swagger UI     {url}/docs/
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
    token.add_argument("--role", required=True, choices=["aggregator", "prosumer", "service", "admin"])
    token.add_argument("--aggregator-id")
    token.add_argument("--account-id")
    token.add_argument("--ttl", type=int, default=3600)
    seed = sub.add_parser("seed", help="store demo or bulk data (into MONGO_URI's database)")
    seed.add_argument("--prosumers", type=int, default=90)
    seed.add_argument("--days", type=int, default=7)
    sub.add_parser("worker", help="serve the RQ job queue at REDIS_URL")
    sub.add_parser("bridge", help="run the OpenADR 2.0b VTN as its own process")
    return parser


def add_serve_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default=settings.HOST)
    parser.add_argument("--port", type=int, default=settings.PORT)
    parser.add_argument("--vtn-port", type=int, default=settings.VTN_PORT)
    parser.add_argument("--no-demo", action="store_true", help="start with an empty store")


def serve(args: argparse.Namespace) -> int:
    from werkzeug.serving import make_server

    from registry import create_app, demo

    url = f"http://{args.host}:{args.port}"
    app = create_app({"HOST": args.host, "PORT": args.port, "VTN_PORT": args.vtn_port,
                      "PUBLIC_URL": os.environ.get("PUBLIC_URL", url),
                      "OAUTH_ISSUER": os.environ.get("OAUTH_ISSUER", url)})
    embedded = app.config["STORE_KIND"] == "embedded"
    if embedded:
        print(IN_MEMORY_WARNING, flush=True)
    if not args.no_demo and embedded:
        counts = demo.seed(app, demo.build_demo())
        print("  demo data: " + ", ".join(f"{v} {k}" for k, v in counts.items()), flush=True)
    server = make_server(args.host, args.port, app, threaded=True)
    vtn = f"http://{args.host}:{args.vtn_port}/OpenADR2/Simple/2.0b"
    print(BANNER.format(url=url, vtn=vtn, store=app.config["STORE_KIND"]), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


def token(args: argparse.Namespace) -> int:
    from registry.auth import mint_token

    try:
        print(mint_token(settings.INSTANCE_PATH, settings.OAUTH_ISSUER, settings.OAUTH_AUDIENCE,
                         args.role, aggregator_id=args.aggregator_id, account_id=args.account_id,
                         ttl=args.ttl))
    except ValueError as exc:
        print(f"run.py token: {exc}", file=sys.stderr)
        return 2
    return 0


def seed(args: argparse.Namespace) -> int:
    from registry import create_app, demo

    app = create_app()
    if app.config["STORE_KIND"] == "embedded":
        print("run.py seed: MONGO_URI is not set; the embedded store would vanish when this "
              "command ends. `python run.py serve` seeds the embedded store itself.", file=sys.stderr)
        return 2
    counts = demo.seed(app, demo.build_demo(args.prosumers), measurement_days_count=args.days)
    print(", ".join(f"{v} {k}" for k, v in counts.items()))
    return 0


def not_yet(name: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        print(f"run.py {name}: not available in this build", file=sys.stderr)
        return 2
    return run


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "serve": serve, "token": token, "seed": seed,
    "worker": not_yet("worker"), "bridge": not_yet("bridge"),
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return COMMANDS[args.command or "serve"](args)


if __name__ == "__main__":
    sys.exit(main())
