"""Stage 4, attribute: who acted (agent, human, workload, service) and by which path.

Entry point: `rebuild_attribution`. It runs queries/attribute/*.sql in order over the whole
warehouse (never per file, so arrival order never changes an answer) and materialises the
results as Parquet under derived/: sessions, events_classified and the MCP link tables.
"""
