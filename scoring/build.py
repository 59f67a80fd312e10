"""The scoring image's build context: exactly the files its ``Dockerfile`` needs, staged and hashed.

The context is this package's folder as ``.dockerignore`` filters it: ``Dockerfile``, ``requirements.txt`` and the
package's modules. Azure ML builds the image from a staged copy (``Environment(build=BuildContext(path=...))``,
versioned by ``content_hash``, so the same files give the same image tag and a change gives a new one); the local
endpoints run the server from a staged copy too, so QA and production run the same files everywhere.

``python -m scoring.build DEST`` stages into ``DEST`` and prints the context folder and its hash.
"""

from __future__ import annotations

import hashlib
import shutil
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
PACKAGE_NAME = PACKAGE.name
#: beside the modules (``*.py``), what the Dockerfile copies; kept in step with ``.dockerignore``
EXTRA_FILES = ("Dockerfile", "requirements.txt")


def context_files(folder: Path = PACKAGE) -> list[Path]:
    """The files of the build context in ``folder`` (relative paths, sorted)."""
    found = [Path(name) for name in EXTRA_FILES if (folder / name).is_file()]
    found += [p.relative_to(folder) for p in folder.glob("*.py")]
    return sorted(set(found))


def content_hash(folder: Path = PACKAGE) -> str:
    """sha256 over the context's file names and contents: the image version."""
    digest = hashlib.sha256()
    for relative in context_files(folder):
        digest.update(relative.as_posix().encode() + b"\0")
        digest.update(hashlib.sha256((folder / relative).read_bytes()).digest())
    return digest.hexdigest()


def stage_build_context(dest: Path) -> Path:
    """Copy the build context to ``dest/<package>`` (``dest`` must not hold it yet); return that folder.

    The returned folder is the Docker build context (its ``Dockerfile`` at the root); ``dest`` holds nothing else,
    so with ``dest`` as the working directory and the only ``PYTHONPATH`` entry, ``python -P -m scoring.server``
    runs the staged files and nothing of the repository is importable.
    """
    context = dest / PACKAGE_NAME
    if context.exists():
        raise FileExistsError(f"{context} exists already: stage into an empty folder")
    for relative in context_files():
        target = context / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(PACKAGE / relative, target)
    return context


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m scoring.build DEST", file=sys.stderr)
        return 2
    context = stage_build_context(Path(args[0]))
    print(context)
    print(content_hash(context))
    return 0


if __name__ == "__main__":
    sys.exit(main())
