"""The archive of verified deliveries (issue 25): every webhook the ingress verified, kept as received.

- `deliveries`  `ArchivedDelivery` (the body as API Gateway handed it, its base64 flag, the signature
                header), where each is kept (`delivery_key`, `hour_prefixes`), the `DeliveryArchive`
                port; stdlib only (the webhook imports it at init)
- `s3_archive`  `S3DeliveryArchive`, the port on S3 (the webhook's bucket, prefix `archive/`)
- `background`  `BackgroundArchive`: the webhook's archive write on a worker thread, so that the
                queue write never waits for it (docs/architecture.md, "The delivery archive")

Read back by `devtools/archive_replay.py` (`replay archive`) and `devtools/trace.py` (`replay trace`).
"""
