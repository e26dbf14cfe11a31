"""Messages for end users, in English and Chinese.

A message is a key plus parameters until it reaches a person; `text(key, locale, **params)`
renders it in that person's language.
"""

from __future__ import annotations

MESSAGES: dict[str, dict[str, str]] = {
    "required": {"en": "is required", "zh": "必填"},
    "unknown_field": {"en": "is not a field of {entity}", "zh": "不是{entity}的字段"},
    "system_field": {"en": "is set by the system", "zh": "由系统设置，不能修改"},
    "not_writable": {"en": "is calculated and cannot be set", "zh": "由系统计算，不能修改"},
    "state_field": {"en": "changes only through a workflow transition",
                    "zh": "只能通过流程操作修改"},
    "read_only": {"en": "is read-only", "zh": "只读"},
    "owner_change": {"en": "you may not change the owner", "zh": "您无权更改负责人"},
    "not_text": {"en": "must be text", "zh": "必须是文本"},
    "too_long": {"en": "must be at most {n} characters", "zh": "最多{n}个字符"},
    "pattern": {"en": "does not have the expected format", "zh": "格式不正确"},
    "not_integer": {"en": "must be a whole number", "zh": "必须是整数"},
    "not_number": {"en": "must be a number", "zh": "必须是数字"},
    "too_many_digits": {"en": "must have at most {digits} digits before and {scale} after the "
                              "decimal point", "zh": "整数部分最多{digits}位，小数部分最多{scale}位"},
    "min": {"en": "must be at least {n}", "zh": "不能小于{n}"},
    "max": {"en": "must be at most {n}", "zh": "不能大于{n}"},
    "not_boolean": {"en": "must be true or false", "zh": "必须是是或否"},
    "not_date": {"en": "must be a date (YYYY-MM-DD)", "zh": "必须是日期（YYYY-MM-DD）"},
    "not_datetime": {"en": "must be a date and time (ISO 8601)", "zh": "必须是日期时间（ISO 8601）"},
    "not_email": {"en": "must be an email address", "zh": "必须是有效的邮箱地址"},
    "not_phone": {"en": "must be a phone number (digits, spaces, + - ( ), 5 to 32 characters)",
                  "zh": "必须是电话号码（数字、空格、+ - ( )，5至32个字符）"},
    "not_url": {"en": "must be an http or https address", "zh": "必须是 http 或 https 地址"},
    "not_option": {"en": "must be one of: {options}", "zh": "必须是以下之一：{options}"},
    "not_list": {"en": "must be a list", "zh": "必须是列表"},
    "not_currency": {"en": "must be an ISO 4217 currency code such as USD or CNY",
                     "zh": "必须是 ISO 4217 币种代码，如 USD 或 CNY"},
    "not_reference": {"en": "must be the id of a record", "zh": "必须是记录的编号"},
    "no_such_record": {"en": "refers to a record that does not exist",
                       "zh": "引用的记录不存在"},
    "not_unique": {"en": "must be unique; another record has this value",
                   "zh": "必须唯一，已有记录使用该值"},
    "not_unique_together": {"en": "the combination of {fields} must be unique",
                            "zh": "{fields}的组合必须唯一"},
    "not_lines": {"en": "must be a list of lines", "zh": "必须是明细行列表"},
    "bad_line_id": {"en": "line {id} is not a line of this record", "zh": "明细行{id}不属于此记录"},
    "rule_failed": {"en": "{rule}", "zh": "{rule}"},
    "invalid_fields": {"en": "{n} fields are invalid", "zh": "{n}个字段无效"},
    "invalid_field": {"en": "1 field is invalid", "zh": "1个字段无效"},
    "not_found": {"en": "{entity} {id} was not found", "zh": "未找到{entity} {id}"},
    "forbidden": {"en": "you may not {action} {entity}", "zh": "您无权{action}{entity}"},
    "version_required": {"en": "send the version you read (in the body or If-Match)",
                         "zh": "请提供读取时的版本号（请求体或 If-Match）"},
    "conflict": {"en": "the record was changed by someone else (now version {current})",
                 "zh": "记录已被他人修改（当前版本 {current}）"},
    "restricted": {"en": "{count} {entity} records refer to it", "zh": "有{count}条{entity}记录引用它"},
    "bad_parameter": {"en": "{detail}", "zh": "{detail}"},
}

ACTIONS = {
    "read": {"en": "read", "zh": "查看"}, "create": {"en": "create", "zh": "新建"},
    "update": {"en": "change", "zh": "修改"}, "delete": {"en": "delete", "zh": "删除"},
    "change_owner": {"en": "change the owner of", "zh": "更改负责人："},
}


def text(key: str, locale: str = "en", **params) -> str:
    """Render message `key` in `locale` (English when the locale has no text)."""
    texts = MESSAGES[key]
    template = texts.get(locale) or texts["en"]
    return template.format(**params)


class Message:
    """A message not yet rendered: a key and its parameters."""

    __slots__ = ("key", "params")

    def __init__(self, key: str, **params):
        self.key, self.params = key, params

    def render(self, locale: str = "en") -> str:
        params = {k: (v.get(locale) if hasattr(v, "get") and not isinstance(v, dict) else v)
                  for k, v in self.params.items()}
        return text(self.key, locale, **params)

    def __eq__(self, other) -> bool:
        return isinstance(other, Message) and (self.key, self.params) == (other.key, other.params)

    def __repr__(self) -> str:
        return f"Message({self.key!r}, {self.params!r})"

MESSAGES.update({
    "no_transition": {"en": "{entity} has no transition '{name}'", "zh": "{entity}没有操作“{name}”"},
    "transition_role": {"en": "your role may not {label} this record",
                        "zh": "您的角色不能对此记录执行“{label}”"},
    "transition_state": {"en": "'{label}' is not possible while the record is {state}",
                         "zh": "记录处于“{state}”状态，不能执行“{label}”"},
    "guard_failed": {"en": "'{label}' is not allowed now: {guard} is not true",
                     "zh": "现在不能执行“{label}”：条件 {guard} 不成立"},
    "guard_error": {"en": "'{label}' could not check its condition {guard}: {detail}",
                    "zh": "“{label}”无法检查条件 {guard}：{detail}"},
    "self_approval": {"en": "you moved this record to its current state; someone else must "
                             "{label} it", "zh": "此记录由您提交，需由他人执行“{label}”"},
    "create_failed": {"en": "'{label}' could not create {entity}: {detail}",
                      "zh": "“{label}”无法新建{entity}：{detail}"},
})
