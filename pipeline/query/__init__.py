"""Stage 5, query: named SQL from queries/ and ad-hoc statements over the warehouse views.

library  list_queries / show_query / run_query / open_query (streamed): the entry points
catalog  finding query files (built-in, then user folders) and validating their headers
scope    --quarter/--since/--until/--account/--principal -> $since, $until, $account, $principal
params   declared types; --param text and header defaults -> typed values
binding  every declared parameter gets a value, or a one-line error
execute  DuckDB prepared parameters; errors as `file:line: message`
docs     docs/queries.md from the headers
adhoc    `agenttrail sql`; formats: table, csv, json, ndjson, markdown, parquet
"""
