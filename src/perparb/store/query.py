"""``perparb query``: SQL over the Parquet history through DuckDB.

Each table is a view over ``DIR/<table>/**/*.parquet`` with its ``date`` (DATE) and
``venue`` partition columns, plus ``ts`` (a UTC TIMESTAMP of ``ts_ns``). A table with no
files yet is an empty view of the same columns, so a query never fails for want of data.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa

from perparb.store.parquet import BY_VENUE, SCHEMAS


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def connect(data: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    for table, schema in SCHEMAS.items():
        files = sorted((data / table).glob("**/*.parquet"))
        if files:
            src = (f"read_parquet({_quote(str(data / table) + '/**/*.parquet')}, hive_partitioning = true, "
                   f"hive_types = {{'date': DATE{', venue: VARCHAR' if table in BY_VENUE else ''}}})")
        else:
            cols = [*schema, pa.field("date", pa.date32())]
            if table in BY_VENUE:
                cols.append(pa.field("venue", pa.string()))
            con.register(f"_empty_{table}", pa.schema(cols).empty_table())
            src = f"_empty_{table}"
        con.execute(f"CREATE VIEW {table} AS SELECT *, make_timestamp(ts_ns // 1000) AS ts FROM {src}")
    return con
