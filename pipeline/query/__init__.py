"""Stage 5, query: named SQL from queries/ and ad-hoc statements over the warehouse views."""
