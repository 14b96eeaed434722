"""Labels of the daily report (Markdown and JSON), change types and importances, in en and zh.

zh values carry no English words so a Chinese report reads as Chinese; the importance
marks (🔴🟡🟢) sit inside the values because their spacing differs by language.
"""
from __future__ import annotations

CATALOG: dict[str, dict[str, str]] = {
    # Page structure
    "report.title": {"en": "Daily report ({date})", "zh": "每日更新报告（{date}）"},
    "report.section.stats": {"en": "📊 Summary", "zh": "📊 统计摘要"},
    "report.section.commits": {"en": "🕒 Commits", "zh": "🕒 提交列表"},
    "report.section.toc": {"en": "📋 Contents", "zh": "📋 目录"},
    "report.group.high": {"en": "🔴 High importance ({n})", "zh": "🔴 高重要度变更（{n}）"},
    "report.group.medium": {"en": "🟡 Medium importance ({n})", "zh": "🟡 中重要度变更（{n}）"},
    "report.group.low": {"en": "🟢 Low importance ({n})", "zh": "🟢 低重要度变更（{n}）"},
    "report.group.merge": {"en": "🔀 Merge commits ({n})", "zh": "🔀 合并提交（{n}）"},
    # Notes at the top of the report
    "report.heuristic_note": {
        "en": "ℹ️ This report was produced without an LLM: every analysis below comes from heuristics.",
        "zh": "ℹ️ 本报告未使用大模型生成：以下分析均来自启发式规则。",
    },
    "report.model_note": {"en": "🤖 Analysed by {model}.", "zh": "🤖 分析模型：{model}。"},
    "report.fallback_summary": {
        "en": "⚠️ {n} of {total} analyses fell back to heuristics because the LLM call failed.",
        "zh": "⚠️ {total} 个分析中有 {n} 个因大模型调用失败而改用启发式分析。",
    },
    "report.tokens": {
        "en": "🧮 Tokens used: {prompt} prompt + {completion} completion = {total}.",
        "zh": "🧮 词元用量：提示 {prompt} + 生成 {completion} = {total}。",
    },
    "report.failed": {
        "en": "❌ Fetching commits failed for this day: {error}",
        "zh": "❌ 本日提交获取失败：{error}",
    },
    "report.failed_unknown": {"en": "unknown error", "zh": "未知错误"},
    "report.empty": {"en": "No new commits on {date}.", "zh": "{date} 没有新的提交。"},
    # Stats line: "15 commits | 🔴 high 7 | 🟡 medium 4 | 🟢 low 4"
    "report.stats.commits": {"en": "{n} commits", "zh": "本日共 {n} 个提交"},
    "report.stats.commits_one": {"en": "{n} commit", "zh": "本日共 {n} 个提交"},
    "report.stats.high": {"en": "🔴 high {n}", "zh": "🔴高 {n}"},
    "report.stats.medium": {"en": "🟡 medium {n}", "zh": "🟡中 {n}"},
    "report.stats.low": {"en": "🟢 low {n}", "zh": "🟢低 {n}"},
    "report.stats.merge": {"en": "🔀 merge {n}", "zh": "🔀合并 {n}"},
    # Commit table
    "report.table.time": {"en": "Time ({tz})", "zh": "提交时间（{tz}）"},
    "report.table.author": {"en": "Author", "zh": "作者"},
    "report.table.message": {"en": "Message", "zh": "提交信息"},
    "report.table.link": {"en": "Link", "zh": "链接"},
    # One commit's section; every analysed commit shows every field, in this order
    "report.field.sha": {"en": "🔖 SHA", "zh": "🔖 提交编号"},
    "report.field.change_type": {"en": "🎯 Change type", "zh": "🎯 变更类型"},
    "report.field.importance": {"en": "⚡ Importance", "zh": "⚡ 重要程度"},
    "report.field.summary": {"en": "📋 Summary", "zh": "📋 变更摘要"},
    "report.field.impact_scope": {"en": "🧭 Impact scope", "zh": "🧭 影响范围"},
    "report.field.insight": {"en": "🔍 Technical insight", "zh": "🔍 技术洞察"},
    "report.field.architecture": {"en": "Architecture", "zh": "架构影响"},
    "report.field.performance": {"en": "Performance", "zh": "性能影响"},
    "report.field.security": {"en": "Security", "zh": "安全考虑"},
    "report.field.risks": {"en": "⚠️ Risks", "zh": "⚠️ 潜在风险"},
    "report.field.recommendations": {"en": "💡 Recommendations", "zh": "💡 关注建议"},
    "report.colon": {"en": ": ", "zh": "："},
    "report.none": {"en": "None", "zh": "无"},
    "report.view_commit": {"en": "View commit", "zh": "查看提交"},
    "report.importance_reason": {"en": "{importance} — {reason}", "zh": "{importance}——{reason}"},
    "report.fallback_note": {
        "en": "⚠️ LLM analysis failed ({reason}); heuristic analysis shown.",
        "zh": "⚠️ 大模型分析失败（{reason}），以下为启发式分析。",
    },
    "report.fallback_unknown": {"en": "unknown reason", "zh": "原因未知"},
    "report.merge_note": {"en": "🔀 Merge commit: listed, not analysed.", "zh": "🔀 合并提交：仅列出，不做分析。"},
    "report.unanalyzed_note": {"en": "⏸️ Not analysed.", "zh": "⏸️ 未做分析。"},
    "report.no_message": {"en": "(no commit message)", "zh": "（无提交信息）"},
    # Importances
    "importance.high": {"en": "High", "zh": "高"},
    "importance.medium": {"en": "Medium", "zh": "中"},
    "importance.low": {"en": "Low", "zh": "低"},
    # Change types (newsletter.analysis.CHANGE_TYPES)
    "change_type.feature": {"en": "Feature", "zh": "功能增强"},
    "change_type.fix": {"en": "Bug fix", "zh": "缺陷修复"},
    "change_type.performance": {"en": "Performance", "zh": "性能优化"},
    "change_type.refactor": {"en": "Refactoring", "zh": "代码重构"},
    "change_type.security": {"en": "Security", "zh": "安全修复"},
    "change_type.docs": {"en": "Documentation", "zh": "文档更新"},
    "change_type.test": {"en": "Tests", "zh": "测试"},
    "change_type.ci": {"en": "CI", "zh": "持续集成"},
    "change_type.build": {"en": "Build", "zh": "构建"},
    "change_type.dependencies": {"en": "Dependencies", "zh": "依赖更新"},
    "change_type.style": {"en": "Code style", "zh": "代码风格"},
    "change_type.chore": {"en": "Maintenance", "zh": "日常维护"},
    "change_type.revert": {"en": "Revert", "zh": "回滚"},
    "change_type.merge": {"en": "Merge", "zh": "合并"},
    "change_type.other": {"en": "Other", "zh": "其他"},
}
