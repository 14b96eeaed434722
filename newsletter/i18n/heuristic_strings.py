"""Every sentence the heuristic analyzer writes, in en and zh; fields are filled by `t`.

The heuristic analyses a commit from its metadata alone, so its sentences say where they come from.
"""
from __future__ import annotations

CATALOG: dict[str, dict[str, str]] = {
    "heuristic.summary": {
        "en": '{Label} commit by {author}: “{subject}” ({files}, +{add:,}/-{dele:,}); summarised from the commit metadata, not from reading the code.',
        "zh": '{author} 提交的{label}变更：“{subject}”（{files}，+{add:,}/-{dele:,}）；依据提交元数据概括，未分析代码。',
    },
    "heuristic.summary_bot": {
        "en": 'Automated {label} commit by {author}: “{subject}”.',
        "zh": '{author} 自动提交的{label}变更：“{subject}”。',
    },
    "heuristic.summary_merge": {
        "en": 'Merges {n} commits (merge by {author}): “{subject}”.',
        "zh": '合并了 {n} 个提交（由 {author} 合并）：“{subject}”。',
    },
    "heuristic.reason_bot": {
        "en": 'Automated commit by {author}, rated low as routine maintenance.',
        "zh": '由自动化账号 {author} 提交，属于常规维护，评为低。',
    },
    "heuristic.reason_merge": {
        "en": 'A merge commit only combines changes that are analysed on their own.',
        "zh": '合并提交只是汇合各自单独分析的变更。',
    },
    "heuristic.reason_breaking": {
        "en": 'The message marks a breaking change, so dependants may have to adapt.',
        "zh": '提交信息标注了破坏性变更，依赖方可能需要适配。',
    },
    "heuristic.reason_typo": {
        "en": 'A typo or wording fix does not change behaviour.',
        "zh": '错别字或措辞修正不会改变行为。',
    },
    "heuristic.reason_security": {
        "en": 'The message points to a security fix ({terms}).',
        "zh": '提交信息指向安全修复（{terms}）。',
    },
    "heuristic.reason_security_type": {
        "en": 'The commit is labelled as security work.',
        "zh": '该提交被标注为安全相关工作。',
    },
    "heuristic.reason_docs": {
        "en": 'Documentation-only change with no effect on runtime behaviour.',
        "zh": '仅涉及文档，不影响运行时行为。',
    },
    "heuristic.reason_style": {
        "en": 'Formatting or style change with no effect on behaviour.',
        "zh": '仅为格式或代码风格调整，不影响行为。',
    },
    "heuristic.reason_test": {
        "en": 'Test-only change that does not alter shipped code.',
        "zh": '仅涉及测试，不改变发布的代码。',
    },
    "heuristic.reason_ci": {
        "en": 'CI configuration change that does not alter shipped code.',
        "zh": '仅涉及 CI 配置，不改变发布的代码。',
    },
    "heuristic.reason_chore": {
        "en": 'Routine maintenance with no expected behavioural change.',
        "zh": '常规维护，预计不改变行为。',
    },
    "heuristic.reason_dependencies": {
        "en": 'Routine dependency update with no security signal in the message.',
        "zh": '常规依赖更新，提交信息中没有安全相关迹象。',
    },
    "heuristic.reason_core": {
        "en": '{Label} change touching core paths ({paths}).',
        "zh": '触及核心路径（{paths}）的{label}变更。',
    },
    "heuristic.reason_large": {
        "en": 'Large {label} change: {lines} in {files} across {modules}.',
        "zh": '规模较大的{label}变更：{modules}、{files}，共 {lines}。',
    },
    "heuristic.reason_sized": {
        "en": '{Label} change of moderate size ({lines} in {files}).',
        "zh": '中等规模的{label}变更（{files}，{lines}）。',
    },
    "heuristic.reason_refactor": {
        "en": 'Refactoring can shift behaviour even without new features ({lines} in {files}).',
        "zh": '重构即使不加新功能也可能改变行为（{files}，{lines}）。',
    },
    "heuristic.reason_revert": {
        "en": 'Reverting earlier work changes shipped behaviour back.',
        "zh": '回滚先前的改动会使已发布的行为发生回退。',
    },
    "heuristic.reason_build": {
        "en": 'Build configuration change ({lines} in {files}).',
        "zh": '构建配置变更（{files}，{lines}）。',
    },
    "heuristic.reason_other_notable": {
        "en": 'Unclassified change of notable size ({lines} in {files}).',
        "zh": '未归类但规模较大的变更（{files}，{lines}）。',
    },
    "heuristic.reason_other_small": {
        "en": 'Small unclassified change ({lines} in {files}).',
        "zh": '未归类的小变更（{files}，{lines}）。',
    },
    "heuristic.arch_none": {
        "en": 'No file list is available, so the architectural impact cannot be judged from the metadata.',
        "zh": '没有文件列表，无法从元数据判断架构影响。',
    },
    "heuristic.arch_cross": {
        "en": 'Spans {n} modules ({modules}), so the change crosses module boundaries; inferred from file paths.',
        "zh": '涉及 {n} 个模块（{modules}），属于跨模块变更；依据文件路径推断。',
    },
    "heuristic.arch_files": {
        "en": 'Adds {added} and removes {removed} in {modules}; inferred from file paths.',
        "zh": '在 {modules} 中新增 {added}、删除 {removed}；依据文件路径推断。',
    },
    "heuristic.arch_added": {
        "en": 'Adds {added} in {modules}; inferred from file paths.',
        "zh": '在 {modules} 中新增 {added}；依据文件路径推断。',
    },
    "heuristic.arch_removed": {
        "en": 'Removes {removed} from {modules}; inferred from file paths.',
        "zh": '从 {modules} 中删除 {removed}；依据文件路径推断。',
    },
    "heuristic.arch_local": {
        "en": 'Contained in {modules}; no structural change is evident from file paths.',
        "zh": '集中在 {modules}；从文件路径看不出结构性变化。',
    },
    "heuristic.perf_yes": {
        "en": 'The message marks this as performance work; confirm the gain with a benchmark.',
        "zh": '提交信息表明这是性能优化；请用基准测试确认收益。',
    },
    "heuristic.perf_no": {
        "en": 'No performance-relevant change detected from paths or message.',
        "zh": '从路径和提交信息中未发现与性能相关的变更。',
    },
    "heuristic.sec_terms": {
        "en": 'The message mentions {terms}; review the fix and its test coverage carefully.',
        "zh": '提交信息提到 {terms}；请仔细审查修复及其测试覆盖。',
    },
    "heuristic.sec_type": {
        "en": 'The commit is labelled as security work; review it carefully.',
        "zh": '该提交被标注为安全相关工作；请仔细审查。',
    },
    "heuristic.sec_paths": {
        "en": 'Touches security-sensitive paths ({paths}), though the message names no security issue.',
        "zh": '触及安全敏感路径（{paths}），但提交信息未提及安全问题。',
    },
    "heuristic.sec_no": {
        "en": 'No security-relevant change detected from paths or message.',
        "zh": '从路径和提交信息中未发现与安全相关的变更。',
    },
    "heuristic.risk_breaking": {
        "en": 'Breaking change: dependent code or configuration may stop working until migrated.',
        "zh": '破坏性变更：依赖方的代码或配置在迁移前可能无法工作。',
    },
    "heuristic.risk_security": {
        "en": 'Security fix: an incomplete patch or a missing backport could leave users exposed.',
        "zh": '安全修复：补丁不完整或未向旧版本移植可能使用户继续暴露于风险。',
    },
    "heuristic.risk_large": {
        "en": 'A large change ({lines} in {files}) is hard to review thoroughly.',
        "zh": '大规模变更（{files}，{lines}）难以全面审查。',
    },
    "heuristic.risk_untested": {
        "en": 'No test files changed alongside this {label} change.',
        "zh": '此{label}变更未同时修改任何测试文件。',
    },
    "heuristic.risk_removed": {
        "en": 'Removes {removed}; callers of the removed code may break.',
        "zh": '删除了 {removed}；调用被删除代码的地方可能出错。',
    },
    "heuristic.risk_dependencies": {
        "en": 'Dependency updates can bring upstream behaviour changes.',
        "zh": '依赖更新可能带来上游的行为变化。',
    },
    "heuristic.risk_revert": {
        "en": 'Reverting may bring back the problem the original change addressed.',
        "zh": '回滚可能重新引入原改动所解决的问题。',
    },
    "heuristic.risk_bot": {
        "en": "Automated change; its correctness rests on the bot's configuration and CI.",
        "zh": '自动化变更；其正确性依赖机器人的配置和 CI。',
    },
    "heuristic.risk_merge": {
        "en": 'No risk beyond that of the merged commits themselves.',
        "zh": '除被合并的提交本身外，没有额外风险。',
    },
    "heuristic.risk_none": {
        "en": 'No specific risk is evident from the commit metadata.',
        "zh": '从提交元数据看不出特定风险。',
    },
    "heuristic.rec_breaking": {
        "en": 'Document the migration path in the release notes.',
        "zh": '在发布说明中写明迁移方法。',
    },
    "heuristic.rec_security": {
        "en": 'Release the fix promptly and check whether older versions need a backport.',
        "zh": '尽快发布修复，并确认旧版本是否需要移植补丁。',
    },
    "heuristic.rec_untested": {
        "en": 'Add or update tests that cover the change.',
        "zh": '补充或更新覆盖此变更的测试。',
    },
    "heuristic.rec_large": {
        "en": 'Review the change in smaller parts, module by module.',
        "zh": '按模块分批审查此变更。',
    },
    "heuristic.rec_dependencies": {
        "en": 'Check that CI passed and skim the upstream changelog before releasing.',
        "zh": '发布前确认 CI 通过并浏览上游变更日志。',
    },
    "heuristic.rec_performance": {
        "en": 'Benchmark before and after to confirm the improvement.',
        "zh": '在改动前后做基准测试以确认提升。',
    },
    "heuristic.rec_bot": {
        "en": 'No action needed beyond checking that CI passed.',
        "zh": '除确认 CI 通过外无需其他操作。',
    },
    "heuristic.rec_merge": {
        "en": 'See the analyses of the merged commits.',
        "zh": '请查看被合并提交各自的分析。',
    },
    "heuristic.rec_none": {
        "en": 'No action needed beyond the usual review.',
        "zh": '除常规审查外无需其他操作。',
    },
    "heuristic.no_subject": {
        "en": '(no commit message)',
        "zh": '（无提交信息）',
    },
    "heuristic.no_files": {
        "en": '(no file list)',
        "zh": '（无文件列表）',
    },
    "heuristic.unknown_author": {
        "en": 'an unknown author',
        "zh": '未知作者',
    },
    "heuristic.label.feature": {"en": 'feature', "zh": '新功能'},
    "heuristic.label.fix": {"en": 'bug-fix', "zh": '缺陷修复'},
    "heuristic.label.performance": {"en": 'performance', "zh": '性能'},
    "heuristic.label.refactor": {"en": 'refactoring', "zh": '重构'},
    "heuristic.label.security": {"en": 'security', "zh": '安全'},
    "heuristic.label.docs": {"en": 'documentation', "zh": '文档'},
    "heuristic.label.test": {"en": 'test', "zh": '测试'},
    "heuristic.label.ci": {"en": 'CI', "zh": 'CI'},
    "heuristic.label.build": {"en": 'build', "zh": '构建'},
    "heuristic.label.dependencies": {"en": 'dependency', "zh": '依赖'},
    "heuristic.label.style": {"en": 'style', "zh": '代码风格'},
    "heuristic.label.chore": {"en": 'maintenance', "zh": '维护'},
    "heuristic.label.revert": {"en": 'revert', "zh": '回滚'},
    "heuristic.label.merge": {"en": 'merge', "zh": '合并'},
    "heuristic.label.other": {"en": 'unclassified', "zh": '未归类'},
}
