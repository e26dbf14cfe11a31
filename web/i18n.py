"""The UI's own words in English and Chinese (configuration labels come from `Label.get`)."""

from __future__ import annotations

LOCALES = ("en", "zh")

STRINGS: dict[str, dict[str, str]] = {
    "app": {"en": "CRM", "zh": "客户管理"},
    "sign_in": {"en": "Sign in", "zh": "登录"},
    "sign_out": {"en": "Sign out", "zh": "退出登录"},
    "username": {"en": "Username", "zh": "用户名"},
    "password": {"en": "Password", "zh": "密码"},
    "wrong_login": {"en": "Wrong username or password.", "zh": "用户名或密码错误。"},
    "rate_limited": {"en": "Too many failed sign-ins. Try again in {n} seconds.",
                     "zh": "登录失败次数过多，请在 {n} 秒后重试。"},
    "language": {"en": "Language", "zh": "语言"},
    "switch": {"en": "Switch", "zh": "切换"},
    "home": {"en": "Home", "zh": "首页"},
    "nothing_readable": {"en": "There is nothing you may read yet.",
                         "zh": "您暂时没有可查看的内容。"},
    "search": {"en": "Search", "zh": "搜索"},
    "new": {"en": "New", "zh": "新建"},
    "next_page": {"en": "Next page", "zh": "下一页"},
    "first_page": {"en": "First page", "zh": "第一页"},
    "total": {"en": "{n} records", "zh": "共 {n} 条记录"},
    "no_records": {"en": "No records.", "zh": "没有记录。"},
    "save": {"en": "Save", "zh": "保存"},
    "create": {"en": "Create", "zh": "创建"},
    "cancel": {"en": "Cancel", "zh": "取消"},
    "edit": {"en": "Edit", "zh": "编辑"},
    "details": {"en": "Details", "zh": "详细信息"},
    "state": {"en": "State", "zh": "状态"},
    "actions": {"en": "Actions", "zh": "操作"},
    "history": {"en": "History", "zh": "历史记录"},
    "notifications": {"en": "Notifications", "zh": "通知"},
    "mark_all_read": {"en": "Mark all as read", "zh": "全部标为已读"},
    "no_notifications": {"en": "No notifications.", "zh": "暂无通知。"},
    "unread": {"en": "unread", "zh": "未读"},
    "no_history": {"en": "No changes recorded.", "zh": "没有修改记录。"},
    "fix_errors": {"en": "Please correct the marked fields.", "zh": "请更正标出的字段。"},
    "saved": {"en": "Saved.", "zh": "已保存。"},
    "yes": {"en": "Yes", "zh": "是"},
    "no": {"en": "No", "zh": "否"},
    "none": {"en": "(none)", "zh": "（无）"},
    "back_to_list": {"en": "Back to the list", "zh": "返回列表"},
    "version": {"en": "Version {n}", "zh": "版本 {n}"},
    "not_json": {"en": "must be valid JSON", "zh": "必须是有效的 JSON"},
    "action_create": {"en": "created", "zh": "创建"},
    "action_update": {"en": "changed", "zh": "修改"},
    "action_delete": {"en": "deleted", "zh": "删除"},
    "action_transition": {"en": "transition", "zh": "流程操作"},
    "field": {"en": "Field", "zh": "字段"},
    "before": {"en": "Before", "zh": "修改前"},
    "after": {"en": "After", "zh": "修改后"},
    "required": {"en": "required", "zh": "必填"},
    "error_400": {"en": "The request could not be understood.", "zh": "无法处理该请求。"},
    "error_403": {"en": "You may not do this.", "zh": "您无权执行此操作。"},
    "error_404": {"en": "This page does not exist.", "zh": "页面不存在。"},
    "error_405": {"en": "This method is not allowed here.", "zh": "此处不允许该请求方式。"},
    "error_409": {"en": "The record was changed by someone else.", "zh": "记录已被他人修改。"},
    "error_413": {"en": "The request is too large.", "zh": "请求内容过大。"},
    "error_500": {"en": "Something went wrong on the server.", "zh": "服务器出错了。"},
    "bad_csrf": {"en": "The form has expired. Go back, reload the page and try again.",
                 "zh": "表单已过期，请返回并刷新页面后重试。"},
    "error": {"en": "Error", "zh": "错误"},
    "id": {"en": "ID", "zh": "编号"},
    "created_at": {"en": "Created", "zh": "创建时间"},
    "updated_at": {"en": "Updated", "zh": "更新时间"},
    "created_by": {"en": "Created by", "zh": "创建人"},
    "updated_by": {"en": "Updated by", "zh": "更新人"},
    "owner": {"en": "Owner", "zh": "负责人"},
    "lang_en": {"en": "English", "zh": "English"},
    "lang_zh": {"en": "中文", "zh": "中文"},
}


def normalize(locale: str | None) -> str | None:
    """Return "en" or "zh" for a locale code (any zh* is Chinese), else None."""
    if not locale:
        return None
    locale = locale.strip().lower()
    if locale.startswith("zh"):
        return "zh"
    if locale.startswith("en"):
        return "en"
    return None


def t(key: str, locale: str = "en", **params) -> str:
    """The UI string `key` in `locale` (English when missing), with {params} filled in."""
    texts = STRINGS.get(key)
    if texts is None:
        return key
    text = texts.get(locale) or texts["en"]
    return text.format(**params) if params else text
