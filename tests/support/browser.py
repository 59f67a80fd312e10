"""Pages in a real browser: Debian's Chromium, headless, run the page's scripts and hand back the DOM they built.

``--virtual-time-budget`` lets the page's timers and fetches run to completion (in virtual time) before the DOM is
dumped, so a test reads what a person would see once the page settled, without sleeping. The flags keep Chromium off
the network beyond the page's own origin (no background services, updates or sync).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--mute-audio",
)


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        raise RuntimeError("chromium is required for page tests: `make test` installs Debian's chromium package")
    return found


def rendered_dom(url: str, budget_ms: int = 8000, timeout_s: float = 60.0) -> str:
    """The page's DOM after its scripts ran for ``budget_ms`` of virtual time."""
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        done = subprocess.run(
            [chromium(), *FLAGS, f"--user-data-dir={profile}", f"--virtual-time-budget={budget_ms}", "--dump-dom", url],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    if done.returncode != 0:
        raise RuntimeError(f"chromium exited with {done.returncode}: {done.stderr[-2000:]}")
    return done.stdout
