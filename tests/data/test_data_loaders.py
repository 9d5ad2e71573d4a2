"""Chunked loaders: CSV, Parquet, SQLite and DB-API give the same rows in bounded batches."""

import sqlite3

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from meshmpc.data import DataReadError, iter_batches, load_table


@pytest.fixture
def table() -> pa.Table:
    rng = np.random.default_rng(3)
    n = 1000
    return pa.table({"id": np.arange(n), "x": rng.normal(size=n),
                     "name": [f"firm{i}" for i in range(n)]})


def test_csv_and_parquet_stream_in_bounded_batches(tmp_path, table):
    pacsv.write_csv(table, tmp_path / "t.csv")
    pq.write_table(table, tmp_path / "t.parquet", row_group_size=300)
    for name in ("t.csv", "t.parquet"):
        batches = list(iter_batches(tmp_path / name, batch_rows=128))
        assert max(b.num_rows for b in batches) <= 128
        loaded = pa.Table.from_batches(batches)
        assert loaded.column("id").to_pylist() == table.column("id").to_pylist()
        assert np.allclose(loaded.column("x").to_numpy(), table.column("x").to_numpy())


def test_column_selection(tmp_path, table):
    pq.write_table(table, tmp_path / "t.parquet")
    pacsv.write_csv(table, tmp_path / "t.csv")
    for name in ("t.parquet", "t.csv"):
        assert load_table(tmp_path / name, columns=["x"]).column_names == ["x"]


def _sqlite(tmp_path, table):
    path = tmp_path / "t.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE firms (id INTEGER, x REAL, name TEXT)")
        conn.executemany("INSERT INTO firms VALUES (?, ?, ?)", zip(
            *(table.column(c).to_pylist() for c in table.column_names), strict=True))
    return path


def test_sqlite_url_and_dbapi_connection(tmp_path, table):
    path = _sqlite(tmp_path, table)
    via_url = load_table(f"sqlite:///{path}?table=firms", batch_rows=100)
    assert via_url.column("id").to_pylist() == table.column("id").to_pylist()
    via_path = load_table(path, columns=["name"], table="firms")
    assert via_path.column("name").to_pylist() == table.column("name").to_pylist()
    conn = sqlite3.connect(path)
    batches = list(iter_batches(conn, query="SELECT id, x FROM firms WHERE id < 250",
                                batch_rows=100))
    assert [b.num_rows for b in batches] == [100, 100, 50]
    conn.close()


def test_sql_identifiers_are_checked(tmp_path, table):
    path = _sqlite(tmp_path, table)
    with pytest.raises(DataReadError, match="identifier"):
        load_table(f"sqlite:///{path}?table=firms;drop")
    with pytest.raises(DataReadError, match="table"):
        load_table(f"sqlite:///{path}")


@pytest.mark.parametrize(("name", "content", "needle"), [
    ("missing.csv", None, "not found"),
    ("empty.csv", b"", "empty"),
    ("empty.parquet", b"", "empty"),
    ("junk.parquet", b"this is not parquet", "Parquet"),
    ("data.xlsx", b"x", "unknown file type"),
])
def test_unreadable_sources_name_the_file(tmp_path, name, content, needle):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DataReadError, match=needle) as info:
        load_table(path)
    assert name in str(info.value)


def test_wrong_encoding_names_the_line(tmp_path):
    path = tmp_path / "gbk.csv"
    path.write_bytes(b"name,x\nabc,1\n" + "华为,2\n".encode("gbk"))
    with pytest.raises(DataReadError, match="line 3"):
        load_table(path, column_types={"name": pa.string()})
    decoded = load_table(path, encoding="gbk")
    assert decoded.column("name").to_pylist() == ["abc", "华为"]


def test_prefetch_keeps_order_and_reraises_reader_errors():
    from meshmpc.data.loaders import prefetch

    batches = [pa.record_batch({"i": [k]}) for k in range(20)]
    assert [b.column(0)[0].as_py() for b in prefetch(iter(batches))] == list(range(20))

    def failing():
        yield batches[0]
        raise DataReadError("f.csv", "broken at row 7")

    with pytest.raises(DataReadError, match="row 7"):
        list(prefetch(failing()))
    early = prefetch(iter(batches), depth=1)
    next(early)
    early.close()  # stops the reader thread without draining


def test_csv_takes_types_from_the_schema_beside_it(tmp_path):
    (tmp_path / "firms.csv").write_text("credit_code,n\n914403001922038216,7\n", encoding="utf-8")
    inferred = load_table(tmp_path / "firms.csv")
    assert pa.types.is_integer(inferred.schema.field("credit_code").type)  # Arrow's guess
    (tmp_path / "firms.schema.toml").write_text(
        "[[columns]]\nname = 'credit_code'\ntype = 'string'\n"
        "[[columns]]\nname = 'n'\ntype = 'float'\n", encoding="utf-8")
    typed = load_table(tmp_path / "firms.csv")
    assert typed.column("credit_code").to_pylist() == ["914403001922038216"]
    assert typed.schema.field("n").type == pa.float64()


def test_other_database_urls_need_sqlalchemy_or_a_connection():
    import importlib.util

    if importlib.util.find_spec("sqlalchemy") is not None:
        pytest.skip("SQLAlchemy is installed: the URL would really be opened")
    with pytest.raises(DataReadError, match="SQLAlchemy"):
        load_table("postgresql://db.example/credit?table=loans")
