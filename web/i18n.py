"""The UI's own words in English and Chinese (configuration labels come from `Label.get`)."""

from __future__ import annotations

LOCALES = ("en", "zh")

STRINGS: dict[str, dict[str, str]] = {
    "app": {"en": "CRM", "zh": "客户管理"},
    "dashboards": {"en": "Dashboards", "zh": "仪表板"},
    "no_dashboards": {"en": "No dashboard is shared with your roles.",
                      "zh": "没有与您的角色共享的仪表板。"},
    "widget_unavailable": {"en": "You may not see the data of this widget.",
                           "zh": "您无权查看此组件的数据。"},
    "export_csv": {"en": "Export CSV", "zh": "导出 CSV"},
    "clear_filters": {"en": "Clear filters", "zh": "清除筛选"},
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
    # the kanban board (web/kanban.py)
    "board": {"en": "Board", "zh": "看板"},
    "list_view": {"en": "List", "zh": "列表"},
    "board_hint": {"en": "Drag a card to another column, or pick a step on the card.",
                   "zh": "将卡片拖到其他列，或在卡片上选择操作。"},
    "no_cards": {"en": "Nothing here.", "zh": "暂无记录。"},
    "board_more": {"en": "Showing the first {n}.", "zh": "仅显示前 {n} 条。"},
    "move": {"en": "Move", "zh": "移动"},
    "move_to": {"en": "Move to", "zh": "移动到"},
    "moved": {"en": "“{title}” moved to {state}.", "zh": "“{title}”已移至“{state}”。"},
    "move_refused": {"en": "“{title}” was not moved:", "zh": "“{title}”未能移动："},
    "open_record": {"en": "Open the record to correct it.", "zh": "打开记录进行修改。"},
    "choose_move": {"en": "Choose where to move the card.", "zh": "请选择要移动到的位置。"},
    "choose_transition": {"en": "Several steps lead from {source} to {target}. "
                                "Choose one for “{title}”:",
                          "zh": "从“{source}”到“{target}”有多个操作，请为“{title}”选择一个："},
    "unknown_state": {"en": "There is no column “{state}”.", "zh": "没有“{state}”这一列。"},
    "no_transition_to": {"en": "No step leads from {source} to {target}.",
                         "zh": "没有从“{source}”到“{target}”的流程操作。"},
    "no_permitted_transition_to": {"en": "You may not move this record from {source} to "
                                         "{target}.",
                                   "zh": "您无权将此记录从“{source}”移到“{target}”。"},
    # owner change and deletion on the record page (web/record_actions.py)
    "manage": {"en": "Owner and deletion", "zh": "负责人与删除"},
    "change_owner": {"en": "Change owner", "zh": "更改负责人"},
    "owner_changed": {"en": "The owner was changed.", "zh": "负责人已更改。"},
    "delete": {"en": "Delete", "zh": "删除"},
    "delete_confirm": {"en": "Delete “{title}”? It disappears from lists, searches and boards.",
                       "zh": "确定删除“{title}”吗？删除后它将不再出现在列表、搜索和看板中。"},
    "delete_confirm_button": {"en": "Yes, delete", "zh": "确认删除"},
    "deleted": {"en": "{entity} “{title}” was deleted.", "zh": "{entity}“{title}”已删除。"},
    "delete_refused": {"en": "This record cannot be deleted: {reason}",
                       "zh": "无法删除此记录：{reason}"},
    # live form rules and the reference picker (web/forms.py, static/forms.js)
    "session_ended": {"en": "Your session has ended. Sign in again.",
                      "zh": "会话已结束，请重新登录。"},
    "picker_placeholder": {"en": "Type to search", "zh": "输入以搜索"},
    "picker_id_hint": {"en": "Enter the record's ID.", "zh": "请输入记录编号（ID）。"},
    "picker_browse": {"en": "Find it in the list", "zh": "在列表中查找"},
    "picker_no_match": {"en": "No matching records.", "zh": "没有匹配的记录。"},
    "picker_count": {"en": "{n} matches; use the arrow keys and Enter to choose.",
                     "zh": "找到 {n} 条，用方向键和回车键选择。"},
    "picker_failed": {"en": "The search failed. Try again.", "zh": "搜索失败，请重试。"},
    # the lines editor of a form and the related lists of a record page (web/lines_editor.py,
    # web/related.py)
    "lines_add": {"en": "Add line", "zh": "添加明细行"},
    "lines_remove": {"en": "Remove", "zh": "删除"},
    "lines_hint": {"en": "Fill in an empty row to add a line; rows left empty are ignored. "
                         "Tick “Remove” to delete a line when saving.",
                   "zh": "在空行中填写即可添加明细行，留空的行将被忽略。勾选“删除”可在保存时删除该行。"},
    "lines_none": {"en": "No lines yet.", "zh": "暂无明细行。"},
    "lines_added": {"en": "A line was added.", "zh": "已添加一行。"},
    "lines_removed": {"en": "The line will be removed when you save.",
                      "zh": "保存后将删除该行。"},
    "related_new": {"en": "New", "zh": "新建"},
    "total_one": {"en": "1 record", "zh": "共 1 条记录"},
    "related_see_all": {"en": "See all", "zh": "查看全部"},
    "related_none": {"en": "None yet.", "zh": "暂无。"},
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
