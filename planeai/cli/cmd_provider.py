"""planeai provider list / show / check."""

from __future__ import annotations

import argparse

from planeai.cli.common import context, print_json, table


def _registry(args: argparse.Namespace):
    from planeai.providers import load_registry, provider_dirs
    from planeai.services.context import repo_root_of

    return load_registry(provider_dirs(repo_root_of(".")))


def _warn(reg) -> None:
    import sys

    for err in reg.errors:
        print(f"planeai: warning: skipped {err}", file=sys.stderr)


def list(args: argparse.Namespace) -> int:  # noqa: A001
    reg = _registry(args)
    _warn(reg)
    provs = sorted(reg.providers.values(), key=lambda p: (p.group, p.name))
    if args.json:
        print_json([{"name": p.name, "display_name": p.display_name, "group": p.group,
                     "binary": p.binary, "installed": p.resolve_binary() is not None,
                     "default_variant": p.default_variant, "variants": sorted(p.variants),
                     "source": str(p.source)} for p in provs])
        return 0
    from planeai.core.agents import agent_name

    rows = [["NAME", "CLI", "INSTALLED", "VARIANTS"]]
    for p in provs:
        variants = ", ".join(agent_name(p.name, v) + ("*" if v == p.default_variant else "")
                             for v in p.variants) or "-"
        rows.append([p.name, p.display_name, "yes" if p.resolve_binary() else "no", variants])
    print(table(rows))
    print("(* default variant; `planeai session start KEY --provider claude-opus`)")
    return 0


def show(args: argparse.Namespace) -> int:
    reg = _registry(args)
    p, v = reg.resolve(args.name)
    if args.json:
        print_json({"name": p.name, "display_name": p.display_name, "binary": p.binary,
                    "command": list_(p.command), "yolo_flag": list_(p.yolo_flag),
                    "prompt_command": p.prompt_command if isinstance(p.prompt_command, str)
                    else list_(p.prompt_command),
                    "variant": v.name if v else None, "variant_args": list_(v.args) if v else [],
                    "secrets": list_(p.secrets), "skills_dir": p.skills_dir,
                    "instructions_file": p.instructions_file, "source": str(p.source)})
        return 0
    print(f"{p.display_name} ({p.name})  from {p.source}")
    print(f"  command:        {list_(p.command)}")
    print(f"  variant:        {v.name if v else '-'}  args {list_(v.args) if v else []}")
    print(f"  yolo flag:      {list_(p.yolo_flag)}")
    prompt_command = (p.prompt_command if isinstance(p.prompt_command, str)
                      else list_(p.prompt_command))
    print(f"  prompt_command: {prompt_command}")
    print(f"  secrets:        {', '.join(p.secrets) or '-'}")
    print(f"  skills:         {p.skills_dir or p.instructions_file or '-'}")
    for name, var in p.variants.items():
        star = "*" if name == p.default_variant else " "
        print(f"  {star} {p.name}-{name:<12} {var.description}")
    return 0


def list_(x) -> list:
    return [*x]


def check(args: argparse.Namespace) -> int:
    from planeai.services.provider_check import check as check_one

    reg = _registry(args)
    _warn(reg)
    names = [reg.resolve(args.name)[0].name] if args.name else sorted(reg.providers)
    from planeai.services.secrets import Secrets

    # a key stored with `planeai secret set` counts like one in the environment
    stored = Secrets(context().config, context().locations)
    results = [check_one(reg.get(n), stored=lambda p=reg.get(n): stored.stored_names(p))
               for n in names]
    if args.json:
        print_json([{"provider": r.provider, "binary": r.binary, "version": r.version,
                     "secrets_ok": r.secrets_ok, "missing_secrets": list_(r.missing_secrets),
                     "logged_in": r.logged_in, "reason": r.reason, "ok": r.ok}
                    for r in results])
    else:
        rows = [["PROVIDER", "BINARY", "VERSION", "USABLE"]]
        for r in results:
            rows.append([r.provider, r.binary or "not found", r.version or "-",
                         "yes" if r.ok else "no: " + (r.reason or "")])
        print(table(rows))
    # one named provider that is not usable is a failure; the overview never is
    return 1 if args.name and not results[0].ok else 0
