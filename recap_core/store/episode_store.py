"""The episode store: Lance tables for episodes, steps and derived per-(task, iteration) values.

Ingest writes steps first and the episodes table last; the episodes table is the commit point. Readers
only see steps whose episode row exists, so a crash between the two writes is invisible and a retry
completes it. Every read reports (or accepts) the table versions it read, which is the lineage the
pipeline records next to the values, advantages and policies derived from them.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import lance
import numpy as np
import polars as pl
import pyarrow
import pyarrow.compute as pc

from recap_core.episode import Episode
from recap_core.locations import store_uri
from recap_core.object_storage import is_object_store, lance_storage_options
from recap_core.steps import StepArrays
from recap_core.store.batch import EpisodeBatch, build_batch
from recap_core.store.errors import EpisodeValidationError, Problem
from recap_core.store.primary_keys import ensure_primary_key, with_primary_key
from schemas.episodes import CONTENTS, CONTENTS_ARROW_SCHEMA, CONTENTS_KEY, EPISODES_ARROW_SCHEMA
from schemas.steps import IMAGE_COLUMN_PREFIX

EPISODES = "episodes"
STEPS = "steps"
_TABLE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
# Lance retries a merge_insert that lost a commit race to another writer by itself, this many times.
_CONFLICT_RETRIES = 20


@dataclass(frozen=True)
class IngestResult:
    """What one ``add_episodes`` call did; ``versions`` are the table versions after it.

    ``skipped`` are the incoming ids not written: already stored under the same id, or (also listed in
    ``same_content``) content-identical to an episode stored under another id, e.g. the same dataset
    imported again from another path, or (also listed in ``stored_concurrently``) stored by another
    writer ingesting the same episodes at the same moment.
    """

    added: list[str]
    skipped: list[str]
    versions: dict[str, int]
    frames_added: int = 0
    same_content: list[str] = field(default_factory=list)
    stored_concurrently: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Merge:
    """One committed upsert: the version it created and how many of its rows were new keys."""

    version: int
    inserted: int


@dataclass(frozen=True)
class EpisodeSelection:
    """Episode rows plus the versions of the tables they were read from (lineage)."""

    frame: pl.DataFrame
    versions: dict[str, int] = field(default_factory=dict)

    def content_digest(self) -> str:
        """sha256 of which episodes these are and what they hold (their ids and content hashes): equal for
        the same data at any table version, so a pipeline can tell new data from a re-run."""
        pairs = self.frame.select("episode_id", "content_hash").sort("episode_id").rows()
        return hashlib.sha256("\n".join(f"{i}:{h}" for i, h in pairs).encode()).hexdigest()


def _is_missing_table_error(error: Exception) -> bool:
    text = str(error).lower()
    return "not found" in text or "does not exist" in text or "no such file" in text


class EpisodeStore:
    """Lance tables under one root URI: ``episodes.lance``, ``steps.lance`` and ``<derived>.lance``."""

    def __init__(self, uri: str | Path | None = None) -> None:
        self.uri = str(uri if uri is not None else store_uri()).rstrip("/")
        self.storage_options = lance_storage_options(self.uri)
        if not is_object_store(self.uri):
            Path(self.uri).mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------------ tables and versions
    def table_uri(self, name: str) -> str:
        return f"{self.uri}/{name}.lance"

    def table_names(self) -> list[str]:
        """Every Lance table under the root (episodes, steps and derived tables)."""
        if is_object_store(self.uri):
            return _object_store_tables(self.uri)
        return sorted(p.name[: -len(".lance")] for p in Path(self.uri).glob("*.lance") if p.is_dir())

    def dataset(self, name: str, version: int | None = None) -> lance.LanceDataset | None:
        """The raw Lance dataset of a table (None if it does not exist yet), for tools and queries."""
        return self._open(name, version)

    def _open(self, name: str, version: int | None = None) -> lance.LanceDataset | None:
        try:
            return lance.dataset(self.table_uri(name), version=version, storage_options=self.storage_options)
        except (ValueError, OSError, RuntimeError) as error:
            if version is None and _is_missing_table_error(error):
                return None
            raise

    def versions(self) -> dict[str, int]:
        """Latest version of every table in the store (empty tables are absent)."""
        out = {}
        for name in self.table_names():
            dataset = self._open(name)
            if dataset is not None:
                out[name] = dataset.version
        return out

    def _pinned(self, versions: Mapping[str, int] | None, *names: str) -> dict[str, lance.LanceDataset]:
        """Open tables at the given versions (or the latest, episodes first so steps are never older)."""
        opened = {}
        for name in names:
            dataset = self._open(name, None if versions is None else versions.get(name))
            if dataset is not None:
                opened[name] = dataset
        return opened

    # ------------------------------------------------------------------ ingest
    def add_episodes(self, episodes: Iterable[Episode]) -> IngestResult:
        """Atomically and idempotently add episodes.

        Everything is validated first (raising ``EpisodeValidationError``; nothing is written). Episodes
        already stored with the same content are skipped; the same id with different content is refused.

        Any number of processes may ingest into one store at once, on local disk or object storage, with
        no lock: both tables declare their keys (recap_core.store.primary_keys), so Lance's
        conflict-checked commits store every episode and step exactly once. Two writers racing over the
        same episode both write its (identical) steps; its episode row lands once, and only the writer
        whose commit inserted it reports it as added.
        """
        batch = build_batch(episodes)
        existing = self._open(EPISODES)
        new_ids = self._new_episode_ids(batch, existing)
        owners = self._claim_contents(batch, new_ids)
        stored_owners = self._stored_ids([o for o in owners.values() if o is not None])
        same_content = [e for e in new_ids if owners[e] is not None and owners[e] in stored_owners]
        # a recording claimed under another id that no episode row holds yet (its writer is storing it
        # right now, or died before its rows landed) is stored under that id: identical content, one copy
        renamed = {e: o for e, o in owners.items() if o is not None and o not in stored_owners}
        to_store = [e for e in new_ids if owners[e] is None or e in renamed]
        if not to_store:
            return IngestResult([], batch.episode_ids, self.versions(), 0, same_content)
        wanted = pyarrow.array(to_store)
        new_episodes = batch.episodes.filter(pc.is_in(batch.episodes.column("episode_id"), value_set=wanted))
        new_steps = batch.steps.filter(pc.is_in(batch.steps.column("episode_id"), value_set=wanted))
        if renamed:
            new_episodes, new_steps = (_renamed(table, renamed) for table in (new_episodes, new_steps))
        final = [renamed.get(e, e) for e in to_store]
        self._check_step_schema(batch, new_steps)
        # Steps first: until the episode rows land, these steps are invisible to every reader.
        self._upsert(STEPS, new_steps, ["episode_id", "t"], update_matched=True)
        merge = self._upsert(EPISODES, new_episodes, ["episode_id"], update_matched=False)
        concurrent = self._stored_before(merge, final) if merge.inserted < len(final) else set()
        added = {e for e, f in zip(to_store, final, strict=True) if f not in concurrent}
        lengths = dict(zip(batch.episode_ids, batch.episodes.column("length").to_pylist(), strict=True))
        return IngestResult(
            added=[renamed.get(e, e) for e in batch.episode_ids if e in added],
            skipped=[e for e in batch.episode_ids if e not in added],
            versions=self.versions(),
            frames_added=sum(lengths[e] for e in added),
            same_content=same_content,
            stored_concurrently=[e for e in batch.episode_ids if renamed.get(e, e) in concurrent],
        )

    def _stored_before(self, merge: _Merge, episode_ids: list[str]) -> set[str]:
        """Which of ``episode_ids`` another writer committed just before ``merge`` (which inserted the
        rest): the version before a commit differs from it by exactly that commit."""
        before = lance.dataset(
            self.table_uri(EPISODES), version=merge.version - 1, storage_options=self.storage_options
        )
        found = before.to_table(columns=["episode_id"], filter=pc.field("episode_id").isin(episode_ids))
        return set(found.column("episode_id").to_pylist())

    def _stored_ids(self, episode_ids: list[str]) -> set[str]:
        """Which of ``episode_ids`` have an episode row now (at the latest version: another writer may
        have committed since this ingest began)."""
        dataset = self._open(EPISODES) if episode_ids else None
        if dataset is None:
            return set()
        found = dataset.to_table(columns=["episode_id"], filter=pc.field("episode_id").isin(episode_ids))
        return set(found.column("episode_id").to_pylist())

    def _claim_contents(self, batch: EpisodeBatch, new_ids: list[str]) -> dict[str, str | None]:
        """Claim each new episode's content hash for its id; return, per new id, None when the content is
        its own (claimed now, or earlier under the same id) or the id of the episode whose it already is.

        The claim is an insert-only merge on the contents table's declared key: of two writers claiming
        one hash at once, Lance's conflict check lets exactly one insert it, whatever their ids are."""
        if not new_ids:
            return {}
        hashes = dict(zip(batch.episode_ids, batch.episodes.column("content_hash").to_pylist(), strict=True))
        self._backfill_contents()
        first_of: dict[str, str] = {}
        for episode_id in new_ids:  # a recording twice in one batch: its first id claims it
            first_of.setdefault(hashes[episode_id], episode_id)
        claims = pyarrow.table(
            {"content_hash": list(first_of), "episode_id": list(first_of.values())},
            schema=CONTENTS_ARROW_SCHEMA,
        )
        self._upsert(CONTENTS, claims, CONTENTS_KEY, update_matched=False)
        owners = self.read_derived(CONTENTS, filter=pc.field("content_hash").isin(list(first_of)))
        owner_of = dict(zip(owners["content_hash"].to_list(), owners["episode_id"].to_list(), strict=True))
        return {e: None if owner_of[hashes[e]] == e else owner_of[hashes[e]] for e in new_ids}

    def _backfill_contents(self) -> None:
        """A store written before the contents table existed gets it, from its episodes (first id per
        content hash); concurrent backfills merge into one table."""
        episodes = self._open(EPISODES)
        if episodes is None or self._open(CONTENTS) is not None:
            return
        rows = pl.from_arrow(episodes.to_table(columns=["content_hash", "episode_id"]))
        rows = rows.sort("episode_id").unique("content_hash", keep="first", maintain_order=True)
        self._upsert(
            CONTENTS, rows.to_arrow().cast(CONTENTS_ARROW_SCHEMA), CONTENTS_KEY, update_matched=False
        )

    def _new_episode_ids(self, batch: EpisodeBatch, existing: lance.LanceDataset | None) -> list[str]:
        """Ids not yet stored; refuses content conflicts and vector sizes that differ from the task's."""
        ids = batch.episode_ids
        if existing is None or not ids:
            return ids
        stored = pl.from_arrow(
            existing.to_table(
                columns=["episode_id", "content_hash"],
                filter=pc.field("episode_id").isin(pyarrow.array(ids)),
            )
        )
        incoming = pl.from_arrow(
            batch.episodes.select(["episode_id", "content_hash", "task", "obs_dim", "action_dim"])
        )
        problems = [
            Problem(
                row["episode_id"],
                "content_hash",
                row["content_hash"],
                f"episode already stored with different content (stored hash {row['content_hash_stored']})",
            )
            for row in incoming.join(stored, on="episode_id", suffix="_stored")
            .filter(pl.col("content_hash") != pl.col("content_hash_stored"))
            .iter_rows(named=True)
        ]
        tasks = incoming["task"].unique().to_list()
        dims = (
            pl.from_arrow(
                existing.to_table(
                    columns=["task", "obs_dim", "action_dim"], filter=pc.field("task").isin(tasks)
                )
            )
            .group_by("task")
            .agg(
                pl.col("obs_dim").first().alias("obs_stored"),
                pl.col("action_dim").first().alias("action_stored"),
            )
        )
        for row in incoming.join(dims, on="task").iter_rows(named=True):
            for column, dim, stored_dim in (
                ("observation", "obs_dim", "obs_stored"),
                ("action", "action_dim", "action_stored"),
            ):
                if row[dim] != row[stored_dim]:
                    problems.append(
                        Problem(
                            row["episode_id"],
                            column,
                            f"size {row[dim]}",
                            f"task {row['task']!r} is stored with {column} size {row[stored_dim]}",
                        )
                    )
        if problems:
            raise EpisodeValidationError(problems)
        already = set(stored["episode_id"].to_list())
        return [e for e in ids if e not in already]

    def _check_step_schema(self, batch: EpisodeBatch, new_steps: pyarrow.Table) -> None:
        """Camera columns are fixed when the steps table is created; a new camera is a clear error."""
        steps = self._open(STEPS)
        if steps is None:
            return
        stored = {n for n in steps.schema.names if n.startswith(IMAGE_COLUMN_PREFIX)}
        extra = sorted(set(new_steps.schema.names) - set(steps.schema.names))
        if extra:
            first = batch.episode_ids[0]
            raise EpisodeValidationError(
                [
                    Problem(
                        first,
                        extra[0],
                        "<bytes>",
                        f"the steps table has no such camera column (has {sorted(stored)})",
                    )
                ]
            )

    def _conform(self, name: str, table: pyarrow.Table) -> pyarrow.Table:
        """Add null columns the stored table has and the batch lacks (e.g. a camera this robot hasn't)."""
        dataset = self._open(name)
        if dataset is None:
            return table
        for stored_field in dataset.schema:
            missing = stored_field.name not in table.schema.names
            if missing and stored_field.name.startswith(IMAGE_COLUMN_PREFIX):
                table = table.append_column(stored_field, pyarrow.nulls(table.num_rows, stored_field.type))
        return table.select(dataset.schema.names)

    def _upsert(self, name: str, table: pyarrow.Table, keys: list[str], update_matched: bool) -> _Merge:
        """merge_insert into a table keyed by ``keys``, creating it on first use; safe against
        concurrent writers with no lock (the key is the table's declared primary key: primary_keys.py).

        Lance's own create (``write_dataset(mode="create")``) is not: when two writers create a table at
        once, the loser's commit is retried as an overwrite of the winner's version and drops its rows
        (seen on local disk and on S3). So the first version is committed with no retries: exactly one
        writer creates the table, and a loser merges into the winner's table like any later writer.
        """
        dataset = self._open(name)
        if dataset is None:
            keyed = with_primary_key(table, keys)
            try:
                fragments = lance.fragment.write_fragments(
                    keyed,
                    self.table_uri(name),
                    schema=keyed.schema,
                    mode="create",
                    storage_options=self.storage_options,
                )
                created = lance.LanceDataset.commit(
                    self.table_uri(name),
                    lance.LanceOperation.Overwrite(keyed.schema, fragments),
                    read_version=0,
                    max_retries=0,
                    storage_options=self.storage_options,
                )
                return _Merge(created.version, table.num_rows)
            except OSError:
                dataset = self._open(name)
                if dataset is None:  # not a lost race: a real failure
                    raise
        ensure_primary_key(dataset, keys, name)
        builder = dataset.merge_insert(None)  # None: join on the declared key, which checks conflicts
        if update_matched:
            builder = builder.when_matched_update_all()
        stats = (
            builder.when_not_matched_insert_all()
            .conflict_retries(_CONFLICT_RETRIES)
            .execute(self._conform(name, table))
        )
        return _Merge(dataset.version, stats["num_inserted_rows"])

    # ------------------------------------------------------------------ reads
    def episodes(
        self,
        task: str | None = None,
        kind: str | None = None,
        iteration: int | None = None,
        max_iteration: int | None = None,
        success: bool | None = None,
        versions: Mapping[str, int] | None = None,
    ) -> EpisodeSelection:
        """Episode rows matching every given filter, with the version of the episodes table read."""
        opened = self._pinned(versions, EPISODES)
        if EPISODES not in opened:
            return EpisodeSelection(pl.from_arrow(EPISODES_ARROW_SCHEMA.empty_table()), {})
        filters = []
        if task is not None:
            filters.append(pc.field("task") == task)
        if kind is not None:
            filters.append(pc.field("kind") == kind)
        if iteration is not None:
            filters.append(pc.field("iteration") == iteration)
        if max_iteration is not None:
            filters.append(pc.field("iteration") <= max_iteration)
        if success is not None:
            filters.append(pc.field("success") == success)
        expression = None
        for f in filters:
            expression = f if expression is None else expression & f
        dataset = opened[EPISODES]
        frame = pl.from_arrow(dataset.to_table(filter=expression))
        return EpisodeSelection(frame.sort("episode_id"), {EPISODES: dataset.version})

    def load_steps(
        self,
        task: str | None = None,
        kind: str | None = None,
        iteration: int | None = None,
        max_iteration: int | None = None,
        success: bool | None = None,
        versions: Mapping[str, int] | None = None,
        cameras: Sequence[str] = (),
        image_size: int | None = None,
    ) -> StepArrays:
        """The training view of the selected episodes, loaded once, at pinned table versions.

        Pass ``versions`` (e.g. from ``store.versions()``, recorded as lineage) to read exactly those
        versions; otherwise the latest are read. Episodes come out contiguous, in t order. ``cameras``:
        also decode these cameras' frames into ``StepArrays.images`` (each ``image_size`` pixels square,
        if given), for a network that reads them.
        """
        if versions is None:
            versions = self.versions()
        selection = self.episodes(task, kind, iteration, max_iteration, success, versions=versions)
        steps = self._steps_of(selection.frame, versions)
        return self.with_step_images(steps, cameras, versions, image_size) if cameras else steps

    def with_step_images(
        self,
        steps: StepArrays,
        cameras: Sequence[str],
        versions: Mapping[str, int] | None = None,
        image_size: int | None = None,
    ) -> StepArrays:
        """``steps`` (loaded from this store at ``versions``) with their frames of ``cameras`` decoded."""
        from recap_core.store.step_images import with_step_images

        if not cameras or len(steps) == 0:
            return steps
        opened = self._pinned(versions, STEPS)
        if STEPS not in opened:
            raise ValueError(f"no steps table in {self.uri}: no frames of cameras {list(cameras)}")
        return with_step_images(opened[STEPS], steps, cameras, image_size)

    def _steps_of(self, episodes: pl.DataFrame, versions: Mapping[str, int]) -> StepArrays:
        opened = self._pinned(versions, STEPS)
        if episodes.is_empty() or STEPS not in opened:
            return _empty_steps(episodes)
        dims = episodes.select("obs_dim", "action_dim").unique()
        if dims.height > 1:
            per_task = episodes.group_by("task").agg(pl.col("obs_dim").first(), pl.col("action_dim").first())
            raise ValueError(
                "selected episodes mix vector sizes and one StepArrays holds one size; select one task: "
                + ", ".join(
                    f"{r['task']}: obs {r['obs_dim']} action {r['action_dim']}"
                    for r in per_task.iter_rows(named=True)
                )
            )
        obs_dim, action_dim = int(dims["obs_dim"][0]), int(dims["action_dim"][0])
        ids = pyarrow.array(episodes["episode_id"].to_list(), type=pyarrow.string())
        table = opened[STEPS].to_table(
            columns=["episode_id", "t", "observation", "action", "is_correction"],
            filter=pc.field("episode_id").isin(ids),
        )
        row_episode = pc.index_in(table.column("episode_id"), value_set=ids).to_numpy(zero_copy_only=False)
        t = table.column("t").to_numpy().astype(np.int64)
        lengths = episodes["length"].to_numpy().astype(np.int64)
        # steps past an episode's committed length are leftovers of a crashed, differently-sized attempt
        valid = t < lengths[row_episode]
        # Order episodes by where they first appear in the table: usually the stored order, so no copy.
        first_row = np.full(len(ids), np.iinfo(np.int64).max)
        np.minimum.at(first_row, row_episode[valid], np.nonzero(valid)[0])
        episode_order = np.argsort(first_row, kind="stable")
        rank = np.empty_like(episode_order)
        rank[episode_order] = np.arange(len(episode_order))
        episode_index = rank[row_episode]
        order = np.lexsort((t, episode_index))
        order = order[valid[order]]
        counts = np.bincount(episode_index[order], minlength=len(ids))
        expected = lengths[episode_order]
        if not np.array_equal(counts, expected):
            bad = int(np.nonzero(counts != expected)[0][0])
            raise RuntimeError(
                f"steps table at version {versions.get(STEPS)} holds {counts[bad]} steps for episode "
                f"{ids[episode_order[bad]].as_py()!r}, its episode row says {expected[bad]}"
            )
        identity = len(order) == table.num_rows and bool(np.all(order[1:] > order[:-1]))
        observations = _matrix(table.column("observation"), obs_dim, "observation")
        actions = _matrix(table.column("action"), action_dim, "action")
        is_correction = table.column("is_correction").to_numpy(zero_copy_only=False)
        if not identity:
            observations, actions, is_correction = observations[order], actions[order], is_correction[order]
        return StepArrays(
            observations=observations,
            actions=actions,
            episode_index=episode_index[order],
            t=t[order],
            is_correction=is_correction,
            episodes=episodes[episode_order.tolist()],
        )

    def episode_steps(self, episode_id: str, versions: Mapping[str, int] | None = None) -> pl.DataFrame:
        """All stored columns of one committed episode's steps, in t order (image columns as blob refs)."""
        if versions is None:
            versions = self.versions()
        selection = self.episodes(versions=versions).frame.filter(pl.col("episode_id") == episode_id)
        if selection.is_empty():
            raise KeyError(
                f"episode {episode_id!r} is not in the store (episodes version {versions.get(EPISODES)})"
            )
        steps = self._pinned(versions, STEPS)[STEPS]
        columns = [n for n in steps.schema.names if not n.startswith(IMAGE_COLUMN_PREFIX)]
        length = int(selection["length"][0])
        table = steps.to_table(
            columns=columns, filter=(pc.field("episode_id") == episode_id) & (pc.field("t") < length)
        )
        return pl.from_arrow(table).sort("t")

    def episode_images(self, episode_id: str, camera: str) -> list[bytes]:
        """Encoded frames of one camera for one episode, in t order, read lazily from the blob column."""
        steps = self._open(STEPS)
        column = f"{IMAGE_COLUMN_PREFIX}{camera}"
        if steps is None or column not in steps.schema.names:
            raise KeyError(f"no image column {column!r} in the steps table")
        rows = steps.to_table(columns=["t"], filter=pc.field("episode_id") == episode_id, with_row_id=True)
        rows = rows.sort_by("t")
        blobs = steps.take_blobs(column, ids=rows.column("_rowid").to_pylist())
        return [b"" if blob is None else blob.read() for blob in blobs]

    def lazy(self, table: str = EPISODES, versions: Mapping[str, int] | None = None) -> pl.LazyFrame:
        """A polars LazyFrame over a table for notebooks; steps are limited to committed episodes."""
        if versions is None:
            versions = self.versions()
        dataset = self._pinned(versions, table).get(table)
        if dataset is None:
            raise KeyError(f"no table {table!r} in {self.uri}")
        frame = pl.scan_pyarrow_dataset(dataset)
        if table == STEPS:
            committed = self.lazy(EPISODES, versions).select("episode_id", "length")
            frame = frame.join(committed, on="episode_id", how="semi")
        return frame

    # ------------------------------------------------------------------ derived tables
    def write_derived(self, name: str, table: pyarrow.Table, key_columns: list[str]) -> int:
        """Idempotent upsert of derived rows (values, advantages, ...) keyed by ``key_columns``."""
        if not _TABLE_NAME.match(name) or name in (EPISODES, STEPS):
            raise ValueError(f"derived table name {name!r} must be lower_snake_case and not episodes/steps")
        missing = [k for k in key_columns if k not in table.schema.names]
        if missing or not key_columns:
            raise ValueError(
                f"derived table {name!r}: key columns {missing or key_columns} not in {table.schema.names}"
            )
        duplicated = pl.from_arrow(table.select(key_columns)).is_duplicated()
        if duplicated.any():
            first = pl.from_arrow(table.select(key_columns)).filter(duplicated).row(0, named=True)
            raise ValueError(f"derived table {name!r}: key {first} appears more than once in this write")
        self._add_new_columns(name, table)
        return self._upsert(name, table, key_columns, update_matched=True).version

    def _add_new_columns(self, name: str, table: pyarrow.Table) -> None:
        """A derived table gains the columns a newer stage writes (null in older rows); without this
        ``_conform`` would drop them silently and the lineage they carry would be lost."""
        dataset = self._open(name)
        if dataset is None:
            return
        new = [field for field in table.schema if field.name not in dataset.schema.names]
        if new:
            dataset.add_columns(new)

    def read_derived(
        self, name: str, filter: str | pc.Expression | None = None, version: int | None = None
    ) -> pl.DataFrame:
        """Rows of a derived table (SQL-like filter string or pyarrow expression), at a version if given."""
        dataset = self._open(name, version)
        if dataset is None:
            raise KeyError(f"no derived table {name!r} in {self.uri}")
        return pl.from_arrow(dataset.to_table(filter=filter))


def _renamed(table: pyarrow.Table, renamed: Mapping[str, str]) -> pyarrow.Table:
    """``table`` with the episode ids in ``renamed`` replaced by the ids they map to."""
    ids = [renamed.get(e, e) for e in table.column("episode_id").to_pylist()]
    index = table.schema.get_field_index("episode_id")
    return table.set_column(index, table.schema.field(index), pyarrow.array(ids, pyarrow.string()))


def _object_store_tables(uri: str) -> list[str]:
    """The ``*.lance`` folders under an s3:// root, listed with Arrow's S3 client (same AWS_* settings)."""
    import pyarrow.fs as pafs

    options = lance_storage_options(uri) or {}
    endpoint = options.get("aws_endpoint", "")
    filesystem = pafs.S3FileSystem(
        access_key=options.get("aws_access_key_id"),
        secret_key=options.get("aws_secret_access_key"),
        session_token=options.get("aws_session_token"),
        region=options.get("aws_region", "us-east-1"),
        endpoint_override=endpoint.split("://", 1)[-1] or None,
        scheme="http" if endpoint.startswith("http://") else "https",
    )
    root = uri.split("://", 1)[1]
    selector = pafs.FileSelector(root, allow_not_found=True)
    names = {
        info.base_name[: -len(".lance")]
        for info in filesystem.get_file_info(selector)
        if info.base_name.endswith(".lance")
    }
    return sorted(names)


def _matrix(column: pyarrow.ChunkedArray, dim: int, name: str) -> np.ndarray:
    """(N, dim) float32 view of a list<float32> column; zero-copy when it is one contiguous chunk."""
    array = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    offsets = array.offsets.to_numpy()
    if len(array) and not np.all(np.diff(offsets) == dim):
        raise ValueError(f"steps column {name!r} has vectors whose size is not {dim}")
    values = array.values.slice(offsets[0], offsets[-1] - offsets[0]) if len(array) else array.values
    return values.to_numpy(zero_copy_only=False).reshape(len(array), dim)


def _empty_steps(episodes: pl.DataFrame) -> StepArrays:
    return StepArrays(
        observations=np.zeros((0, 0), np.float32),
        actions=np.zeros((0, 0), np.float32),
        episode_index=np.zeros(0, np.int64),
        t=np.zeros(0, np.int64),
        is_correction=np.zeros(0, bool),
        episodes=episodes.clear(),
    )
