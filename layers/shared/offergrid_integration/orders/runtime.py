"""The order processor's runtime: everything a container reuses between invocations.

Built once per container (`offergrid_integration.container`: at import inside Lambda, on first use
elsewhere). Every AWS client comes from `aws.clients()` (one session), made here, in Lambda's init
phase: one DynamoDB client for the rate budget and the idempotency records (Powertools would
otherwise build its own session and client on the first record), the DynamoDB resource for the
order and work-order tables, EventBridge, Secrets Manager, and SSM or S3 for the coverage rules.

`batch` (`orders.batch.SqsBatch`) runs an SQS event through the pipeline: `begin_batch` before its
first record, `end_batch` after its last, whoever runs the batch (the handler, `make local`, the
benchmark), and answers the partial-batch response.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig

from offergrid_integration import aws
from offergrid_integration.clock import SYSTEM_CLOCK, Clock
from offergrid_integration.offergrid.client import ApiKeyProvider
from offergrid_integration.offergrid.wiring import client_from_settings
from offergrid_integration.orders.adapters.order_store import DynamoDBOrderStore
from offergrid_integration.orders.adapters.rules_sources import build_serviceability_checker
from offergrid_integration.orders.adapters.sqs_queue import S3ClaimChecks
from offergrid_integration.orders.adapters.work_orders import DynamoDBEventBridgeWorkOrders
from offergrid_integration.orders.batch import SqsBatch
from offergrid_integration.orders.pipeline import RecordPipeline, mark_duplicate
from offergrid_integration.orders.ports import Ports
from offergrid_integration.orders.settings import ProcessorSettings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

__all__ = ["ProcessorRuntime"]


class ProcessorRuntime:
    """Settings, Offergrid client, ports, idempotency and the batch runner of one container."""

    def __init__(
        self,
        settings: ProcessorSettings,
        *,
        clock: Clock = SYSTEM_CLOCK,
        api_key: ApiKeyProvider | None = None,
        clients: aws.AwsClients | None = None,
    ) -> None:
        self.settings = settings
        self._context: LambdaContext | None = None
        clients = clients or aws.clients()
        self.dynamodb = clients.dynamodb
        self.tables = clients.tables
        self.events = clients.events
        # Only the client the coverage rules are read with; none when the provider's hook decides.
        rules_s3 = rules_ssm = None
        if not settings.serviceability_hook_url:
            if settings.serviceability_rules_s3_uri:
                rules_s3 = clients.s3
            elif settings.serviceability_rules_parameter:
                rules_ssm = clients.ssm
        client = client_from_settings(
            settings,
            remaining_time=self.remaining_time,
            clock=clock,
            api_key=api_key,
            secrets_client=None if api_key is not None else clients.secretsmanager,
            dynamodb_client=self.dynamodb,
        )
        ports = Ports(
            orders=DynamoDBOrderStore(settings.orders_table, table=self.tables.Table(settings.orders_table)),
            work_orders=DynamoDBEventBridgeWorkOrders(
                settings.work_orders_table,
                settings.event_bus_name,
                table=self.tables.Table(settings.work_orders_table),
                events=self.events,
            ),
            serviceability=build_serviceability_checker(
                rules_parameter=settings.serviceability_rules_parameter,
                rules_s3_uri=settings.serviceability_rules_s3_uri,
                hook_url=settings.serviceability_hook_url,
                max_age_seconds=settings.serviceability_cache_seconds,
                ssm_client=rules_ssm,
                s3_client=rules_s3,
            ),
            clock=clock,
            contact_within_hours=settings.customer_contact_hours,
            remaining_time=self.remaining_time,
        )
        self.idempotency_config = IdempotencyConfig(
            event_key_jmespath="dedupKey",
            raise_on_no_idempotency_key=True,
            expires_after_seconds=settings.idempotency_expiry_seconds,
            response_hook=mark_duplicate,
        )
        self.pipeline = RecordPipeline(
            ports=ports,
            client=client,  # an `OrderItemsApi`: mypy checks `OffergridClient` satisfies it here
            persistence=DynamoDBPersistenceLayer(
                table_name=settings.idempotency_table, boto3_client=self.dynamodb
            ),
            idempotency_config=self.idempotency_config,
            # Claim-checked bodies (docs/decisions.md#17): the S3 client made on the first one.
            claim_checks=S3ClaimChecks(client_factory=lambda: clients.s3),
        )
        self.client = client
        self.batch = SqsBatch(self.pipeline)

    def bind(self, context: LambdaContext) -> None:
        self._context = context
        # In-progress idempotency records then expire with this invocation, so a crash is retried.
        self.idempotency_config.register_lambda_context(context)

    def remaining_time(self) -> float:
        """Seconds left in the current invocation (the client never sleeps or waits past it)."""
        if self._context is None:
            return math.inf
        return self._context.get_remaining_time_in_millis() / 1000

    def close(self) -> None:
        self.client.close()
