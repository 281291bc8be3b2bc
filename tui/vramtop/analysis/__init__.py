"""Pure functions over a snapshot: no I/O, no Textual."""
