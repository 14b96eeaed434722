"""Strings of the web archive (report pages, per-repository index, Atom feed) in en and zh.

The report itself reuses the report.*, importance.* and change_type.* labels.
"""
from __future__ import annotations

CATALOG: dict[str, dict[str, str]] = {
    # Report page
    "archive.other_language": {"en": "Also in {language}", "zh": "其他语言：{language}"},
    "archive.missing_language": {
        "en": "This report is not available in {asked}; showing the {shown} report.",
        "zh": "本报告没有{asked}版本，以下为{shown}版本。",
    },
    "archive.all_days": {"en": "All reports of {repo}", "zh": "{repo} 的全部报告"},
    "archive.to_contents": {"en": "↑ Back to contents", "zh": "↑ 返回目录"},
    "archive.failed_title": {"en": "This day's report failed", "zh": "本日报告生成失败"},
    # Index of days
    "archive.index_title": {"en": "{repo}: daily reports", "zh": "{repo}：每日报告"},
    "archive.index_lead": {"en": "Every analysed day, newest first.", "zh": "所有已分析的日期，最新的在前。"},
    "archive.no_reports": {"en": "No reports for this repository yet.", "zh": "该仓库暂时还没有报告。"},
    "archive.col.date": {"en": "Date", "zh": "日期"},
    "archive.col.stats": {"en": "Commits", "zh": "提交统计"},
    "archive.col.languages": {"en": "Read in", "zh": "阅读"},
    "archive.failed_day": {"en": "❌ fetching failed", "zh": "❌ 获取失败"},
    "archive.older": {"en": "Older days →", "zh": "更早的日期 →"},
    "archive.newest": {"en": "← Newest days", "zh": "← 最新的日期"},
    "archive.feed": {"en": "Atom feed", "zh": "Atom 订阅源"},
    "archive.no_report_title": {"en": "No report for this day", "zh": "这一天没有报告"},
    "archive.no_report": {"en": "There is no report of {repo} for {day}. The nearest days that have one:",
                          "zh": "{repo} 在 {day} 没有报告。最近有报告的日子："},
    "archive.subscribe": {"en": "Get {repo} in your inbox every day", "zh": "每天把 {repo} 的提交发到你的邮箱"},
    "archive.table_after": {"en": "Every commit by time", "zh": "按时间排列的全部提交"},
    # Atom feed
    "archive.feed_title": {"en": "Repo Daily: {repo}", "zh": "Repo Daily：{repo}"},
    "archive.feed_subtitle": {"en": "Daily analysed commits of {repo}.", "zh": "{repo} 每日提交分析。"},
}
