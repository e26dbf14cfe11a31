"""Writing straight to the database driver, for the paths that write many rows or run
very often (import, the audit entry of every change).

SQLAlchemy's per-statement work (building an execution context, result metadata, events)
costs more than SQLite itself for a one-row INSERT. Here a statement is compiled by SQLAlchemy
once, and values pass through each column type's own bind processor, so what is stored is
exactly what a normal SQLAlchemy insert would store; only the per-execution machinery is
skipped. Statements run on the connection's own driver connection, inside its transaction.
"""

from __future__ import annotations

from typing import Any, Mapping

import sqlalchemy as sa


class ColumnWriter:
    """Rows as the driver takes them: the given columns read from each row, then the columns
    every row shares (`same`), each value through its column type's own bind processor.

    So a row is stored exactly as a normal SQLAlchemy insert would store it. Shared values are
    converted once; processors that only re-type what the driver takes as it is (a bool) are
    skipped.
    """

    def __init__(self, table: sa.Table, columns: list[str], dialect, same: Mapping[str, Any]):
        self.columns = list(columns)
        self.names = self.columns + [name for name in same if name not in self.columns]
        processors = {}
        for name in self.names:
            column_type = table.c[name].type
            if not isinstance(column_type, sa.Boolean):
                processor = column_type._cached_bind_processor(dialect)
                if processor is not None:
                    processors[name] = processor
        self.processors = [(i, processors[name]) for i, name in enumerate(self.columns)
                           if name in processors]
        self.shared = [_processed(processors.get(name), same[name])
                       for name in self.names[len(self.columns):]]

    def rows(self, records: list[Mapping]) -> list[list]:
        columns, shared = self.columns, self.shared
        data = [[*map(record.get, columns), *shared] for record in records]
        for i, processor in self.processors:
            for values in data:
                value = values[i]
                if value is not None:
                    values[i] = processor(value)
        return data


def _processed(processor, value):
    return processor(value) if processor is not None and value is not None else value


def write_rows(conn, table: sa.Table, rows: list[dict], columns: list[str] | None = None,
               same: Mapping[str, Any] | None = None) -> None:
    """Insert already-validated rows at driver speed: COPY on PostgreSQL, executemany on SQLite.

    `columns` are read from each row (default: the first row's keys); `same` holds values every
    row shares (stamps, the acting user), converted once. Values pass through each column
    type's own bind processor (`ColumnWriter`), so they are stored exactly as a normal
    SQLAlchemy insert would store them.
    """
    if not rows:
        return
    columns = list(columns or rows[0])
    writer = ColumnWriter(table, columns, conn.dialect, same or {})
    data = writer.rows(rows)
    names = writer.names
    dialect = conn.dialect
    if dialect.name == "postgresql":
        quote = dialect.identifier_preparer.quote
        cursor = conn.connection.driver_connection.cursor()
        with cursor.copy(f"COPY {quote(table.name)} ({', '.join(quote(c) for c in names)}) "
                         f"FROM STDIN") as copy:
            for row in data:
                copy.write_row(row)
        return
    compiled = table.insert().compile(dialect=dialect, column_keys=names)
    order = [names.index(name) for name in compiled.positiontup]
    if order != list(range(len(names))):
        data = [[row[i] for i in order] for row in data]
    conn.connection.driver_connection.cursor().executemany(compiled.string, data)


class DriverStatement:
    """A statement compiled once for a dialect, run on the driver with converted parameters;
    a SELECT also converts what it reads (each column type's result processor)."""

    def __init__(self, statement, dialect, column_keys: list[str] | None = None):
        compiled = statement.compile(dialect=dialect, column_keys=column_keys)
        self.sql = compiled.string
        self.names = list(compiled.positiontup) if compiled.positional else None
        self.processors = {name: processor for name, bind in compiled.binds.items()
                           if (processor := bind.type._cached_bind_processor(dialect))
                           is not None}
        self.positional_processors = [(i, self.processors[name])
                                      for i, name in enumerate(self.names or ())
                                      if name in self.processors]
        self.dialect = dialect
        self.selected = list(getattr(statement, "exported_columns", ()))  # SELECT or RETURNING
        self.columns: list | None = None  # (name, result processor), known at the first read

    def _run(self, conn: sa.Connection, values: Mapping[str, Any]):
        if self.names is not None:  # positional (SQLite)
            params = [values[name] for name in self.names]
            for i, processor in self.positional_processors:
                if params[i] is not None:
                    params[i] = processor(params[i])
        else:
            params = dict(values)
            for name, processor in self.processors.items():
                if params.get(name) is not None:
                    params[name] = processor(params[name])
        cursor = conn.connection.driver_connection.cursor()
        cursor.execute(self.sql, params)
        return cursor

    def first(self, conn: sa.Connection, values: Mapping[str, Any]) -> dict | None:
        """The first row as {column: value}, or None."""
        cursor = self._run(conn, values)
        row = cursor.fetchone()
        if row is not None and self.columns is None:
            self._describe(cursor)
        cursor.close()
        if row is None:
            return None
        return {name: processor(value) if processor is not None and value is not None
                else value for (name, processor), value in zip(self.columns, row)}

    def all(self, conn: sa.Connection, values: Mapping[str, Any]) -> list[dict]:
        """Every row, each as {column: value}."""
        return self._read(conn, values)

    def _describe(self, cursor) -> None:
        # a result processor may depend on the type the driver reports (PostgreSQL numerics)
        self.columns = [
            (column.key, column.type._cached_result_processor(self.dialect, described[1]))
            for column, described in zip(self.selected, cursor.description)]

    def _read(self, conn, values) -> list[dict]:
        cursor = self._run(conn, values)
        rows = cursor.fetchall()
        if rows and self.columns is None:
            self._describe(cursor)
        cursor.close()
        columns = self.columns
        return [{name: processor(value) if processor is not None and value is not None
                 else value for (name, processor), value in zip(columns, row)} for row in rows]

    def rowcount(self, conn: sa.Connection, values: Mapping[str, Any]) -> int:
        """Run an UPDATE or DELETE; the number of rows it changed."""
        cursor = self._run(conn, values)
        count = cursor.rowcount
        cursor.close()
        return count


def driver_insert(table: sa.Table, columns: list[str], dialect) -> DriverStatement:
    """An INSERT of a fixed set of columns as a DriverStatement (run it with `rowcount`)."""
    return DriverStatement(table.insert().inline(), dialect, column_keys=list(columns))
