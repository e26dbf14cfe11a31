"""Mail (docs/mail.md): parse -> store (links, threads, attachments) -> fetch (IMAP) / imports
(.eml, .mbox) -> timeline (reading with permissions) -> send (SMTP from a record)."""
