"""The verdict columns a rule decides alone, as Arrow dictionaries indexed by the rule number."""

from __future__ import annotations

from collections import Counter

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.errors import WarehouseError

# The verdict columns of events_classified, in order. Those a rule decides alone
# (attribution_rules: classified_by, actor_kind, access_path, confidence) and rules_version
# are not computed per event in SQL: DuckDB hands over each event's rule number and
# RuleColumns turns it into dictionary arrays (a map per column from rule number to
# dictionary index), so the Arrow hand-over moves one byte per event instead of five strings,
# and the Parquet writer takes the dictionaries as they are. The one exception: SQL's
# at_most_medium lowers a verdict's confidence to medium where the rule's own is higher: a
# verdict that read a role chain cut at chain_max_depth (the chain's root and its marks beyond
# the cut are unknown), and a call a service made for an actor that a medium-confidence rule
# found (rules 30 to 32 keep that rule's doubt).
VERDICT_COLUMNS = (
    "actor_kind",
    "access_path",
    "client",
    "agent_name",
    "human_id",
    "mcp_tool",
    "session_joined",
    "session_root",
    "role_account_id_fallback",
    "role_name_fallback",
    "classified_by",
    "evidence_detail",
    "confidence",
    "rules_version",
)
_RULE_DECIDED = ("classified_by", "actor_kind", "access_path", "confidence")


class RuleColumns:
    """What each rule concludes (attribution_rules), as the dictionaries of the rule-decided
    verdict columns.

    Each dictionary holds a column's distinct values once, and a map per column turns a rule
    number into the index of its value: the Parquet writer then takes the dictionary as it is
    (a dictionary with repeated values, as a rule-indexed one would be, costs it a re-encoding
    per row group: ~0.03 s per column at 1M events)."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        rules = con.execute(
            "SELECT rule, classified_by, actor_kind, access_path, confidence"
            " FROM attribution_rules ORDER BY rule"
        ).fetchall()
        if [r[0] for r in rules] != list(range(1, len(rules) + 1)):
            raise WarehouseError("attribution_rules must number its rules 1, 2, 3, ... (a bug)")
        self._dictionaries: dict[str, pa.Array] = {}
        self._indices: dict[str, pa.Array] = {}
        for i, name in enumerate(_RULE_DECIDED, 1):
            # A verdict SQL marks at_most_medium lowers its confidence to medium: always a value.
            extra = ["medium"] if name == "confidence" else []
            values = sorted({str(r[i]) for r in rules} | set(extra))
            self._dictionaries[name] = pa.array(values, pa.string())
            # Index 0 is never used: rules are numbered from 1, so the rule number is the index.
            self._indices[name] = pa.array(
                [0, *(values.index(str(r[i])) for r in rules)], pa.int8()
            )
        # For each rule, the index of its confidence at most medium.
        medium = self._dictionaries["confidence"].to_pylist().index("medium")
        confidences = [str(r[4]) for r in rules]
        by_rule = self._indices["confidence"].to_pylist()
        self._at_most_medium = pa.array(
            [0, *(medium if c == "high" else by_rule[n] for n, c in enumerate(confidences, 1))],
            pa.int8(),
        )
        ((version,),) = con.execute("SELECT rules_version FROM attribution_settings").fetchall()
        self._version = pa.array([str(version)], pa.string())

    def complete(self, table: pa.Table) -> pa.Table:
        """`table` (rule, then the verdict columns SQL computes) with every verdict column."""
        rule = table.column("rule").combine_chunks().cast(pa.int8())
        zeros = pc.multiply(rule, pa.scalar(0, pa.int8()))
        columns: dict[str, pa.Array | pa.ChunkedArray] = {}
        for name in VERDICT_COLUMNS:
            if name == "confidence":
                columns[name] = pa.DictionaryArray.from_arrays(
                    self._confidence_indices(rule, table), self._dictionaries[name]
                )
            elif name in self._dictionaries:
                columns[name] = pa.DictionaryArray.from_arrays(
                    pc.take(self._indices[name], rule), self._dictionaries[name]
                )
            elif name == "rules_version":
                columns[name] = pa.DictionaryArray.from_arrays(zeros, self._version)
            else:
                columns[name] = table.column(name)
        return pa.table(columns)

    def _confidence_indices(self, rule: pa.Array, table: pa.Table) -> pa.Array:
        """The rule's confidence, at most medium where SQL says so (at_most_medium)."""
        own = pc.take(self._indices["confidence"], rule)
        lowered = table.column("at_most_medium").combine_chunks().fill_null(False)
        if not pc.any(lowered).as_py():
            return own
        return pc.if_else(lowered, pc.take(self._at_most_medium, rule), own)

    def counts(self, name: str, table: pa.Table) -> dict[str, int]:
        """Events per value of a rule-decided column."""
        found: Counter[str] = Counter()
        names = self._dictionaries[name].to_pylist()
        indices = self._indices[name].to_pylist()
        for item in pc.value_counts(table.column("rule")).to_pylist():
            found[names[indices[item["values"]]]] += int(item["counts"])
        return dict(found)
