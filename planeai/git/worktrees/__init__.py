"""One git worktree and branch per task: create, reuse, inspect, remove, prune.

Modules: :mod:`.names` (branch and worktree names), :mod:`.registry` (git's worktree list, the
repo lock), :mod:`.create`, :mod:`.state` (what a worktree holds, what removing it would lose),
:mod:`.remove` (remove with recovery, prune), :mod:`.stack` (a new worktree starts from the work
of the tasks it stands on). Callers import from this package:
``from planeai.git import worktrees as wt``.

Every git call goes through :func:`planeai.git.safe_git.git` (hardened, argv lists, no shell).

Concurrency: the step that mutates shared git metadata (branch creation plus worktree
registration, done as ``git worktree add --no-checkout [--no-track -b]``, ~10 ms) runs under an
``fcntl.flock`` on ``<git-common-dir>/planeai-worktree.lock`` and is retried on git lock errors
(``could not lock config file``, ``Unable to create '...lock'``).  Populating the files
(``git reset --hard``, what ``git worktree add`` itself runs) happens outside the lock, so N
checkouts of a big repo proceed in parallel.  On any failure the worktree registration, the
directory we made and the branch we made are removed again: no orphan branch, no half tree.

Removal never deletes work without ``force``: a plain removal refuses when the worktree holds
uncommitted, untracked or unpushed work, an untracked nested git repo, or any git-ignored file
whose content the main worktree lacks (``git worktree remove`` deletes ignored files silently;
``.env``, keys and build output are work too).  A forced removal first saves, under one id
``<worktree name>-<UTC stamp>``:

* ``refs/planeai/recovery/<id>``: a commit (parent: HEAD) of tracked changes, untracked files
  and nested repos' files as plain files (not gitlinks);
* ``refs/planeai/recovery-nested/<id>/<path>.git/{HEAD,refs/...}``: each nested repo's refs,
  fetched into the repository, so its commits stay reachable;
* ``<state dir>/recovery/<repo name>/<id>/`` (0700): the ignored files, *moved* there (a
  rename on one filesystem), never into git objects: secrets must not end up in objects that
  ``push --mirror`` or a copied ``.git`` carries, and ``node_modules`` would cost a hash per file.
"""

from planeai.git.worktrees.create import CHECKOUT_WORKERS, ensure_worktree
from planeai.git.worktrees.names import (BRANCH_PREFIX, branch_for, slugify, validate_branch_name,
                                         validate_worktree_name)
from planeai.git.worktrees.registry import LOCK_NAME, Worktree, list_worktrees, repo_lock
from planeai.git.worktrees.remove import (RECOVERY_NESTED_PREFIX, RECOVERY_PREFIX, Recovery,
                                          prune_worktrees, remove_worktree)
from planeai.git.worktrees.stack import (StartPointConflict, Underlying, branch_exists,
                                         stack_onto)
from planeai.git.worktrees.state import (IgnoredLoss, NestedRepos, WorktreeState, ignored_losses,
                                         removal_losses, worktree_state)

__all__ = [
    "Worktree", "WorktreeState", "slugify", "branch_for", "validate_branch_name",
    "validate_worktree_name", "ensure_worktree", "worktree_state", "remove_worktree",
    "prune_worktrees", "list_worktrees", "ignored_losses", "IgnoredLoss", "NestedRepos",
    "Recovery", "removal_losses", "repo_lock", "StartPointConflict", "Underlying",
    "branch_exists", "stack_onto",
    # constants (CHECKOUT_WORKERS is read from .create: set it there)
    "BRANCH_PREFIX", "CHECKOUT_WORKERS", "LOCK_NAME", "RECOVERY_NESTED_PREFIX", "RECOVERY_PREFIX",
]
