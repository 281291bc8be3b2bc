"""``vramtop launch``: start an engine where it fits, admitted node-wide through reservations
(``reservations``), reading the engine's own flags (``engine_args``)."""
