"""Stage 4, attribute: who acted (agent, human, workload, service) and by which path.

Entry point: `rebuild_attribution`. It runs queries/attribute/*.sql over the whole
warehouse, never per file, so arrival order never changes an answer (each SQL file runs after
the earlier ones whose tables it reads, two at a time: sql_graph.py), and publishes a
generation under derived/: the sessions, MCP link and rule tables, and per events file a copy
with the verdict columns appended (the event columns copied as Parquet pages, not re-encoded).
"""
