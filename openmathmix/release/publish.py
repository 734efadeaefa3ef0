"""A release folder -> a Hub dataset repository that holds exactly its files, tagged.

    publish("release/demo", "org/OpenMathMix-demo", tag="v0.1.0")      # create or refresh the repository
    publish("release/demo", "org/OpenMathMix-demo", dry_run=True)      # list what would be added, replaced, deleted

Steps: check the folder (`validate_release`: every file against the manifest's sha256, no stray files) and scan it
for tokens (parquet rows included); create the repository if it is missing; read the repository's file list at its
head commit and compare it with the release (`list_repo_tree`: LFS files carry their sha256, other files their git
blob id); then commit the difference with `HfApi.create_commit`: files that are new or changed are uploaded, files
the release does not have are deleted, so that afterwards the repository holds exactly the release's files plus the
Hub's own `.gitattributes` (the local output marker is not uploaded). Last, the tag is set on that final commit.

One commit, or several for a large release: uploads are split into commits of at most `COMMIT_MAX_FILES` files or
`COMMIT_MAX_BYTES` bytes, data files first; the last commit carries the card, the manifest, the licence file and the
deletion of stale files, so the card never points at a half-uploaded state for longer than the upload takes. Each
commit names its parent (`parent_commit`), so a concurrent push makes the publish stop instead of mixing states. An
interrupted publish resumes when re-run: the files already committed compare equal and are not sent again.

Credentials. The token is `token`, else huggingface_hub's own lookup (`get_token()`: the `HF_TOKEN` environment
variable, then the file written by `hf auth login`). It goes to `HfApi` and is never printed, logged or written. A dry
run needs no token; it reads the repository's file list when the Hub is reachable, and otherwise says so and lists
every file as new.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import PublishError
from .manifest import GITATTRIBUTES, MANIFEST, README, sha256_file, validate_release
from .scan import check_no_secrets

__all__ = ["COMMIT_MAX_BYTES", "COMMIT_MAX_FILES", "PublishPlan", "plan_publish", "publish"]

COMMIT_MAX_FILES = 100  # files uploaded per commit
COMMIT_MAX_BYTES = 2 * 1024**3  # bytes (2 GiB) uploaded per commit
REPO_TYPE = "dataset"
LAST_FILES = (README, MANIFEST, "LICENSE.md")  # uploaded in the final commit, with the deletion of stale files
ACTIONS = ("add", "replace", "keep", "delete")

NO_TOKEN_MESSAGE = (
    "no Hugging Face token found: run `hf auth login` (or set the HF_TOKEN environment variable to a token with "
    "write access) and try again. Nothing was uploaded"
)


@dataclass
class PublishPlan:
    """What a publish does: each file's action, the commits, the target and the tag."""

    release_dir: Path
    repo_id: str
    private: bool
    tag: str
    sizes: dict[str, int]  # release file -> bytes (what the repository will hold, besides .gitattributes)
    actions: dict[str, str]  # path -> "add" | "replace" | "keep" | "delete"
    commits: list[list[str]]  # the files each commit uploads; the last also deletes
    remote: str  # how the repository's current state was read
    head: str | None = None  # the repository's head commit the plan was made against
    notes: list[str] = field(default_factory=list)
    commit: str | None = None  # the final commit, after a real publish
    url: str | None = None

    def paths(self, action: str) -> list[str]:
        return sorted(p for p, a in self.actions.items() if a == action)

    @property
    def total_bytes(self) -> int:
        return sum(self.sizes.values())

    @property
    def upload_bytes(self) -> int:
        return sum(self.sizes[p] for p in self.paths("add") + self.paths("replace"))

    def describe(self) -> str:
        counts = {a: len(self.paths(a)) for a in ACTIONS}
        width = max((len(_size(n)) for n in self.sizes.values()), default=0)
        lines = [
            f"repo:    {self.repo_id} (dataset, {'private' if self.private else 'public'}; created if missing)",
            f"tag:     {self.tag}",
            f"remote:  {self.remote}",
            (f"files:   {counts['add']} to add, {counts['replace']} to replace, {counts['delete']} to delete, "
            f"{counts['keep']} unchanged"),
        ]
        for path in sorted(self.actions):
            size = _size(self.sizes[path]) if path in self.sizes else ""
            lines.append(f"  {self.actions[path]:<8} {size:>{width}}  {path}")
        lines.append(f"total:   {len(self.sizes)} files, {_size(self.total_bytes)} ({self.total_bytes:,} bytes); "
                     f"upload {_size(self.upload_bytes)} in {len(self.commits)} commit(s)")
        return "\n".join([*lines, *self.notes])


def _size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:,} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"  # pragma: no cover - unreachable


def git_blob_id(path: Path) -> str:
    """The git object id of a file (sha1 of `blob <size>\\0<bytes>`): what the Hub lists for a non-LFS file."""
    digest = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _check_repo_id(repo_id: str) -> None:
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as err:
        raise PublishError(f"invalid --repo-id {repo_id!r}: {err}") from None
    if "/" not in repo_id:
        raise PublishError(f"--repo-id must be ORG/NAME (or USER/NAME), got {repo_id!r}")


def read_remote(api: Any, repo_id: str, token: str | None) -> tuple[str | None, dict[str, Any]]:
    """`(head commit, {path: RepoFile})` of a Hub dataset repository; `(None, {})` when it does not exist."""
    from huggingface_hub.errors import RepositoryNotFoundError
    from huggingface_hub.hf_api import RepoFile

    try:
        head = api.repo_info(repo_id, repo_type=REPO_TYPE, token=token).sha
    except RepositoryNotFoundError:
        return None, {}
    tree = api.list_repo_tree(repo_id, recursive=True, revision=head, repo_type=REPO_TYPE, token=token)
    return head, {entry.path: entry for entry in tree if isinstance(entry, RepoFile)}


def _unchanged(remote: Any, path: Path, size: int, sha256: str) -> bool:
    if remote.size != size:
        return False
    if remote.lfs is not None:
        return remote.lfs.sha256 == sha256
    return remote.blob_id == git_blob_id(path)


def plan_publish(
    release_dir: str | os.PathLike,
    repo_id: str,
    *,
    remote: tuple[str | None, dict[str, Any]] = (None, {}),
    remote_note: str = "the repository does not exist yet: every file is new",
    private: bool = False,
    tag: str | None = None,
    max_commit_files: int = COMMIT_MAX_FILES,
    max_commit_bytes: int = COMMIT_MAX_BYTES,
    manifest: dict[str, Any] | None = None,
) -> PublishPlan:
    """Compare the release with the repository's files `remote` (from `read_remote`); no network.

    `manifest` is the release's manifest as `validate_release` returned it (None: validate here).
    """
    _check_repo_id(repo_id)
    root = Path(release_dir)
    manifest = manifest or validate_release(root)
    tag = tag or manifest.get("version")
    if not tag:
        raise PublishError(f"no tag given and {root / MANIFEST} has no version; pass --tag VERSION")
    files = {rel: (meta["bytes"], meta["sha256"]) for rel, meta in manifest["files"].items()}
    files[MANIFEST] = ((root / MANIFEST).stat().st_size, sha256_file(root / MANIFEST))
    head, remote_files = remote
    actions = {}
    for rel, (size, sha256) in files.items():
        if rel not in remote_files:
            actions[rel] = "add"
        else:
            actions[rel] = "keep" if _unchanged(remote_files[rel], root / rel, size, sha256) else "replace"
    for rel in remote_files:
        if rel not in files and rel != GITATTRIBUTES:
            actions[rel] = "delete"
    uploads = [p for p in sorted(actions) if actions[p] in ("add", "replace")]
    sizes = {p: files[p][0] for p in uploads}
    deletes = "delete" in actions.values()
    if len(uploads) <= max_commit_files and sum(sizes.values()) <= max_commit_bytes:
        commits = [uploads] if uploads or deletes else []  # one commit, or none when nothing changed
    else:
        commits = _batches([p for p in uploads if p not in LAST_FILES], sizes, max_commit_files, max_commit_bytes)
        last = [p for p in uploads if p in LAST_FILES]
        if last or deletes:  # the final commit: card, manifest, licence and the deletion of stale files
            commits.append(last)
    notes = []
    if not manifest.get("repo_id"):
        notes.append(f"note:    the card's usage examples say ORG/NAME; rebuild with --repo-id {repo_id} to name "
                     "this repository there")
    elif manifest["repo_id"] != repo_id:
        notes.append(f"note:    the card's usage examples name {manifest['repo_id']!r}; rebuild with "
                     f"--repo-id {repo_id} to change them")
    return PublishPlan(root, repo_id, private, str(tag),
                       {rel: size for rel, (size, _) in files.items()}, actions, commits, remote_note, head, notes)


def _batches(paths: list[str], sizes: dict[str, int], max_files: int, max_bytes: int) -> list[list[str]]:
    """`paths` in order, cut into commits of at most `max_files` files and (where possible) `max_bytes` bytes."""
    batches: list[list[str]] = []
    current: list[str] = []
    current_bytes = 0
    for path in paths:
        if current and (len(current) >= max_files or current_bytes + sizes[path] > max_bytes):
            batches.append(current)
            current, current_bytes = [], 0
        current.append(path)
        current_bytes += sizes[path]
    if current:
        batches.append(current)
    return batches


def publish(
    release_dir: str | os.PathLike,
    repo_id: str,
    *,
    private: bool = False,
    tag: str | None = None,
    dry_run: bool = False,
    token: str | None = None,
    api: Any = None,
    max_commit_files: int = COMMIT_MAX_FILES,
    max_commit_bytes: int = COMMIT_MAX_BYTES,
) -> PublishPlan:
    """Make the Hub dataset repository `repo_id` hold exactly the release folder's files, tag it; return the plan.

    `api` is an `HfApi`-like object (default: `HfApi(token=...)`); tests pass an in-process stand-in. Raises
    `PublishError` for an invalid folder, a token-like string in a file, a missing token, offline mode, an
    unreachable Hub, or a Hub refusal (permissions, existing tag, a concurrent push), saying what was done.
    """
    _check_repo_id(repo_id)
    options = {"private": private, "tag": tag, "max_commit_files": max_commit_files,
               "max_commit_bytes": max_commit_bytes}
    if dry_run:
        options["manifest"] = validate_release(release_dir)
        check_no_secrets(release_dir, extra=[token] if token else [])
        plan = plan_publish(release_dir, repo_id, **options, **_dry_remote(api, repo_id, token))
        print("dry run: nothing is uploaded, deleted or tagged")
        print(plan.describe())
        return plan

    from huggingface_hub import HfApi, get_token

    if api is None:
        token = token or get_token()
        if not token:
            raise PublishError(NO_TOKEN_MESSAGE)
        if _offline():
            raise PublishError("HF_HUB_OFFLINE is set, so the Hub cannot be reached: unset it (and check the "
                               "network) to publish. Nothing was uploaded")
        api = HfApi(token=token)
    options["manifest"] = validate_release(release_dir)
    check_no_secrets(release_dir, extra=[token] if token else [])
    done = "nothing was uploaded"
    plan = None
    try:
        api.create_repo(repo_id, repo_type=REPO_TYPE, private=private, exist_ok=True, token=token)
        head, files = read_remote(api, repo_id, token)
        plan = plan_publish(release_dir, repo_id, **options, remote=(head, files),
                            remote_note=f"{len(files)} file(s) at commit {head}")
        print(plan.describe())
        deletes = plan.paths("delete")
        for index, batch in enumerate(plan.commits):
            final = index == len(plan.commits) - 1
            operations = _operations(plan.release_dir, batch, deletes if final else [])
            title = f"Release {plan.tag}" + ("" if final else f" (part {index + 1} of {len(plan.commits)})")
            info = api.create_commit(repo_id, operations=operations, commit_message=title, repo_type=REPO_TYPE,
                                     token=token, parent_commit=head)
            head = info.oid
            done = (f"{index + 1} of {len(plan.commits)} commit(s) reached {repo_id}; re-run to finish (files already "
                    "committed are not sent again)")
        done = f"{repo_id} holds the release, but the tag {plan.tag!r} was not created"
        api.create_tag(repo_id, tag=plan.tag, revision=head, repo_type=REPO_TYPE, token=token,
                       tag_message=f"openmathmix release {plan.tag}")
    except PublishError:
        raise
    except Exception as err:  # noqa: BLE001 - every Hub failure is re-raised as a PublishError saying what was done
        error = _publish_error(err, repo_id, plan.tag if plan else tag, done)
        if token:
            error.args = (str(error).replace(token, "<token>"),)  # a message never carries the token
        raise error from None
    plan.commit = head
    plan.url = f"https://huggingface.co/datasets/{repo_id}"
    print(f"published {len(plan.sizes)} files ({_size(plan.total_bytes)}) to {plan.url} in {len(plan.commits)} "
          f"commit(s), tag {plan.tag}, commit {head}")
    return plan


def _dry_remote(api: Any, repo_id: str, token: str | None) -> dict[str, Any]:
    """The repository's state for a dry run, or a note saying why it was not read (no error: nothing is changed)."""
    from huggingface_hub import HfApi

    if api is None:
        if _offline():
            return {"remote_note": "not read (HF_HUB_OFFLINE is set): every file is listed as new"}
        api = HfApi(token=token)
    try:
        head, files = read_remote(api, repo_id, token)
    except Exception as err:  # noqa: BLE001 - a dry run reports what it could not read and goes on
        return {"remote_note": f"not read ({type(err).__name__}: {_first_line(err)}): every file is listed as new"}
    if head is None:
        return {"remote_note": "the repository does not exist (or is not visible with this token): every file is "
                               "new"}
    return {"remote": (head, files), "remote_note": f"{len(files)} file(s) at commit {head}"}


def _operations(root: Path, uploads: list[str], deletes: list[str]) -> list[Any]:
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete

    return [*(CommitOperationAdd(path_in_repo=rel, path_or_fileobj=str(root / rel)) for rel in uploads),
            *(CommitOperationDelete(path_in_repo=rel) for rel in deletes)]


def _offline() -> bool:
    import huggingface_hub

    flag = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return huggingface_hub.is_offline_mode() or flag.strip().upper() in {"1", "ON", "YES", "TRUE"}


def _publish_error(err: Exception, repo_id: str, tag: str | None, done: str) -> PublishError:
    """A clear message for a failed Hub call; never claims success, never repeats the token."""
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled, RepositoryNotFoundError

    where = f"publishing to {repo_id} failed"
    if isinstance(err, OfflineModeIsEnabled):
        return PublishError(f"{where}: huggingface_hub is in offline mode (HF_HUB_OFFLINE); {done}")
    if isinstance(err, RepositoryNotFoundError):
        return PublishError(f"{where}: the repository is not visible with this token (wrong name, or no access); "
                            f"{done}")
    if isinstance(err, HfHubHTTPError):
        status = getattr(getattr(err, "response", None), "status_code", None)
        if status in (401, 403):
            return PublishError(f"{where}: the Hub refused the token (HTTP {status}); it needs write access to "
                                f"{repo_id.split('/')[0]}. Run `hf auth login` with a write token; {done}")
        if status == 409 and "tag" in done:
            return PublishError(f"{where}: the tag {tag!r} already exists; pass another --tag; {done}")
        if status == 412:
            return PublishError(f"{where}: the repository changed while publishing (another push?); {done}")
        return PublishError(f"{where}: the Hub answered HTTP {status}: {_first_line(err)}; {done}")
    if _is_connection_error(err):
        return PublishError(f"{where}: the Hub could not be reached ({type(err).__name__}: {_first_line(err)}); "
                            f"check the network or proxy; {done}")
    return PublishError(f"{where}: {type(err).__name__}: {_first_line(err)}; {done}")


def _is_connection_error(err: Exception) -> bool:
    import httpx2

    return isinstance(err, (ConnectionError, TimeoutError, httpx2.TransportError))


def _first_line(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else ""
