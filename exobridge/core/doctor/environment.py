"""Environment checks: Python, exobridge's version, where its files are, and whether the private ones are.

"Private" is said only when it is true: a file holding keys must be a regular file owned by this user with no
group/other permission bits (0600), inside a folder owned by this user that no one else can write to (0700 is
what exobridge creates). A folder others can write to lets them replace a file in it, so it fails even when
the file's own mode is right.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

from exobridge import __version__
from exobridge.core import paths
from exobridge.core.doctor.results import FAIL, OK, WARN, CheckResult, Section

ENV = Section.ENVIRONMENT


def check_python() -> list[CheckResult]:
    version = ".".join(str(v) for v in sys.version_info[:3])
    return [CheckResult("env.python", ENV, OK, f"Python {version} ({sys.executable})")]


def check_version() -> list[CheckResult]:
    return [CheckResult("env.version", ENV, OK, f"exobridge {__version__}")]


def check_paths() -> list[CheckResult]:
    config_path, keys_path, cache_dir = paths.config_path(), paths.keys_path(), paths.cache_dir()
    results = [
        CheckResult(
            "env.config_path",
            ENV,
            OK,
            f"config {config_path}" + ("" if config_path.exists() else " (not created yet: built-in defaults apply)"),
        ),
        CheckResult("env.keys_path", ENV, OK, f"keys file {keys_path}" + ("" if keys_path.exists() else " (none)")),
    ]
    probe = cache_dir
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if os.access(probe, os.W_OK):
        results.append(CheckResult("env.cache_dir", ENV, OK, f"cache {cache_dir}"))
    else:
        results.append(
            CheckResult(
                "env.cache_dir",
                ENV,
                WARN,
                f"cache {cache_dir} is not writable (model lists and cooldowns are not remembered)",
                f"set EXOBRIDGE_CACHE_DIR to a writable directory, or fix the owner of {probe}",
            )
        )
    return results


def _owned_by_me(info: os.stat_result) -> bool:
    return not hasattr(os, "getuid") or info.st_uid == os.getuid()


def folder_problem(folder: Path) -> tuple[str, str] | None:
    """(what is wrong, the fix) when others could replace files in `folder`; None when it is private."""
    try:
        info = folder.stat()
    except OSError:
        return None  # not there (yet): exobridge creates it 0700
    mode = stat.S_IMODE(info.st_mode)
    if not _owned_by_me(info):
        return f"its folder {folder} belongs to another user (uid {info.st_uid})", f'chown "$USER" {folder}'
    if mode & 0o022:
        return f"its folder {folder} is writable by group/others (mode {mode:04o})", f"chmod 700 {folder}"
    return None


def file_mode_check(check_id: str, label: str, path: Path, holds_keys: bool) -> CheckResult:
    """A file holding keys must be private (see the module docstring); any other file is fine either way."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return CheckResult(check_id, ENV, OK, f"{label}: no file")
    except OSError as exc:
        return CheckResult(
            check_id,
            ENV,
            WARN,
            f"{label} {path}: cannot stat ({exc.strerror})",
            f"ls -ld {path.parent}; fix its owner or mode",
        )
    mode = stat.S_IMODE(info.st_mode)
    if not holds_keys:
        return CheckResult(check_id, ENV, OK, f"{label} {path} (mode {mode:04o}, holds no keys)")
    if stat.S_ISLNK(info.st_mode):
        return CheckResult(
            check_id,
            ENV,
            FAIL,
            f"{label} {path} holds secrets and is a symbolic link (to {os.readlink(path)})",
            f'replace the link with the file itself: cp --remove-destination "$(readlink -f {path})" {path}',
        )
    if not stat.S_ISREG(info.st_mode):
        return CheckResult(check_id, ENV, FAIL, f"{label} {path} is not a regular file", f"move {path} away")
    if not _owned_by_me(info):
        return CheckResult(
            check_id,
            ENV,
            FAIL,
            f"{label} {path} holds secrets and belongs to another user (uid {info.st_uid})",
            f'chown "$USER" {path}',
        )
    if mode & 0o077:
        return CheckResult(
            check_id,
            ENV,
            FAIL,
            f"{label} {path} holds secrets and is readable by group/others (mode {mode:04o})",
            f"chmod 600 {path}",
        )
    problem = folder_problem(path.parent)
    if problem is not None:
        what, fix = problem
        return CheckResult(check_id, ENV, FAIL, f"{label} {path} holds secrets, but {what}", fix)
    return CheckResult(check_id, ENV, OK, f"{label} {path} is private (mode {mode:04o}, folder private)")


def check_permissions(config_holds_keys: bool) -> list[CheckResult]:
    """The keys file always holds keys; the config does when a provider has `headers` (e.g. Authorization).
    A file that is not there has no mode: `check_paths` already said so, once."""
    files = [
        ("env.config_mode", "config", paths.config_path(), config_holds_keys),
        ("env.keys_mode", "keys file", paths.keys_path(), True),
    ]
    return [
        file_mode_check(check_id, label, path, holds_keys=holds)
        for check_id, label, path, holds in files
        if os.path.lexists(path)
    ]


def check_folders() -> list[CheckResult]:
    """exobridge's own folders (config, cache, data) must not be writable by anyone else: a cache or state
    file another user can replace could redirect requests."""
    folders = {"config": paths.config_dir(), "cache": paths.cache_dir(), "data": paths.data_dir()}
    config_parent = paths.config_path().parent
    if config_parent != folders["config"]:
        folders["config file's"] = config_parent
    keys_parent = paths.keys_path().parent
    if keys_parent not in folders.values():
        folders["keys file's"] = keys_parent
    bad = []
    for label, folder in folders.items():
        problem = folder_problem(folder)
        if problem is not None:
            bad.append((label, problem))
    if not bad:
        return [CheckResult("env.folders", ENV, OK, "exobridge's folders are private (or not created yet)")]
    detail = "; ".join(f"{name}: {problem[0].removeprefix('its ')}" for name, problem in bad)
    fixes = " && ".join(dict.fromkeys(problem[1] for _, problem in bad))
    return [CheckResult("env.folders", ENV, FAIL, f"others could replace exobridge's files: {detail}", fixes)]
