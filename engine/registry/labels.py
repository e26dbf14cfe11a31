"""Bilingual labels: a text per locale, falling back to English, then to the identifier."""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping

DEFAULT_LOCALE = "en"


def words(identifier: str) -> str:
    """Turn an identifier into words: close_date -> "Close date"."""
    text = identifier.replace("_", " ").strip()
    return text[:1].upper() + text[1:]


@dataclass(frozen=True)
class Label:
    """A label in every locale it was given in, with the identifier as the last fallback."""

    texts: Mapping[str, str]
    fallback: str = ""

    @classmethod
    def of(cls, value, identifier: str = "") -> "Label":
        """Build a label from YAML (a text or a map of locale to text)."""
        if isinstance(value, Label):
            return value
        if isinstance(value, str):
            texts = {DEFAULT_LOCALE: value}
        elif isinstance(value, Mapping):
            texts = {k: v for k, v in value.items() if isinstance(v, str)}
        else:
            texts = {}
        return cls(MappingProxyType(texts), words(identifier) if identifier else "")

    def get(self, locale: str = DEFAULT_LOCALE) -> str:
        """Return the text for `locale`: that locale, else English, else the identifier."""
        return self.texts.get(locale) or self.texts.get(DEFAULT_LOCALE) or self.fallback

    def as_dict(self, locales=("en", "zh")) -> dict[str, str]:
        return {loc: self.get(loc) for loc in locales}

    def __str__(self) -> str:
        return self.get()

    def __bool__(self) -> bool:
        return bool(self.texts or self.fallback)
