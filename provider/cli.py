"""`lci-server`: the provider's services, one subcommand each.

    lci-server link ...    the handsets' data link (provider/link/cli.py, docs/link.md)
    lci-server web ...     the client portal and the staff admin (provider/web/cli.py, docs/portal.md)

A service registers itself in SERVICES: (module with add_parser(commands), check(parser, args)
and run(args) -> exit code).
"""

from __future__ import annotations

import argparse
import importlib
import sys

SERVICES = {"link": "provider.link.cli", "web": "provider.web.cli"}


def build_parser() -> tuple[argparse.ArgumentParser, dict]:
    parser = argparse.ArgumentParser(prog="lci-server", description="The LCI-777 provider's services.")
    commands = parser.add_subparsers(dest="service", required=True)
    parsers = {}
    for name, module_name in SERVICES.items():
        module = importlib.import_module(module_name)
        parsers[name] = (module, module.add_parser(commands))
    return parser, parsers


def main(argv: list[str] | None = None) -> int:
    parser, parsers = build_parser()
    args = parser.parse_args(argv)
    module, sub = parsers[args.service]
    module.check(sub, args)
    return module.run(args)


def console() -> None:
    sys.exit(main())


if __name__ == "__main__":
    console()
