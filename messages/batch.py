"""Batch scoring: the run's input, its plan (chunks of the input file, or one platform job), what each chunk
answers and how the run ended. References, counts and a few examples only: never rows or predictions."""

from __future__ import annotations

from dataclasses import dataclass, field

from messages.enums import JobState
from messages.wire import Message


@dataclass(frozen=True)
class BatchInput(Message):
    """One version of a file ``<container>/<model>/in/<path>`` to score with ``model``'s champion."""

    container: str
    model: str
    #: the blob name inside the container: ``<model>/in/<path>``
    name: str
    etag: str
    trigger: str = "blob"
    #: the target size of a CSV chunk (a Parquet chunk is one row group)
    chunk_bytes: int = 16 << 20
    #: at most this many chunks scored at once
    parallel: int = 4
    #: seconds between looks at a platform job (Azure ML batch endpoint)
    poll_seconds: float = 30.0
    timeout_minutes: int = 240


@dataclass(frozen=True)
class BatchChunk(Message):
    """One piece of the input: bytes ``[start, end)`` of a CSV (whole lines), or row group ``group`` of a Parquet
    file; its first row is ``first_row`` (0-based, the row index of the output when there is no id column)."""

    index: int
    first_row: int
    rows: int = 0
    start: int = 0
    end: int = 0
    group: int = -1


@dataclass(frozen=True)
class BatchProblem(Message):
    """Why a file cannot be scored (``code``: ``not_a_table``, ``missing_columns``, ``no_valid_rows``,
    ``no_champion``, ``model_disabled``, ``unsupported``), with the message a user reads."""

    code: str
    message: str


@dataclass(frozen=True)
class BatchPlan(Message):
    """How a file is scored: its chunks (local: the orchestration fans out over them) or a platform ``job`` (Azure
    ML: polled with durable timers). ``problem`` set: the file is refused, nothing is scored."""

    model: str
    version: str = ""
    #: ``csv`` or ``parquet``
    format: str = ""
    #: the output blob (``<model>/out/<path>``, ``.csv`` added to a Parquet input's name)
    output: str = ""
    #: a token of this run: names its staged blocks, so runs over two versions of a file never share one
    token: str = ""
    #: the CSV header line, as the chunks parse it
    header: list[str] = field(default_factory=list)
    chunks: list[BatchChunk] = field(default_factory=list)
    rows: int = 0
    #: the input's size in bytes (a Parquet chunk reads its footer from the end)
    size: int = 0
    #: the column naming each output row: the schema's id column, else ``row`` (the row's number)
    id_column: str = "row"
    job: str = ""
    problem: BatchProblem | None = None


@dataclass(frozen=True)
class ChunkRequest(Message):
    run: BatchInput
    plan: BatchPlan
    chunk: BatchChunk


@dataclass(frozen=True)
class InvalidRows(Message):
    """Rows skipped because a value breaks the schema: how many, per problem (the validation's codes and
    messages), and the first few row numbers (1-based data rows of the whole file)."""

    count: int = 0
    rows: list[int] = field(default_factory=list)
    problems: dict[str, int] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ChunkResult(Message):
    index: int
    rows: int
    scored: int
    blocks: list[str] = field(default_factory=list)
    invalid: InvalidRows = field(default_factory=InvalidRows)


@dataclass(frozen=True)
class FinishRequest(Message):
    run: BatchInput
    plan: BatchPlan
    results: list[ChunkResult] = field(default_factory=list)


@dataclass(frozen=True)
class BatchJobStatus(Message):
    """A platform job's state (Azure ML batch endpoint job)."""

    job: str
    state: JobState
    message: str = ""
    rows: int = 0
    url: str = ""


@dataclass(frozen=True)
class BatchResult(Message):
    """The scored file: where the output and its report are, rows read, scored and skipped."""

    output: str
    report: str
    rows: int = 0
    scored: int = 0
    skipped: int = 0
    version: str = ""
    #: set when the file was refused after all (no row could be scored)
    problem: BatchProblem | None = None
