"""Build the Function App's deployment zip from what ``.funcignore`` allows (both pipelines and deploy.sh call it).

    python infra/package_app.py --out dist/app.zip [--root .] [--dependencies DIR] [--list]

``.funcignore`` has ``.gitignore`` syntax and semantics: blank lines and ``#`` comments are skipped; ``!`` re-includes;
a trailing ``/`` matches directories only; a pattern with a ``/`` before its end is anchored at the root, one without
matches at any depth; ``*`` and ``?`` stop at ``/``; ``**`` spans directories; the last matching pattern wins; and an
excluded directory is not entered (nothing under it can be re-included).

The dependencies go to ``.python_packages/lib/site-packages``, where the Functions host looks for them: from
``--dependencies DIR`` (a ``pip install --target DIR -r requirements.txt`` made for the app's runtime, packaged as
pip wrote it, compiled bytecode included: the deployed package is read-only), or else from that folder in the root.

The zip is reproducible: entries sorted, timestamps fixed, file modes kept.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

DEPENDENCIES = ".python_packages/lib/site-packages"
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class Rule:
    pattern: str
    regex: re.Pattern[str]
    negated: bool
    directories_only: bool


def _translate(body: str) -> str:
    """A gitignore glob (already anchored, no leading '/') as a regex over a relative POSIX path."""
    out, i = [], 0
    while i < len(body):
        if body.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif body.startswith("/**", i) and i + 3 == len(body):
            out.append("/.*")
            i += 3
        elif body.startswith("**", i):
            out.append(".*")
            i += 2
        elif body[i] == "*":
            out.append("[^/]*")
            i += 1
        elif body[i] == "?":
            out.append("[^/]")
            i += 1
        elif body[i] == "[" and (end := _class_end(body, i)) > 0:
            inner = body[i + 1 : end]
            if inner.startswith("!"):
                inner = "^" + inner[1:]
            out.append("[" + inner.replace("\\", "\\\\") + "]")
            i = end + 1
        elif body[i] == "\\" and i + 1 < len(body):
            out.append(re.escape(body[i + 1]))
            i += 2
        else:
            out.append(re.escape(body[i]))
            i += 1
    return "".join(out)


def _class_end(body: str, start: int) -> int:
    """Index of the ``]`` closing the character class opened at ``start`` (-1: a literal ``[``)."""
    j = start + 1
    if body[j : j + 1] == "!":
        j += 1
    if body[j : j + 1] == "]":
        j += 1
    return body.find("]", j)


def parse_rules(text: str) -> list[Rule]:
    rules = []
    for raw in text.splitlines():
        line = raw.rstrip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        if negated or line.startswith("\\"):
            line = line[1:]
        directories_only = line.endswith("/")
        body = line.rstrip("/")
        if not body:
            continue
        anchored = "/" in body
        body = body.lstrip("/")
        if not anchored:
            body = "**/" + body
        rules.append(Rule(raw.strip(), re.compile(_translate(body) + r"\Z"), negated, directories_only))
    return rules


def excluded(rules: list[Rule], relative: str, is_dir: bool) -> bool:
    """Whether ``relative`` (POSIX, from the root) is excluded: the last rule that matches it decides."""
    verdict = False
    for rule in rules:
        if rule.directories_only and not is_dir:
            continue
        if rule.regex.match(relative):
            verdict = not rule.negated
    return verdict


def allowed_files(root: Path, rules: list[Rule]) -> Iterator[str]:
    """Every file under ``root`` that the rules let through, as sorted relative POSIX paths."""
    found: list[str] = []
    for current, dirs, files in os.walk(root):
        base = Path(current).relative_to(root).as_posix()
        prefix = "" if base == "." else base + "/"
        dirs[:] = sorted(
            d for d in dirs if not excluded(rules, prefix + d, True) and not (Path(current) / d).is_symlink()
        )
        found.extend(
            prefix + f for f in files if (Path(current) / f).is_file() and not excluded(rules, prefix + f, False)
        )
    yield from sorted(found)


def build(root: Path, out: Path, *, dependencies: Path | None = None) -> list[str]:
    """Write the zip; returns the packaged paths. The zip itself is never packaged."""
    root = root.resolve()
    rules = parse_rules((root / ".funcignore").read_text()) if (root / ".funcignore").exists() else []
    for needed in ("host.json", "function_app.py", "requirements.txt"):
        if not (root / needed).is_file():
            raise SystemExit(f"package_app: {needed} is missing from {root}: not a Functions app root")
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    skip = {out, partial}
    sources = {p: root / p for p in allowed_files(root, rules) if (root / p).resolve() not in skip}
    if dependencies is not None:
        if not (dependencies / "azure" / "functions").is_dir():
            raise SystemExit(
                f"package_app: {dependencies} holds no azure-functions: not the output of "
                f"pip install --target {dependencies} -r requirements.txt"
            )
        if any(p.startswith(DEPENDENCIES + "/") for p in sources):
            raise SystemExit(f"package_app: both --dependencies and {root / DEPENDENCIES}: remove one")
        for current, _dirs, files in os.walk(dependencies):
            for name in files:
                path = Path(current) / name
                sources[f"{DEPENDENCIES}/{path.relative_to(dependencies).as_posix()}"] = path
    paths = sorted(sources)
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for relative in paths:
            source = sources[relative]
            info = zipfile.ZipInfo(relative, date_time=_FIXED_TIME)
            info.external_attr = (source.stat().st_mode & 0xFFFF) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            with source.open("rb") as src, archive.open(info, "w") as dst:
                while chunk := src.read(1 << 20):
                    dst.write(chunk)
    partial.replace(out)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument(
        "--dependencies",
        type=Path,
        help=f"site-packages to ship as {DEPENDENCIES} (pip install --target DIR -r requirements.txt)",
    )
    parser.add_argument("--list", action="store_true", help="print every packaged path")
    args = parser.parse_args(argv)
    paths = build(args.root, args.out, dependencies=args.dependencies)
    if args.list:
        print("\n".join(paths))
    size = args.out.stat().st_size
    print(f"{args.out}: {len(paths)} files, {size / 1e6:.1f} MB", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
