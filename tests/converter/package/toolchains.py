"""Compilers the mobile-port tests use, found or fetched once: the Kotlin compiler at the exact version
a bundle's Gradle build pins (npm package `kotlin-compiler`, JVM only, cached under SLMKIT_CACHE or
~/.cache/slmkit), and a Swift toolchain when the machine has one (`swift` on PATH or SLMKIT_SWIFT;
Linux builds the dependency-free routing core only, see the package's Package.swift)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

KOTLIN_PLUGIN = re.compile(r'id\("org\.jetbrains\.kotlin\.android"\) version "([0-9][0-9.]*)"')


def pinned_kotlin(build_file: Path) -> str:
    """The Kotlin version `build_file` (the bundle's app/android/build.gradle.kts) pins."""
    found = KOTLIN_PLUGIN.search(build_file.read_text(encoding="utf-8"))
    assert found, f"{build_file} pins no Kotlin plugin version"
    return found.group(1)


def kotlinc(version: str) -> tuple[Path, Path] | str:
    """(kotlinc, kotlin-stdlib.jar) of `version`, installed from npm on first use; or why not."""
    root = Path(os.environ.get("SLMKIT_CACHE", Path.home() / ".cache" / "slmkit")) / "kotlinc" / version
    compiler = root / "node_modules" / "kotlin-compiler"
    if not (compiler / "bin" / "kotlinc").is_file():
        if shutil.which("npm") is None or shutil.which("java") is None:
            return "npm and java are needed to fetch the Kotlin compiler (npm package kotlin-compiler)"
        root.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(["npm", "install", "--prefix", str(root), "--no-audit", "--no-fund", f"kotlin-compiler@{version}"],
                              capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            return f"npm install kotlin-compiler@{version} failed: {done.stderr.strip()[-300:]}"
    return compiler / "bin" / "kotlinc", compiler / "lib" / "kotlin-stdlib.jar"


def swift() -> str | None:
    """The swift driver to run, or None when this machine has no Swift toolchain."""
    return os.environ.get("SLMKIT_SWIFT") or shutil.which("swift")
