"""`lci-server web manage center_key CODE KEYFILE [--root root.pub]`: record a center's delegated
key from the file `lci-tool delegate` wrote: its id, public part, scopes and expiry (checked
against the root's certificate inside). The private key is not stored: the file goes to the
center."""

from __future__ import annotations

from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError

from host_tools import keys
from protocol.coretime import EPOCH_UNIX

from ...models import Center


class Command(BaseCommand):
    help = "record a service center's delegated key (from lci-tool delegate) by its public part"

    def add_arguments(self, parser):
        parser.add_argument("code", help="the center's code")
        parser.add_argument("keyfile", help="the delegated key file lci-tool delegate wrote")
        parser.add_argument("--root", help="the provider's root.pub: the key must be certified "
                            "by this root")

    def handle(self, *args, code, keyfile, root=None, **options):
        center = Center.objects.filter(code=code).first()
        if center is None:
            raise CommandError(f"no service center with the code {code!r}")
        try:
            key = keys.load_delegated_key(keyfile)
            if root is not None and keys.load_public_key(root) != key.root_public_key:
                raise CommandError(f"{keyfile} is certified by another root than {root}")
        except (OSError, ValueError) as exc:
            raise CommandError(str(exc)) from None
        center.key_id = key.key_id
        center.key_public = key.public_key.hex()
        center.key_scopes = ",".join(key.scopes)
        center.key_expires = datetime.fromtimestamp(key.expires + EPOCH_UNIX, UTC)
        center.full_clean()
        center.save()
        self.stdout.write(f"{center.name}: key {center.key_id} ({center.key_scopes}) until "
                          f"{center.key_expires:%b %d, %Y}")
