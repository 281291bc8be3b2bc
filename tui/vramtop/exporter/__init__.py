"""Past one screen: the node's figures as Prometheus metrics (``vramtop export``, ``--export``)
and alerts without Prometheus (``vramtop watch``).

``candidates`` reads the headroom candidates of the config file and judges them; ``families``
turns one snapshot into metric families (pure); ``collector`` holds the latest snapshot for a
scrape; ``server`` serves it over HTTP(S); ``rules`` is the watch grammar and its episodes
(pure); ``watcher`` checks a rule on each sample; ``notify`` runs a command or posts a webhook.
The subcommands are ``cli.export`` and ``cli.watch``.
"""

DEFAULT_HOST = "127.0.0.1"  # loopback: another address only when the user names it
