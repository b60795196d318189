import pytest
from django.core.exceptions import ValidationError

from apps.groups.validators import alias_addresses_parse


def test_a_comma_separated_list_is_trimmed_lowercased_and_deduplicated():
    assert alias_addresses_parse(" Ops@Example.com, oncall@example.com,,OPS@example.COM ,") == [
        "ops@example.com",
        "oncall@example.com",
    ]


def test_an_empty_list_is_allowed():
    assert alias_addresses_parse("") == []
    assert alias_addresses_parse(" , ") == []


def test_every_bad_address_gets_its_own_plain_error():
    with pytest.raises(ValidationError) as exc:
        alias_addresses_parse("ok@example.com, bob@, not an address, bob@")
    assert exc.value.messages == [
        "“bob@” is not a valid email address. "
        "Write it like name@example.com and separate addresses with commas.",
        "“not an address” is not a valid email address. "
        "Write it like name@example.com and separate addresses with commas.",
    ]


def test_two_addresses_without_a_comma_are_one_bad_address():
    with pytest.raises(ValidationError) as exc:
        alias_addresses_parse("a@example.com b@example.com")
    assert exc.value.messages[0].startswith("“a@example.com b@example.com” is not a valid")


def test_a_list_is_accepted_too():
    assert alias_addresses_parse(["A@example.com", "a@example.com"]) == ["a@example.com"]
