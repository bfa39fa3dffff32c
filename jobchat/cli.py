"""The ``jobchat`` command: serve, demo, worker, api-key create, db upgrade, db backup, search
reindex."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

from pydantic import ValidationError
from sqlalchemy.exc import OperationalError

from jobchat.config import Settings, get_settings, settings_problem
from jobchat.db.engine import Database
from jobchat.db.migrate import upgrade
from jobchat.ops.logs import configure_logging
from jobchat.ops.startup import database_problem


def _serve(settings: Settings, db: Database, host: str, port: int) -> None:
    from jobchat.app import create_app
    from jobchat.serving import serve

    serve(create_app(settings, db=db), settings, host, port)


def cmd_serve(args: argparse.Namespace) -> int:
    settings = get_settings()
    db = Database(settings.sqlalchemy_url, write_timeout_seconds=settings.write_timeout_seconds)
    upgrade(db.engine)
    _serve(settings, db, args.host, args.port)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from jobchat.clock import SystemClock
    from jobchat.demo import build_demo, fresh_database
    from jobchat.demo_access import NotADemo, issue_api_access, issue_links

    configured = get_settings()
    # Links go to JOBCHAT_PUBLIC_URL when the operator set it (a demo behind a proxy, or on
    # another machine); otherwise to the address served.
    if "public_url" in configured.model_fields_set:
        public_url = configured.public_url.rstrip("/")
    else:
        public_url = f"http://{args.host}:{args.port}"
    settings = configured.model_copy(
        update={
            "database_url": args.database,
            "public_url": public_url,
            "sms_provider": configured.sms_provider or "console",
        }
    )
    if args.links:
        db = Database(settings.sqlalchemy_url)
        try:
            links = issue_links(db, public_url=public_url, now=SystemClock().now())
        except NotADemo:
            print(
                f"jobchat demo: {args.database} holds no demo; run jobchat demo first",
                file=sys.stderr,
            )
            return 1
        _print_links(links)
        return 0
    # Before the demo database is erased and built: a port that is taken fails at once.
    problem = _port_problem(args.host, args.port)
    if problem is not None:
        print(f"jobchat demo: cannot serve on {args.host}:{args.port}: {problem}", file=sys.stderr)
        return 1
    db = fresh_database(settings.sqlalchemy_url)
    links = build_demo(db, public_url=public_url)
    api = issue_api_access(db, now=SystemClock().now(), make_api_key=not settings.api_key)
    print(f"jobchat demo on {public_url} (database: {args.database})\n")
    _print_links(links)
    print("\nTry the API:")
    if api.api_key is not None:
        print(f"  integration key: {api.api_key}")
    else:
        print("  integration key: the one in JOBCHAT_API_KEY")
    print(f"  user token ({api.persona.label}, valid 7 days): {api.token}")
    print(
        f"  curl -H 'Authorization: Bearer {api.token}' {public_url}/api/v1/conversations?limit=5"
    )
    print(f"\nAPI documentation: {public_url}/docs")
    print(f"New sign-in links while it runs: jobchat demo --links --database {args.database}\n")
    sys.stdout.flush()
    _serve(settings, db, args.host, args.port)
    return 0


def _print_links(links: list[tuple[str, str]]) -> None:
    print("Sign in as (each link works once, for a day):")
    width = max(len(persona) for persona, _ in links)
    for persona, url in links:
        print(f"  {persona:<{width}}  {url}")
    sys.stdout.flush()


def _port_problem(host: str, port: int) -> str | None:
    """Why the server could not listen on host:port, or None when it can (bound as uvicorn
    binds, with SO_REUSEADDR, so a port in TIME_WAIT is not taken for busy)."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        return f"unknown host ({exc.strerror or exc})"
    family, _type, _proto, _name, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            return exc.strerror or str(exc)
    return None


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
    from jobchat.privacy.audit import SYSTEM

    settings = get_settings()
    db = Database(settings.sqlalchemy_url)
    upgrade(db.engine)
    with db.write() as session:
        now = SystemClock().now()
        key = do_revoke_api_key(session, key_id=args.id, now=now, actor=SYSTEM)
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
    import signal

    from jobchat.background import build_worker
    from jobchat.clock import SystemClock
    from jobchat.jobqueue.worker import DatabaseBusy
    from jobchat.mail.service import MailService
    from jobchat.notifications.presence import worker_presence
    from jobchat.sms.outbound import Texter

    settings = get_settings()
    db = Database(settings.sqlalchemy_url, write_timeout_seconds=settings.write_timeout_seconds)
    upgrade(db.engine)
    # Who has the app open, so that they are not pushed: Redis knows, if the servers share one.
    presence, redis = worker_presence(settings)
    worker = build_worker(
        MailService.create(db, SystemClock(), settings),
        texter=Texter.create(db, settings),
        presence=presence,
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

    async def work_then_close() -> None:
        try:
            await work()
        finally:
            if redis is not None:
                await redis.aclose()

    try:
        asyncio.run(work_then_close())
    except DatabaseBusy as exc:  # --once only: the database stayed locked
        print(f"jobchat worker: {exc}; nothing lost, run it again later", file=sys.stderr)
        return 75  # EX_TEMPFAIL
    finally:
        db.dispose()
    return 0


def cmd_db_upgrade(_args: argparse.Namespace) -> int:
    settings = get_settings()
    upgrade(Database(settings.sqlalchemy_url).engine)
    print("database is up to date")
    return 0


def cmd_db_backup(args: argparse.Namespace) -> int:
    from pathlib import Path

    from jobchat.db.backup import BackupError, backup_sqlite

    try:
        made = backup_sqlite(get_settings().sqlalchemy_url, Path(args.path), force=args.force)
    except BackupError as exc:
        print(f"jobchat db backup: {exc}", file=sys.stderr)
        return 1
    print(f"backed up {made.source} to {made.target} ({made.size} bytes)")
    return 0


def cmd_search_reindex(_args: argparse.Namespace) -> int:
    from jobchat.search.actions import do_reindex

    settings = get_settings()
    db = Database(settings.sqlalchemy_url)
    upgrade(db.engine)
    with db.write() as session:
        count = do_reindex(session)
    db.dispose()
    print(f"search index rebuilt: {count} message(s)")
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
    demo.add_argument(
        "--links",
        action="store_true",
        help="print fresh sign-in links for the demo already in --database, and exit",
    )
    demo.set_defaults(func=cmd_demo)

    worker = commands.add_parser(
        "worker", help="run the jobs worker on its own (email, SMS, notifications; several may run)"
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
    db_backup = db_commands.add_parser(
        "backup", help="copy a SQLite database while it serves (PostgreSQL: use pg_dump)"
    )
    db_backup.add_argument("path", help="the file to write (a new one)")
    db_backup.add_argument("--force", action="store_true", help="replace PATH if it exists")
    db_backup.set_defaults(func=cmd_db_backup)

    search = commands.add_parser("search", help="the full-text search index")
    search_commands = search.add_subparsers(dest="search_command", required=True)
    reindex = search_commands.add_parser(
        "reindex", help="rebuild the search index from the messages (one transaction)"
    )
    reindex.set_defaults(func=cmd_search_reindex)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs a command; a reason it cannot start is one line on stderr, never a traceback:
    a bad setting exits 2, a database that cannot be opened 1."""
    args = build_parser().parse_args(argv)
    try:
        settings = get_settings()
    except ValidationError as exc:
        print(f"jobchat: {settings_problem(exc)}", file=sys.stderr)
        return 2
    configure_logging(settings)
    try:
        result: int = args.func(args)
    except OperationalError as exc:
        # Raised before serving began (serving answers 503 instead): the database is missing.
        logging.getLogger("jobchat").debug("the database could not be opened", exc_info=True)
        url = getattr(args, "database", None) or settings.database_url  # demo has --database
        print(f"jobchat: {database_problem(url, exc)}", file=sys.stderr)
        return 1
    return result


if __name__ == "__main__":
    sys.exit(main())
