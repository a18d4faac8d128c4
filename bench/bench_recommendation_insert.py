"""What the recommendation table's indexes cost a night's write, on SQLite: 1,000,000 rows (100,000 members × 10)
inserted with executemany in 5,000-row batches, the way analytics.scoring.services._insert_rows writes them, into
the table as migration analytics 0011 left it (unique (run, member, rank), (member, run), course, reason_course)
and as 0013 leaves it (without the course and reason_course indexes). Each variant twice, alternating; wall and CPU.

    .venv/bin/python bench/bench_recommendation_insert.py [--rows 1000000]
"""
from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from pathlib import Path

import numpy as np

TABLE = ('CREATE TABLE r ("id" integer NOT NULL PRIMARY KEY AUTOINCREMENT, "rank" integer unsigned NOT NULL CHECK '
         '("rank" >= 0), "score" real NOT NULL, "reason" varchar(40) NOT NULL, "reason_text" varchar(300) NOT NULL, '
         '"course_id" bigint NOT NULL, "member_id" bigint NOT NULL, "reason_course_id" bigint NULL, "run_id" bigint '
         'NOT NULL, CONSTRAINT "u" UNIQUE ("run_id", "member_id", "rank"))')
INSERT = ("INSERT INTO r (run_id, member_id, course_id, rank, score, reason, reason_text, reason_course_id) "
          "VALUES (?, ?, ?, ?, ?, ?, ?, ?)")


def rows(n: int) -> list[tuple]:
    rng = np.random.default_rng(1)
    members = n // 10
    course = rng.integers(1, 200, n).tolist()
    because = np.where(rng.random(n) < 0.5, rng.integers(1, 200, n), -1).tolist()
    reason = rng.choice(["popular", "buy_again", "similar_to_purchase"], n).tolist()
    return list(zip([7] * n, np.repeat(np.arange(members), 10).tolist(), course,
                    np.tile(np.arange(1, 11), members).tolist(), np.round(rng.random(n), 6).tolist(), reason,
                    [""] * n, [None if c < 0 else c for c in because], strict=True))


def insert(path: Path, data: list[tuple], course_indexes: bool) -> tuple[float, float]:
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("DROP TABLE IF EXISTS r")
    con.execute(TABLE)
    con.execute("CREATE INDEX mr ON r (member_id, run_id)")
    if course_indexes:
        con.execute("CREATE INDEX c ON r (course_id)")
        con.execute("CREATE INDEX rc ON r (reason_course_id)")
    con.commit()
    wall, cpu = time.perf_counter(), time.process_time()
    for start in range(0, len(data), 5000):
        con.executemany(INSERT, data[start:start + 5000])
    con.commit()
    out = time.perf_counter() - wall, time.process_time() - cpu
    con.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    options = parser.parse_args()
    data = rows(options.rows)
    with tempfile.TemporaryDirectory() as tmp:
        for label, with_course in [("0011: with course indexes", True), ("0013: without", False)] * 2:
            wall, cpu = insert(Path(tmp) / f"{with_course}.sqlite3", data, with_course)
            print(f"{label:<28} {options.rows:,} rows: {wall:6.2f} s wall, {cpu:6.2f} s CPU", flush=True)


if __name__ == "__main__":
    main()
