"""Stage 4, attribute: who acted (agent, human, workload, service) and by which path.

Entry point: `rebuild_attribution`. It runs queries/attribute/*.sql in order over the whole
warehouse (never per file, so arrival order never changes an answer) and publishes a
generation under derived/: the sessions, MCP link and rule tables, and one narrow verdict row
per event aligned with the events files it lists, which the events_classified view joins back
to the event columns by position.
"""
