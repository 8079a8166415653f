"""Sub-commands that live beside the code they drive, each a module with
``add_parser(subparsers) -> None`` that registers one ``jaxnets <name>`` command and sets
``func`` to a ``(args) -> int`` function (exit code: 0 ok, 2 bad input, 1 failure).

:mod:`jaxnets.cli` adds every module listed in :data:`COMMANDS`. A module here imports only
argparse-level things at the top; heavy imports (jax, torch, scipy) happen inside ``func``.
"""

COMMANDS = (
    "jaxnets.commands.wider_eval",
    "jaxnets.commands.make_faces",
    "jaxnets.commands.real_photos",
    "jaxnets.commands.baselines",
    "jaxnets.commands.anchors_report",
    "jaxnets.commands.detect",
)


def bad_input(command: str, message: str) -> int:
    """Print the one line ``jaxnets <command>: <message>`` to stderr; return exit code 2."""
    import sys

    print(f"jaxnets {command}: {message}", file=sys.stderr)
    return 2
