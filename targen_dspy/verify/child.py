"""The process `sandbox.run_python` starts: `python -I -S -B child.py CONFIG`, in the run's temporary
working directory. It reads the code, then locks itself down before running it, in this order:

1. resource limits (CPU seconds, address space, file size, no new processes, no core files);
2. Landlock, when the kernel has it: files readable only under the working directory and Python's own
   stdlib, writable only under the working directory; no TCP connect or bind; no signals to, or
   abstract sockets of, processes outside (each as far as the kernel's Landlock ABI goes);
3. an audit hook (PEP 578) that refuses opening files outside those directories, sockets, processes,
   ctypes, and the introspection that would reach the hook itself.

It imports nothing outside the standard library (site-packages are not even on its path) and reports
the layers in force on the first line of stderr, then runs the code as `__main__`.
"""

import ast
import json
import os
import resource
import sys
import types

LAYERS_MARK = "\x00sandbox-layers:"

# Events refused outright: processes, sockets, foreign code, links out of the directory, changing the
# working directory (relative paths are checked against it), and what leads to the hook.
BLOCKED_EVENTS = frozenset(
    {
        "os.system",
        "os.fork",
        "os.forkpty",
        "os.kill",
        "os.killpg",
        "os.startfile",
        "os.putenv",
        "os.unsetenv",
        "os.link",
        "os.symlink",
        "os.chdir",
        "os.chroot",
        "subprocess.Popen",
        "pty.spawn",
        "_thread.start_new_thread",
        "signal.pthread_kill",
        "resource.setrlimit",
        "resource.prlimit",
        "fcntl.ioctl",
        "gc.get_objects",  # the garbage collector would lead to the hook itself
        "gc.get_referrers",
        "gc.get_referents",
        "webbrowser.open",
    }
)
BLOCKED_PREFIXES = ("socket.", "ctypes.", "os.exec", "os.posix_spawn", "os.spawn", "cpython.run_")
BLOCKED_MODULES = frozenset(
    {
        "ctypes",
        "_ctypes",
        "socket",
        "_socket",
        "ssl",
        "_ssl",
        "subprocess",
        "_posixsubprocess",
        "multiprocessing",
        "_multiprocessing",
        "pty",
        "termios",
        "resource",
    }
)
# Events whose path arguments must lie under the working directory (they change the filesystem) ...
WRITING_EVENTS = frozenset(
    {
        "os.chmod",
        "os.chown",
        "os.chflags",
        "os.lchflags",
        "os.mkdir",
        "os.mkfifo",
        "os.mknod",
        "os.remove",
        "os.rename",
        "os.rmdir",
        "os.truncate",
        "os.utime",
        "os.setxattr",
        "os.removexattr",
        "shutil.chown",
        "shutil.copyfile",
        "shutil.copymode",
        "shutil.copystat",
        "shutil.copytree",
        "shutil.move",
        "shutil.rmtree",
        "shutil.make_archive",
        "shutil.unpack_archive",
        "tempfile.mkstemp",
        "tempfile.mkdtemp",
    }
)
# ... or under a readable directory (they read it).
READING_EVENTS = frozenset(
    {"os.listdir", "os.scandir", "os.listxattr", "os.getxattr", "glob.glob", "glob.glob/2"}
)

# Landlock (linux/landlock.h): syscalls, rule types and access rights.
SYS_CREATE_RULESET, SYS_ADD_RULE, SYS_RESTRICT_SELF = 444, 445, 446
CREATE_RULESET_VERSION = 1
RULE_PATH_BENEATH = 1
PR_SET_NO_NEW_PRIVS = 38
FS_EXECUTE, FS_WRITE_FILE, FS_READ_FILE, FS_READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
FS_REMOVE_DIR, FS_REMOVE_FILE, FS_MAKE_DIR, FS_MAKE_REG = 1 << 4, 1 << 5, 1 << 7, 1 << 8
FS_REFER, FS_TRUNCATE = 1 << 13, 1 << 14
NET_BIND_TCP, NET_CONNECT_TCP = 1 << 0, 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1 << 0, 1 << 1


def set_limits(config):
    """Hard limits, so that the code cannot raise them again."""
    for name, value in (
        ("RLIMIT_CPU", config["cpu_seconds"]),
        ("RLIMIT_AS", config["memory_bytes"]),
        ("RLIMIT_FSIZE", config["file_bytes"]),
        ("RLIMIT_NPROC", 0),  # no fork (ignored for root, whom the other layers hold)
        ("RLIMIT_CORE", 0),
    ):
        resource.setrlimit(getattr(resource, name), (value, value))


def restrict_with_landlock(workdir, readable):
    """Restrict this process (and anything it could start) with Landlock; False if the kernel lacks it."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    abi = libc.syscall(SYS_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(CREATE_RULESET_VERSION))
    if abi < 1:
        return None
    handled = (1 << 13) - 1  # every right of ABI 1: execute, read, write, remove, make ...
    if abi >= 2:
        handled |= FS_REFER
    if abi >= 3:
        handled |= FS_TRUNCATE
    if abi >= 5:
        handled |= 1 << 15  # ioctl on devices

    class RulesetAttr(ctypes.Structure):
        _fields_ = [("fs", ctypes.c_uint64), ("net", ctypes.c_uint64), ("scoped", ctypes.c_uint64)]

    class PathBeneath(ctypes.Structure):
        _pack_ = 1
        _fields_ = [("allowed", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]

    attr = RulesetAttr(
        handled,
        NET_BIND_TCP | NET_CONNECT_TCP if abi >= 4 else 0,  # handled, and no port allowed
        SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL if abi >= 6 else 0,
    )
    ruleset = libc.syscall(SYS_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr)), 0)
    if ruleset < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset")
    read = FS_READ_FILE | FS_READ_DIR  # extension modules are mapped, not executed: no FS_EXECUTE
    write = FS_READ_FILE | FS_READ_DIR | FS_WRITE_FILE | FS_REMOVE_DIR | FS_REMOVE_FILE | FS_MAKE_DIR
    write |= FS_MAKE_REG | (FS_REFER if abi >= 2 else 0) | (FS_TRUNCATE if abi >= 3 else 0)
    for path, allowed in [*((root, read) for root in readable), (workdir, write)]:
        if not os.path.isdir(path):
            continue
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        rule = PathBeneath(allowed & handled, fd)
        done = libc.syscall(SYS_ADD_RULE, ruleset, RULE_PATH_BENEATH, ctypes.byref(rule), 0)
        os.close(fd)
        if done < 0:
            raise OSError(ctypes.get_errno(), f"landlock_add_rule {path}")
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 or libc.syscall(SYS_RESTRICT_SELF, ruleset, 0) < 0:
        raise OSError(ctypes.get_errno(), "landlock_restrict_self")
    os.close(ruleset)
    return abi


def install_audit_hook(workdir, readable):
    """The hook reads nothing the code could change: every name it uses is bound here, at install time
    (module globals and builtins could be rebound), paths are normalised by its own code rather than by
    `os.path`, whose helpers could be replaced, and nothing but the interpreter refers to it."""
    blocked_events, blocked_prefixes, blocked_modules = BLOCKED_EVENTS, BLOCKED_PREFIXES, BLOCKED_MODULES
    writing_events, reading_events = WRITING_EVENTS, READING_EVENTS
    getcwd, fspath, decode, join = os.getcwd, os.fspath, bytes.decode, str.join
    is_a, any_of, truth, str_type, bytes_type, int_type = isinstance, any, bool, str, bytes, int
    denied, import_denied = PermissionError, ImportError
    writes = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
    # Installed packages live beneath the stdlib directory but are not part of it.
    packages = tuple(f"{root}/{name}" for root in readable for name in ("site-packages", "dist-packages"))
    writable, readable = (workdir,), (workdir, *readable)

    def normalised(path):
        """An absolute path without `.`, `..` or repeated slashes, as a plain str; None if not a path."""
        try:
            path = fspath("." if path is None else path)
        except TypeError:
            return None
        path = decode(path, "utf-8", "surrogateescape") if is_a(path, bytes_type) else join("", [path])
        if not path.startswith("/"):
            path = join("/", [getcwd(), path])
        parts = []
        for part in path.split("/"):
            if part == "..":
                parts = parts[:-1]
            elif part and part != ".":
                parts.append(part)
        return "/" + join("/", parts)

    def within(path, roots):
        return any_of(path == root or path.startswith(root + "/") for root in roots)

    def allowed(path, roots):
        if is_a(path, int_type):
            return True  # a file descriptor this process already holds
        path = normalised(path)
        if path is None:
            return False
        return within(path, roots) and (within(path, writable) or not within(path, packages))

    def plain(text):  # a str subclass could answer `in` and `startswith` as it likes
        return join("", [text]) if is_a(text, str_type) else ""

    def hook(event, args):
        if event == "open":
            path, mode, flags = args
            mode = plain(mode)
            writing = truth(any_of(c in mode for c in "wax+"))
            writing = writing or truth(is_a(flags, int_type) and flags & writes)
            if not allowed(path, writable if writing else readable):
                verb = "writing" if writing else "reading"
                raise denied(f"sandbox: {verb} {path!r} is blocked outside the working directory")
        elif event in writing_events or event in reading_events:
            roots = writable if event in writing_events else readable
            for path in args:
                if (path is None or is_a(path, (str_type, bytes_type))) and not allowed(path, roots):
                    raise denied(f"sandbox: {event} on {path!r} is blocked outside the working directory")
        elif event == "import":
            if plain(args[0]).partition(".")[0] in blocked_modules:
                raise import_denied(f"sandbox: importing {args[0]} is blocked")
        elif event in blocked_events or event.startswith(blocked_prefixes):
            raise denied(f"sandbox: {event} is blocked")

    sys.addaudithook(hook)


def lock_down(config):
    workdir = os.path.realpath(config["workdir"])
    readable = tuple(dict.fromkeys(os.path.realpath(p) for p in sys.path if p))  # Python's own stdlib
    layers = set(config["layers"])
    in_force = []
    if "rlimits" in layers:
        set_limits(config)
        in_force.append("rlimits")
    if "landlock" in layers:
        abi = restrict_with_landlock(workdir, readable)
        if abi:
            in_force.append(f"landlock-abi{abi}")
        for name in ("ctypes", "ctypes._endian", "_ctypes"):
            sys.modules.pop(name, None)
    if "hook" in layers:
        install_audit_hook(workdir, readable)
        in_force.append("audit-hook")
    return in_force


def printing_last_expression(source, filename):
    """The program's syntax tree, its last statement printed when it is a bare expression other than a
    call of print: as a notebook cell shows its last value, `3 * 12 - 9` at the end answers 27."""
    tree = ast.parse(source, filename)
    last = tree.body[-1] if tree.body else None
    if isinstance(last, ast.Expr):
        call = last.value
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "print"):
            printed = ast.Call(func=ast.Name(id="print", ctx=ast.Load()), args=[last.value], keywords=[])
            tree.body[-1] = ast.copy_location(ast.Expr(value=printed), last)
            ast.fix_missing_locations(tree)
    return tree


def main():
    config = json.loads(sys.argv[1])
    with open(os.path.join(config["workdir"], config["script"]), encoding="utf-8") as file:
        source = file.read()
    in_force = lock_down(config)
    sys.stderr.write(LAYERS_MARK + ",".join(in_force) + "\n")
    sys.stderr.flush()
    module = types.ModuleType("__main__")  # `import __main__` must not lead back here
    sys.modules["__main__"] = module
    try:
        exec(
            compile(printing_last_expression(source, config["script"]), config["script"], "exec"),
            module.__dict__,
        )
    except SystemExit:
        raise
    except BaseException as exc:  # the error's own line is enough to say why a solution failed
        sys.stdout.flush()
        sys.stderr.write(f"{type(exc).__name__}: {exc}\n")
        sys.exit(1)


if __name__ == "__main__":
    main()
