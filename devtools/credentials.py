"""Whose AWS credentials a deploy or a smoke test would use, or one line saying why there are none.

`caller_identity(region)` is `aws sts get-caller-identity` through boto3: the account and ARN, or
`CredentialsProblem`, whose message is the one line `make deploy` and `make smoke` print instead of
SAM's "Unable to locate credentials" and its advice to run `sam deploy --guided`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoRegionError

__all__ = ["FIRST_DEPLOY_RUNBOOK", "CallerIdentity", "CredentialsProblem", "caller_identity"]

FIRST_DEPLOY_RUNBOOK: Final = "docs/runbooks/first-deploy.md"
# What STS answers for credentials it refuses (expired session, deleted key, wrong secret).
_REFUSED: Final = frozenset(
    {
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "UnrecognizedClientException",
        "AccessDenied",
    }
)


class CredentialsProblem(Exception):
    """No usable credentials; `str()` is one line: what is wrong, how to check, where the runbook is."""

    def __init__(self, what: str, purpose: str) -> None:
        super().__init__(
            f"{what} for {purpose}: check with `aws sts get-caller-identity` (profile: AWS_PROFILE, "
            f"SSO: aws sso login); setting up an environment from nothing: {FIRST_DEPLOY_RUNBOOK}"
        )


@dataclass(frozen=True)
class CallerIdentity:
    account: str
    arn: str


def caller_identity(region: str, *, purpose: str, session: Any = None) -> CallerIdentity:
    """Who the credentials of this shell are, in `region`; `CredentialsProblem` when there are none."""
    try:
        sts = (session or boto3.session.Session()).client(
            "sts", region_name=region, config=Config(retries={"max_attempts": 2}, connect_timeout=5)
        )
        answer = sts.get_caller_identity()
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", "Unknown"))
        if code in _REFUSED:
            raise CredentialsProblem(
                f"AWS refused the credentials ({code}: expired or invalid)", purpose
            ) from None
        raise CredentialsProblem(f"AWS STS answered {code}", purpose) from None
    except EndpointConnectionError as error:
        raise CredentialsProblem(f"cannot reach AWS STS in {region} ({error})", purpose) from None
    except NoRegionError:
        raise CredentialsProblem("no AWS region", purpose) from None
    except BotoCoreError as error:  # NoCredentialsError, TokenRetrievalError, ProfileNotFound, ...
        raise CredentialsProblem(
            f"no usable AWS credentials ({type(error).__name__}: {error})", purpose
        ) from None
    return CallerIdentity(account=str(answer["Account"]), arn=str(answer["Arn"]))
