"""one analysis per commit, model and prompt version, holding every language

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05 10:00:00

Before: one row per (commit, language, model, prompt version), each with its own change type and
importance. After: one row per (commit, model, prompt version) whose JSON holds one verdict and the
texts per language (newsletter.analysis.result.AnalysisSet). Rows of the same commit merge: the
English row's verdict wins (else the first language's), the texts of every language are kept,
tokens add up, and the merged row is a fallback when any of its rows was. The downgrade splits them
again, every language taking the merged verdict.
"""
from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

TEXT_KEYS = ("importance_reason", "summary", "impact_scope", "insight", "risks", "recommendations")


def _json(value: Any) -> dict[str, Any]:
    return json.loads(value) if isinstance(value, str) else dict(value or {})


def upgrade() -> None:
    bind = op.get_bind()
    table = sa.table("commit_analysis", sa.column("id", sa.Integer), sa.column("commit_id", sa.Integer),
                     sa.column("language", sa.String), sa.column("model", sa.String),
                     sa.column("prompt_version", sa.String), sa.column("analysis", sa.JSON),
                     sa.column("fallback", sa.Boolean), sa.column("prompt_tokens", sa.Integer),
                     sa.column("completion_tokens", sa.Integer), sa.column("created_at", sa.DateTime(timezone=True)),
                     sa.column("updated_at", sa.DateTime(timezone=True)))
    rows = bind.execute(sa.select(table).order_by(table.c.id)).mappings().all()
    merged: dict[tuple[int, str, str], dict[str, Any]] = {}
    for row in rows:
        key = (row["commit_id"], row["model"], row["prompt_version"])
        data = _json(row["analysis"])
        texts = {k: data[k] for k in TEXT_KEYS if k in data}
        item = merged.get(key)
        if item is None:
            item = merged[key] = {
                "commit_id": row["commit_id"], "model": row["model"], "prompt_version": row["prompt_version"],
                "created_at": row["created_at"], "updated_at": row["updated_at"], "fallback": False,
                "prompt_tokens": 0, "completion_tokens": 0,
                "analysis": {"change_type": data.get("change_type", "other"), "importance": data.get("importance", "low"),
                             "texts": {}, "model": row["model"], "prompt_version": row["prompt_version"],
                             "fallback": False, "fallback_reason": None, "prompt_tokens": 0,
                             "completion_tokens": 0, "requests": 0},
            }
        analysis = item["analysis"]
        if row["language"] == "en":
            analysis["change_type"], analysis["importance"] = data.get("change_type", "other"), data.get("importance", "low")
        analysis["texts"][row["language"]] = texts
        if row["fallback"]:
            item["fallback"] = analysis["fallback"] = True
            analysis["fallback_reason"] = analysis["fallback_reason"] or data.get("fallback_reason")
        for counter in ("prompt_tokens", "completion_tokens"):
            item[counter] += int(row[counter] or 0)
            analysis[counter] += int(row[counter] or 0)
        analysis["requests"] += int(data.get("requests") or 0)
        item["updated_at"] = max(item["updated_at"], row["updated_at"])

    op.execute(table.delete())
    with op.batch_alter_table('commit_analysis', schema=None) as batch_op:
        batch_op.drop_constraint('uq_analysis_key', type_='unique')
        batch_op.drop_column('language')
        batch_op.create_unique_constraint('uq_analysis_key', ['commit_id', 'model', 'prompt_version'])
    if merged:
        new = sa.table("commit_analysis", sa.column("commit_id", sa.Integer), sa.column("model", sa.String),
                       sa.column("prompt_version", sa.String), sa.column("analysis", sa.JSON),
                       sa.column("fallback", sa.Boolean), sa.column("prompt_tokens", sa.Integer),
                       sa.column("completion_tokens", sa.Integer), sa.column("created_at", sa.DateTime(timezone=True)),
                       sa.column("updated_at", sa.DateTime(timezone=True)))
        op.bulk_insert(new, list(merged.values()))


def downgrade() -> None:
    bind = op.get_bind()
    table = sa.table("commit_analysis", sa.column("id", sa.Integer), sa.column("commit_id", sa.Integer),
                     sa.column("model", sa.String), sa.column("prompt_version", sa.String),
                     sa.column("analysis", sa.JSON), sa.column("fallback", sa.Boolean),
                     sa.column("prompt_tokens", sa.Integer), sa.column("completion_tokens", sa.Integer),
                     sa.column("created_at", sa.DateTime(timezone=True)), sa.column("updated_at", sa.DateTime(timezone=True)))
    rows = bind.execute(sa.select(table).order_by(table.c.id)).mappings().all()
    split = []
    for row in rows:
        data = _json(row["analysis"])
        for language, texts in (data.get("texts") or {}).items():
            one = {"change_type": data.get("change_type"), "importance": data.get("importance"), **texts,
                   "language": language, "model": data.get("model", row["model"]),
                   "prompt_version": row["prompt_version"], "fallback": bool(data.get("fallback")),
                   "fallback_reason": data.get("fallback_reason"), "prompt_tokens": 0, "completion_tokens": 0}
            split.append({"commit_id": row["commit_id"], "language": language, "model": row["model"],
                          "prompt_version": row["prompt_version"], "analysis": one, "fallback": row["fallback"],
                          "prompt_tokens": row["prompt_tokens"], "completion_tokens": row["completion_tokens"],
                          "created_at": row["created_at"], "updated_at": row["updated_at"]})
    op.execute(table.delete())
    with op.batch_alter_table('commit_analysis', schema=None) as batch_op:
        batch_op.drop_constraint('uq_analysis_key', type_='unique')
        batch_op.add_column(sa.Column('language', sa.String(length=5), nullable=False, server_default='en'))
        batch_op.create_unique_constraint('uq_analysis_key', ['commit_id', 'language', 'model', 'prompt_version'])
    if split:
        old = sa.table("commit_analysis", sa.column("commit_id", sa.Integer), sa.column("language", sa.String),
                       sa.column("model", sa.String), sa.column("prompt_version", sa.String),
                       sa.column("analysis", sa.JSON), sa.column("fallback", sa.Boolean),
                       sa.column("prompt_tokens", sa.Integer), sa.column("completion_tokens", sa.Integer),
                       sa.column("created_at", sa.DateTime(timezone=True)),
                       sa.column("updated_at", sa.DateTime(timezone=True)))
        op.bulk_insert(old, split)
