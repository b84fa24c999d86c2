"""`lci-server link`: the handsets' data link service.

    lci-server link --listen HOST:PORT --db BILLING_DB [--keys DIR] [--portal]
                    [--tls-cert FILE --tls-key FILE [--client-ca FILE]] [--timeout S] [--quiet]

--db is the billing database (a SQLite file or a postgresql:// URL); the link keeps its tables
beside the billing tables (docs/link.md). --keys DIR signs the directives the billing engine left
unsigned (status pending) with DIR's billing.key (else root.key), every --sign-every seconds, as
`lci-billing directives issue` would, on either database (under the billing writer's lock).
With --portal each call's STATUS is also recorded for the client portal's account page
(provider/link/portal.py). With --tls-cert/--tls-key the link speaks TLS; with
--client-ca each handset must show a certificate from that CA naming its serial.

Prints `listening on HOST:PORT` once ready, then one line per call (unless --quiet). SIGINT or
SIGTERM stops it after the calls in progress (exit 0). Exit 2: bad usage or an unusable
database, key or certificate (one line on stderr); 3: the address cannot be bound.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import ssl
import sys
import time
from pathlib import Path

EXIT_OK, EXIT_USAGE, EXIT_ENDPOINT = 0, 2, 3


def _address(text: str) -> tuple[str, int]:
    from sim.uplink import parse_address

    try:
        return parse_address(text, any_port=True)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f"must be above 0 and at most 3600 seconds, got {text}")
    return value


def add_parser(commands) -> argparse.ArgumentParser:
    p = commands.add_parser("link", help="the handsets' data link service (TCP/TLS)",
                            description=__doc__.split("\n\n")[0])
    p.add_argument("--listen", type=_address, default=("127.0.0.1", 7800), metavar="HOST:PORT",
                   help="address to accept handsets' calls on (default 127.0.0.1:7800; port 0: any)")
    p.add_argument("--db", required=True, help="billing database: SQLite file or postgresql:// URL")
    p.add_argument("--keys", metavar="DIR", help="sign pending directives with DIR's billing key")
    p.add_argument("--sign-every", type=_seconds, default=10.0, metavar="S",
                   help="how often pending directives are signed (with --keys; default 10 s)")
    p.add_argument("--tls-cert", metavar="FILE", help="TLS certificate chain (PEM)")
    p.add_argument("--tls-key", metavar="FILE", help="TLS private key (PEM)")
    p.add_argument("--client-ca", metavar="FILE",
                   help="require handset certificates from this CA, naming the handset's serial")
    p.add_argument("--timeout", type=_seconds, default=5.0, metavar="S",
                   help="seconds to wait for a handset's answer before resending (default 5)")
    p.add_argument("--portal", action="store_true",
                   help="also give each call's STATUS to the client portal (configured from the "
                        "environment as for `lci-server web`; its database defaults to --db)")
    p.add_argument("--quiet", action="store_true", help="print only the listening line")
    return p


def check(parser: argparse.ArgumentParser, args) -> None:
    if bool(args.tls_cert) != bool(args.tls_key):
        parser.error("--tls-cert and --tls-key go together")
    if args.client_ca and not args.tls_cert:
        parser.error("--client-ca needs TLS: give --tls-cert and --tls-key")


def _signer(keys_dir: str):
    from provider.billing.signing import load_token_minter

    folder = Path(keys_dir)
    for name in ("billing.key", "root.key"):
        if (folder / name).exists():
            return load_token_minter(str(folder / name))
    raise ValueError(f"--keys {keys_dir}: no billing.key or root.key there")


def _sign_pending(db, signer) -> int:
    """Sign what the engine left pending, through the billing code's own connection type (its
    SQL and its writer lock, on SQLite and PostgreSQL alike)."""
    from provider.billing import directives
    from provider.billing.database import Database
    from provider.billing.engine import Engine

    # SQLite: the link's connection already is one; PostgreSQL: psycopg's, wrapped
    conn = db.conn if isinstance(db.conn, Database) else Database(db.conn, db.dialect, "")
    ttl = Engine.stored_policy(conn).token_ttl
    return directives.issue_pending(conn, signer, int(time.time()), ttl)


async def _serve(args) -> int:
    from provider.link.portal import PortalError
    from provider.link.server import LinkServer, server_context
    from provider.link.store import StoreError

    context = None
    try:
        if args.tls_cert:
            context = server_context(args.tls_cert, args.tls_key, args.client_ca)
        signer = _signer(args.keys) if args.keys else None
    except (OSError, ssl.SSLError, ValueError) as exc:
        print(f"lci-server link: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:  # BillingError from an unreadable key file
        print(f"lci-server link: {exc}", file=sys.stderr)
        return EXIT_USAGE

    def report(summary: dict) -> None:
        if args.quiet:
            return
        delivered = ", ".join(f"{d['action']} #{d['id']} ({d['answer']})" for d in summary["delivered"])
        print(f"{summary['serial'] or '-'}: {summary['outcome']}"
              + (f"; delivered {delivered}" if delivered else "")
              + "".join(f"; #{d} held (another call is sending it)" for d in summary["held"])
              + (f"; {summary['uploaded']} records" if summary["uploaded"] else ""), flush=True)

    portal = None
    if args.portal:
        from provider.link.portal import PortalReports

        os.environ.setdefault("LCI_DATABASE_URL", args.db)  # the portal beside billing
        portal = PortalReports()
    server = LinkServer(args.db, ssl_context=context, timeout=args.timeout,
                        slow_timeout=max(args.timeout, 10.0), on_session=report, portal=portal)
    host, port = args.listen
    try:
        bound = await server.start(host, port)
    except (StoreError, PortalError) as exc:
        print(f"lci-server link: {exc}", file=sys.stderr)
        await server.close()
        return EXIT_USAGE
    except OSError as exc:
        print(f"lci-server link: cannot listen on {host}:{port}: {exc.strerror or exc}", file=sys.stderr)
        await server.close()
        return EXIT_ENDPOINT
    print(f"listening on {bound[0]}:{bound[1]}{' (TLS)' if context else ''}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    async def signing() -> None:
        while signer is not None:
            try:
                signed = await server.db(_sign_pending, signer)
            except Exception as exc:  # a key whose delegation expired: say so, keep serving
                print(f"lci-server link: signing pending directives failed: {exc}", file=sys.stderr)
            else:
                if signed and not args.quiet:
                    print(f"signed {signed} pending directive(s)", flush=True)
            await asyncio.sleep(args.sign_every)

    signer_task = asyncio.create_task(signing())
    await stop.wait()
    signer_task.cancel()
    await server.quiet()
    await server.close()
    stats = server.stats.as_dict()
    if not args.quiet:
        print(f"stopped: {stats['connections']} calls, {stats['delivered']} directives delivered, "
              f"{stats['records']} records uploaded", flush=True)
    return EXIT_OK


def run(args) -> int:
    return asyncio.run(_serve(args))
