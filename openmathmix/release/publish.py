"""A release folder -> a Hub dataset repository: create it if needed, upload the folder, tag the commit.

    publish("release/demo", "org/OpenMathMix-demo", tag="v0.1.0")              # upload
    publish("release/demo", "org/OpenMathMix-demo", dry_run=True)              # only list what would go up

Steps: check the folder (`release.validate_release`: card with `configs:`, data files present, manifest sizes) and
scan its text files for tokens; then `HfApi.create_repo(repo_type="dataset", exist_ok=True)`, one upload of the
whole folder, and `HfApi.create_tag` (the tag is `tag`, or the manifest's `version`).

Upload method. `upload_folder` makes one commit, or, from huggingface_hub 1.20 on (with hf_xet, the default), a
streamed upload that commits large folders in several parts and resumes when re-run. Older huggingface_hub versions
have `upload_large_folder` for that job (resumable, many commits); it is used when the release is "large": at least
`LARGE_RELEASE_FILES` files or `LARGE_RELEASE_BYTES` bytes (or `large=True`). The thresholds keep single-commit
uploads to what a commit carries comfortably; where `upload_large_folder` is gone (huggingface_hub 2.x),
`upload_folder` is used for every size.

Credentials. The token is `token`, else huggingface_hub's own lookup (`get_token()`: the `HF_TOKEN` environment
variable, then the file written by `hf auth login`). It is passed to `HfApi` and never printed, logged or written.
A dry run needs no token and makes no network call.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import PublishError
from .manifest import release_files, validate_release
from .scan import check_no_secrets

__all__ = ["LARGE_RELEASE_BYTES", "LARGE_RELEASE_FILES", "UploadPlan", "plan_upload", "publish"]

LARGE_RELEASE_FILES = 100  # files in the release folder from which the large-folder upload is used
LARGE_RELEASE_BYTES = 2 * 1024**3  # bytes (2 GiB) from which the large-folder upload is used
REPO_TYPE = "dataset"
IGNORE_PATTERNS = [".*", "*/.*"]  # hidden files and folders (caches, editor files) never go up

NO_TOKEN_MESSAGE = (
    "no Hugging Face token found: run `hf auth login` (or set the HF_TOKEN environment variable to a token with "
    "write access) and try again. Nothing was uploaded"
)


@dataclass
class UploadPlan:
    """What `publish` uploads: the files (relative path, bytes), the target, and how."""

    release_dir: Path
    repo_id: str
    private: bool
    tag: str
    files: list[tuple[str, int]]
    method: str  # "upload_folder" or "upload_large_folder"
    notes: list[str] = field(default_factory=list)
    commit: str | None = None  # set after a real upload
    url: str | None = None

    @property
    def total_bytes(self) -> int:
        return sum(size for _, size in self.files)

    def describe(self) -> str:
        width = max((len(_size(n)) for _, n in self.files), default=0)
        lines = [
            f"repo:    {self.repo_id} (dataset, {'private' if self.private else 'public'}; created if missing)",
            f"tag:     {self.tag}",
            f"method:  {self.method} (large-folder threshold: {LARGE_RELEASE_FILES} files or "
            f"{_size(LARGE_RELEASE_BYTES)})",
            f"files:   {len(self.files)}",
            *(f"  {_size(n):>{width}}  {rel}" for rel, n in self.files),
            f"total:   {len(self.files)} files, {_size(self.total_bytes)} ({self.total_bytes:,} bytes)",
            *self.notes,
        ]
        return "\n".join(lines)


def _size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:,} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"  # pragma: no cover - unreachable


def plan_upload(
    release_dir: str | os.PathLike,
    repo_id: str,
    *,
    private: bool = False,
    tag: str | None = None,
    large: bool | None = None,
) -> UploadPlan:
    """Validate the release and decide what would be uploaded (no network)."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as err:
        raise PublishError(f"invalid --repo-id {repo_id!r}: {err}") from None
    if not repo_id or "/" not in repo_id:
        raise PublishError(f"--repo-id must be ORG/NAME (or USER/NAME), got {repo_id!r}")
    root = Path(release_dir)
    manifest = validate_release(root)
    tag = tag or manifest.get("version")
    if not tag:
        raise PublishError(f"no tag given and {root}/manifest.json has no version; pass --tag VERSION")
    files = [(p.relative_to(root).as_posix(), p.stat().st_size) for p in release_files(root)]
    size = sum(n for _, n in files)
    notes = []
    is_large = large if large is not None else (len(files) >= LARGE_RELEASE_FILES or size >= LARGE_RELEASE_BYTES)
    if is_large and hasattr(HfApi, "upload_large_folder"):
        method = "upload_large_folder"
    else:
        method = "upload_folder"
        if is_large:
            notes.append("note:    this huggingface_hub has no upload_large_folder; upload_folder commits large "
                         "folders in parts and resumes when re-run")
    if not manifest.get("repo_id"):
        notes.append(f"note:    the card's usage examples say ORG/NAME; rebuild with --repo-id {repo_id} to name "
                     "this repository there")
    elif manifest["repo_id"] != repo_id:
        notes.append(f"note:    the card's usage examples name {manifest['repo_id']!r}; rebuild with "
                     f"--repo-id {repo_id} to change them")
    return UploadPlan(root, repo_id, private, str(tag), files, method, notes)


def publish(
    release_dir: str | os.PathLike,
    repo_id: str,
    *,
    private: bool = False,
    tag: str | None = None,
    dry_run: bool = False,
    token: str | None = None,
    large: bool | None = None,
) -> UploadPlan:
    """Upload a release folder to the Hub dataset repository `repo_id` and tag it; return the plan it followed.

    Raises `PublishError` for an invalid folder, a token-like string in a text file, a missing token, offline mode,
    an unreachable Hub, or a Hub refusal (permissions, existing tag), saying what was and was not done.
    """
    plan = plan_upload(release_dir, repo_id, private=private, tag=tag, large=large)
    if dry_run:
        check_no_secrets(plan.release_dir)
        print("dry run: nothing is uploaded and the Hub is not contacted")
        print(plan.describe())
        return plan

    from huggingface_hub import HfApi, get_token

    token = token or get_token()
    if not token:
        raise PublishError(NO_TOKEN_MESSAGE)
    check_no_secrets(plan.release_dir, extra=[token])
    if _offline():
        raise PublishError(
            "HF_HUB_OFFLINE is set, so the Hub cannot be reached: unset it (and check the network) to publish. "
            "Nothing was uploaded"
        )
    print(plan.describe())
    api = HfApi(token=token)
    done = "nothing was uploaded"
    try:
        api.create_repo(plan.repo_id, repo_type=REPO_TYPE, private=plan.private, exist_ok=True, token=token)
        done = f"the repository {plan.repo_id} exists, but the upload did not complete (re-run to resume)"
        if plan.method == "upload_large_folder":
            api.upload_large_folder(
                repo_id=plan.repo_id, folder_path=str(plan.release_dir), repo_type=REPO_TYPE,
                ignore_patterns=IGNORE_PATTERNS, private=plan.private,
            )
            commit = api.dataset_info(plan.repo_id, token=token).sha
        else:
            info = api.upload_folder(
                repo_id=plan.repo_id, folder_path=str(plan.release_dir), repo_type=REPO_TYPE, token=token,
                commit_message=f"Release {plan.tag}", ignore_patterns=IGNORE_PATTERNS,
            )
            commit = getattr(info, "oid", None)
        done = f"the files are uploaded to {plan.repo_id}, but the tag {plan.tag!r} was not created"
        api.create_tag(plan.repo_id, tag=plan.tag, revision=commit, repo_type=REPO_TYPE, token=token,
                       tag_message=f"openmathmix release {plan.tag}")
    except Exception as err:  # noqa: BLE001 - every failure is re-raised as a PublishError saying what was done
        error = _publish_error(err, plan, done)
        error.args = (str(error).replace(token, "<token>"),)  # belt and braces: a message never carries the token
        raise error from None
    plan.commit = commit
    plan.url = f"https://huggingface.co/datasets/{plan.repo_id}"
    print(f"published {len(plan.files)} files ({_size(plan.total_bytes)}) to {plan.url}, tag {plan.tag}"
          + (f", commit {commit}" if commit else ""))
    return plan


def _offline() -> bool:
    import huggingface_hub

    flag = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return huggingface_hub.is_offline_mode() or flag.strip().upper() in {"1", "ON", "YES", "TRUE"}


def _publish_error(err: Exception, plan: UploadPlan, done: str) -> PublishError:
    """A clear message for a failed Hub call; never claims success, never repeats the token."""
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled, RepositoryNotFoundError

    where = f"publishing to {plan.repo_id} failed"
    if isinstance(err, OfflineModeIsEnabled):
        return PublishError(f"{where}: huggingface_hub is in offline mode (HF_HUB_OFFLINE); {done}")
    if isinstance(err, RepositoryNotFoundError):
        return PublishError(f"{where}: the repository is not visible with this token (wrong name, or no access); "
                            f"{done}")
    if isinstance(err, HfHubHTTPError):
        status = getattr(getattr(err, "response", None), "status_code", None)
        if status in (401, 403):
            return PublishError(f"{where}: the Hub refused the token (HTTP {status}); it needs write access to "
                                f"{plan.repo_id.split('/')[0]}. Run `hf auth login` with a write token; {done}")
        if status == 409 and "tag" in done:
            return PublishError(f"{where}: the tag {plan.tag!r} already exists; pass another --tag; {done}")
        return PublishError(f"{where}: the Hub answered HTTP {status}: {_first_line(err)}; {done}")
    if _is_connection_error(err):
        return PublishError(f"{where}: the Hub could not be reached ({type(err).__name__}: {_first_line(err)}); "
                            f"check the network or proxy; {done}")
    return PublishError(f"{where}: {type(err).__name__}: {_first_line(err)}; {done}")


def _is_connection_error(err: Exception) -> bool:
    if isinstance(err, (ConnectionError, TimeoutError)):
        return True
    try:
        import httpx2
    except ModuleNotFoundError:  # huggingface_hub < 2 runs on requests/httpx
        httpx2 = None
    if httpx2 is not None and isinstance(err, httpx2.TransportError):
        return True
    return type(err).__name__ in {"ConnectError", "ConnectTimeout", "ReadTimeout", "NetworkError"}


def _first_line(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else ""

