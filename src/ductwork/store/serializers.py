"""How result values become bytes, behind a small port so that others can be added.

``JsonSerializer`` is the default: readable in the database, safe to load (no code runs on
read), and lossless for the values tasks usually pass (dates, tuples, sets, decimals: see
``ductwork.store.codec``). ``PickleSerializer`` is opt-in (the ``results_pickle`` setting),
and DataFrames and Arrow tables are written as Parquet (``parquet.pandas``, ``parquet.arrow``).
Each stored row names its serializer, so all of them coexist.
"""

from __future__ import annotations

from typing import Any, Protocol

from ductwork.store import codec


class Serializer(Protocol):
    name: str
    """Stored with each value; must never change for a given format."""

    def dumps(self, value: Any) -> bytes:
        """The value as bytes; raises ``TypeError`` (with a message naming the part) when it cannot."""
        ...

    def loads(self, data: bytes) -> Any: ...


class JsonSerializer:
    name = "json"

    def dumps(self, value: Any) -> bytes:
        return codec.dumps(value).encode("utf-8")

    def loads(self, data: bytes) -> Any:
        return codec.loads(data)


class PickleSerializer:
    """Any picklable value. Loading a pickle runs code chosen by whoever wrote it, so it is
    only enabled by the ``results_pickle`` setting, for stores only trusted code writes to."""

    name = "pickle"

    def dumps(self, value: Any) -> bytes:
        import pickle

        try:
            return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        except (pickle.PicklingError, AttributeError) as exc:
            raise TypeError(f"cannot pickle {type(value).__name__}: {exc}") from exc

    def loads(self, data: bytes) -> Any:
        import pickle

        return pickle.loads(data)


class ArrowParquetSerializer:
    """A ``pyarrow.Table`` as Parquet (``pip install 'ductwork[parquet]'``)."""

    name = "parquet.arrow"

    def dumps(self, value: Any) -> bytes:
        import io

        import pyarrow.parquet as pq

        buffer = io.BytesIO()
        pq.write_table(value, buffer)
        return buffer.getvalue()

    def loads(self, data: bytes) -> Any:
        import io

        import pyarrow.parquet as pq

        return pq.read_table(io.BytesIO(data))


class PandasParquetSerializer(ArrowParquetSerializer):
    """A ``pandas.DataFrame`` as Parquet, index included (``pip install 'ductwork[pandas]'``)."""

    name = "parquet.pandas"

    def dumps(self, value: Any) -> bytes:
        import pyarrow as pa

        return super().dumps(pa.Table.from_pandas(value, preserve_index=True))

    def loads(self, data: bytes) -> Any:
        return super().loads(data).to_pandas()


def is_dataframe(value: Any) -> bool:
    kind = type(value)
    return kind.__name__ == "DataFrame" and kind.__module__.split(".")[0] == "pandas"


def is_arrow_table(value: Any) -> bool:
    kind = type(value)
    return kind.__name__ == "Table" and kind.__module__.split(".")[0] == "pyarrow"


def unstorable(task_id: str, key: str, serializer: str, exc: BaseException, *, allow_pickle: bool) -> Exception:
    """The error for a result no configured serializer can store (the same words wherever it
    is found: a worker's store, or an in-process run checking as the store would)."""
    from ductwork.store.errors import ResultSerializationError

    pickling = "" if allow_pickle else ", or turn on the results_pickle setting for trusted stores"
    return ResultSerializationError(
        f"task {task_id!r}: result {key!r} cannot be stored with the {serializer!r} "
        f"serializer: {exc}. Return plain data (dicts, lists, strings, numbers, booleans, dates, "
        f"tuples, sets) or DataFrames, or write large or custom objects to a target and return its path"
        f"{pickling}",
        task_id=task_id,
        key=key,
    )


def check_storable(value: Any, *, task_id: str, key: str, allow_pickle: bool = False) -> None:
    """Raise what the metadata database's store would raise for ``value`` (with the default
    serializers), without storing it: in-process runs keep values as they are, yet must fail
    a try whose result a scheduler's worker could not keep."""
    if value is None or isinstance(value, str | int | float | bool) or is_dataframe(value) or is_arrow_table(value):
        return
    try:
        codec.dumps(value)
    except (TypeError, ValueError) as exc:
        if allow_pickle:
            try:
                PickleSerializer().dumps(value)
                return
            except (TypeError, ValueError):
                pass
        raise unstorable(task_id, key, JsonSerializer.name, exc, allow_pickle=allow_pickle) from exc


BUILT_IN: dict[str, Serializer] = {
    s.name: s for s in (JsonSerializer(), PickleSerializer(), ArrowParquetSerializer(), PandasParquetSerializer())
}
"""Every serializer Ductwork ships, by name."""
