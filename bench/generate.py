#!/usr/bin/env python3
"""Writes the benchmark inputs (deterministic) into OUT (default target/bench):

  runbooks/   N runbooks, half AsciiDoc and half Markdown, about 5 KB each
  book/       a book of N Markdown runbooks (book.toml, src/, no SUMMARY.md)
  exec/       a runbook of 10,000 INSERTs in one transaction, and the same
              SQL for each database's own client; int-list parameter files
              of 10,000 and 100,000 values; a SELECT of 1,000,000 rows
  doctest/    K copies of a SQLite runbook with its fixture, for `test`

usage: generate.py [OUT] [N]
"""

import os
import sys

OUT = sys.argv[1] if len(sys.argv) > 1 else "target/bench"
N = int(sys.argv[2]) if len(sys.argv) > 2 else 1000

PROSE = (
    "The import overwrote rows it should only have read. This step scopes the "
    "damage before anything changes, and its count is read aloud before COMMIT. "
)


def steps(i, markdown):
    out = []
    for s in range(8):
        sql = (
            f"BEGIN;\nUPDATE accounts_{i % 7} SET status = 'active', note = 'restored by runbook {i}'\n"
            f"WHERE tenant_id = {s + 1} AND id IN (SELECT id FROM snapshot_{i % 7} WHERE tenant_id = {s + 1});\n"
            f"-- @expect ~{100 + s * 7}\nSELECT COUNT(*) AS left_over FROM accounts_{i % 7} WHERE tenant_id = {s + 1} AND status <> 'active';\n"
            f"-- @assert left_over == 0\nCOMMIT;"
        )
        title = f"Restore tenant {s + 1}"
        if markdown:
            out.append(f"### {title}\n\n{PROSE}\n\n```sql {{#restore-{s} confirm}}\n{sql}\n```\n")
        else:
            out.append(f"=== {title}\n\n{PROSE}\n\n[source%confirm,sql,id=restore-{s}]\n----\n{sql}\n----\n")
    return "\n".join(out)


def sections(markdown):
    h = "##" if markdown else "=="
    return "\n".join(f"{h} {name}\n\n{PROSE}\n" for name in ["Context", "Scope", "Decisions", "Retention", "References"])


def markdown_runbook(i):
    return (
        f"---\nid: bench-{i}\ndialect: postgres\n---\n\n# Benchmark runbook {i}\n\n{sections(True)}\n"
        f"## Execution\n\n{steps(i, True)}"
    )


def asciidoc_runbook(i):
    return (
        f"= Benchmark runbook {i}\n:runbook-id: bench-{i}\n:dialect: postgres\n\n{PROSE}\n\n{sections(False)}\n"
        f"== Execution\n\n{steps(i, False)}"
    )


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", newline="\n") as f:
        f.write(text)


total = 0
for i in range(N):
    if i % 2:
        text = markdown_runbook(i)
        write(f"{OUT}/runbooks/md/r{i:04d}.md", text)
    else:
        text = asciidoc_runbook(i)
        write(f"{OUT}/runbooks/adoc/r{i:04d}.adoc", text)
    total += len(text.encode())
    write(f"{OUT}/book/src/r{i:04d}.md", markdown_runbook(i))
write(f"{OUT}/book/src/SUMMARY.md", "# Summary\n\n" + "".join(f"- [Runbook {i}](r{i:04d}.md)\n" for i in range(N)))
write(f"{OUT}/book/book.toml", '[book]\ntitle = "Benchmark"\nsrc = "src"\n\n[output.html]\nno-section-label = true\n')
write(f"{OUT}/runbooks/bytes", f"{total}\n")

inserts = "\n".join(f"INSERT INTO bench_rows (id, note) VALUES ({k}, 'row {k}');" for k in range(10000))
write(f"{OUT}/exec/statements.sql", f"BEGIN;\n{inserts}\nCOMMIT;\n")
for dialect in ["sqlite", "postgres", "mysql"]:
    write(
        f"{OUT}/exec/statements-{dialect}.md",
        f"---\nid: statements-{dialect}\ndialect: {dialect}\n---\n# 10,000 statements\n\n```sql {{#all}}\nBEGIN;\n{inserts}\nCOMMIT;\n```\n",
    )
write(f"{OUT}/exec/reset.sql", "DROP TABLE IF EXISTS bench_rows;\nCREATE TABLE bench_rows (id INT PRIMARY KEY, note VARCHAR(40));\n")
for n in [10000, 100000]:
    write(f"{OUT}/exec/ids-{n}.txt", "".join(f"{k}\n" for k in range(1, n + 1)))
write(
    f"{OUT}/exec/int-list.md",
    "---\nid: int-list\nparams:\n  ids: int-list\n---\n# A long list\n\n"
    "```sql {#count}\nWITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 10)\n"
    "SELECT COUNT(*) AS n FROM c WHERE x IN ({{ ids | map('int') | list }});\n-- @assert n == 10\n```\n",
)
write(
    f"{OUT}/exec/million.md",
    "---\nid: million\n---\n# A million rows\n\n```sql {#all expect=1000000}\n"
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000)\nSELECT x, 'a row of some width' AS pad FROM c;\n```\n",
)
