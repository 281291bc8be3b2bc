"""The what-if panel (``panel``, ``bars``) and, Textual-free beside it, the form it edits
(``form``), the form judged (``assess``) and remembered between runs (``persist``)."""
