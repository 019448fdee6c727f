"""Running PostgreSQL as an unprivileged user when `safeguard up` itself runs as root."""

from __future__ import annotations

import os
import pwd
import stat
import subprocess
from pathlib import Path

DEFAULT_POSTGRES_SYSTEM_USER = "safeguard-pg"


def postgres_run_as(*, euid: int, system_user: str) -> str | None:
    """The user PostgreSQL must run as: `system_user` when we are root (PostgreSQL refuses root), else us."""
    return system_user if euid == 0 else None


def as_user(command: list[str], *, user: str | None) -> list[str]:
    """`command` wrapped in `runuser` when it must run as another user."""
    if user is None:
        return list(command)
    return ["runuser", "-u", user, "--", *command]


def ensure_system_user(name: str) -> pwd.struct_passwd:
    """The passwd entry of `name`, creating it as a locked system account without a home if missing."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    subprocess.run(
        [
            "useradd",
            "--system",
            "--user-group",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            name,
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return pwd.getpwnam(name)


def can_traverse(directory: Path, *, uid: int, gids: set[int]) -> bool:
    """Whether a user with `uid` and `gids` may enter `directory`, judged from its mode bits."""
    info = directory.stat()
    if uid == 0:
        return True
    if info.st_uid == uid:
        return bool(info.st_mode & stat.S_IXUSR)
    if info.st_gid in gids:
        return bool(info.st_mode & stat.S_IXGRP)
    return bool(info.st_mode & stat.S_IXOTH)


def user_group_ids(entry: pwd.struct_passwd) -> set[int]:
    """The primary and supplementary group ids of a user."""
    return {entry.pw_gid, *os.getgrouplist(entry.pw_name, entry.pw_gid)}


def grant_traversal(path: Path, *, entry: pwd.struct_passwd) -> list[Path]:
    """Let the user enter every ancestor of `path` by adding only the search (x) bit where missing.

    Returns the folders changed so the caller can say so; nothing becomes listable or readable.
    """
    changed: list[Path] = []
    gids = user_group_ids(entry)
    for ancestor in reversed(path.resolve().parents):
        if can_traverse(ancestor, uid=entry.pw_uid, gids=gids):
            continue
        ancestor.chmod(ancestor.stat().st_mode | stat.S_IXOTH)
        changed.append(ancestor)
    return changed


def hand_over(path: Path, *, entry: pwd.struct_passwd) -> None:
    """Make `path` and everything under it owned by the user (after a uid change, say)."""
    for folder, _subfolders, files in os.walk(path):
        for name in [folder, *(os.path.join(folder, item) for item in files)]:
            info = os.lstat(name)
            if (info.st_uid, info.st_gid) != (entry.pw_uid, entry.pw_gid):
                os.lchown(name, entry.pw_uid, entry.pw_gid)
