"""The webhook ingress when its secret cannot be read (issue 22): 503 so Offergrid retries, and the log
line on-call reads names the secret and the AWS error code, never a value."""

from __future__ import annotations

import boto3

from tests.integration import test_webhook_ingress as base
from tests.integration.test_webhook_ingress import DEV_SECRET, SECRET_NAME, load_event, log_lines

# The fixtures of the ingress module, made visible to pytest here.
sqs = base.sqs
queue_url = base.queue_url
webhook_secret = base.webhook_secret
ingress_env = base.ingress_env
invoke = base.invoke
queued = base.queued


def test_a_deleted_webhook_secret_is_named_with_the_aws_error_in_the_log(invoke, queued, log_output):
    # Given the webhook secret deleted
    boto3.client("secretsmanager").delete_secret(SecretId=SECRET_NAME, ForceDeleteWithoutRecovery=True)

    # When a webhook arrives
    response = invoke(load_event("webhook_order_created.json"))

    # Then Offergrid is asked to retry, and the log says which secret and why, never a value
    assert response["statusCode"] == 503
    assert queued() == []
    output = log_output()
    [line] = [line for line in log_lines(output) if line["level"] == "ERROR"]
    assert line["outcome"] == "secret_unavailable"
    assert SECRET_NAME in line["error"]
    assert "ResourceNotFoundException" in line["error"]
    assert DEV_SECRET not in output
