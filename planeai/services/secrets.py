"""Secrets as the user and the sessions see them: which names each provider accepts, and the
values a session's agent gets (planeai.secrets holds the stores and the delivery step).

A name is accepted for a provider when its provider file declares it (``secrets = [...]``);
planeai's own tracker tokens (PLANEAI_SECRETS) are stored under the provider name ``planeai``
and never reach an agent. A session's agent gets its own provider's secrets: the stored value
when there is one, else the one in planeai's environment. Stored wins because it was set for
that provider on purpose, while the environment is shared by every provider that reads a
variable of that name (OPENAI_API_KEY serves codex, aider and opencode alike).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from planeai.errors import NotFoundError, ValidationError
from planeai.secrets import SecretError, check_value, open_store
from planeai.services.session_plan import PLANEAI_SECRETS

OWN = "planeai"  # the provider name planeai's own secrets are kept under
# the tracker each of planeai's own tokens belongs to: `planeai secret set jira JIRA_API_TOKEN`
# stores it under that name (read before the one under ``planeai``)
TRACKERS = {"jira": ("JIRA_API_TOKEN",), "plane": ("PLANE_API_KEY", "PLANE_WEBHOOK_SECRET")}


@dataclass(frozen=True)
class SecretRef:
    provider: str
    name: str


def accepted(registry) -> dict[str, tuple[str, ...]]:
    """provider -> the secret names it accepts (planeai's own under ``planeai``)."""
    out = {p.name: tuple(p.secrets) for p in registry.providers.values() if p.secrets}
    out[OWN] = PLANEAI_SECRETS
    out.update(TRACKERS)
    return out


def check_ref(registry, provider: str, name: str) -> SecretRef:
    """``provider``/``name`` when accepted; else a ValidationError naming what is."""
    table = accepted(registry)
    if provider not in table:
        raise ValidationError(
            f"no provider {provider!r} with secrets; accepted: {', '.join(sorted(table))}")
    if name not in table[provider]:
        raise ValidationError(f"{provider} does not take a secret {name!r}; accepted: "
                              f"{', '.join(table[provider])}")
    return SecretRef(provider, name)


class Secrets:
    """The configured store (``[secrets] store``) for one command or session start."""

    def __init__(self, config, locs) -> None:
        self.kind = config.secrets.store
        self.config_dir = Path(locs.config_dir)
        self._store = None

    @property
    def store(self):
        """The store; raises SecretError (one line, with the fix) when there is none here."""
        if self._store is None:
            self._store = open_store(self.kind, self.config_dir)
        return self._store

    @property
    def where(self) -> str:
        return self.store.where

    def set(self, ref: SecretRef, value: str) -> None:
        self.store.set(ref.provider, ref.name, check_value(value, f"{ref.provider} {ref.name}"))

    def get(self, ref: SecretRef) -> str | None:
        return self.store.get(ref.provider, ref.name)

    def delete(self, ref: SecretRef) -> None:
        if not self.store.delete(ref.provider, ref.name):
            raise NotFoundError(f"{ref.provider} {ref.name} is not set in {self.where}")

    def list(self, registry) -> list[SecretRef]:
        """Every accepted pair that holds a value (the keyring cannot enumerate: each
        declared pair is asked, a few dozen lookups)."""
        return [SecretRef(p, n) for p, names in sorted(accepted(registry).items())
                for n in names if self.store.get(p, n) is not None]

    def own(self, name: str, env: dict[str, str]) -> str | None:
        """One of planeai's own tokens (PLANEAI_SECRETS), for the tracker sync: stored under
        ``planeai`` first, else from the environment."""
        if name not in PLANEAI_SECRETS:
            raise ValidationError(f"{name!r} is not one of planeai's own secrets; accepted: "
                                  f"{', '.join(PLANEAI_SECRETS)}")
        owners = [t for t, names in TRACKERS.items() if name in names] + [OWN]
        value = None
        try:
            for owner in owners:
                value = self.store.get(owner, name)
                if value is not None:
                    break
        except SecretError:
            if self.kind != "keyring":
                raise
            value = None
        return value if value is not None else env.get(name)

    def stored_names(self, provider) -> tuple[str, ...]:
        """Which of ``provider``'s secrets the store holds; none where there is no keyring."""
        if not provider.secrets:
            return ()
        try:
            store = self.store
        except SecretError:
            if self.kind == "keyring":
                return ()
            raise
        return tuple(n for n in provider.secrets if store.get(provider.name, n) is not None)

    def for_provider(self, provider, env: dict[str, str]) -> dict[str, str]:
        """The values ``provider``'s agent gets: stored first, else planeai's environment.
        A keyring that is not there is no error here (a machine without one just uses the
        environment); a store that is there but fails is."""
        values = {n: env[n] for n in provider.secrets if n in env}
        if not provider.secrets:
            return values
        try:
            store = self.store
        except SecretError:
            if self.kind == "keyring":
                return values
            raise
        for n in provider.secrets:
            v = store.get(provider.name, n)
            if v is not None:
                values[n] = v
        return values
