"""planeai secret set|get|list|delete: provider keys in the OS keyring (or the opted-in file).

A value is read from a hidden prompt or, with --stdin, from standard input: never from argv,
where `ps` and shell history would show it. `get` prints a value only with --show.
"""

from __future__ import annotations

import argparse
import sys

from planeai.cli.common import context, print_json, table
from planeai.errors import ValidationError


def _secrets():
    from planeai.services.context import project_from_cwd
    from planeai.services.secrets import Secrets

    ctx = context()
    # the current repo's trusted provider files count too; elsewhere bundled and user ones
    project = project_from_cwd(ctx.store)
    return Secrets(ctx.config, ctx.locations), ctx.manager.registry(project)


def _ref(args, registry):
    from planeai.services.secrets import check_ref

    return check_ref(registry, args.provider, args.name)


def _read_value(args, what: str) -> str:
    if args.stdin:
        data = sys.stdin.buffer.read()
        try:
            value = data.decode("utf-8")
        except UnicodeDecodeError:
            raise ValidationError("the value on stdin is not UTF-8 text") from None
        # one trailing line end is how `echo` and editors end the line, not part of the key
        return value[:-2] if value.endswith("\r\n") else value.removesuffix("\n")
    import getpass

    try:
        open("/dev/tty").close()
    except OSError:
        raise ValidationError("no terminal to prompt on; pass --stdin and give the value on "
                              "standard input") from None
    return getpass.getpass(f"{what} (input hidden): ")


def set_(args: argparse.Namespace) -> int:
    secrets, registry = _secrets()
    ref = _ref(args, registry)
    store = secrets.store  # no keyring: said before asking for the value
    value = _read_value(args, f"{ref.provider} {ref.name}")
    secrets.set(ref, value)
    print(f"set {ref.provider} {ref.name} in {store.where}")
    return 0


def get(args: argparse.Namespace) -> int:
    secrets, registry = _secrets()
    ref = _ref(args, registry)
    value = secrets.get(ref)
    if args.show:
        if value is None:
            raise ValidationError(f"{ref.provider} {ref.name} is not set in {secrets.where}")
        sys.stdout.write(value + "\n")
        return 0
    state = "is set" if value is not None else "is not set"
    print(f"{ref.provider} {ref.name} {state} in {secrets.where}")
    return 0


def list_(args: argparse.Namespace) -> int:
    secrets, registry = _secrets()
    refs = secrets.list(registry)
    if args.json:
        print_json([{"provider": r.provider, "name": r.name} for r in refs])
        return 0
    if not refs:
        print(f"no secrets set in {secrets.where}")
        return 0
    print(table([["PROVIDER", "NAME"]] + [[r.provider, r.name] for r in refs]))
    return 0


def delete(args: argparse.Namespace) -> int:
    secrets, registry = _secrets()
    ref = _ref(args, registry)
    secrets.delete(ref)
    print(f"deleted {ref.provider} {ref.name} from {secrets.where}")
    return 0
