"""The Ray settings: the cluster address is host:port, and placing every model on Ray needs one."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from foretell.config import Settings


def test_the_ray_address_and_placement_are_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FORETELL_RAY_ADDRESS", "127.0.0.2:6379")
    monkeypatch.setenv("FORETELL_PLACEMENT", "ray")

    settings = Settings()

    assert (settings.ray_address, settings.placement) == ("127.0.0.2:6379", "ray")


def test_by_default_nothing_is_on_ray() -> None:
    assert (Settings().ray_address, Settings().placement) == (None, "local")


@pytest.mark.parametrize("address", ["127.0.0.2", "127.0.0.2:", ":6379", "head:0", "h:70000"])
def test_an_address_that_is_not_host_port_is_refused(address: str) -> None:
    with pytest.raises(ValidationError, match=rf"ray_address '{address}' is not host:port"):
        Settings(ray_address=address)


def test_placing_models_on_ray_needs_the_cluster_address() -> None:
    with pytest.raises(ValidationError, match="placement 'ray' needs the cluster's address"):
        Settings(placement="ray")


def test_an_unknown_placement_is_refused() -> None:
    with pytest.raises(ValidationError, match="placement"):
        Settings(placement="gpu")  # type: ignore[arg-type]
