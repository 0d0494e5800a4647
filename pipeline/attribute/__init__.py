"""Stage 4, attribute: who acted (agent, human, workload, service) and by which path.

Entry point: `rebuild_attribution`. It runs queries/attribute/*.sql in order over the whole
warehouse (never per file, so arrival order never changes an answer) and publishes a
generation under derived/: the sessions, MCP link and rule tables, and per events file a copy
with the verdict columns appended (the event columns copied as Parquet pages, not re-encoded).
"""
