"""A pod's fake container: an in-memory filesystem and a tiny command set
(echo, cat, ls, id, hostname, env, true, false, sh -c, sleep, tar, test, ...)
so exec, attach and kubectl cp have something real to talk to."""

import io
import posixpath
import shlex
import tarfile
import threading
import time


class ExecNotFound(Exception):
    """The runtime could not start the process (binary not in $PATH)."""


class FS:
    def __init__(self, hostname):
        self.lock = threading.RLock()
        now = time.time()
        self.nodes = {"/": {"type": "dir", "mode": 0o755, "mtime": now}}
        for d, mode in (("/bin", 0o755), ("/etc", 0o755), ("/tmp", 0o1777), ("/app", 0o755),
                        ("/var", 0o755), ("/var/log", 0o755), ("/root", 0o700),
                        ("/usr", 0o755), ("/usr/bin", 0o755)):
            self.mkdir(d, mode)
        self.write("/etc/hostname", (hostname + "\n").encode())
        self.write("/etc/hosts", ("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost "
                                  "ip6-loopback\n10.244.0.10\t%s\n" % hostname).encode())
        self.write("/etc/os-release", b'NAME="Debian GNU/Linux"\nVERSION_ID="12"\n'
                   b'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\n')
        self.write("/app/config.yaml", b"listen: :8080\nlogLevel: info\n")
        self.write("/tmp/hello.txt", b"hello\n")
        for b in ("sh", "cat", "ls", "echo", "tar", "env", "id", "sleep", "true", "false"):
            self.write("/bin/" + b, b"\x7fELF", 0o755)

    @staticmethod
    def norm(path, cwd="/"):
        return posixpath.normpath(posixpath.join(cwd, path)) if path else cwd

    def get(self, path):
        with self.lock:
            return self.nodes.get(self.norm(path))

    def mkdir(self, path, mode=0o755, parents=True):
        path = self.norm(path)
        with self.lock:
            if path in self.nodes:
                return self.nodes[path]["type"] == "dir"
            parent = posixpath.dirname(path)
            if parent not in self.nodes:
                if not parents:
                    return False
                self.mkdir(parent, 0o755, True)
            self.nodes[path] = {"type": "dir", "mode": mode, "mtime": time.time()}
            return True

    def write(self, path, data, mode=0o644, mtime=None, append=False):
        path = self.norm(path)
        with self.lock:
            parent = posixpath.dirname(path)
            if parent not in self.nodes:
                self.mkdir(parent)
            node = self.nodes.get(path)
            if node and node["type"] == "dir":
                raise IsADirectoryError(path)
            if append and node:
                data = node["data"] + data
            self.nodes[path] = {"type": "file", "mode": mode, "data": bytes(data),
                                "mtime": mtime or time.time()}

    def children(self, path):
        path = self.norm(path)
        pre = path.rstrip("/") + "/"
        with self.lock:
            return sorted(p[len(pre):] for p in self.nodes
                          if p.startswith(pre) and p != path and "/" not in p[len(pre):])

    def remove(self, path, recursive=False):
        path = self.norm(path)
        with self.lock:
            if path not in self.nodes:
                return False
            for p in [p for p in self.nodes if p == path or p.startswith(path.rstrip("/") + "/")]:
                if p == path or recursive:
                    del self.nodes[p]
            return True


class Container:
    """The fake process table for one pod: runs argv against the pod's FS."""

    def __init__(self, pod_name, namespace, env):
        self.pod = pod_name
        self.namespace = namespace
        self.fs = FS(pod_name)
        self.env = [("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
                    ("HOSTNAME", pod_name)] + list(env) + [
            ("KUBERNETES_SERVICE_HOST", "10.96.0.1"), ("KUBERNETES_SERVICE_PORT", "443"),
            ("HOME", "/root")]

    def run(self, argv, stdin, out, err):
        """Runs argv. stdin() returns the next bytes chunk (b'' at EOF), out/err
        take bytes. Returns the exit code; raises ExecNotFound like runc."""
        if not argv:
            raise ExecNotFound("")
        name = argv[0].rsplit("/", 1)[-1]
        fn = getattr(self, "cmd_" + name.replace("-", "_"), None)
        if name in ("bash", "sh", "ash", "dash"):
            fn = self.cmd_sh
        elif name == "[":
            fn = self.cmd_test
        if fn is None or name.startswith("_"):
            raise ExecNotFound(argv[0])
        return fn(argv[1:], stdin, out, err)

    # --- commands -------------------------------------------------------
    def cmd_true(self, args, stdin, out, err):
        return 0

    def cmd_false(self, args, stdin, out, err):
        return 1

    def cmd_echo(self, args, stdin, out, err):
        nl = True
        if args and args[0] == "-n":
            nl = False
            args = args[1:]
        out((" ".join(args) + ("\n" if nl else "")).encode())
        return 0

    def cmd_printf(self, args, stdin, out, err):
        if not args:
            return 1
        fmt = args[0].replace("\\n", "\n").replace("\\t", "\t")
        try:
            s = fmt % tuple(args[1:]) if args[1:] else fmt.replace("%%", "%")
        except (TypeError, ValueError):
            s = fmt
        out(s.encode())
        return 0

    def cmd_id(self, args, stdin, out, err):
        out(b"uid=0(root) gid=0(root) groups=0(root)\n")
        return 0

    def cmd_whoami(self, args, stdin, out, err):
        out(b"root\n")
        return 0

    def cmd_hostname(self, args, stdin, out, err):
        out((self.pod + "\n").encode())
        return 0

    def cmd_pwd(self, args, stdin, out, err):
        out(b"/\n")
        return 0

    def cmd_uname(self, args, stdin, out, err):
        if "-a" in args:
            out(("Linux %s 6.1.0-18-amd64 #1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 x86_64 "
                 "GNU/Linux\n" % self.pod).encode())
        else:
            out(b"Linux\n")
        return 0

    def cmd_date(self, args, stdin, out, err):
        out(time.strftime("%a %b %e %H:%M:%S UTC %Y\n", time.gmtime()).encode())
        return 0

    def cmd_env(self, args, stdin, out, err):
        out("".join("%s=%s\n" % kv for kv in self.env).encode())
        return 0

    def cmd_sleep(self, args, stdin, out, err):
        try:
            n = float(args[0]) if args else 0
        except ValueError:
            err(("sleep: invalid time interval '%s'\n" % args[0]).encode())
            return 1
        time.sleep(min(n, 3600))
        return 0

    def cmd_cat(self, args, stdin, out, err):
        files = [a for a in args if a != "-"] if args else []
        if not files:
            while True:
                chunk = stdin()
                if not chunk:
                    return 0
                out(chunk)
        rc = 0
        for f in files:
            node = self.fs.get(f)
            if node is None:
                err(("cat: %s: No such file or directory\n" % f).encode())
                rc = 1
            elif node["type"] == "dir":
                err(("cat: %s: Is a directory\n" % f).encode())
                rc = 1
            else:
                out(node["data"])
        return rc

    def cmd_test(self, args, stdin, out, err):
        if args and args[-1] == "]":
            args = args[:-1]
        if len(args) == 2:
            node = self.fs.get(args[1])
            op = args[0]
            if op == "-d":
                return 0 if node and node["type"] == "dir" else 1
            if op == "-f":
                return 0 if node and node["type"] == "file" else 1
            if op in ("-e", "-r", "-w"):
                return 0 if node else 1
            if op == "-n":
                return 0 if args[1] else 1
            if op == "-z":
                return 0 if not args[1] else 1
        if len(args) == 3 and args[1] in ("=", "=="):
            return 0 if args[0] == args[2] else 1
        if len(args) == 3 and args[1] == "!=":
            return 0 if args[0] != args[2] else 1
        return 0 if len(args) == 1 and args[0] else 1

    def cmd_mkdir(self, args, stdin, out, err):
        parents = "-p" in args
        rc = 0
        for a in [a for a in args if not a.startswith("-")]:
            if self.fs.get(a) is not None and not parents:
                err(("mkdir: cannot create directory '%s': File exists\n" % a).encode())
                rc = 1
            elif not self.fs.mkdir(a, parents=parents):
                err(("mkdir: cannot create directory '%s': No such file or directory\n"
                     % a).encode())
                rc = 1
        return rc

    def cmd_touch(self, args, stdin, out, err):
        for a in [a for a in args if not a.startswith("-")]:
            if self.fs.get(a) is None:
                self.fs.write(a, b"")
            else:
                self.fs.get(a)["mtime"] = time.time()
        return 0

    def cmd_rm(self, args, stdin, out, err):
        flags = "".join(a[1:] for a in args if a.startswith("-"))
        rc = 0
        for a in [a for a in args if not a.startswith("-")]:
            node = self.fs.get(a)
            if node is None:
                if "f" not in flags:
                    err(("rm: cannot remove '%s': No such file or directory\n" % a).encode())
                    rc = 1
            elif node["type"] == "dir" and "r" not in flags and "R" not in flags:
                err(("rm: cannot remove '%s': Is a directory\n" % a).encode())
                rc = 1
            else:
                self.fs.remove(a, recursive=True)
        return rc

    def _ls_line(self, name, node):
        t = "d" if node["type"] == "dir" else "-"
        m = node["mode"]
        perms = ""
        for shift in (6, 3, 0):
            bits = (m >> shift) & 7
            perms += ("r" if bits & 4 else "-") + ("w" if bits & 2 else "-") + \
                     ("x" if bits & 1 else "-")
        if m & 0o1000:
            perms = perms[:-1] + ("t" if perms[-1] == "x" else "T")
        size = 4096 if node["type"] == "dir" else len(node["data"])
        links = 2 if node["type"] == "dir" else 1
        when = time.strftime("%b %e %H:%M", time.gmtime(node["mtime"]))
        return [t + perms, str(links), "root", "root", str(size), when, name]

    def cmd_ls(self, args, stdin, out, err):
        flags = "".join(a[1:] for a in args if a.startswith("-") and a != "-")
        paths = [a for a in args if not a.startswith("-")] or ["."]
        long_ = "l" in flags
        show_all = "a" in flags
        almost = "A" in flags
        rc = 0
        for i, p in enumerate(paths):
            path = self.fs.norm(p if p != "." else "/")
            node = self.fs.get(path)
            if node is None:
                err(("ls: cannot access '%s': No such file or directory\n" % p).encode())
                rc = 2
                continue
            if node["type"] == "file":
                entries = [(p, node)]
            else:
                entries = []
                if show_all:
                    entries.append((".", node))
                    entries.append(("..", self.fs.get(posixpath.dirname(path)) or node))
                for c in self.fs.children(path):
                    if c.startswith(".") and not (show_all or almost):
                        continue
                    entries.append((c, self.fs.get(posixpath.join(path, c))))
            if len(paths) > 1 and node["type"] == "dir":
                out(("%s%s:\n" % ("\n" if i else "", p)).encode())
            if not long_:
                out("".join(e[0] + "\n" for e in entries).encode())
                continue
            rows = [self._ls_line(n, nd) for n, nd in entries]
            total = sum((4 if nd["type"] == "dir" else (len(nd["data"]) + 4095) // 4096 * 4)
                        for _, nd in entries)
            if node["type"] == "dir":
                out(("total %d\n" % total).encode())
            wl = max([len(r[1]) for r in rows] or [1])
            ws = max([len(r[4]) for r in rows] or [1])
            for r in rows:
                out(("%s %s %s %s %s %s %s\n" % (r[0], r[1].rjust(wl), r[2], r[3],
                                                 r[4].rjust(ws), r[5], r[6])).encode())
        return rc

    def cmd_sh(self, args, stdin, out, err):
        if args and args[0] == "-c":
            return self._script(args[1] if len(args) > 1 else "", stdin, out, err)
        if args and not args[0].startswith("-"):
            node = self.fs.get(args[0])
            if node is None:
                err(("sh: 0: cannot open %s: No such file\n" % args[0]).encode())
                return 2
            return self._script(node["data"].decode(errors="replace"), stdin, out, err)
        # interactive / piped: run each line read from stdin
        buf = b""
        rc = 0
        while True:
            chunk = stdin()
            if not chunk:
                break
            buf += chunk
            while b"\n" in buf or b"\r" in buf:
                i = min(x for x in (buf.find(b"\n"), buf.find(b"\r")) if x >= 0)
                line, buf = buf[:i], buf[i + 1:]
                rc = self._script(line.decode(errors="replace"), stdin, out, err)
                if isinstance(rc, tuple):
                    return rc[1]
        if buf.strip():
            rc = self._script(buf.decode(errors="replace"), stdin, out, err)
        return rc[1] if isinstance(rc, tuple) else rc

    def _script(self, script, stdin, out, err):
        """Runs a tiny subset of sh: ';', '&&', '||', exit N, redirections
        > >> 2>&1 >&2 and plain commands."""
        rc = 0
        try:
            lex = shlex.shlex(script, posix=True, punctuation_chars=";&|<>")
            lex.whitespace_split = True
            toks = list(lex)
        except ValueError as e:
            err(("sh: 1: Syntax error: %s\n" % e).encode())
            return 2
        cmds, cur, ops = [], [], []
        for t in toks:
            if t in (";", "&&", "||", "\n"):
                cmds.append(cur)
                ops.append(t)
                cur = []
            else:
                cur.append(t)
        cmds.append(cur)
        prev_op = ";"
        for i, argv in enumerate(cmds):
            if prev_op == "&&" and rc != 0 or prev_op == "||" and rc == 0:
                prev_op = ops[i] if i < len(ops) else ";"
                continue
            prev_op = ops[i] if i < len(ops) else ";"
            if not argv:
                continue
            if argv[0] == "exit":
                try:
                    return int(argv[1]) & 0xFF if len(argv) > 1 else rc
                except ValueError:
                    err(("sh: 1: exit: Illegal number: %s\n" % argv[1]).encode())
                    return 2
            rc = self._simple(argv, stdin, out, err)
        return rc

    def _simple(self, argv, stdin, out, err):
        """One pipeline: cmd [| cmd ...] with redirections > >> >&2 2>&1 2> FILE."""
        stages, cur = [], []
        for t in argv:
            if t == "|":
                stages.append(cur)
                cur = []
            else:
                cur.append(t)
        stages.append(cur)
        data_in = None
        rc = 0
        for n, stage in enumerate(stages):
            last = n == len(stages) - 1
            captured = []
            sink = out if last else captured.append
            if data_in is None:
                src = stdin
            else:
                chunks = [data_in]
                src = lambda c=chunks: c.pop() if c else b""
            rc = self._command(stage, src, sink, err)
            data_in = b"".join(captured)
        return rc

    def _command(self, argv, stdin, out, err):
        o, e = out, err
        files = {}
        args = []
        i = 0
        while i < len(argv):
            a, nxt = argv[i], argv[i + 1] if i + 1 < len(argv) else None
            after = argv[i + 2] if i + 2 < len(argv) else None
            if a in (">&", ">") and nxt == "2" and a == ">&":
                o, i = err, i + 2
            elif a == "2" and nxt == ">&" and after == "1":
                e, i = out, i + 3
            elif a == "2" and nxt in (">", ">>") and after is not None:
                files[2] = (after, nxt == ">>")
                i += 3
            elif a in (">", ">>") and nxt is not None:
                files[1] = (nxt, a == ">>")
                i += 2
            else:
                args.append(a)
                i += 1
        if not args:
            return 0
        bufs = {1: [], 2: []}
        if 1 in files:
            o = bufs[1].append
        if 2 in files:
            e = bufs[2].append
        try:
            rc = self.run(args, stdin, o, e)
        except ExecNotFound:
            err(("sh: 1: %s: not found\n" % args[0]).encode())
            return 127
        for fd, (path, append) in files.items():
            if path != "/dev/null":
                self.fs.write(path, b"".join(bufs[fd]), append=append)
        return rc

    def cmd_tar(self, args, stdin, out, err):
        mode, archive, cdir, paths = None, None, "/", []
        opts = []
        if args and not args[0].startswith("-"):
            opts.append(args[0])
            args = args[1:]
        i = 0
        while i < len(args):
            a = args[i]
            if a == "-C" and i + 1 < len(args):
                cdir = args[i + 1]
                i += 2
                continue
            if a.startswith("--"):
                i += 1
                continue
            if a.startswith("-") and a != "-":
                opts.append(a[1:])
                if "f" in a and i + 1 < len(args) and a.endswith("f"):
                    archive = args[i + 1]
                    i += 2
                    continue
            else:
                paths.append(a)
            i += 1
        letters = "".join(opts)
        if "f" in letters and archive is None and paths:
            archive = paths.pop(0)
        mode = "c" if "c" in letters else ("x" if "x" in letters else ("t" if "t" in letters
                                                                        else None))
        if mode is None:
            err(b"tar: You must specify one of the '-Acdtrux', '--delete' or '--test-label' "
                b"options\nTry 'tar --help' or 'tar --usage' for more information.\n")
            return 2
        if archive not in (None, "-"):
            err(b"tar: only '-' (stdin/stdout) archives are supported here\n")
            return 2
        if mode == "c":
            return self._tar_create(cdir, paths, out, err)
        return self._tar_extract(cdir, stdin, out, err, list_only=(mode == "t"),
                                 keep_mtime="m" not in letters)

    def _tar_create(self, cdir, paths, out, err):
        bio = io.BytesIO()
        rc = 0
        warned = False
        with tarfile.open(fileobj=bio, mode="w", format=tarfile.GNU_FORMAT) as tf:
            for p in paths:
                full = self.fs.norm(p, self.fs.norm(cdir))
                node = self.fs.get(full)
                if node is None:
                    err(("tar: %s: Cannot stat: No such file or directory\n" % p).encode())
                    rc = 2
                    continue
                arc = p
                if arc.startswith("/"):
                    if not warned:
                        err(b"tar: Removing leading `/' from member names\n")
                        warned = True
                    arc = arc.lstrip("/")
                self._tar_add(tf, full, arc)
        if rc:
            err(b"tar: Exiting with failure status due to previous errors\n")
        out(bio.getvalue())
        return rc

    def _tar_add(self, tf, full, arc):
        node = self.fs.get(full)
        ti = tarfile.TarInfo(arc)
        ti.mtime = int(node["mtime"])
        ti.mode = node["mode"]
        ti.uname = ti.gname = "root"
        if node["type"] == "dir":
            ti.type = tarfile.DIRTYPE
            tf.addfile(ti)
            for c in self.fs.children(full):
                self._tar_add(tf, posixpath.join(full, c), posixpath.join(arc, c))
        else:
            ti.size = len(node["data"])
            tf.addfile(ti, io.BytesIO(node["data"]))

    def _tar_extract(self, cdir, stdin, out, err, list_only, keep_mtime):
        data = bytearray()
        while True:
            chunk = stdin()
            if not chunk:
                break
            data += chunk
            if len(data) > 64 * 1024 * 1024:
                err(b"tar: archive too large for the stand-in\n")
                return 2
        base = self.fs.norm(cdir)
        if self.fs.get(base) is None:
            err(("tar: %s: Cannot open: No such file or directory\n" % cdir).encode())
            return 2
        try:
            tf = tarfile.open(fileobj=io.BytesIO(bytes(data)), mode="r:*")
            members = tf.getmembers()
        except tarfile.TarError:
            err(b"tar: This does not look like a tar archive\n"
                b"tar: Exiting with failure status due to previous errors\n")
            return 2
        for m in members:
            name = posixpath.normpath("/" + m.name).lstrip("/")
            if list_only:
                out((m.name + "\n").encode())
                continue
            dest = posixpath.join(base, name)
            mtime = m.mtime if keep_mtime else None
            if m.isdir():
                self.fs.mkdir(dest, m.mode or 0o755)
            elif m.isfile():
                f = tf.extractfile(m)
                self.fs.write(dest, f.read() if f else b"", m.mode or 0o644, mtime)
        return 0
