"""Table input and output bindings on Azure Table storage (Azurite offline).

Input (``@app.table_input``): a JSON array, as the host hands table input to out-of-process workers (the Python
worker's own end-to-end tests read it so): with ``partitionKey`` and ``rowKey``, the one entity (an empty array when
it does not exist); otherwise the entities matching ``partitionKey`` and ``filter`` (an OData filter), at most
``take``. Output (``@app.table_output``): a JSON object or array (text, or a dict/list) of entities, each
inserted; ``PartitionKey``/``RowKey`` default to the binding's values; an entity that already exists is an error of
that invocation, as the host's insert is. Binding expressions as for blobs (``devhost.blobbindings``).
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
from typing import Any

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

from devhost.blobbindings import expand
from devhost.connections import binding_connection
from devhost.loader import FunctionInfo

MAX_TAKE = 1000


def _plain(entity: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in dict(entity).items():
        if isinstance(value, dt.datetime):
            out[key] = value.isoformat()
        elif isinstance(value, bytes):
            out[key] = base64.b64encode(value).decode("ascii")
        elif hasattr(value, "value") and not isinstance(value, int | float | str | bool):
            out[key] = value.value
        else:
            out[key] = value
    return out


def _opt(binding: dict[str, Any], key: str, data: dict[str, str], where: str) -> str | None:
    raw = binding.get(key)
    return expand(str(raw), data, where) if raw not in (None, "") else None


def read_input(info: FunctionInfo, binding: dict[str, Any], data: dict[str, str]) -> str:
    where = f"function {info.name}: table input '{binding.get('name')}'"
    table = expand(str(binding.get("tableName", "")), data, where)
    pk, rk = _opt(binding, "partitionKey", data, where), _opt(binding, "rowKey", data, where)
    with binding_connection(binding).table_service() as service:
        client = service.get_table_client(table)
        if pk is not None and rk is not None:
            try:
                return json.dumps([_plain(client.get_entity(pk, rk))])
            except ResourceNotFoundError:
                return "[]"
        clauses = [f"PartitionKey eq '{pk.replace(chr(39), chr(39) * 2)}'"] if pk is not None else []
        extra = _opt(binding, "filter", data, where)
        if extra:
            clauses.append(f"({extra})")
        take = min(int(binding.get("take") or MAX_TAKE), MAX_TAKE)
        try:
            rows = client.query_entities(" and ".join(clauses)) if clauses else client.list_entities()
            entities = []
            for entity in rows:
                entities.append(_plain(entity))
                if len(entities) >= take:
                    break
        except ResourceNotFoundError:
            entities = []
        return json.dumps(entities)


def write_output(info: FunctionInfo, binding: dict[str, Any], data: dict[str, str], value: Any) -> int:
    if value is None:
        return 0
    where = f"function {info.name}: table output '{binding.get('name')}'"
    doc = json.loads(value) if isinstance(value, str | bytes) else value
    entities = doc if isinstance(doc, list) else [doc]
    pk, rk = _opt(binding, "partitionKey", data, where), _opt(binding, "rowKey", data, where)
    rows = []
    for entity in entities:
        if not isinstance(entity, dict):
            raise ValueError(f"{where}: each entity must be a JSON object")
        row = {"PartitionKey": pk, "RowKey": rk, **entity}
        if row.get("PartitionKey") is None or row.get("RowKey") is None:
            raise ValueError(f"{where}: an entity needs PartitionKey and RowKey")
        rows.append(row)
    table = expand(str(binding.get("tableName", "")), data, where)
    with binding_connection(binding).table_service() as service:
        with contextlib.suppress(ResourceExistsError):
            service.create_table(table)
        client = service.get_table_client(table)
        for row in rows:
            try:
                client.create_entity(row)
            except ResourceExistsError:
                raise ValueError(
                    f"{where}: the entity ({row['PartitionKey']}, {row['RowKey']}) already exists in table {table}"
                ) from None
    return len(rows)
