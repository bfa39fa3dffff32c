"""The ``jobchat`` command: serve, demo, worker, api-key create, db upgrade."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

from jobchat.config import Settings, get_settings
from jobchat.db.engine import Database
from jobchat.db.migrate import upgrade


def _serve(settings: Settings, db: Database, host: str, port: int) -> None:
    from jobchat.app import create_app
    from jobchat.serving import serve

    serve(create_app(settings, db=db), settings, host, port)


def cmd_serve(args: argparse.Namespace) -> int:
    settings = get_settings()
    db = Database(settings.sqlalchemy_url)
    upgrade(db.engine)
    _serve(settings, db, args.host, args.port)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from jobchat.demo import build_demo, fresh_database

    public_url = f"http://{args.host}:{args.port}"
    settings = get_settings().model_copy(
        update={
            "database_url": args.database,
            "public_url": public_url,
            "sms_provider": get_settings().sms_provider or "console",
        }
    )
    db = fresh_database(settings.sqlalchemy_url)
    links = build_demo(db, public_url=public_url)
    print(f"jobchat demo on {public_url} (database: {args.database})\n")
    print("Sign in as:")
    width = max(len(persona) for persona, _ in links)
    for persona, url in links:
        print(f"  {persona:<{width}}  {url}")
    print(f"\nAPI documentation: {public_url}/docs\n", flush=True)
    _serve(settings, db, args.host, args.port)
    return 0


def cmd_api_key_create(args: argparse.Namespace) -> int:
    from jobchat.auth.actions import do_create_api_key
    from jobchat.clock import SystemClock

    settings = get_settings()
    db = Database(settings.sqlalchemy_url)
    upgrade(db.engine)
    with db.write() as session:
        secret = do_create_api_key(session, name=args.name, now=SystemClock().now())
    print(secret)
    return 0


def cmd_api_key_list(_args: argparse.Namespace) -> int:
    from jobchat.auth.queries import api_keys

    settings = get_settings()
    db = Database(settings.sqlalchemy_url)
    upgrade(db.engine)
    with db.read() as session:
        keys = [(k.id, k.name, k.created_at, k.revoked_at) for k in api_keys(session)]
    if settings.api_key:
        print("(JOBCHAT_API_KEY is set too: that key is configuration, not listed here)")
    if not keys:
        print("no integration keys made with `jobchat api-key create`")
        return 0
    # Never the secret: only its digest is stored anyway.
    print(f"{'id':>6}  {'created (UTC)':<20}  {'revoked (UTC)':<20}  name")
    for key_id, name, created, revoked in keys:
        print(f"{key_id:>6}  {_when(created):<20}  {_when(revoked) or '-':<20}  {name}")
    return 0


def _when(at: datetime | None) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if at is not None else ""


def cmd_api_key_revoke(args: argparse.Namespace) -> int:
    from jobchat.auth.actions import do_revoke_api_key
    from jobchat.clock import SystemClock

    settings = get_settings()
    db = Database(settings.sqlalchemy_url)
    upgrade(db.engine)
    with db.write() as session:
        key = do_revoke_api_key(session, key_id=args.id, now=SystemClock().now())
        found = key is not None
        revoked_at = key.revoked_at if key is not None else None
    if not found:
        print(f"jobchat: there is no integration key with id {args.id}", file=sys.stderr)
        return 1
    # Keys are looked up on every request: every server process refuses it from now on.
    print(f"integration key {args.id} revoked at {_when(revoked_at)} UTC")
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    import asyncio
    import logging
    import signal

    from jobchat.background import build_worker
    from jobchat.clock import SystemClock
    from jobchat.mail.service import MailService
    from jobchat.sms.outbound import Texter

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    settings = get_settings()
    db = Database(settings.sqlalchemy_url)
    upgrade(db.engine)
    worker = build_worker(
        MailService.create(db, SystemClock(), settings), texter=Texter.create(db, settings)
    )

    async def work() -> None:
        if args.once:
            ran = await worker.drain()
            print(
                f"ran {ran} job(s); done {worker.stats.done}, retried {worker.stats.retried}, "
                f"failed {worker.stats.failed}"
            )
            return
        loop = asyncio.get_running_loop()
        running = asyncio.create_task(worker.run())
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, lambda: asyncio.ensure_future(worker.stop()))
        await running

    asyncio.run(work())
    db.dispose()
    return 0


def cmd_db_upgrade(_args: argparse.Namespace) -> int:
    settings = get_settings()
    upgrade(Database(settings.sqlalchemy_url).engine)
    print("database is up to date")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jobchat", description="Recruiting conversations beside your ATS."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the server (creates or upgrades the schema)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.set_defaults(func=cmd_serve)

    demo = commands.add_parser("demo", help="a fresh demo world, served at once")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument(
        "--database",
        default="sqlite:///./jobchat-demo.db",
        help="where to build the demo (erased first; default: %(default)s)",
    )
    demo.set_defaults(func=cmd_demo)

    worker = commands.add_parser(
        "worker", help="run the jobs worker on its own (email; several may run at once)"
    )
    worker.add_argument(
        "--once", action="store_true", help="run the jobs that are due now, then exit"
    )
    worker.set_defaults(func=cmd_worker)

    api_key = commands.add_parser("api-key", help="integration keys")
    api_key_commands = api_key.add_subparsers(dest="api_key_command", required=True)
    create = api_key_commands.add_parser("create", help="make a new integration key and print it")
    create.add_argument("--name", default="integration", help="a label for the key")
    create.set_defaults(func=cmd_api_key_create)
    listing = api_key_commands.add_parser(
        "list", help="list the integration keys (id, name, created, revoked; never the secret)"
    )
    listing.set_defaults(func=cmd_api_key_list)
    revoke = api_key_commands.add_parser(
        "revoke", help="revoke an integration key: it gets 401 from then on, on every process"
    )
    revoke.add_argument("id", type=int, help="the key's id (see jobchat api-key list)")
    revoke.set_defaults(func=cmd_api_key_revoke)

    db = commands.add_parser("db", help="the database schema")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    db_upgrade = db_commands.add_parser("upgrade", help="create or upgrade the schema")
    db_upgrade.set_defaults(func=cmd_db_upgrade)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
