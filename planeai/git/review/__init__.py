"""Reviewing and delivering a task's worktree: :mod:`.diff` (what changed against the base,
committed or not, untracked included), :mod:`.commit` (all of it as one commit), :mod:`.merge`
(land the branch in its base without disturbing any checkout), :mod:`.push` (a remote, a pull
request). Every git call goes through :func:`planeai.git.safe_git.git`."""
