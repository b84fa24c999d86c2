"""lci-server: the provider's servers, one subcommand each.

    lci-server web serve [--demo] [--host H] [--port P]   the client portal and the staff admin
    lci-server web send-notices [--every SECONDS]           e-mail the billing notices (worker)
    lci-server web invite REF [--base-url URL]              invite a client to the portal
    lci-server web manage ARGS...                           Django's manage.py (migrate, ...)

More servers (the handsets' data link) add their own subcommand in `SERVERS`.
Configuration comes from the environment (provider/web/settings.py lists it).
"""

from __future__ import annotations

import argparse
import os
import sys


def _django(debug: bool | None = None):
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "provider.web.settings")
    if debug:
        os.environ["LCI_DEBUG"] = "1"
    import django
    django.setup()


def _web_parser(sub) -> None:
    web = sub.add_parser("web", help="the client portal and the staff admin (Django)")
    wsub = web.add_subparsers(dest="action", required=True)
    serve = wsub.add_parser("serve", help="run the web server (Django's development server)")
    serve.add_argument("--demo", action="store_true",
                       help="fresh demo data in var/demo (one client in each state); prints "
                            "the URL and the demo logins")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    send = wsub.add_parser("send-notices", help="send the billing notices not yet e-mailed")
    send.add_argument("--every", type=float, default=0,
                      help="keep running, every SECONDS (default: once)")
    invite = wsub.add_parser("invite", help="e-mail a portal invitation for a billing account")
    invite.add_argument("ref")
    invite.add_argument("--base-url", default="http://127.0.0.1:8000/")
    manage = wsub.add_parser("manage", help="Django's management commands")
    manage.add_argument("args", nargs=argparse.REMAINDER)


def _web(args) -> int:
    if args.action == "serve":
        if args.demo:
            from provider.web import demo
            demo.configure_environment()
        _django()
        from django.core.management import call_command
        if args.demo:
            from provider.web import demo
            logins = demo.build()
            demo.print_welcome(logins, f"http://{args.host}:{args.port}/")
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


SERVERS = {"web": (_web_parser, _web)}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lci-server", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="server", required=True)
    for add, _run in SERVERS.values():
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return SERVERS[args.server][1](args)


if __name__ == "__main__":
    sys.exit(main())
