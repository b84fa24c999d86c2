"""`lci-server web`: the client portal and the staff admin, the notice e-mailer, invitations.

    lci-server web serve [--demo] [--host H] [--port P]   the portal (Django's development server)
    lci-server web send-notices [--every SECONDS]           e-mail the billing notices (worker)
    lci-server web invite REF [--base-url URL]              invite a client to the portal
    lci-server web manage ARGS...                           Django's manage.py (migrate, ...)

Configuration comes from the environment (provider/web/settings.py lists it).
"""

from __future__ import annotations

import argparse
import os
import sys


def add_parser(commands) -> argparse.ArgumentParser:
    web = commands.add_parser("web", help="the client portal and the staff admin (Django)",
                              description=__doc__.split("\n\n")[0])
    actions = web.add_subparsers(dest="action", required=True)
    serve = actions.add_parser("serve", help="run the web server (Django's development server)")
    serve.add_argument("--demo", action="store_true",
                       help="fresh demo data in var/demo (one client in each state); prints "
                            "the URL and the demo logins")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    send = actions.add_parser("send-notices", help="send the billing notices not yet e-mailed")
    send.add_argument("--every", type=float, default=0,
                      help="keep running, every SECONDS (default: once)")
    invite = actions.add_parser("invite", help="e-mail a portal invitation for a billing account")
    invite.add_argument("ref")
    invite.add_argument("--base-url", default="http://127.0.0.1:8000/")
    manage = actions.add_parser("manage", help="Django's management commands")
    manage.add_argument("args", nargs=argparse.REMAINDER)
    return web


def check(parser: argparse.ArgumentParser, args) -> None:
    if args.action == "serve" and not 0 < args.port < 65536:
        parser.error(f"--port {args.port}: expected 1 to 65535")
    if args.action == "send-notices" and args.every < 0:
        parser.error("--every: expected seconds >= 0")


def _django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "provider.web.settings")
    import django
    django.setup()


def run(args) -> int:
    if args.action == "serve":
        if args.demo:
            from provider.web import demo
            demo.configure_environment()
        _django()
        from django.core.management import call_command
        if args.demo:
            from provider.web import demo
            made = demo.build()
            demo.print_welcome(made, f"http://{args.host}:{args.port}/")
        else:
            call_command("migrate", interactive=False, verbosity=0)
        call_command("runserver", f"{args.host}:{args.port}", use_reloader=False)
        return 0
    _django()
    if args.action == "send-notices":
        import time

        from provider.web.portal import mailer
        while True:
            result = mailer.send_pending()
            print(f"notices: {result['sent']} sent, {result['failed']} failed", flush=True)
            if not args.every:
                return 0 if not result["failed"] else 1
            time.sleep(args.every)
    if args.action == "invite":
        from provider.web.portal import billing, invitations
        try:
            invitation = invitations.invite(args.ref, args.base_url)
        except billing.BillingError as exc:
            print(f"lci-server: {exc}", file=sys.stderr)
            return 1
        print(invitations.link(invitation, args.base_url))
        return 0
    from django.core.management import execute_from_command_line
    execute_from_command_line(["lci-server web manage"] + list(args.args))
    return 0
