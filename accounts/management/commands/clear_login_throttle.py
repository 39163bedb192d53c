from django.core.management.base import BaseCommand, CommandError

from accounts import throttle
from accounts.addresses import parse_address


class Command(BaseCommand):
    help = "Lets a username, or a client address, log in again at once: forgets its failed logins and lockouts."

    def add_arguments(self, parser):
        parser.add_argument("--username", help="the account, in any spelling (Ada and ada are one)")
        parser.add_argument("--address", help="the client's IP address (an IPv6 address clears its /64)")

    def handle(self, *args, username, address, **options):
        if username is None and address is None:
            raise CommandError("name a --username, an --address, or both")
        if address is not None:
            parsed = parse_address(address)
            if parsed is None:
                raise CommandError(f"{address!r} is not an IP address")
            address = str(parsed)
        throttle.current().clear(username=username, address=address)
        cleared = " and ".join(f"{kind} {value}" for kind, value in (("username", username), ("address", address)) if value is not None)
        self.stdout.write(f"Cleared the failed logins of {cleared}.")
