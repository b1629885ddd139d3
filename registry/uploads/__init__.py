"""Reading what a bulk upload brings: its manifest (CSV, JSON array, NDJSON) and its ZIP archive.

Nothing here touches the database: `manifests` turns a byte stream into rows, `archives` opens
a ZIP without trusting it, and `index` spills a manifest to a scratch file ordered for
processing. The service that registers the rows is `registry.services.uploads`.
"""
