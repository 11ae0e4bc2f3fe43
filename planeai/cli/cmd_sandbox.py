"""planeai sandbox build / status: agent images and the containers agents run in."""

from __future__ import annotations

import argparse
import sys

from planeai.cli.common import context, print_json, table


def build(args: argparse.Namespace) -> int:
    from planeai.sandbox import images
    from planeai.sandbox.engine import SandboxError, engine

    ctx = context()
    cfg = ctx.config.sandbox
    engine()  # a missing engine is said before anything is built
    if args.agent == images.BASE:
        image, binary = cfg.base_image, None
    else:
        if args.debootstrap:
            raise SandboxError("--debootstrap builds the base image only: planeai sandbox "
                               "build base --debootstrap")
        provider = ctx.manager.registry(None).get(args.agent)
        if args.agent not in images.buildable():
            raise SandboxError(f"no bundled Dockerfile for {args.agent!r}; bundled: "
                               f"{', '.join(images.buildable())}. Build your own image and "
                               f"name it in the provider's docker_image ({provider.image})")
        image, binary = provider.image, provider.binary
    print(f"building {image} ...", file=sys.stderr, flush=True)
    images.build(args.agent, image, base_image=cfg.base_image, binary=binary,
                 debootstrap=args.debootstrap,
                 out=lambda line: print(f"  {line}", file=sys.stderr, flush=True))
    print(f"built {image}")
    return 0


def status(args: argparse.Namespace) -> int:
    from planeai.services import sandbox

    ctx = context()
    providers = list(ctx.manager.registry(None).providers.values())
    st = sandbox.status(ctx.locations, providers, ctx.config.sandbox.base_image)
    if args.json:
        print_json({
            "engine": None if st.engine is None else {"client": st.engine.client,
                                                      "server": st.engine.server},
            "error": st.engine_error,
            "images": [{"provider": p, "image": i, "present": ok} for p, i, ok in st.images],
            "containers": [{"name": c.name, "state": c.state, "session": c.session_name,
                            "session_id": c.session_id, "task": c.task_key}
                           for c in st.containers]})
        return 0 if st.engine else 1
    if st.engine is None:
        print(f"engine: not available: {st.engine_error}")
        return 1
    print(f"engine: Docker {st.engine.server} (client {st.engine.client})")
    print("images:")
    from planeai.sandbox.images import buildable

    can_build = set(buildable())

    def state(p: str, ok: bool) -> str:
        if ok:
            return "present"
        if p in can_build:
            return f"missing (planeai sandbox build {p})"
        return "missing (no bundled Dockerfile: build one, set docker_image)"

    print(table([["PROVIDER", "IMAGE", "STATE"]] + [[p, i, state(p, ok)]
                                                    for p, i, ok in st.images]))
    if st.containers:
        print("running sandboxes:")
        print(table([["SESSION", "TASK", "STATE", "CONTAINER"]] + [
            [c.session_name, c.task_key or "-", c.state, c.name] for c in st.containers]))
    else:
        print("running sandboxes: none")
    return 0


def push(args: argparse.Namespace) -> int:
    from planeai.sandbox import images
    from planeai.services import hosts

    ctx = context()
    host = hosts.get(ctx.config, args.host)
    image = (ctx.config.sandbox.base_image if args.agent == images.BASE
             else ctx.manager.registry(None).get(args.agent).image)
    print(f"copying {image} to host {host.name} ...", file=sys.stderr, flush=True)
    size = hosts.push_image(host, ctx.locations, image)
    print(f"{image} is on host {host.name} ({size / 2**20:.0f} MiB sent)")
    return 0
