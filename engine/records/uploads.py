"""Uploaded files as record values: what a file is, judged from its bytes, and its limits.

An upload arrives as an `Upload` (a name a person chose and the bytes). Checking it against
its field gives a `PendingFile`: its metadata and bytes, not yet stored. The record service
stores pending files only once every value of the write has passed its checks, just before
its row is written (write the file first, then the row: a rolled-back write leaves at most an
unreferenced file, which the orphan sweep removes, never a row naming a missing file).

A file field's stored value is its metadata, a JSON object:
`{"key", "name", "size", "content_type", "sha256"}`; the key is the store's and is never
shown to clients (`public`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import unicodedata
from dataclasses import dataclass
from typing import Any, Mapping

import filetype

from engine.records.messages import MESSAGES, Message
from engine.records.values import Invalid
from engine.registry.contenttypes import TEXT, UNKNOWN

# never served as themselves: a browser would run them (served as application/octet-stream)
ACTIVE_TYPES = frozenset({"text/html", "image/svg+xml", "application/xhtml+xml", "text/xml",
                          "application/xml", "application/javascript", "text/javascript",
                          "application/x-shockwave-flash"})
NAME_LIMIT = 200
PUBLIC_KEYS = ("name", "size", "content_type", "sha256")

MESSAGES.update({
    "file_too_large": {"en": "must be at most {n} MB", "zh": "文件不能超过 {n} MB"},
    "file_empty": {"en": "is an empty file", "zh": "是空文件"},
    "file_type": {"en": "is a {found} file; allowed: {accept}",
                  "zh": "文件类型为 {found}，只允许：{accept}"},
    "file_input": {"en": "takes an uploaded file (multipart/form-data, or "
                         "{{\"name\", \"content_base64\"}} in JSON)",
                   "zh": "需要上传文件（multipart/form-data，或 JSON 中的 "
                         "{{\"name\", \"content_base64\"}}）"},
    "file_base64": {"en": "content_base64 is not valid base64",
                    "zh": "content_base64 不是有效的 base64"},
    "file_text": {"en": "a file cannot be set from text (files are not imported): upload it on "
                        "the record's page or through the API",
                  "zh": "文件不能通过文本设置（文件不能导入）：请在记录页面或通过 API 上传"},
    "file_missing": {"en": "the file's content is missing from the file store",
                     "zh": "文件内容已不在文件存储中"},
    "no_attachment": {"en": "attachment {id} was not found", "zh": "未找到附件 {id}"},
    "no_file": {"en": "the field holds no file", "zh": "该字段没有文件"},
})


@dataclass(frozen=True)
class Upload:
    """A file as a client sent it: the name it gave and the bytes."""

    name: str
    data: bytes


@dataclass(frozen=True)
class PendingFile:
    """A checked upload, not yet stored: its metadata without a key, and its bytes."""

    name: str
    size: int
    content_type: str
    sha256: str
    data: bytes = b""

    def metadata(self, key: str) -> dict[str, Any]:
        return {"key": key, "name": self.name, "size": self.size,
                "content_type": self.content_type, "sha256": self.sha256}


def sniff(data: bytes) -> str:
    """The content type the bytes show: a known binary signature, else text (UTF-8 without
    control characters), else application/octet-stream. The file's name plays no part."""
    found = filetype.guess_mime(data[:8192])
    if found:
        return found
    sample = data[:65536]
    if sample.startswith(b"\xef\xbb\xbf"):
        sample = sample[3:]
    try:
        # a multi-byte character cut at the sample's end is still text
        decoded = sample.decode("utf-8") if len(data) <= len(sample) else \
            sample.decode("utf-8", errors="ignore")
    except UnicodeDecodeError:
        return UNKNOWN
    if any(ord(c) < 32 and c not in "\t\n\r\f" for c in decoded):
        return UNKNOWN
    return TEXT


def clean_name(name: str | None) -> str:
    """A name to show and to offer on download: no folders, no control characters, at most
    NAME_LIMIT characters (the extension kept). Never used for a path on disk."""
    text = unicodedata.normalize("NFC", str(name or ""))
    text = re.split(r"[\\/]", text)[-1]
    text = "".join(c for c in text if unicodedata.category(c)[0] != "C").strip().strip(".")
    if len(text) > NAME_LIMIT:
        stem, dot, extension = text.rpartition(".")
        if dot and 0 < len(extension) <= 16:
            text = stem[:NAME_LIMIT - len(extension) - 1] + "." + extension
        else:
            text = text[:NAME_LIMIT]
    return text or "file"


def accepts(accept: tuple[str, ...], content_type: str) -> bool:
    """Whether a content type is in an `accept` list (entries may be `type/*`)."""
    if not accept:
        return True
    family = content_type.split("/")[0] + "/*"
    return content_type in accept or family in accept


def check_upload(upload: Upload, max_mb: float | None = None,
                 accept: tuple[str, ...] = ()) -> PendingFile:
    """Check an upload against a size limit and an accept list; raise Invalid."""
    data = upload.data
    if not data:
        raise Invalid(Message("file_empty"))
    if max_mb is not None and len(data) > max_mb * 1024 * 1024:
        raise Invalid(Message("file_too_large", n=_number(max_mb)))
    found = sniff(data)
    if not accepts(accept, found):
        raise Invalid(Message("file_type", found=found, accept=", ".join(accept)))
    return PendingFile(clean_name(upload.name), len(data), found,
                       hashlib.sha256(data).hexdigest(), data)


def upload_of(raw) -> Upload:
    """An Upload from a record value: an Upload, or a JSON object
    `{"name": ..., "content_base64": ...}`; anything else is refused (Invalid)."""
    if isinstance(raw, Upload):
        return raw
    if isinstance(raw, Mapping) and "content_base64" in raw:
        content = raw["content_base64"]
        if not isinstance(content, str):
            raise Invalid(Message("file_base64"))
        try:
            data = base64.b64decode(content.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError, ValueError):
            raise Invalid(Message("file_base64")) from None
        return Upload(str(raw.get("name") or ""), data)
    if isinstance(raw, (str, int, float)):
        raise Invalid(Message("file_text"))
    raise Invalid(Message("file_input"))


def same_file(raw, stored) -> bool:
    """Whether an input value is the stored file sent back as read (`{"name", "sha256"...}`
    from a GET): then the field is unchanged, so a read-modify-write client keeps its file."""
    return isinstance(raw, Mapping) and "content_base64" not in raw and \
        isinstance(stored, Mapping) and raw.get("sha256") == stored.get("sha256") and \
        raw.get("sha256") is not None


def public(metadata) -> dict | None:
    """A stored file's metadata as clients see it (without the store's key)."""
    if not isinstance(metadata, Mapping):
        return None
    return {k: metadata.get(k) for k in PUBLIC_KEYS}


def key_of(metadata) -> str | None:
    """The store key of a stored value, or None."""
    return metadata.get("key") if isinstance(metadata, Mapping) else None


def store_pending(store, values: dict) -> list[str]:
    """Store every PendingFile in `values` and put its metadata in its place; return the new
    keys (for the caller to remove if it gives the write up before its transaction)."""
    keys = []
    for name, value in values.items():
        if isinstance(value, PendingFile):
            key = store.put(value.data)
            keys.append(key)
            values[name] = value.metadata(key)
    return keys


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
