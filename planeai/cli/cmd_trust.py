"""planeai trust [PATH] [--show | --revoke | --list] [--json]: a repo's `.planeai/` hooks and
provider files run commands, so they are used only once the user trusts that exact content."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from planeai.cli.common import context, print_json, table
from planeai.errors import ValidationError


def run(args: argparse.Namespace) -> int:
    from planeai.services import trust

    if args.list:
        if args.path:
            raise ValidationError("--list takes no PATH (it lists every trusted repo)")
        return _list(args)
    if args.revoke:
        return _revoke(args)
    root = trust.repo_for(args.path, context().store)
    content = trust.read_content(root)
    st = trust.state(content)
    if content.empty:
        if args.json:
            print_json({**trust.as_dict(content, st), "trusted": False})
        else:
            print(f"{Path(root) / '.planeai'} holds no hooks or provider files: nothing to trust")
        return 0
    was = st
    if not args.show:
        trust.trust(content)  # exactly what is printed below, not a later read
        st = trust.TRUSTED
    if args.json:
        print_json({**trust.as_dict(content, st), "trusted": st == trust.TRUSTED})
        return 0
    print(f"{Path(root) / '.planeai'}: {content.what} (sha256 {content.digest[:16]})")
    for line in trust.review_lines(content):
        print(line)
    again = f"planeai trust {shlex.quote(root)}"
    if not args.show:
        print(f"trusted: planeai uses them now; any change to them needs `{again}` again")
    elif was == trust.TRUSTED:
        print("state: trusted")
    elif was == trust.CHANGED:
        print(f"state: changed since you trusted it; not used until you run `{again}`")
    else:
        print(f"state: not trusted; not used until you run `{again}`")
    return 0


def _revoke(args: argparse.Namespace) -> int:
    from planeai.services import trust

    ref = args.path or "."
    # a repo that is gone can still be forgotten by the path it had
    root = trust.repo_for(ref, context().store) if Path(ref).expanduser().exists() else ref
    if trust.revoke(root):
        msg = f"no longer trusted: {root} (its hooks and provider files are not used)"
    elif Path(ref).expanduser().exists():
        msg = f"{root} was not trusted"
    else:
        raise ValidationError(f"{ref} does not exist and is not in the trust store "
                              "(see planeai trust --list)")
    if args.json:
        print_json({"path": str(root), "trusted": False})
    else:
        print(msg)
    return 0


def _list(args: argparse.Namespace) -> int:
    from planeai.services import trust

    rows = []
    for path, entry in sorted(trust.entries().items()):
        if not Path(path).is_dir():
            st = "gone"
        else:
            st = trust.state(trust.read_content(path))
            st = {trust.NOTHING: "nothing to run now"}.get(st, st)
        rows.append({"path": path, "state": st, "trusted_at": entry.get("trusted_at", ""),
                     "files": entry.get("files", [])})
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        print("no trusted repos (planeai trust PATH trusts one)")
        return 0
    print(table([["PATH", "STATE", "TRUSTED AT"]] +
                [[r["path"], r["state"], r["trusted_at"]] for r in rows]))
    return 0
