"""The sample shown on the home page: three commits of the seed day, as an email would show them."""
from __future__ import annotations

from typing import Any

_SAMPLE: list[dict[str, Any]] = [
    {
        "sha": "ebde0f6", "repo": "ai-dynamo/dynamo", "importance": "high",
        "title": "feat: event plane apis and nats implementation (#5624)",
        "type": {"en": "Feature", "zh": "功能"},
        "summary": {
            "en": "Adds a transport-agnostic publish/subscribe event plane to the runtime, with a MessagePack codec, a binary frame format and a NATS implementation.",
            "zh": "在 runtime 中新增与传输无关的发布/订阅事件层，包含 MessagePack 编解码、二进制帧格式以及 NATS 实现。",
        },
        "reason": {
            "en": "A new subsystem other runtime modules will build on.",
            "zh": "这是其他 runtime 模块将依赖的新子系统。",
        },
    },
    {
        "sha": "e6ad5bc", "repo": "ai-dynamo/dynamo", "importance": "medium",
        "title": "fix: incremental build for dynamo-llm (#5601)",
        "type": {"en": "Fix", "zh": "修复"},
        "summary": {
            "en": "Stops the build script from invalidating the whole crate on every build, so incremental builds work again.",
            "zh": "修正构建脚本每次都使整个 crate 失效的问题，恢复增量构建。",
        },
        "reason": {"en": "Developer-facing fix with no runtime effect.", "zh": "面向开发者的修复，不影响运行时行为。"},
    },
    {
        "sha": "912a4d4", "repo": "ai-dynamo/dynamo", "importance": "low",
        "title": "docs: add NIXL backend configuration and fix multiple typos (#5564)",
        "type": {"en": "Docs", "zh": "文档"},
        "summary": {
            "en": "Documents the NIXL backend options and fixes typos in help texts and comments.",
            "zh": "补充 NIXL 后端配置说明，并修正帮助文本和注释中的拼写错误。",
        },
        "reason": {"en": "Documentation only.", "zh": "仅涉及文档。"},
    },
]


def sample_commits(lang: str) -> list[dict[str, str]]:
    """The sample commits with their texts in lang."""
    out = []
    for item in _SAMPLE:
        out.append({
            **item,
            "type": item["type"].get(lang, item["type"]["en"]),
            "summary": item["summary"].get(lang, item["summary"]["en"]),
            "reason": item["reason"].get(lang, item["reason"]["en"]),
            "url": f"https://github.com/{item['repo']}/commit/{item['sha']}",
        })
    return out
