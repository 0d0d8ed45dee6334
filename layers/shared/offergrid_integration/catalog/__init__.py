"""The offer sync: the provider's catalog made Offergrid's offers. The scheduled function
(functions/offer_sync/app.py) runs it beside the order jobs; this package imports nothing of `orders`.

sources/     CatalogSource port; one module per source (S3, HTTPS, local file) and per format (CSV,
             JSON array, JSON Lines), streamed row by row; row errors that name their SKU
             (docs/decisions.md#13); cut exports and the optional manifest (check.py, #15)
mapping.py   the declarative mapping document (default_mapping.json, docs/decisions.md#8); row errors;
             the columns it needs (needed_sources)
plan.py      OfferPlanner: create / update only what differs / unchanged / missing policy
guard.py     the one guard of an offer leaving sale (docs/decisions.md#13, #15)
apply.py     apply_plan through the client, within the rate budget and the Lambda's remaining time
state.py     run lock, checkpoint and stored reports (DynamoDB SYNC_STATE_TABLE)
report.py    SyncReport: counts, failures, metrics (the sweep's SweepReport is in orders/sweep.py)
service.py   run_offer_sync: one invocation (lock, read, map, list, plan, apply, checkpoint, report)
runtime.py   OfferSync: the sync's source, mapping and state built from SyncSettings (settings.py)
"""
