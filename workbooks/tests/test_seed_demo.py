"""seed_demo on an address other machines reach: never the well-known demo password."""

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from workbooks.management.commands.seed_demo import WELL_KNOWN_PASSWORD, loopback_only


def run(**options) -> str:
    out = io.StringIO()
    call_command("seed_demo", stdout=out, **options)
    return out.getvalue()


def demo_user():
    return get_user_model().objects.get(username="demo")


class LoopbackOnlyTest:
    @pytest.mark.parametrize("addr", ["8000", "127.0.0.1:8000", "127.0.0.2:8000", "localhost:8000", "[::1]:8000"])
    def test_loopback_only_loopback_address_true(self, addr):
        assert loopback_only(addr)

    @pytest.mark.parametrize("addr", ["0.0.0.0:8000", "0:8000", "[::]:8000", "192.168.1.4:8000", "workbooks.example.org:8000", "nonsense"])
    def test_loopback_only_other_address_false(self, addr):
        assert not loopback_only(addr)


@pytest.mark.django_db
class SeedDemoAddressTest:
    def test_seed_demo_loopback_address_well_known_password(self):
        out = run(username="demo", addr="127.0.0.1:8000")
        assert f"Demo user: demo / password: {WELL_KNOWN_PASSWORD}" in out
        assert demo_user().check_password(WELL_KNOWN_PASSWORD)

    def test_seed_demo_reachable_address_random_password_printed_once(self):
        out = run(username="demo", addr="0.0.0.0:8000")
        password = out.split("Demo user: demo / password: ")[1].split()[0]
        assert len(password) >= 16 and password != WELL_KNOWN_PASSWORD
        assert demo_user().check_password(password)
        assert "shown only this once" in out
        again = run(username="demo", addr="0.0.0.0:8000")
        assert password not in again and "password unchanged" in again
        assert demo_user().check_password(password)

    def test_seed_demo_reachable_address_two_installations_different_passwords(self):
        first = run(username="demo", addr="0.0.0.0:8000")
        get_user_model().objects.all().delete()
        assert run(username="demo", addr="0.0.0.0:8000") != first

    def test_seed_demo_reachable_address_given_password_used(self):
        out = run(username="demo", password="chosen-password-1", addr="[::]:8000")
        assert "Demo user: demo / password: chosen-password-1" in out
        assert demo_user().check_password("chosen-password-1")

    def test_seed_demo_reachable_address_existing_user_with_well_known_password_replaced(self):
        run(username="demo", addr="127.0.0.1:8000")
        out = run(username="demo", addr="0.0.0.0:8000")
        password = out.split("Demo user: demo / password: ")[1].split()[0]
        assert "not 'demo-password' any more" in out
        assert not demo_user().check_password(WELL_KNOWN_PASSWORD)
        assert demo_user().check_password(password)

    def test_seed_demo_reachable_address_existing_user_own_password_unchanged(self):
        run(username="demo", password="their-own-password", addr="127.0.0.1:8000")
        out = run(username="demo", addr="0.0.0.0:8000")
        assert "password unchanged" in out
        assert demo_user().check_password("their-own-password")
