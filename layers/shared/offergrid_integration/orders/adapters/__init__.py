"""The orders' AWS and HTTP adapters behind the domain's ports: only these import boto3, botocore or httpx."""
