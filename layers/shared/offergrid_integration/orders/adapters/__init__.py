"""The orders' AWS and HTTP adapters, one module each, behind the domain's ports: `order_store`
(`records.OrderStore` on DynamoDB), `work_orders` (`workorders.WorkOrderSink` on DynamoDB and
EventBridge), `work_order_index` (the reconciliation's `WorkOrderIndex`), `rules_sources` (coverage
rules from SSM or S3) and `serviceability_hook` (the provider's HTTPS API), `sqs_queue` (the
contract's `QueuePort` on SQS, claim checks in S3). Only these import boto3, botocore or httpx."""
