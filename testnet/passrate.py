#!/usr/bin/env python3
"""Runs each Tor test binary N times in a row and prints its pass rate.

Every run is a fresh process, so every run brings up its own private Tor
network (tornet.py, started by the first test that asks for it) and tears it
down when the process ends. The binaries are built as CI builds them (the
README's test command, `cargo test --workspace --all-features --locked`), and
run as cargo runs them (from their package's directory, with
RICOCHET_REQUIRE_TOR=1 so that nothing skips).

  python3 testnet/passrate.py --runs 20                   # every Tor test binary
  python3 testnet/passrate.py --runs 20 --bins arti,tor    # some of them
  python3 testnet/passrate.py --runs 5 --bins arti -- arti_dials_arti   # arguments for the binary

For every failed run it keeps, under --out (default target/passrate):
the binary's output, the whole debug log of the process (RICOCHET_TEST_LOG,
arti's included) and the notice logs of the private network's tors. A passed
run's files are removed. The table at the end is Markdown, for
testnet/README.md.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Test binaries that run on the private Tor network: (package, test target).
TOR_BINARIES = [
    ("ricochet-transport", "arti"),
    ("ricochet-transport", "conformance"),
    ("ricochet-client", "tor"),
    ("ricochet-client", "anonymity"),
    ("ricochet-messenger", "plain"),
]


def build(cargo_args):
    """Builds every test binary; returns {(package, target): (executable, package dir)}."""
    cmd = ["cargo", "test", "--workspace", "--all-features", "--locked", "--no-run",
           "--message-format=json-render-diagnostics"] + cargo_args
    print("+", " ".join(cmd), file=sys.stderr)
    out = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, check=True, text=True).stdout
    found = {}
    for line in out.splitlines():
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if msg.get("reason") != "compiler-artifact" or not msg.get("executable"):
            continue
        target = msg["target"]
        if "test" not in target["kind"]:
            continue
        package = msg["package_id"]
        # "path+file:///…/ricochet-client#0.1.0" or "ricochet-client 0.1.0 (path…)"
        name = package.split("#")[0].rsplit("/", 1)[-1] if "#" in package else package.split()[0]
        found[(name, target["name"])] = (msg["executable"], os.path.dirname(msg["manifest_path"]))
    return found


def network_dir(pid):
    """The private network of the test process `pid` (see testnet/src/lib.rs)."""
    return os.path.join(tempfile.gettempdir(), f"ricochet-tornet-{pid}")


def keep_network_logs(pid, dest):
    """Copies the tors' logs of the private network of process `pid`."""
    root = os.path.join(network_dir(pid), "net")
    if not os.path.isdir(root):
        return
    for node in sorted(os.listdir(root)):
        for log in ("notice.log", "info.log"):
            src = os.path.join(root, node, log)
            if os.path.isfile(src):
                shutil.copy(src, os.path.join(dest, f"tor-{node}-{log}"))


def run_once(executable, cwd, extra, log_prefix):
    """Runs the binary once; returns (exit code, seconds, output, pid)."""
    env = dict(os.environ)
    env["RICOCHET_REQUIRE_TOR"] = "1"
    env["RICOCHET_TEST_LOG"] = log_prefix
    env.setdefault("RUST_BACKTRACE", "1")
    started = time.monotonic()
    proc = subprocess.Popen([executable] + extra, cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, errors="replace")
    output, _ = proc.communicate()
    return proc.returncode, time.monotonic() - started, output, proc.pid


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20, help="runs per binary (default 20)")
    parser.add_argument("--bins", default=",".join(t for _, t in TOR_BINARIES),
                        help="comma-separated test targets (default: every Tor test binary)")
    parser.add_argument("--out", default=os.path.join(ROOT, "target", "passrate"),
                        help="where failed runs' output and logs are kept")
    parser.add_argument("--release", action="store_true", help="build and run optimised")
    parser.add_argument("--stop-on-failure", action="store_true",
                        help="stop a binary's loop at its first failure (to catch a flake's log)")
    parser.add_argument("extra", nargs="*", help="arguments for the test binaries (after --)")
    args = parser.parse_args()

    wanted = [t for t in args.bins.split(",") if t]
    known = {t: p for p, t in TOR_BINARIES}
    for target in wanted:
        if target not in known:
            parser.error(f"unknown Tor test binary {target!r} (known: {', '.join(known)})")
    built = build(["--release"] if args.release else [])
    os.makedirs(args.out, exist_ok=True)

    rows = []
    for target in wanted:
        key = (known[target], target)
        if key not in built:
            sys.exit(f"cargo built no test binary {key}")
        executable, cwd = built[key]
        passes, times, failures = 0, [], []
        for i in range(1, args.runs + 1):
            run_dir = os.path.join(args.out, f"{target}-{time.strftime('%Y%m%d-%H%M%S')}-{i}")
            os.makedirs(run_dir)
            log_prefix = os.path.join(run_dir, "debug.log")
            rc, elapsed, output, pid = run_once(executable, cwd, args.extra, log_prefix)
            times.append(elapsed)
            with open(os.path.join(run_dir, "output.txt"), "w") as f:
                f.write(output)
            if rc == 0:
                passes += 1
                shutil.rmtree(run_dir, ignore_errors=True)
                verdict = "pass"
            else:
                keep_network_logs(pid, run_dir)
                failed = [line for line in output.splitlines()
                          if line.startswith("test ") and line.endswith("FAILED")]
                failures.append((i, run_dir, failed))
                verdict = f"FAIL ({', '.join(failed) or f'exit {rc}'}) -> {run_dir}"
            shutil.rmtree(network_dir(pid), ignore_errors=True)
            print(f"{target} run {i}/{args.runs}: {verdict} in {elapsed:.0f} s", flush=True)
            if rc != 0 and args.stop_on_failure:
                break
        rows.append((f"{known[target]} `{target}`", len(times), passes, times, failures))

    print()
    print("| binary | runs | passes | pass rate | time per run (median, max) |")
    print("|---|---|---|---|---|")
    for name, runs, passes, times, _ in rows:
        ordered = sorted(times)
        median = ordered[len(ordered) // 2]
        print(f"| {name} | {runs} | {passes} | {100.0 * passes / runs:.0f} % | "
              f"{median:.0f} s, {ordered[-1]:.0f} s |")
    for name, _, _, _, failures in rows:
        for i, run_dir, failed in failures:
            print(f"{name} run {i}: {', '.join(failed) or 'failed'}: {run_dir}")
    sys.exit(0 if all(passes == runs for _, runs, passes, _, _ in rows) else 1)


if __name__ == "__main__":
    main()
