"""One module per `polymm` subcommand; each exposes ``register(subparsers)`` and ``run(args) -> int``."""
