"""Strings of the personalized daily email (HTML and plain text) and its subject, in en and zh.

Commit fields, importances and change types reuse the report.*, importance.* and change_type.*
labels so the email and the web report name things the same way.
"""
from __future__ import annotations

CATALOG: dict[str, dict[str, str]] = {
    # Document and header
    "digest.title": {"en": "Repo Daily · {date}", "zh": "Repo Daily 每日提交 · {date}"},
    "digest.brand": {"en": "Repo Daily", "zh": "Repo Daily 每日提交"},
    "digest.heading": {"en": "Your commits of {date}", "zh": "{date} 的提交摘要"},
    "digest.sep": {"en": " · ", "zh": " · "},
    "digest.list_sep": {"en": ", ", "zh": "、"},
    # Subject: "[Repo Daily] 2026-01-24 · 3 repositories · 7 high"
    "digest.subject.prefix": {"en": "[Repo Daily]", "zh": "[Repo Daily]"},
    "digest.subject.repos": {"en": "{n} repositories", "zh": "{n} 个仓库"},
    "digest.subject.high": {"en": "{n} high", "zh": "{n} 个高重要度提交"},
    "digest.subject.medium": {"en": "{n} medium", "zh": "{n} 个中重要度提交"},
    "digest.subject.commits": {"en": "{n} commits", "zh": "{n} 个提交"},
    "digest.subject.commits_one": {"en": "{n} commit", "zh": "{n} 个提交"},
    "digest.subject.merges": {"en": "{n} merges", "zh": "{n} 个合并提交"},
    "digest.subject.merges_one": {"en": "{n} merge", "zh": "{n} 个合并提交"},
    "digest.subject.nothing": {"en": "nothing notable today", "zh": "今日无重要变更"},
    "digest.subject.failed": {"en": "{n} could not be fetched", "zh": "{n} 个仓库获取失败"},
    # Preheader (the inbox preview): the top highlight, "and 2 more", failures
    "digest.preheader.more": {"en": "and {n} more highlights", "zh": "另有 {n} 条要点"},
    "digest.highlights": {"en": "✨ Today's highlights", "zh": "✨ 今日要点"},
    # Summary line under the heading
    "digest.summary.shown": {"en": "{n} commits at or above your thresholds",
                             "zh": "{n} 个提交达到你设定的重要程度"},
    "digest.summary.shown_one": {"en": "{n} commit at or above your thresholds",
                                 "zh": "{n} 个提交达到你设定的重要程度"},
    "digest.summary.omitted": {"en": "{n} lower-importance left out", "zh": "{n} 个较低重要度的提交未列出"},
    "digest.summary.failed": {"en": "{n} could not be fetched", "zh": "{n} 个仓库获取失败"},
    "digest.summary.nothing": {"en": "Nothing notable today: no commit reached your thresholds.",
                               "zh": "今日无重要变更：没有提交达到你设定的重要程度。"},
    # One row per repository in the overview under the header
    "digest.overview.omitted": {"en": "{n} left out", "zh": "{n} 个未列出"},
    "digest.overview.none": {"en": "nothing at your threshold", "zh": "无达到重要程度的提交"},
    "digest.overview.no_commits": {"en": "no new commits", "zh": "没有新的提交"},
    "digest.overview.failed": {"en": "❌ fetch failed", "zh": "❌ 获取失败"},
    "digest.overview.no_report": {"en": "no report", "zh": "没有报告"},
    # Repository section
    "digest.view_in_browser": {"en": "View in browser", "zh": "在浏览器中查看"},
    "digest.full_report": {"en": "Read the full report", "zh": "查看完整报告"},
    "digest.no_report": {"en": "There is no report for this repository on {date}.",
                         "zh": "该仓库在 {date} 没有报告。"},
    "digest.nothing_at_threshold": {"en": "Nothing at or above your threshold ({threshold}) today.",
                                    "zh": "今日没有达到你设定重要程度（{threshold}）的提交。"},
    "digest.omitted": {"en": "{n} lower-importance commits left out.", "zh": "另有 {n} 个较低重要度的提交未列出。"},
    "digest.omitted_one": {"en": "{n} lower-importance commit left out.", "zh": "另有 {n} 个较低重要度的提交未列出。"},
    "digest.collapsed_note": {
        "en": "This email is long, so later commits are shown as one line each; the full report has every detail.",
        "zh": "本邮件内容较多，靠后的提交仅显示一行；完整报告包含全部细节。",
    },
    "digest.truncated_note": {
        "en": "This email is very long, so commits are shown as one line each and the last ones only in the "
              "full reports linked above.",
        "zh": "本邮件内容过多，提交仅显示一行，靠后的提交只在上方链接的完整报告中列出。",
    },
    # The weekly email (DigestRenderer(weekly=True)): the week's wording where the daily one says "today"
    "digest.week.title": {"en": "Repo Daily · week to {end}", "zh": "Repo Daily 每周提交 · {start} 至 {end}"},
    "digest.week.heading": {"en": "Your week: {start} – {end}", "zh": "{start} 至 {end} 的一周提交"},
    "digest.week.subject_prefix": {"en": "[Repo Daily] Week to {date}", "zh": "[Repo Daily] 截至 {date} 的一周"},
    "digest.week.subject_nothing": {"en": "nothing notable this week", "zh": "本周无重要变更"},
    "digest.week.summary_nothing": {"en": "Nothing notable this week: no commit reached your thresholds.",
                                    "zh": "本周无重要变更：没有提交达到你设定的重要程度。"},
    "digest.week.highlights": {"en": "✨ This week's highlights", "zh": "✨ 本周要点"},
    "digest.week.commits": {"en": "{n} commits this week", "zh": "本周共 {n} 个提交"},
    "digest.week.commits_one": {"en": "{n} commit this week", "zh": "本周共 {n} 个提交"},
    "digest.week.nothing_at_threshold": {"en": "Nothing at or above your threshold ({threshold}) this week.",
                                         "zh": "本周没有达到你设定重要程度（{threshold}）的提交。"},
    "digest.week.no_report": {"en": "There is no report for this repository this week.",
                              "zh": "该仓库本周没有报告。"},
    "digest.week.empty": {"en": "No new commits this week.", "zh": "本周没有新的提交。"},
    # "Daily reports: Mon 03-02 · Tue 03-03 · later days not built yet", each day a link to its report
    "digest.week.daily_reports": {"en": "Daily reports", "zh": "每日报告"},
    "digest.week.weekdays": {"en": "Mon Tue Wed Thu Fri Sat Sun", "zh": "周一 周二 周三 周四 周五 周六 周日"},
    "digest.week.day": {"en": "{weekday} {date}", "zh": "{weekday} {date}"},
    "digest.week.later": {"en": "later days not built yet", "zh": "之后的日报尚未生成"},
    "digest.week.archive": {"en": "All daily reports", "zh": "全部每日报告"},
    # Footer
    "digest.footer.why": {"en": "You are receiving this because {email} subscribed to {repos} at {site}.",
                          "zh": "你收到这封邮件，是因为 {email} 在 {site} 订阅了 {repos}。"},
    "digest.footer.preferences": {"en": "Change repositories and thresholds", "zh": "修改仓库与重要程度"},
    "digest.footer.unsubscribe": {"en": "Unsubscribe", "zh": "退订"},
}
