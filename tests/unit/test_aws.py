"""The one way to reach AWS: clients cached per container, one session, endpoint from the environment."""

from __future__ import annotations

import pytest

from offergrid_integration import aws


@pytest.fixture(autouse=True)
def _fresh_clients() -> object:
    aws.reset()
    yield None
    aws.reset()


def test_each_client_is_made_once_from_one_session() -> None:
    made = aws.clients()
    assert aws.clients() is made
    assert made.dynamodb is made.dynamodb
    assert made.events is made.events
    assert made.tables.meta.client.meta.region_name == made.dynamodb.meta.region_name


def test_reset_starts_a_new_session() -> None:
    before = aws.clients()
    aws.reset()
    assert aws.clients() is not before


def test_the_endpoint_comes_from_aws_endpoint_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:5999")
    assert aws.clients().events.meta.endpoint_url == "http://127.0.0.1:5999"


def test_an_empty_aws_endpoint_url_means_the_real_endpoints(monkeypatch: pytest.MonkeyPatch) -> None:
    # The template declares the variable empty so `sam local invoke --env-vars` may set it.
    monkeypatch.setenv("AWS_ENDPOINT_URL", "")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    assert aws.clients().events.meta.endpoint_url == "https://events.eu-west-1.amazonaws.com"


def test_a_table_adapter_makes_its_table_on_first_use_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    adapter = aws.TableAdapter("orders")
    assert "tables" not in vars(aws.clients())  # nothing made yet: a cold start that never reads it

    table = adapter.table

    assert table.name == "orders"
    assert adapter.table is table
    assert table.meta.client is aws.clients().tables.meta.client  # the container's resource


def test_a_table_adapter_uses_the_table_it_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    given = aws.clients().tables.Table("given")
    assert aws.TableAdapter("ignored", table=given).table is given
