"""Records: the one way to read and write data (permissions, checks, audit)."""
