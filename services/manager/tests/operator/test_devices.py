import pytest

from hsm_manager.operator import devices


def known(*pairs: tuple[str, str]) -> devices.Devices:
    found = devices.Devices("operator-ns")
    for namespace, name in pairs:
        found.add(namespace, name)
    return found


def test_unnamed_device_is_the_only_one() -> None:
    assert known(("x", "hsm")).resolve("app", None) == ("x", "hsm")


def test_unnamed_device_with_two_devices_is_refused() -> None:
    with pytest.raises(devices.UnknownDevice, match=r"spec\.device is required"):
        known(("x", "a"), ("x", "b")).resolve("app", None)


def test_named_device_prefers_the_secrets_namespace() -> None:
    assert known(("app", "hsm"), ("operator-ns", "hsm")).resolve("app", "hsm") == ("app", "hsm")


def test_named_device_falls_back_to_the_operator_namespace() -> None:
    assert known(("other", "hsm"), ("operator-ns", "hsm")).resolve("app", "hsm") == ("operator-ns", "hsm")


def test_unknown_device_is_refused() -> None:
    with pytest.raises(devices.UnknownDevice, match="not found"):
        known(("x", "a")).resolve("app", "b")


def test_a_listing_adds_its_devices_but_not_those_being_deleted() -> None:
    found = known(("x", "a"))
    found.learn(
        [
            {"metadata": {"namespace": "y", "name": "b"}},
            {"metadata": {"namespace": "y", "name": "c", "deletionTimestamp": "2026-12-04T00:00:00Z"}},
        ]
    )
    assert found.all() == [("x", "a"), ("y", "b")]
