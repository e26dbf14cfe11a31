"""The data dictionary: a registry described for people (entities, fields, workflows, roles).

`model` builds what to show; `diagrams` writes the Mermaid sources of its pictures. The admin
pages and `crm docs` (web/dictionary.py) render both.
"""

from engine.dictionary.model import Dictionary, build_dictionary

__all__ = ["Dictionary", "build_dictionary"]
