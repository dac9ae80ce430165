"""Ray cluster addresses: the forms `add-ids --ray` takes and the reachability check."""

from __future__ import annotations

import socket

import pytest

from indexer.errors import ClusterError, InputError
from indexer.ingest.cluster import LOCAL, check_address, is_ray_address


@pytest.mark.parametrize("text", ["auto", LOCAL, "10.0.0.5:6379", "ray://head:10001",
                                  "[::1]:6379", "head.example:6379"])
def test_ray_address_forms(text: str) -> None:
    assert is_ray_address(text)


@pytest.mark.parametrize("text", ["", "head", "http://head:6379", "head:port", "head:123456",
                                  "ray://", "a b:1"])
def test_not_ray_addresses(text: str) -> None:
    assert not is_ray_address(text)


def test_auto_and_local_are_left_to_ray() -> None:
    check_address("auto")
    check_address(LOCAL)


@pytest.mark.parametrize("address", ["head", "head:0", "head:70000", "ftp://head:1"])
def test_a_malformed_address_is_an_input_error(address: str) -> None:
    with pytest.raises(InputError, match="is not a Ray address"):
        check_address(address)


def test_an_address_nothing_answers_on_is_a_cluster_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: refused
        with pytest.raises(ClusterError, match=f"cannot reach the Ray cluster at 127.0.0.1:{port}"):
            check_address(f"127.0.0.1:{port}")


def test_an_address_that_answers_passes() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        port = sock.getsockname()[1]
        check_address(f"127.0.0.1:{port}")
        check_address(f"ray://127.0.0.1:{port}")
